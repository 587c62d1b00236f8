"""Scoring and the final model: batched scores of a split, the weights each selection rule
chose, and the test metrics of the chosen model and of every other rule's model.

The threshold of every test is chosen on validation data: among labelled validation scores for
the ``validation`` rule, from the normal validation scores alone for a label-free rule.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from anomaly_toolbox.datasets.pipeline import PreparedData, eval_batches
from anomaly_toolbox.evaluation import ranking_metrics, test_metrics
from anomaly_toolbox.timing import eta_text
from anomaly_toolbox.training.callbacks import Callback
from anomaly_toolbox.training.selection import (CHECKED_RULES, BestChecks, best_weights_dir,
                                               set_weights, weights_of)

MODEL_DIR = "model"


def score_dataset(trainer: Any, cached: tf.data.Dataset,
                  scorer: Callable[[tf.Tensor], tf.Tensor] | None = None) -> np.ndarray:
    """``scorer`` (default: the trainer's compiled score) of every sample of a cached split
    ``[N]``, in order, in batches of the trainer's ``scoring_batch_size()``; with progress when
    the trainer's ``show_scoring_progress`` is set."""
    scorer = scorer or trainer.compiled_score
    batches = eval_batches(cached, trainer.scoring_batch_size())
    if not trainer.show_scoring_progress:
        return np.concatenate([scorer(x).numpy() for x, _ in batches])
    total, started, parts = int(cached.cardinality()), time.perf_counter(), []
    unit = "row" if trainer.tabular else "image"
    progress = keras.utils.Progbar(total, verbose=1 if sys.stdout.isatty() else 0,
                                   unit_name=unit)
    for x, _ in batches:
        parts.append(scorer(x).numpy())
        progress.add(len(parts[-1]))
    print(f"scored {total} {unit}s ({eta_text(started, 1, 0)})")
    return np.concatenate(parts)


class FinalModel:
    """The weights each rule chose, loaded into a trainer's scoring networks, and their tests.

    ``trainer``: a network method's trainer; ``checks``: its run's best checks; ``callbacks``:
    its hooks (``on_weights_chosen`` runs after every load of a rule's weights).
    """

    def __init__(self, trainer: Any, checks: BestChecks, callbacks: Callback) -> None:
        self.trainer, self.checks, self.callbacks = trainer, checks, callbacks
        #: The scoring weights training ended with, kept when another rule's are loaded.
        self.last_weights: dict[str, list[np.ndarray]] | None = None
        #: The last :meth:`evaluate`: its data and the validation and test scores of the model
        #: it evaluated (the chosen one), which :meth:`by_selection` reuses.
        self._evaluated: tuple[PreparedData, np.ndarray, np.ndarray] | None = None

    def available_rules(self, run_dir: Path) -> list[str]:
        """The rules this run can report: every checked rule that held a best check (saved
        under ``best_<rule>/``), and ``last``."""
        return [rule for rule in CHECKED_RULES
                if best_weights_dir(run_dir, rule).is_dir()] + ["last"]

    def use_rule(self, rule: str, run_dir: Path) -> str:
        """Load the weights ``rule`` chooses into the scoring networks (``last``: the weights
        the training ended with, kept in memory the first time another rule is loaded; a best
        check found in this process from memory, else from ``best_<rule>/``, as after a
        resume: repeated Keras file loads in one process were seen to corrupt TensorFlow's
        AutoGraph conversions of later trainers); returns how they were chosen."""
        networks = self.trainer.scoring_networks
        if self.last_weights is None:
            self.last_weights = weights_of(networks)
        if rule == "last":
            set_weights(networks, self.last_weights)
            return f"last: the weights after epoch {int(self.trainer.epoch.numpy())}"
        found = self.checks.weights(rule)
        if found is None:
            self.trainer.load_networks(best_weights_dir(run_dir, rule))
        else:
            set_weights(networks, found)
        return self.checks.describe(rule)

    def rule_epoch(self, rule: str) -> int:
        """The epoch (1-based) whose weights ``rule`` chose."""
        return int((self.trainer.epoch if rule == "last" else self.checks.epoch[rule]).numpy())

    def select(self, run_dir: Path, data: PreparedData) -> str:
        """Load the weights the trainer's ``selection_rule`` chooses, let the callbacks fit
        what scoring needs on them, and save them to ``model/``; returns how they were chosen."""
        rule = self.trainer.selection_rule
        if rule != "last" and not best_weights_dir(run_dir, rule).is_dir():
            raise ValueError(f"selection '{rule}' found no check to choose from")
        chosen = self.use_rule(rule, run_dir)
        self.trainer.save_networks(run_dir / MODEL_DIR)
        self.callbacks.on_weights_chosen(data, run_dir / MODEL_DIR)
        return chosen

    def scores(self, cached: tf.data.Dataset) -> np.ndarray:
        """Scores of every sample of a cached split by the loaded weights ``[N]``."""
        return score_dataset(self.trainer, cached)

    def by_selection(self, run_dir: Path, data: PreparedData,
                     chosen_test: dict[str, float]) -> dict[str, dict[str, Any]]:
        """For every available rule: the epoch it chose, that model's validation and synthetic
        metrics, and its test metrics (``chosen_test`` for the trainer's ``selection_rule``,
        whose model comes last, so that it is the one loaded and calibrated at the end).
        Label-free rules get the label-free threshold. Rules that chose the same epoch chose
        the same weights: their splits are scored once (a short run's three rules often share
        its last epoch), and the chosen model's validation and test scores are those of the
        last :meth:`evaluate` of ``data`` (AnoGAN's latent search would repeat otherwise)."""
        trainer, chosen_rule = self.trainer, self.trainer.selection_rule
        report, shown = {}, trainer.show_scoring_progress
        trainer.show_scoring_progress = False
        scored: dict[int, dict[str, Any]] = {}
        if self._evaluated is not None and self._evaluated[0] is data:
            scored[self.rule_epoch(chosen_rule)] = {"validation_scores": self._evaluated[1],
                                                    "test_scores": self._evaluated[2]}
        for rule in sorted(self.available_rules(run_dir), key=lambda r: r == chosen_rule):
            self.use_rule(rule, run_dir)
            self.callbacks.on_weights_chosen(data, None)
            same = scored.setdefault(self.rule_epoch(rule), {})
            if "validation_scores" not in same:
                same["validation_scores"] = self.scores(data.validation)
            if "validation" not in same:
                same["validation"] = ranking_metrics(data.validation_labels,
                                                     same["validation_scores"])
                same["synthetic"] = ({} if data.synthetic is None else ranking_metrics(
                    data.synthetic_labels, self.scores(data.synthetic)))
            if rule != chosen_rule and "test_scores" not in same:
                same["test_scores"] = self.scores(data.test)
            epoch = self.rule_epoch(rule)
            report[rule] = {
                "epoch": epoch, "validation": same["validation"], "synthetic": same["synthetic"],
                "test": chosen_test if rule == chosen_rule else test_metrics(
                    data, same["validation_scores"], same["test_scores"],
                    label_free=rule != "validation")}
        trainer.show_scoring_progress = shown
        return {rule: report[rule] for rule in self.available_rules(run_dir)}

    def evaluate(self, data: PreparedData,
                 validation_scores: np.ndarray | None = None) -> dict[str, Any]:
        """``{"test": ..., "validation": ..., "test_scores": [N]}``. Test: AUROC, AUPRC, and
        precision/recall/F1 at
        the validation threshold, for the score and each of the trainer's score variants.
        Validation: each variant's AUROC and AUPRC as ``<name>_<metric>`` (the score's own are
        the run's selection metrics), so that a variant can be chosen without the test split.

        ``validation_scores``: :meth:`scores` of the validation split when the caller has them
        already (scoring can be costly: AnoGAN searches the latent space per image).
        """
        if validation_scores is None:
            validation_scores = self.scores(data.validation)
        label_free = self.trainer.selection_rule != "validation"
        test_scores = self.scores(data.test)
        self._evaluated = (data, validation_scores, test_scores)
        test = test_metrics(data, validation_scores, test_scores, label_free)
        validation: dict[str, float] = {}
        for name, scorer in self.trainer.compiled_variants().items():
            variant_validation, variant_test = [score_dataset(self.trainer, split, scorer)
                                                for split in (data.validation, data.test)]
            test.update({f"{name}_{key}": value for key, value in test_metrics(
                data, variant_validation, variant_test, label_free).items()})
            validation.update({f"{name}_{key}": value for key, value in ranking_metrics(
                data.validation_labels, variant_validation).items()})
        return {"test": test, "validation": validation, "test_scores": test_scores}
