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


#: PRO is integrated over false-positive rates 0..PRO_FPR_LIMIT and divided by it (Bergmann et
#: al., MVTec AD, IJCV 2021, section 5.2; anomalib's default).
PRO_FPR_LIMIT = 0.3


def pixel_metrics(maps: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Pixel-level results of anomaly ``maps`` ``[N, H, W]`` (higher = more anomalous) against
    ground-truth ``masks`` (bool, same shape): ``pixel_auroc`` over every pixel, and ``pro``,
    the per-region overlap (each connected defect region, 8-connected, weighs the same however
    large: the mean over regions of the share of its pixels at or above a threshold) integrated
    over the normal pixels' false-positive rate up to :data:`PRO_FPR_LIMIT`, normalised to
    [0, 1], and ``regions``, their count. Empty when the masks hold no defect or no normal
    pixel."""
    from scipy import ndimage

    labels = masks.astype(bool)
    if labels.all() or not labels.any():
        return {}
    normal = np.sort(maps[~labels])
    regions = []
    for image_map, mask in zip(maps, labels):
        found, count = ndimage.label(mask, structure=np.ones((3, 3), int))
        regions += [np.sort(image_map[found == index]) for index in range(1, count + 1)]
    # Thresholds from just above every normal pixel down the normal pixels' quantiles, then
    # the overlap read at false-positive rates 0 .. the limit.
    rates = np.linspace(0.0, PRO_FPR_LIMIT, 301)
    thresholds = np.r_[np.nextafter(normal[-1], np.inf),
                       np.quantile(normal, 1.0 - rates[1:], method="lower")]
    fpr = 1.0 - np.searchsorted(normal, thresholds, side="left") / len(normal)
    overlap = np.mean([1.0 - np.searchsorted(region, thresholds, side="left") / len(region)
                       for region in regions], axis=0)
    pro = np.trapezoid(np.interp(rates, fpr, overlap), rates) / PRO_FPR_LIMIT
    return {"pixel_auroc": float(roc_auc_score(labels.ravel(), maps.ravel())),
            "pro": float(pro), "regions": len(regions)}


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
