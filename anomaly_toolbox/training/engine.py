"""The engine's epoch loop: train steps with progress and divergence checks, per-epoch checks on
the labelled validation split and the synthetic set, TensorBoard scalars and image strips, and
checkpoints that let an interrupted run resume.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins.scalar import metadata as scalar_plugin

from anomaly_toolbox.curves import EPOCH_TAG
from anomaly_toolbox.datasets.pipeline import PreparedData, eval_batches, train_batches
from anomaly_toolbox.evaluation import ranking_metrics
from anomaly_toolbox.hps import check_batch_fits
from anomaly_toolbox.timing import eta_text
from anomaly_toolbox.training.callbacks import CallbackList
from anomaly_toolbox.training.checkpoints import EpochCheckpoints
from anomaly_toolbox.training.evaluation import FinalModel, score_dataset
from anomaly_toolbox.training.progress import RunProgress
from anomaly_toolbox.training.selection import BestChecks, resolve_selection

IMAGES_IN_STRIP = 8
CHECKPOINT_DIR = "checkpoints"
#: The checkpoint name of the networks' random states (Keras seed generators' states).
RANDOM_STATES = "random_states"
#: A run whose first epoch predicts more than this many hours says so.
LONG_RUN_HOURS = 24.0


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def step_scalar_writer() -> Callable[[list[dict[str, float]], int], None]:
    """A function that writes ``train/<name>`` scalars of consecutive steps to the default
    summary writer, one compiled call for a whole epoch instead of an eager op per value.

    Call it as ``write(history, first_step)`` with ``history[i]`` the losses of step
    ``first_step + i``. Make one per summary writer: the compiled graph keeps the writer that
    was the default when it was first called.
    """
    scalar_metadata = scalar_plugin.create_summary_metadata(display_name=None, description=None)

    @tf.function
    def write_columns(names: tuple[str, ...], values: tf.Tensor, steps: tf.Tensor) -> None:
        for column, name in enumerate(names):
            for index in tf.range(tf.shape(values)[0]):
                # tf.summary.write keeps the tag as given (scalar() would prefix the loop's
                # name scope); the metadata is what tf.summary.scalar attaches.
                tf.summary.write(f"train/{name}", values[index, column], step=steps[index],
                                 metadata=scalar_metadata)

    def write(history: list[dict[str, float]], first_step: int) -> None:
        if history:
            names = tuple(history[0])
            values = tf.constant([[losses[name] for name in names] for losses in history],
                                 tf.float32)
            write_columns(names, values,
                          tf.range(first_step, first_step + len(history), dtype=tf.int64))

    return write


def _warn_if_long(started: float, epochs_left: int) -> None:
    """After the first epoch: say so when the rest of the run will take over
    :data:`LONG_RUN_HOURS` at this pace (a typo in --epochs, or a budget for a faster machine)."""
    hours = (time.perf_counter() - started) * epochs_left / 3600
    if hours > LONG_RUN_HOURS:
        print(f"Note: at this pace the remaining {epochs_left:,} epochs take about "
              f"{hours:,.0f} hours. Ctrl-C stops the run (the same command resumes it); "
              f"--epochs N sets a smaller budget.")


def divergence_hint(hps: dict[str, Any]) -> str:
    """Which hps key most likely made the losses diverge, and what to do about it."""
    hint = (f"the likely cause is the hps key 'learning_rate' ({hps['learning_rate']:g}): "
            f"lower it, e.g. to {hps['learning_rate'] / 10:g}")
    if hps.get("mixed_precision"):
        hint += ", or set 'mixed_precision' to false"
    return hint


def planned_epochs(hps: dict[str, Any], steps_per_epoch: int) -> int:
    """Epochs a run trains: ``max(epochs, ceil(min_steps / steps_per_epoch))``. A run stretched
    past ``epochs`` validates every ``ceil(planned / epochs)`` epochs (and after the last), about
    as often as the published schedule would."""
    return max(hps["epochs"], math.ceil(hps["min_steps"] / steps_per_epoch))


def restore_newest_readable(checkpoint: tf.train.Checkpoint, paths: list[str],
                            without_random_states: tf.train.Checkpoint | None = None) -> str:
    """Restore the newest checkpoint that reads back whole; an unreadable one (a truncated
    file after a crash or a full disk) falls back to the one before. ``without_random_states``:
    the same state without the networks' random states, which checkpoints written before
    they were saved lack (their dropout masks then start again from the seed)."""
    problems = []
    for path in reversed(paths):
        try:
            try:
                checkpoint.restore(path).assert_existing_objects_matched()
            except AssertionError:
                if without_random_states is None:
                    raise
                without_random_states.restore(path).assert_existing_objects_matched()
                print(f"Checkpoint {path} predates saved dropout states: this run's dropout "
                      f"masks start again from its seed")
            return path
        except Exception as error:  # noqa: BLE001 - TF reports damage as many error types
            print(f"Checkpoint {path} is unreadable ({type(error).__name__}); trying the "
                  f"one before")
            problems.append(path)
    raise ValueError(f"no checkpoint of this run can be read ({', '.join(problems)}); run "
                     f"the same command with --restart to train it from scratch")


class Engine:
    """Runs one network method (a :class:`~anomaly_toolbox.trainers.base.Trainer`) through
    training, per-epoch checks and the choice of its final model.

    What it uses of the trainer: ``hps``, ``seed``, ``compiled_train_step(images, seed)`` with
    ``step_seed()``, ``compiled_steps``, ``compiled_score``, ``compiled_reconstruct``, its ``epoch`` and ``step`` variables,
    ``scoring_networks`` with ``save_networks``/``load_networks``, ``checkpointed()``,
    ``check_subset()`` and ``scoring_batch_size()``, ``callbacks()``, and its ``stopwatch``.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.callbacks = CallbackList(trainer.callbacks())
        self.checks = BestChecks(trainer.hps["selection_metric"], trainer.save_networks)
        self.final = FinalModel(trainer, self.checks, self.callbacks)
        #: Whether the train step has run once (its first call traces and compiles it).
        self._traced = False

    def checkpoint(self, random_states: bool = True) -> tf.train.Checkpoint:
        """The run's state: the trainer's (networks, optimizers, counters, random states unless
        ``random_states`` is False) and the checks'."""
        state = self.trainer.checkpointed()
        if not random_states:
            state.pop(RANDOM_STATES, None)
        return tf.train.Checkpoint(**state, **self.checks.checkpointed())

    def fit(self, data: PreparedData, run_dir: Path, writer: tf.summary.SummaryWriter,
            progress_bar: bool = True) -> None:
        """Train for :func:`planned_epochs` epochs, resuming from ``run_dir/checkpoints`` if
        present."""
        trainer, hps = self.trainer, self.trainer.hps
        trainer.selection_rule = resolve_selection(hps["selection"], data,
                                                   trainer.label_free_selection)
        self.final.last_weights = None
        self.checks.forget_weights()
        checkpoint = self.checkpoint()
        checkpoints = EpochCheckpoints(checkpoint, run_dir / CHECKPOINT_DIR, before_write=lambda:
                                       self.checks.write_unwritten(run_dir,
                                                                   trainer.scoring_networks))
        check_batch_fits(hps, data.train_size)
        steps = data.train_size // hps["batch_size"]
        trainer.epochs_planned = epochs = planned_epochs(hps, steps)
        trainer.epoch_scale.assign(hps["epochs"] / epochs)
        if epochs > hps["epochs"]:
            print(f"Training {epochs} epochs, not {hps['epochs']}: min_steps "
                  f"{hps['min_steps']} at {steps} steps per epoch (give epochs alone to "
                  f"train exactly that many)")
        if checkpoints.saved:
            restored = restore_newest_readable(
                checkpoint, checkpoints.saved,
                self.checkpoint(random_states=False) if trainer.random_states() else None)
            print(f"Resuming from {restored} "
                  f"(epoch {int(trainer.epoch.numpy())} of {epochs} done)")
        else:
            self.callbacks.on_train_begin(data)
        strip = next(iter(eval_batches(data.validation, IMAGES_IN_STRIP)))[0]
        clock = trainer.stopwatch.measure
        write_step_scalars = step_scalar_writer()
        validate_every = math.ceil(epochs / hps["epochs"])
        started, first_epoch = time.perf_counter(), int(trainer.epoch.numpy())
        mode = "none" if not progress_bar else "bar" if sys.stdout.isatty() else "lines"
        progress = RunProgress(mode, epochs, steps, first_epoch)
        per_execution = hps["steps_per_execution"] if trainer.replicas == 1 else 1
        with writer.as_default():
            try:
                while int(trainer.epoch.numpy()) < epochs:
                    epoch = int(trainer.epoch.numpy())
                    next_check = min((epoch // validate_every + 1) * validate_every, epochs)
                    count = min(next_check - epoch, max(1, per_execution // steps))
                    self._train_epochs(data, epoch, count, steps, per_execution, progress,
                                       write_step_scalars)
                    done = epoch + count
                    shown = "trained"
                    if done % validate_every == 0 or done == epochs:
                        shown = "validation " + self._check(data, strip, done)
                    trainer.epoch.assign(done)
                    with clock("checkpoints_and_saves"):
                        checkpoints.epoch_finished(last=done == epochs)
                    with clock("tensorboard"):
                        writer.flush()
                    for finished in range(epoch + 1, done + 1):
                        print(f"epoch {finished}/{epochs}: "
                              f"{shown if finished == done else 'trained'} ("
                              f"{eta_text(started, finished - first_epoch, epochs - finished)})")
                    if epoch == first_epoch:
                        _warn_if_long(started, epochs - done)
            except BaseException:
                with clock("checkpoints_and_saves"):
                    checkpoints.write_held()
                raise

    def _train_epochs(self, data: PreparedData, first: int, count: int, steps: int,
                      per_execution: int, progress: RunProgress,
                      write_step_scalars: Callable[[list[dict[str, float]], int], None]) -> None:
        """Epochs ``first`` .. ``first + count - 1`` (0-based) of train steps, ``per_execution``
        steps per compiled call; each step's losses go to TensorBoard at the end (or when a loss
        diverges), in one compiled call rather than one eager op per value."""
        trainer = self.trainer
        bar = progress.bar(first, count)
        batches = [(epoch, images) for epoch in range(first, first + count)
                   for images in train_batches(data.train_samples, trainer.hps["batch_size"],
                                               trainer.seed, epoch)]
        first_step, history = int(trainer.step.numpy()), []
        try:
            for start in range(0, len(batches), per_execution):
                chunk = batches[start:start + per_execution]
                part = "train_steps" if self._traced else "tracing_and_compilation"
                with trainer.stopwatch.measure(part):
                    losses = self._execute(chunk)
                self._traced = True
                for offset, step_losses in enumerate(losses):
                    history.append(step_losses)
                    for name, value in step_losses.items():
                        if not math.isfinite(value):
                            raise TrainingDiverged(
                                f"loss '{name}' became {value} at step {first_step + start + offset}"
                                f" (epoch {chunk[offset][0] + 1}); the last good checkpoint is "
                                f"kept. {divergence_hint(trainer.hps)}.")
                bar.update(start + len(chunk), list(losses[-1].items()))
                progress.trained(first * steps + start + len(chunk))
        finally:
            with trainer.stopwatch.measure("tensorboard"):
                write_step_scalars(history, first_step)

    def _execute(self, chunk: list[tuple[int, tf.Tensor]]) -> list[dict[str, float]]:
        """The train steps of ``chunk`` (``(epoch, images)`` per step) in one compiled call, or
        one call per step when there is one; every step's losses as floats."""
        trainer = self.trainer
        if len(chunk) == 1:
            losses = {name: float(value) for name, value in
                      trainer.compiled_train_step(chunk[0][1], trainer.step_seed()).items()}
            trainer.step.assign_add(1)
            return [losses]
        stacked = trainer.compiled_steps(tf.stack([images for _, images in chunk]),
                                         tf.constant([epoch for epoch, _ in chunk], tf.int64))
        values = {name: value.numpy() for name, value in stacked.items()}
        return [{name: float(column[index]) for name, column in values.items()}
                for index in range(len(chunk))]

    def _check(self, data: PreparedData, strip: tf.Tensor, epoch: int) -> str:
        """Validation and synthetic-set metrics and TensorBoard summaries after ``epoch``
        (1-based) epochs; the weights become the best check of every rule they improve, when
        the callbacks let this epoch be selected. Returns the metrics as text for the
        console."""
        trainer = self.trainer
        clock = trainer.stopwatch.measure
        with self.callbacks.checking():
            with clock("validation"):
                self.callbacks.on_check_begin(data)
                checks = {"validation": self.validation_metrics(data),
                          "synthetic": self.synthetic_metrics(data)}
                logged = {**checks["validation"], **self._variant_metrics(data)}
            with clock("tensorboard"):
                reconstruction = trainer.compiled_reconstruct(strip)
        selectable = (epoch == trainer.epochs_planned
                      or self.callbacks.selectable(epoch, trainer.epochs_planned))
        improved = [rule for rule, metrics in checks.items()
                    if metrics and selectable and self.checks.improves(rule, metrics)]
        # One step axis in TensorBoard: checks sit at the train step they follow, as the
        # losses do; the epoch scalar maps that step back to its epoch.
        step = int(trainer.step.numpy())
        tf.summary.scalar(EPOCH_TAG, epoch, step=step)
        for metric, value in logged.items():
            tf.summary.scalar(f"validation/{metric}", value, step=step)
        for metric, value in checks["synthetic"].items():
            tf.summary.scalar(f"synthetic/{metric}", value, step=step)
        with clock("checkpoints_and_saves"):
            self.checks.record(improved, checks, epoch, trainer.scoring_networks)
        with clock("tensorboard"):
            if reconstruction is not None and not trainer.tabular:
                pairs = (tf.concat([strip, reconstruction], axis=2) + 1.0) / 2
                tf.summary.image("validation/input_vs_reconstruction", pairs, step=step,
                                 max_outputs=IMAGES_IN_STRIP)
            self.callbacks.on_check_end(epoch, step)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in logged.items()) or "no anomalies"
        if checks["synthetic"]:
            shown += "; synthetic " + ", ".join(f"{k} {v:.4f}"
                                                for k, v in checks["synthetic"].items())
        return shown if selectable else f"{shown} (not yet selectable)"

    def validation_metrics(self, data: PreparedData) -> dict[str, float]:
        """A check's AUROC/AUPRC on the labelled validation split (empty without anomalies)."""
        return self._metrics(data.validation, data.validation_labels)

    def synthetic_metrics(self, data: PreparedData) -> dict[str, float]:
        """A check's AUROC/AUPRC on the synthetic set (normal validation images against
        synthetic anomalies; no validation label, no real anomaly); empty without a set."""
        if data.synthetic is None:
            return {}
        return self._metrics(data.synthetic, data.synthetic_labels)

    def _metrics(self, cached: tf.data.Dataset, labels: np.ndarray,
                 scorer: Callable[[tf.Tensor], tf.Tensor] | None = None) -> dict[str, float]:
        """AUROC/AUPRC of the first ``check_subset()`` samples of a cached set (all when
        None); empty for a set without anomalies."""
        subset = self.trainer.check_subset()
        if subset is not None:
            cached, labels = cached.take(subset), labels[:subset]
        return ranking_metrics(labels, score_dataset(self.trainer, cached, scorer))

    def _variant_metrics(self, data: PreparedData) -> dict[str, float]:
        """Validation AUROC/AUPRC of each of the trainer's score variants as
        ``<name>_<metric>``, logged beside the selection metrics (they select nothing)."""
        return {f"{name}_{key}": value
                for name, scorer in self.trainer.compiled_variants().items()
                for key, value in ranking_metrics(
                    data.validation_labels,
                    score_dataset(self.trainer, data.validation, scorer)).items()}
