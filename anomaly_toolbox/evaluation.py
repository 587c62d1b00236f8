"""Metrics over anomaly scores (higher = more anomalous, label 1 = anomalous), via scikit-learn."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import (average_precision_score, precision_recall_curve,
                             precision_recall_fscore_support, roc_auc_score)

if TYPE_CHECKING:
    from anomaly_toolbox.datasets.pipeline import PreparedData

#: With normal-only validation data the threshold is this quantile of the normal scores.
NORMAL_ONLY_QUANTILE = 0.95


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC (anomaly = positive); empty when only one class is present."""
    if len(np.unique(labels)) < 2:
        return {}
    return {"auroc": float(roc_auc_score(labels, scores)),
            "auprc": float(average_precision_score(labels, scores))}


def choose_threshold(labels: np.ndarray, scores: np.ndarray, label_free: bool = False) -> float:
    """Threshold that maximises F1 on these (validation) scores.

    Without anomalies, or ``label_free`` (a model chosen without labels keeps its threshold
    label-free too), the 95th percentile of the normal scores (a 5% false-positive rate).
    """
    if labels.sum() == 0 or label_free:
        return float(np.quantile(scores[labels == 0], NORMAL_ONLY_QUANTILE))
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def threshold_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of the rule ``score >= threshold`` -> anomalous."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, (scores >= threshold).astype(np.int64), average="binary", zero_division=0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "threshold": float(threshold)}


def threshold_rule(labels: np.ndarray, label_free: bool = False) -> str:
    """How :func:`choose_threshold` chose its threshold, in words."""
    if labels.sum() == 0 or label_free:
        return f"{NORMAL_ONLY_QUANTILE:.0%} quantile of normal validation scores"
    return "max F1 on validation"


def test_metrics(data: PreparedData, validation_scores: np.ndarray,
                 test_scores: np.ndarray, label_free: bool = False) -> dict[str, float]:
    """AUROC and AUPRC on test, and precision/recall/F1 at the threshold chosen on validation
    (``label_free``: from its normal scores alone, see :func:`choose_threshold`).

    With ``data.top_share`` = s, also ``top_precision``/``top_recall``/``top_f1`` at the
    (1 - s) quantile of the validation scores (Zenati et al. took that quantile of the test
    scores; validation keeps the test split unseen).
    """
    threshold = choose_threshold(data.validation_labels, validation_scores, label_free)
    metrics = {**ranking_metrics(data.test_labels, test_scores),
               **threshold_metrics(data.test_labels, test_scores, threshold)}
    if data.top_share is not None:
        top = threshold_metrics(data.test_labels, test_scores,
                                float(np.quantile(validation_scores, 1.0 - data.top_share)))
        metrics.update({f"top_{name}": value for name, value in top.items()})
    return metrics
