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


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """Threshold that maximises F1 on these (validation) scores.

    Without anomalies, the 95th percentile of the normal scores (a 5% false-positive rate).
    """
    if labels.sum() == 0:
        return float(np.quantile(scores, NORMAL_ONLY_QUANTILE))
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def threshold_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of the rule ``score >= threshold`` -> anomalous."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, (scores >= threshold).astype(np.int64), average="binary", zero_division=0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "threshold": float(threshold)}


def test_metrics(data: PreparedData, validation_scores: np.ndarray,
                 test_scores: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC on test, and precision/recall/F1 at the threshold chosen on validation.

    With ``data.top_share`` = s, also ``top_precision``/``top_recall``/``top_f1`` at the
    (1 - s) quantile of the validation scores (Zenati et al. took that quantile of the test
    scores; validation keeps the test split unseen).
    """
    threshold = choose_threshold(data.validation_labels, validation_scores)
    metrics = {**ranking_metrics(data.test_labels, test_scores),
               **threshold_metrics(data.test_labels, test_scores, threshold)}
    if data.top_share is not None:
        top = threshold_metrics(data.test_labels, test_scores,
                                float(np.quantile(validation_scores, 1.0 - data.top_share)))
        metrics.update({f"top_{name}": value for name, value in top.items()})
    return metrics
