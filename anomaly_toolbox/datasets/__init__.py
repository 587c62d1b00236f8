"""Datasets: raw arrays by name, one-class splits and tf.data pipelines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from anomaly_toolbox.datasets.sources import (DatasetUnavailable, RawData, load_bundled_mnist,
                                              load_mnist)
from anomaly_toolbox.datasets.splits import PROTOCOLS, OneClassSplits, Split, one_class_splits

#: Dataset name -> loader taking the tfds data directory (None = tfds default).
DATASETS: dict[str, Callable[[str | Path | None], RawData]] = {
    "mnist": load_mnist,
    "mnist-5k": lambda data_dir: load_bundled_mnist(),
}

DATASET_HELP = {
    "mnist": "full MNIST via tensorflow-datasets (cached or downloadable); offline and uncached it "
             "falls back to mnist-5k and says so",
    "mnist-5k": "bundled real MNIST subset (5,000 images, 500 per class), always offline",
}


def load_raw(name: str, data_dir: str | Path | None = None) -> RawData:
    """Raw arrays of dataset ``name``; ``KeyError`` naming the known datasets if unknown."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)}")
    return DATASETS[name](data_dir)


__all__ = ["DATASETS", "DATASET_HELP", "PROTOCOLS", "DatasetUnavailable", "OneClassSplits",
           "RawData", "Split", "load_raw", "one_class_splits"]
