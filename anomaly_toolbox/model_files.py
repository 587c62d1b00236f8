"""Model files: what ``model/metadata.json`` holds, how a run finishes its model, and the checks
that ``anomaly_toolbox.load`` applies to a model directory.

A model directory holds the networks (``<name>.keras``; scikit-learn baselines
``detector.skops``) and ``metadata.json``: method, sample shape, image size, hps, the threshold (chosen on validation:
max F1, or the 95th percentile of normal scores when validation has no anomalies), the
validation scores behind it (min/max for normalised scores; normal scores for ``--fpr``), the
colour scale of anomaly maps, and for tables the encoder of raw rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from anomaly_toolbox.datasets.folder import masks_at
from anomaly_toolbox.datasets.pipeline import PreparedData, eval_batches
from anomaly_toolbox.datasets.table import TableEncoder, TableError
from anomaly_toolbox.evaluation import choose_threshold, pixel_metrics, threshold_rule
from anomaly_toolbox.registry import EXPERIMENTS
from anomaly_toolbox.results import write_json_atomically
from anomaly_toolbox.summaries import error_scale, pixel_errors, write_score_summaries
from anomaly_toolbox.training.evaluation import MODEL_DIR

METADATA_FILE = "metadata.json"


class ModelError(ValueError):
    """A model directory or the data given to a model is unusable; the message says why."""


def threshold_for_fpr(normal_scores: np.ndarray, fpr: float) -> float:
    """Smallest threshold whose rule ``score >= threshold`` flags at most ``fpr`` of
    ``normal_scores`` (exactly ``floor(fpr * n)`` of them when scores are distinct)."""
    if not 0.0 < fpr < 1.0:
        raise ModelError(f"the false-positive rate must be in (0, 1), got {fpr}")
    if not np.all(np.isfinite(normal_scores)):
        raise ModelError("the normal validation scores hold NaN or infinite values (the model "
                         "diverged), so no false-positive rate can be set from them; retrain "
                         "the run or give --threshold")
    descending = np.sort(np.asarray(normal_scores, np.float64))[::-1]
    allowed = int(np.floor(fpr * len(descending)))
    return float(np.nextafter(descending[allowed], np.inf))


def model_metadata(experiment: str, trainer: Any, sample_shape: tuple[int, ...], seed: int,
                   labels: np.ndarray, scores: np.ndarray,
                   fingerprint: dict[str, Any] | None = None,
                   table: TableEncoder | None = None) -> dict[str, Any]:
    """What scoring needs besides the weights, from the final model's validation scores, the
    fingerprint of the run that trained it (None for the Python API's arrays), and for tables
    the encoder from raw rows to the ``sample_shape`` features. A model chosen without labels
    (``trainer.selection_rule`` other than 'validation') gets a label-free threshold."""
    label_free = trainer.selection_rule != "validation"
    return {
        "fingerprint": fingerprint,
        "experiment": experiment,
        "sample_shape": [int(d) for d in sample_shape],
        "image_size": None if len(sample_shape) == 1 else trainer.image_size,
        "hps": trainer.hps,
        "seed": seed,
        "selection_rule": trainer.selection_rule,
        "threshold": choose_threshold(labels, scores, label_free),
        "threshold_rule": threshold_rule(labels, label_free),
        "score_min": float(scores.min()),
        "score_max": float(scores.max()),
        "validation_normal_scores": sorted(float(s) for s in scores[labels == 0]),
        "table": table.to_dict() if table is not None else None,
    }


def finish_model(experiment: str, trainer: Any, run_dir: Path, data: PreparedData, seed: int,
                 writer: tf.summary.SummaryWriter, scores: np.ndarray,
                 fingerprint: dict[str, Any] | None = None,
                 table: TableEncoder | None = None) -> dict[str, Any]:
    """Write ``model/metadata.json`` from the final model's validation ``scores`` ``[N]`` and the
    score summaries (histograms, ROC/PR images) to TensorBoard; returns the metadata."""
    metadata = model_metadata(experiment, trainer, data.sample_shape, seed,
                              data.validation_labels, scores, fingerprint, table)
    metadata["map_scale"] = map_scale(trainer, data)
    write_json_atomically(run_dir / MODEL_DIR / METADATA_FILE, metadata)
    write_score_summaries(writer, data.validation_labels, scores,
                          trainer.training_summary()["steps_trained"])
    return metadata


def trainer_reconstructs(trainer: Any) -> bool:
    """Whether ``trainer``'s method reconstructs its inputs and they are images."""
    from anomaly_toolbox.trainers.base import Trainer

    return (isinstance(trainer, Trainer) and not trainer.tabular
            and type(trainer).reconstruct is not Trainer.reconstruct)


def map_scale(trainer: Any, data: PreparedData, images: int = 256) -> float | None:
    """The one colour scale of ``anomaly-box score --save-maps``: the 99th percentile of the
    per-pixel reconstruction error of up to ``images`` validation anomalies (validation images
    when there are none); None for methods without reconstructions."""
    if not trainer_reconstructs(trainer):
        return None
    subset = data.validation
    if data.validation_labels.any():
        subset = subset.filter(lambda image, label: label == 1)
    return error_scale(*inputs_and_reconstructions(trainer, subset.take(images)))


def inputs_and_reconstructions(trainer: Any, cached: tf.data.Dataset
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Every image of a cached split ``[N, S, S, C]`` in order and the trainer's
    reconstruction of it, in batches of its ``scoring_batch_size()``."""
    inputs, reconstructions = [], []
    for batch, _ in eval_batches(cached, trainer.scoring_batch_size()):
        inputs.append(batch.numpy())
        reconstructions.append(trainer.compiled_reconstruct(batch).numpy())
    return np.concatenate(inputs), np.concatenate(reconstructions)


#: How a reconstructing method's anomaly map is made, for results files.
MAP_RULE = "mean over channels of |x - reconstruction| per pixel, at the method's input size"


@dataclass
class PixelResults:
    """Pixel-level test results of a reconstructing method on data with ground-truth masks."""

    #: ``pixel_auroc``, ``pro`` and ``regions`` (see :func:`~anomaly_toolbox.evaluation.
    #: pixel_metrics`) and how the maps were made; or ``unavailable`` with the reason.
    metrics: dict[str, Any]
    #: The test inputs ``[N, S, S, C]`` in [-1, 1], their reconstructions and the masks
    #: ``[N, S, S]`` at the method's input size (None when unavailable).
    inputs: np.ndarray | None = None
    reconstructions: np.ndarray | None = None
    masks: np.ndarray | None = None


def pixel_results(trainer: Any, data: PreparedData, masks: np.ndarray) -> PixelResults:
    """Pixel AUROC and PRO of the trainer's final model's anomaly maps on the test split,
    against its ground-truth ``masks`` (bool ``[N, H, W]``, the test split's order)."""
    if not trainer_reconstructs(trainer):
        return PixelResults({"unavailable": f"{type(trainer).__name__} makes no anomaly map "
                                            f"(it does not reconstruct its inputs)"})
    inputs, reconstructions = inputs_and_reconstructions(trainer, data.test)
    side = inputs.shape[1:3]
    resized = masks_at(masks, side)
    metrics = pixel_metrics(pixel_errors(inputs, reconstructions), resized)
    if not metrics:
        return PixelResults({"unavailable": "the test masks hold no defect pixel at "
                                            f"{side[0]}x{side[1]}"})
    return PixelResults({**metrics, "map": MAP_RULE, "size": int(side[0])}, inputs,
                        reconstructions, resized)


def _finite_number(value: Any) -> bool:
    """Whether a JSON value is a finite number (not a bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_metadata(metadata: Any, source: Path) -> None:
    """Raise :class:`ModelError` naming the field when ``metadata.json`` is not what
    :func:`model_metadata` writes."""
    def bad(field: str, expected: str) -> ModelError:
        return ModelError(f"{source}: field '{field}' should be {expected}; the file was edited "
                          f"or is damaged. Restore it or retrain the run.")

    if not isinstance(metadata, dict):
        raise bad("(top level)", "a JSON object")
    if metadata.get("experiment") not in EXPERIMENTS:
        raise ModelError(f"{source} names an unknown method {metadata.get('experiment')!r}; "
                         f"known: {', '.join(EXPERIMENTS)}")
    shape = metadata.get("sample_shape")
    if (not isinstance(shape, list) or len(shape) not in (1, 3)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
            or (len(shape) == 3 and shape[-1] not in (1, 3))):
        raise bad("sample_shape", "[height, width, 1 or 3] for images or [features] for tables")
    if not isinstance(metadata.get("seed"), int) or isinstance(metadata.get("seed"), bool):
        raise bad("seed", "an integer")
    if not isinstance(metadata.get("hps"), dict):
        raise bad("hps", "an object of hyperparameters")
    if not isinstance(metadata.get("threshold_rule"), str):
        raise bad("threshold_rule", "the text naming how the threshold was chosen")
    for field in ("threshold", "score_min", "score_max"):
        if not _finite_number(metadata.get(field)):
            raise bad(field, "a finite number")
    scale = metadata.get("map_scale")
    if scale is not None and not (_finite_number(scale) and scale > 0):
        raise bad("map_scale", "a positive number or null")
    scores = metadata.get("validation_normal_scores")
    if not isinstance(scores, list) or not scores or not all(map(_finite_number, scores)):
        raise bad("validation_normal_scores", "a non-empty list of finite numbers")
    if metadata.get("table") is not None:
        try:
            width = TableEncoder.from_dict(metadata["table"]).width
        except TableError:
            width = None
        if width is None or len(shape) != 1 or width != shape[0]:
            raise bad("table", f"the encoder of {shape[0]} table features or null")


@dataclass
class FinishedModel:
    """What :func:`train_select_finish` leaves: how the final model was chosen (its
    selection rule and epoch), its validation scores ``[N]``, its metadata, and the seconds spent in ``fit``."""

    selected: str
    validation_scores: np.ndarray
    metadata: dict[str, Any]
    train_seconds: float


def train_select_finish(experiment: str, trainer: Any, data: PreparedData, run_dir: Path,
                        writer: tf.summary.SummaryWriter, seed: int, *, progress_bar: bool,
                        show_scoring_progress: bool, fingerprint: dict[str, Any] | None = None,
                        table: TableEncoder | None = None) -> FinishedModel:
    """The one sequence behind the CLI's runs and the Python API's ``fit``: train, select the
    final model on validation, score validation with it and write ``model/`` with its metadata.
    Time goes to the trainer's stopwatch."""
    clock = trainer.stopwatch
    started = time.perf_counter()
    trainer.fit(data, run_dir, writer, progress_bar=progress_bar)
    train_seconds = time.perf_counter() - started
    with clock.measure("checkpoints_and_saves"):
        selected = trainer.select_final_model(run_dir, data)
    trainer.show_scoring_progress = show_scoring_progress
    with clock.measure("final_scoring"):
        scores = trainer.final_scores(data.validation)
    metadata = finish_model(experiment, trainer, run_dir, data, seed, writer, scores,
                            fingerprint=fingerprint, table=table)
    return FinishedModel(selected, scores, metadata, train_seconds)
