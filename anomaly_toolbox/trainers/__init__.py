"""Trainers: the shared base and one file per method (losses, train step, scoring).

:class:`MethodTrainer` is the contract the CLI runner, the Python API and model files rely on;
:class:`~anomaly_toolbox.trainers.base.Trainer` (Keras networks) and
:class:`~anomaly_toolbox.trainers.shallow.ShallowTrainer` (scikit-learn) both satisfy it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf

    from anomaly_toolbox.datasets.pipeline import PreparedData
    from anomaly_toolbox.timing import Stopwatch


@runtime_checkable
class MethodTrainer(Protocol):
    """A method's trainer as its callers use it: constructed as ``cls(hps, sample_shape, seed)``,
    then fitted, its final model selected on validation, scored and evaluated."""

    hps: dict[str, Any]
    #: The side images are resized to (see ``side_for``).
    image_size: int
    #: Where the run's wall time goes (``results.json`` ``timings``).
    stopwatch: Stopwatch
    #: Whether final scoring prints its progress.
    show_scoring_progress: bool
    #: The rule that chose the final model: 'validation', 'synthetic' or 'last'.
    selection_rule: str

    def fit(self, data: PreparedData, run_dir: Path, writer: tf.summary.SummaryWriter,
            progress_bar: bool = True) -> None:
        """Train on ``data.train``, validating on ``data.validation``, resuming from
        ``run_dir`` when it holds a checkpoint."""

    def select_final_model(self, run_dir: Path, data: PreparedData) -> str:
        """Load the model :attr:`selection_rule` chose into the scoring state, save it under
        ``run_dir/model``; returns how it was chosen."""

    def final_scores(self, cached: tf.data.Dataset) -> np.ndarray:
        """Anomaly scores ``[N]`` of a cached split, by the final model."""

    def evaluate(self, data: PreparedData,
                 validation_scores: np.ndarray | None = None) -> dict[str, dict[str, float]]:
        """``{"test": ..., "validation": ...}``: test metrics with the threshold chosen on
        validation, and validation metrics of the method's other scores (if any)."""

    def by_selection(self, run_dir: Path, data: PreparedData,
                     chosen_test: dict[str, float]) -> dict[str, dict[str, Any]]:
        """Per selection rule the run can report: the chosen epoch, that model's validation and
        synthetic metrics and its test metrics (``chosen_test`` for the final model's rule)."""

    def training_summary(self) -> dict[str, Any]:
        """Epochs and steps trained and the best validation metrics, for results files."""

    def selection_note(self) -> str | None:
        """A caveat about how the final model was selected, if any."""

    def load_model(self, model_dir: Path, trusted: bool = False) -> None:
        """Load a saved final model for scoring; files that could run code only when
        ``trusted``."""
