"""The pictures a completed run writes into its directory: ROC and precision-recall curves of the
test split with their areas, and the test scores of normal and anomalous samples with the
threshold (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

#: File names of the pictures, in the order :func:`write_run_pictures` writes them.
PICTURES = ("roc.png", "pr.png", "scores.png")
#: The run's anomaly maps of test anomalies with their masks' outlines (data with masks).
MAPS_PICTURE = "maps.png"
#: How many test anomalies :data:`MAPS_PICTURE` shows.
MAPS_SHOWN = 6


def write_run_pictures(run_dir: Path, labels: np.ndarray, scores: np.ndarray, threshold: float,
                       metrics: dict[str, float], title: str) -> list[Path]:
    """Write :data:`PICTURES` for test ``labels`` ``[N]`` (1 = anomalous) and ``scores`` ``[N]``
    (higher = more anomalous) into ``run_dir``; ``metrics`` holds their ``auroc`` and ``auprc``,
    ``title`` names the run. Returns the paths written (none when the split lacks either
    class, where curves are undefined)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        return []
    written = []

    def save(figure, name: str) -> None:
        figure.tight_layout()
        figure.savefig(run_dir / name, dpi=120)
        pyplot.close(figure)
        written.append(run_dir / name)

    false_positive, true_positive, _ = roc_curve(labels, scores)
    figure, axis = pyplot.subplots(figsize=(4.8, 4.4))
    axis.plot(false_positive, true_positive, color="tab:blue", label="this model")
    axis.plot([0, 1], [0, 1], color="gray", linestyle="--", label="chance")
    axis.set(xlabel="false-positive rate (normal test samples flagged)",
             ylabel="true-positive rate (anomalies flagged)",
             title=f"{title}\ntest ROC: AUROC {metrics['auroc']:.4f}", xlim=(0, 1), ylim=(0, 1.01))
    axis.legend(loc="lower right", fontsize=8)
    save(figure, PICTURES[0])

    precision, recall, _ = precision_recall_curve(labels, scores)
    share = float(np.mean(labels))
    figure, axis = pyplot.subplots(figsize=(4.8, 4.4))
    axis.plot(recall, precision, color="tab:blue", label="this model")
    axis.axhline(share, color="gray", linestyle="--", label=f"chance ({share:.2f} anomalous)")
    axis.set(xlabel="recall (anomalies flagged)", ylabel="precision (flagged that are anomalies)",
             title=f"{title}\ntest precision-recall: AUPRC {metrics['auprc']:.4f}",
             xlim=(0, 1), ylim=(0, 1.01))
    axis.legend(loc="lower left", fontsize=8)
    save(figure, PICTURES[1])

    figure, axis = pyplot.subplots(figsize=(6.0, 4.0))
    bins = np.histogram_bin_edges(scores, bins=40)
    axis.hist(scores[labels == 0], bins=bins, alpha=0.6, color="tab:green",
              label=f"normal ({int(np.sum(labels == 0))})")
    axis.hist(scores[labels == 1], bins=bins, alpha=0.6, color="tab:red",
              label=f"anomalous ({int(np.sum(labels == 1))})")
    axis.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    axis.set(xlabel="anomaly score (higher = more anomalous)", ylabel="test samples",
             title=f"{title}\ntest scores")
    axis.legend(fontsize=8)
    save(figure, PICTURES[2])
    return written


def write_benchmark_figure(path: Path, runs: list[dict], methods: list[str], labels: list[int],
                           published: dict[str, list[tuple[str, float | None]]],
                           title: str) -> Path | None:
    """A bar per method and class label: the mean test AUROC of its completed runs' reported
    models (over seeds), with each paper's per-class number as a marker on its method's bar
    (``published``: method -> ``(source, {label: AUROC})`` pairs, given as the anchors'
    ``per_class``). Returns ``path``, or None when no run completed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    means = {method: [np.mean([run["test"]["auroc"] for run in runs
                               if run.get("experiment") == method and run.get("label") == label
                               and run.get("status") == "completed"] or [np.nan])
                      for label in labels] for method in methods}
    if all(np.isnan(values).all() for values in means.values()):
        return None
    width = 0.8 / len(methods)
    figure, axis = pyplot.subplots(figsize=(max(6.0, 0.9 * len(labels) * max(1, len(methods))
                                                / 2 + 3), 4.4))
    positions = np.arange(len(labels))
    markers = iter("ovs^D*")
    for index, method in enumerate(methods):
        offsets = positions - 0.4 + width * (index + 0.5)
        axis.bar(offsets, means[method], width=width * 0.95, label=method)
        for source, per_class in published.get(method, []):
            values = [per_class.get(label, np.nan) for label in labels]
            axis.scatter(offsets, values, color="black", marker=next(markers, "x"), s=18,
                         zorder=3, label=f"{method}, paper {source}")
    axis.set(xticks=positions, xticklabels=[str(label) for label in labels],
             xlabel="class label", ylabel="test AUROC of the reported models\n(mean over seeds)",
             ylim=(0, 1.05),
             title=title)
    axis.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path


def write_map_examples(run_dir: Path, inputs: np.ndarray, reconstructions: np.ndarray,
                       masks: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                       threshold: float, scale: float) -> Path:
    """:data:`MAPS_PICTURE`: the first :data:`MAPS_SHOWN` test anomalies in split order, each as
    input, reconstruction and error map with the ground-truth mask's outline, stacked."""
    from anomaly_toolbox.summaries import anomaly_map_pictures

    shown = np.flatnonzero(np.asarray(labels) == 1)[:MAPS_SHOWN]
    pictures = anomaly_map_pictures(inputs[shown], reconstructions[shown], scores[shown],
                                    threshold, scale, masks[shown])
    path = run_dir / MAPS_PICTURE
    import tensorflow as tf

    tf.io.write_file(str(path), tf.io.encode_png(np.concatenate(pictures)))
    return path
