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


def pixel_errors(inputs: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Per-pixel mean absolute error over channels ``[N, S, S]`` of images in [-1, 1]."""
    return np.abs(inputs - reconstructions).mean(axis=-1)


def error_scale(inputs: np.ndarray, reconstructions: np.ndarray) -> float:
    """A colour scale for error maps: the 99th percentile of the pixel errors (at least 1e-6)."""
    return float(max(np.percentile(pixel_errors(inputs, reconstructions), 99), 1e-6))


#: What an error map's colour scale measures.
ERROR_UNIT = "mean |x - x_hat| per pixel\n(pixels scaled to [-1, 1])"


def anomaly_map_pictures(inputs: np.ndarray, reconstructions: np.ndarray, scores: np.ndarray,
                         threshold: float, scale: float,
                         masks: np.ndarray | list[np.ndarray | None] | None = None,
                         ) -> list[np.ndarray]:
    """One uint8 RGB picture per image: input, reconstruction, and the input with its error map
    |x - x_hat| overlaid in colour, every map on one colour scale from 0 to ``scale`` (with a
    colour bar), titled with the score, the threshold and the verdict. Images in [-1, 1].
    ``masks`` (bool ``[S, S]`` per image, None where an image has none): the ground truth's
    outline is drawn on the input and on the map."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    errors = pixel_errors(inputs, reconstructions)
    masks = [None] * len(inputs) if masks is None else masks
    pictures = []
    for image, reconstruction, error, score, mask in zip(inputs, reconstructions, errors, scores,
                                                         masks):
        figure, axes = pyplot.subplots(1, 3, figsize=(7.2, 2.5), dpi=100, layout="constrained")
        shown = [(image + 1.0) / 2.0, (reconstruction + 1.0) / 2.0]
        gray = {"cmap": "gray"} if image.shape[-1] == 1 else {}
        for axis, picture, title in zip(axes, shown, ("input", "reconstruction")):
            axis.imshow(np.clip(picture.squeeze(), 0.0, 1.0), vmin=0.0, vmax=1.0, **gray)
            axis.set_title(title, fontsize=9)
        axes[2].imshow(np.clip(shown[0].squeeze(), 0.0, 1.0), vmin=0.0, vmax=1.0, **gray)
        overlay = axes[2].imshow(error, cmap="inferno", vmin=0.0, vmax=scale, alpha=0.6)
        axes[2].set_title("|x - x_hat| on the input", fontsize=9)
        if mask is not None and np.any(mask):
            for axis in (axes[0], axes[2]):
                axis.contour(mask.astype(float), levels=[0.5], colors="lime", linewidths=1.0)
            axes[0].set_title("input (defect outlined)", fontsize=9)
        colour_bar = figure.colorbar(overlay, ax=axes[2], fraction=0.046, pad=0.04)
        colour_bar.ax.tick_params(labelsize=7)
        colour_bar.set_label(ERROR_UNIT, fontsize=7)
        for axis in axes:
            axis.set_xticks([])
            axis.set_yticks([])
        verdict = "ANOMALOUS" if score >= threshold else "normal"
        figure.suptitle(f"score {score:.4g} (threshold {threshold:.4g}): {verdict}",
                        fontsize=10, color="firebrick" if verdict == "ANOMALOUS" else "black")
        figure.canvas.draw()
        pictures.append(np.asarray(figure.canvas.buffer_rgba())[..., :3].copy())
        pyplot.close(figure)
    return pictures
