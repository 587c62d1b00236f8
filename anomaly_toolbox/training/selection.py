"""Selection rules: which weights of a run become its final model.

``validation`` ranks the per-epoch checks by the labelled validation split, ``synthetic`` by the
synthetic set made from its normal images (no label), ``last`` takes the weights training ended
with. :class:`BestChecks` keeps each checked rule's best check: its metrics and epoch (in the
run's checkpoint, so a resumed run goes on ranking), and its weights, held in memory and written
to ``best_<rule>/`` with the next checkpoint.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

#: Selection rules that rank the checks of a run (``last`` needs no check), each on its own set:
#: the labelled validation split, or the synthetic set made from its normal images.
CHECKED_RULES = ("validation", "synthetic")


def best_weights_dir(run_dir: Path, rule: str) -> Path:
    """Where the best check's weights under ``rule`` are kept while a run is unfinished."""
    return run_dir / f"best_{rule}"

#: Scoring weights by network name.
Weights = dict[str, list[np.ndarray]]


def resolve_selection(requested: str, data: Any, label_free: str) -> str:
    """The rule that chooses a run's final weights: ``requested`` (an hps ``selection`` value),
    with 'auto' read as 'validation' when validation holds labelled anomalies, else
    ``label_free`` (and 'last' when there are too few normal validation images for a synthetic
    set). ``ValueError`` when the requested rule cannot work on this data (``PreparedData``)."""
    if requested == "auto":
        if data.has_validation_anomalies:
            return "validation"
        return "last" if label_free == "synthetic" and data.synthetic is None else label_free
    if requested == "validation" and not data.has_validation_anomalies:
        raise ValueError("selection 'validation' needs labelled anomalies in the validation "
                         "split and this one has none; use selection 'synthetic' or 'last' "
                         "(or 'auto')")
    if requested == "synthetic" and data.synthetic is None:
        raise ValueError("selection 'synthetic' needs at least two normal validation samples "
                         "to build its set from; raise --val-share or use selection 'last'")
    return requested


def other_metric(metric: str) -> str:
    """The other ranking metric: AUPRC for AUROC and the reverse."""
    return "auprc" if metric == "auroc" else "auroc"


def weights_of(networks: dict[str, keras.Model]) -> Weights:
    """A copy of every network's weights."""
    return {name: net.get_weights() for name, net in networks.items()}


def set_weights(networks: dict[str, keras.Model], weights: Weights) -> None:
    """Load ``weights`` (from :func:`weights_of`) into ``networks``."""
    for name, net in networks.items():
        net.set_weights(weights[name])


class BestChecks:
    """The best check of every checked rule: ``selection_metric`` (ties broken by the other
    ranking metric, then by the later epoch), the epoch, and the scoring weights.

    ``save``: writes the scoring networks to a directory as ``<name>.keras`` files.
    """

    def __init__(self, selection_metric: str, save: Callable[[Path], None]) -> None:
        self.metric = selection_metric
        self._save = save
        self.best = {rule: tf.Variable(-np.inf, dtype=tf.float64, trainable=False,
                                       name=f"best_{rule}") for rule in CHECKED_RULES}
        self.tiebreak = {rule: tf.Variable(-np.inf, dtype=tf.float64, trainable=False,
                                           name=f"best_{rule}_tiebreak")
                         for rule in CHECKED_RULES}
        self.epoch = {rule: tf.Variable(0, dtype=tf.int64, trainable=False,
                                        name=f"best_{rule}_epoch") for rule in CHECKED_RULES}
        #: Each rule's best weights found in this process (kept for :meth:`weights`).
        self._found: dict[str, Weights] = {}
        #: Those not written to ``best_<rule>/`` yet.
        self._unwritten: dict[str, Weights] = {}

    def checkpointed(self) -> dict[str, tf.Variable]:
        """The variables a run's checkpoint keeps, by checkpoint name."""
        return {**{f"best_{rule}": v for rule, v in self.best.items()},
                **{f"best_{rule}_tiebreak": v for rule, v in self.tiebreak.items()},
                **{f"best_{rule}_epoch": v for rule, v in self.epoch.items()}}

    def forget_weights(self) -> None:
        """Start a fit: no weights found in this process yet."""
        self._found, self._unwritten = {}, {}

    def improves(self, rule: str, metrics: dict[str, float]) -> bool:
        """Whether this check beats ``rule``'s best so far on the selection metric: a higher
        value, or the same value with the other ranking metric at least as high (so on a full
        tie, the later epoch wins: a small validation split often reaches 1.0 early, and later
        weights trained more)."""
        candidate = (metrics[self.metric], metrics[other_metric(self.metric)])
        best = (self.best[rule].numpy(), self.tiebreak[rule].numpy())
        return candidate[0] > best[0] or (candidate[0] == best[0] and candidate[1] >= best[1])

    def record(self, rules: list[str], checks: dict[str, dict[str, float]], epoch: int,
               networks: dict[str, keras.Model]) -> None:
        """Make this check (after trained epoch ``epoch``) the best of ``rules``, holding the
        scoring ``networks``' weights once for all of them."""
        if not rules:
            return
        weights = weights_of(networks)
        for rule in rules:
            self.best[rule].assign(checks[rule][self.metric])
            self.tiebreak[rule].assign(checks[rule][other_metric(self.metric)])
            self.epoch[rule].assign(epoch)
            self._found[rule] = self._unwritten[rule] = weights

    def write_unwritten(self, run_dir: Path, networks: dict[str, keras.Model]) -> None:
        """Save each unwritten set of weights to ``best_<rule>/`` once, and copy the files for
        every other rule that holds the same set (a copy costs far less than a save); the
        ``networks`` keep their current weights."""
        if not self._unwritten:
            return
        current = weights_of(networks)
        written: dict[int, Path] = {}
        for rule, weights in self._unwritten.items():
            target = best_weights_dir(run_dir, rule)
            if id(weights) not in written:
                set_weights(networks, weights)
                self._save(target)
                written[id(weights)] = target
                continue
            target.mkdir(parents=True, exist_ok=True)
            for name in networks:
                partial = target / f"{name}.partial.keras"
                shutil.copyfile(written[id(weights)] / f"{name}.keras", partial)
                os.replace(partial, target / f"{name}.keras")
        set_weights(networks, current)
        self._unwritten = {}

    def weights(self, rule: str) -> Weights | None:
        """``rule``'s best weights if found in this process (None after a resume: they are in
        ``best_<rule>/``)."""
        return self._found.get(rule)

    def describe(self, rule: str) -> str:
        return (f"{rule}: best {rule} {self.metric} ({self.best[rule].numpy():.4f}) after epoch "
                f"{int(self.epoch[rule].numpy())}")

    def summary(self) -> dict[str, dict[str, float]]:
        """``<rule>_best``: the selection metric and the other ranking metric of each rule's
        best check (empty when it had none)."""
        other = other_metric(self.metric)
        return {f"{rule}_best": {self.metric: float(self.best[rule].numpy()),
                                 other: float(self.tiebreak[rule].numpy())}
                if self.best[rule].numpy() > float("-inf") else {} for rule in CHECKED_RULES}
