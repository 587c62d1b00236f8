"""TensorBoard summaries of a final model's validation scores: histograms and ROC/PR images."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from sklearn.metrics import precision_recall_curve, roc_curve

CANVAS = 200
MARGIN = 10


def curve_image(x: np.ndarray, y: np.ndarray, diagonal: bool = False) -> np.ndarray:
    """uint8 RGB ``[CANVAS, CANVAS, 3]`` plot of the polyline (x, y) in the unit square, with a
    frame and, for ROC curves, the chance diagonal."""
    image = np.full((CANVAS, CANVAS, 3), 255, np.uint8)
    side = CANVAS - 2 * MARGIN - 1

    def draw(xs: np.ndarray, ys: np.ndarray, colour: tuple[int, int, int]) -> None:
        dense = np.linspace(0.0, 1.0, 4 * CANVAS * max(len(xs) - 1, 1))
        position = np.linspace(0.0, 1.0, len(xs))
        cols = MARGIN + np.round(np.interp(dense, position, xs) * side).astype(int)
        rows = CANVAS - 1 - MARGIN - np.round(np.interp(dense, position, ys) * side).astype(int)
        image[rows, cols] = colour

    corners = np.array([0.0, 1.0, 1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    draw(*corners, (0, 0, 0))
    if diagonal:
        draw(np.array([0.0, 1.0]), np.array([0.0, 1.0]), (180, 180, 180))
    draw(np.clip(x, 0, 1), np.clip(y, 0, 1), (20, 60, 200))
    return image


def write_score_summaries(writer: tf.summary.SummaryWriter, labels: np.ndarray,
                          scores: np.ndarray, step: int) -> None:
    """Histograms of normal and anomalous validation scores; ROC (x FPR, y TPR) and PR (x recall,
    y precision) curve images when both classes are present."""
    with writer.as_default():
        for name, mask in (("normal", labels == 0), ("anomalous", labels == 1)):
            if mask.any():
                tf.summary.histogram(f"validation/scores_{name}", scores[mask], step=step)
        if 0 < labels.sum() < len(labels):
            fpr, tpr, _ = roc_curve(labels, scores)
            precision, recall, _ = precision_recall_curve(labels, scores)
            tf.summary.image("validation/roc_curve", curve_image(fpr, tpr, diagonal=True)[None],
                             step=step)
            tf.summary.image("validation/pr_curve",
                             curve_image(recall[::-1], precision[::-1])[None], step=step)
    writer.flush()


def heat_colours(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] ``[...]`` -> uint8 RGB ``[..., 3]`` on a black-red-yellow-white scale."""
    values = np.clip(values, 0.0, 1.0)[..., None]
    rgb = np.clip(3.0 * values - np.array([0.0, 1.0, 2.0]), 0.0, 1.0)
    return np.round(255 * rgb).astype(np.uint8)


def anomaly_maps(inputs: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """``input | reconstruction | |x - x_hat|`` strips ``[N, S, 3 S, 3]`` (uint8 RGB).

    Images are in [-1, 1]. The heat map is the per-pixel mean absolute error over channels,
    divided by the image's largest error, so every map uses the full colour scale.
    """
    def to_rgb(images: np.ndarray) -> np.ndarray:
        images = np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
        return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images

    error = np.abs(inputs - reconstructions).mean(axis=-1)
    error /= np.maximum(error.reshape(len(error), -1).max(axis=1), 1e-12)[:, None, None]
    return np.concatenate([to_rgb(inputs), to_rgb(reconstructions), heat_colours(error)], axis=2)
