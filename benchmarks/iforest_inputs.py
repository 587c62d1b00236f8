"""What Isolation Forest's P3 AUROC on mnist-5k depends on: trees, training images, and the
inputs (raw pixels, Ruff et al.'s global contrast normalization, a PCA keeping 95% of the
training variance). Prints a Markdown table, test AUROC per class, mean ± std over seeds 1-3.

Ruff et al.'s baseline script (the source of the Isolation Forest numbers in MEMGAN's table 1)
runs 100 trees on 256-image subsamples of GCN-l1 images rescaled to [0, 1], with an optional PCA
keeping 95% of the variance. The toolbox's ``iforest`` uses raw pixels unless ``pca_variance``
is set; this script measures each difference on its own.

Usage: python benchmarks/iforest_inputs.py (about 1 minute on 2 CPU cores)
"""

from __future__ import annotations

from collections.abc import Callable

import click
import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from anomaly_toolbox.datasets import one_class_splits
from anomaly_toolbox.datasets.sources import load_bundled_mnist

SEEDS = (1, 2, 3)
Inputs = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def raw(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return train, test


def gcn_l1(images: np.ndarray) -> np.ndarray:
    """Global contrast normalization with the l1 scale: ``(x - mean x) / mean |x - mean x|``."""
    centred = images - images.mean(axis=1, keepdims=True)
    return centred / np.abs(centred).mean(axis=1, keepdims=True)


def gcn(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return gcn_l1(train), gcn_l1(test)


def pca95(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    projection = PCA(n_components=0.95, svd_solver="full").fit(train)
    return projection.transform(train), projection.transform(test)


def gcn_pca95(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pca95(*gcn(train, test))


#: name -> (inputs, trees, training images kept: None = all 360).
VARIANTS: dict[str, tuple[Inputs, int, int | None]] = {
    "raw pixels, 100 trees (the toolbox's default)": (raw, 100, None),
    "raw pixels, 1,000 trees": (raw, 1000, None),
    "raw pixels, 180 training images": (raw, 100, 180),
    "raw pixels, 90 training images": (raw, 100, 90),
    "GCN-l1": (gcn, 100, None),
    "PCA 95% (`pca_variance` 0.95)": (pca95, 100, None),
    "GCN-l1 + PCA 95% (Ruff et al.'s full preprocessing)": (gcn_pca95, 100, None),
}


def flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


@click.command()
def main() -> None:
    """Print the table: test AUROC per class and input variant, mean over seeds 1-3."""
    data = load_bundled_mnist()
    aurocs = {name: np.zeros((len(SEEDS), 10)) for name in VARIANTS}
    for row, seed in enumerate(SEEDS):
        for label in range(10):
            splits = one_class_splits(data, "normal", label, seed=seed)
            train, test = flat(splits.train.x), flat(splits.test.x)
            for name, (inputs, trees, kept) in VARIANTS.items():
                fit_on, scored = inputs(train[:kept], test)
                forest = IsolationForest(n_estimators=trees, random_state=seed).fit(fit_on)
                aurocs[name][row, label] = roc_auc_score(splits.test.y,
                                                         -forest.score_samples(scored))
    print("| inputs | " + " | ".join(str(label) for label in range(10)) + " | average |")
    print("|---" * 12 + "|")
    for name, table in aurocs.items():
        per_seed = table.mean(axis=1)
        cells = " | ".join(f"{value:.3f}" for value in table.mean(axis=0))
        print(f"| {name} | {cells} | {per_seed.mean():.3f} ± {per_seed.std():.3f} |")


if __name__ == "__main__":
    main()
