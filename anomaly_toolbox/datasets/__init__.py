"""Datasets: raw arrays by name, one-class splits and tf.data pipelines."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from anomaly_toolbox.datasets.sources import (DatasetUnavailable, RawData, load_bundled_mnist,
                                              load_mnist, load_tfds)
from anomaly_toolbox.datasets.splits import PROTOCOLS, OneClassSplits, Split, one_class_splits


def _lazy(module: str, function: str) -> Callable[..., RawData]:
    """A loader imported on first use (keeps ``anomaly-box --help`` free of TensorFlow)."""
    def load(data_dir: str | Path | None, category: str | None, **options: str) -> RawData:
        return getattr(importlib.import_module(module), function)(data_dir, category, **options)
    return load


@dataclass(frozen=True)
class Dataset:
    """A dataset the CLI knows: its loader ``(data_dir, category, **options) -> RawData``, a help
    line, the protocol and class used when the user names neither, whether ``data_dir`` is a
    file, and the loader's own options (``label_column``, ...), all of them required."""

    loader: Callable[..., RawData]
    help: str
    protocol: str = "anomalous"
    label: int = 0
    needs_category: bool = False
    data_file: bool = False
    options: tuple[str, ...] = ()


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(lambda data_dir, category: load_mnist(data_dir),
                     "full MNIST via tensorflow-datasets (cached or downloadable); offline and "
                     "uncached it falls back to mnist-5k and says so"),
    "mnist-5k": Dataset(lambda data_dir, category: load_bundled_mnist(),
                        "bundled real MNIST subset (5,000 images, 500 per class), always offline"),
    "fashion_mnist": Dataset(lambda data_dir, category: load_tfds("fashion_mnist", data_dir),
                             "Fashion-MNIST via tensorflow-datasets (28x28 grayscale, 10 classes)"),
    "cifar10": Dataset(lambda data_dir, category: load_tfds("cifar10", data_dir),
                       "CIFAR-10 via tensorflow-datasets (32x32 RGB, 10 classes)"),
    "kdd99": Dataset(_lazy("anomaly_toolbox.datasets.kdd99", "load_kdd99"),
                     "KDDCUP99 10% (tabular): class 0 normal traffic (the anomaly by default: P3 "
                     "with class 1, attacks, normal); a raw kddcup.data_10_percent[.gz] in "
                     "--data-dir or scikit-learn's cached copy",
                     protocol="normal", label=1),
    "folder": Dataset(_lazy("anomaly_toolbox.datasets.folder", "load_folder"),
                      "your images in --data-dir: train/good + test/good + test/<defect> (MVTec "
                      "AD layout) or normal/ + abnormal/; default: class 0 (good) normal",
                      protocol="normal"),
    "mvtec": Dataset(_lazy("anomaly_toolbox.datasets.folder", "load_mvtec"),
                     "MVTec AD: --data-dir is the unpacked archive, --category one of its "
                     "objects (e.g. bottle); default: good images normal",
                     protocol="normal", needs_category=True),
    "csv": Dataset(_lazy("anomaly_toolbox.datasets.table", "load_csv"),
                   "any CSV table: --data-dir FILE.csv, --label-column NAME, --normal-value V "
                   "(rows with that label are class 0, normal by default; the rest class 1); "
                   "text columns one-hot, numbers min-max scaled on the training split",
                   protocol="normal", data_file=True, options=("label_column", "normal_value")),
}

DATASET_HELP = {name: dataset.help for name, dataset in DATASETS.items()}


def load_raw(name: str, data_dir: str | Path | None = None, category: str | None = None,
             options: dict[str, str] | None = None) -> RawData:
    """Raw arrays of dataset ``name``; ``KeyError`` naming the known datasets if unknown.

    ``options``: the dataset's own options (csv: ``label_column``, ``normal_value``); a
    ``ValueError`` names one that the dataset does not take.

    The result's ``name`` is what was really loaded (a fallback names itself), with the category
    appended for datasets that have one (``mvtec-bottle``).
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)}")
    options = options or {}
    unknown = sorted(set(options) - set(DATASETS[name].options))
    if unknown:
        raise ValueError(f"dataset '{name}' takes no option {', '.join(unknown)}")
    if category is not None and (category in ("", ".", "..") or Path(category).name != category
                                 or "\\" in category):
        raise ValueError(f"--category {category!r} is not a folder name: give the name of one "
                         f"category folder (e.g. bottle), without path separators or '..'")
    raw = DATASETS[name].loader(data_dir, category, **options)
    loaded = raw.name or name
    return dataclasses.replace(raw, name=f"{loaded}-{category}" if category else loaded)


__all__ = ["DATASETS", "DATASET_HELP", "PROTOCOLS", "Dataset", "DatasetUnavailable",
           "OneClassSplits", "RawData", "Split", "load_raw", "one_class_splits"]
