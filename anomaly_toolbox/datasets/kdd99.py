"""KDDCUP99, 10% set, as tabular data (Zenati et al.'s preprocessing).

Class 0 is normal traffic and class 1 an attack. Normal traffic is the minority (about 20%), so
Di Mattia et al. ("A Survey on GANs for Anomaly Detection", arXiv 2019) treat it as the anomaly,
as Zenati et al. ("Efficient GAN-Based Anomaly Detection", 2018) did. The default protocol, P3
with class 1 (attacks) normal, is Zenati et al.'s: train on the attacks of the training half, test on the whole test half.
The three text columns (protocol, service, flag) are one-hot encoded; every column is then
min-max scaled to [0, 1] with the minimum and maximum of the training part (test values clipped).
Results also hold precision/recall/F1 with the top-scoring 20% called anomalous (``top_*``). There is no official
test part, so a fixed, seed-independent half of the records is the test part, as in Zenati et al.

Sources, in order: a raw KDD file in ``--data-dir`` (``kddcup.data_10_percent``, optionally
``.gz`` or ``.csv``: 41 comma-separated features and a label such as ``normal.``), else
scikit-learn's ``fetch_kddcup99`` cache under ``--data-dir`` (downloaded once when online).
"""

from __future__ import annotations

import csv
import gzip
import logging
import zlib
from pathlib import Path

import numpy as np

from anomaly_toolbox.datasets.sources import DatasetUnavailable, RawData, network_reachable

log = logging.getLogger(__name__)

RAW_FILES = ("kddcup.data_10_percent", "kddcup.data_10_percent.gz", "kddcup.data_10_percent.csv")
FEATURE_COUNT = 41
TEXT_COLUMNS = (1, 2, 3)
NORMAL_TRAFFIC = "normal."
_DOWNLOAD_HOST = ("ndownloader.figshare.com", 443)
_SPLIT_SEED = 20180001
_TEST_SHARE = 0.5
#: Zenati et al. call the top-scoring 20% anomalous (about the share of normal traffic).
TOP_SHARE = 0.2


def _read_raw_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[N, 41]`` (strings) and labels ``[N]`` of a KDD file; malformed rows are errors."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows, labels = [], []
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as file:
            for number, row in enumerate(csv.reader(file), start=1):
                if not row:
                    continue
                if len(row) != FEATURE_COUNT + 1:
                    raise ValueError(f"{path}, line {number}: expected {FEATURE_COUNT} features "
                                     f"and a label ({FEATURE_COUNT + 1} comma-separated fields), "
                                     f"got {len(row)}")
                rows.append(row[:FEATURE_COUNT])
                labels.append(row[FEATURE_COUNT].strip())
    except gzip.BadGzipFile:
        raise ValueError(f"{path} is named .gz but is not gzip-compressed; rename it without "
                         f".gz if it is plain text") from None
    except (EOFError, zlib.error):
        raise ValueError(f"{path} is a truncated or damaged gzip file; download it again") from None
    except (UnicodeDecodeError, csv.Error):
        raise ValueError(f"{path} is not a text file of comma-separated KDD records (binary "
                         f"data or NUL bytes); check that it is kddcup.data_10_percent") from None
    if not rows:
        raise ValueError(f"{path} holds no records")
    return np.array(rows, dtype=object), np.array(labels, dtype=object)


def _fetch_with_sklearn(data_dir: str | Path | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import fetch_kddcup99

    home = None if data_dir is None else str(data_dir)
    try:
        bunch = fetch_kddcup99(percent10=True, data_home=home, download_if_missing=False)
    except OSError:
        if not network_reachable(_DOWNLOAD_HOST):
            raise DatasetUnavailable(
                f"KDDCUP99 is not cached under {home or 'scikit-learn’s data home'} and the "
                f"download host is unreachable. Put the raw file {RAW_FILES[0]} (or .gz) into a "
                f"directory and pass --data-dir DIR, or run `python -c \"from sklearn.datasets "
                f"import fetch_kddcup99; fetch_kddcup99(data_home='DIR')\"` on a connected "
                f"machine and copy DIR here.") from None
        log.info("Downloading KDDCUP99 (10%%) with scikit-learn into %s", home or "its data home")
        bunch = fetch_kddcup99(percent10=True, data_home=home, download_if_missing=True)
    decode = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])
    return decode(bunch.data), decode(bunch.target)


def encode(rows: np.ndarray) -> np.ndarray:
    """One-hot text columns (categories sorted) + numeric columns -> float ``[N, F]``."""
    parts = []
    for column in range(FEATURE_COUNT):
        values = rows[:, column]
        if column in TEXT_COLUMNS:
            categories = np.unique(values.astype(str))
            parts.append((values.astype(str)[:, None] == categories[None, :]).astype(np.float32))
        else:
            try:
                parts.append(values.astype(np.float64)[:, None])
            except ValueError:
                raise ValueError(f"KDD column {column + 1} should be numeric") from None
    return np.concatenate(parts, axis=1)


def load_kdd99(data_dir: str | Path | None, category: str | None = None) -> RawData:
    """KDDCUP99 10%: float32 features ``[N, F]`` in [0, 1] and labels (0 = normal traffic)."""
    raw_file = next((Path(data_dir) / name for name in RAW_FILES
                     if data_dir is not None and (Path(data_dir) / name).is_file()), None)
    rows, labels = _read_raw_file(raw_file) if raw_file else _fetch_with_sklearn(data_dir)
    try:
        features = encode(rows)
    except ValueError as error:
        raise ValueError(f"{raw_file or 'KDDCUP99'}: {error}") from None
    targets = (labels != NORMAL_TRAFFIC).astype(np.int64)
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(targets))
    cut = int(round((1.0 - _TEST_SHARE) * len(order)))
    train, test = order[:cut], order[cut:]
    low, high = features[train].min(axis=0), features[train].max(axis=0)
    scale = np.where(high > low, high - low, 1.0)
    scaled = np.clip((features - low) / scale, 0.0, 1.0).astype(np.float32)
    source = f"kdd99: {raw_file}" if raw_file else "kdd99: scikit-learn fetch_kddcup99 (10%)"
    return RawData(x_train=scaled[train], y_train=targets[train], x_test=scaled[test],
                   y_test=targets[test], num_classes=2, top_share=TOP_SHARE,
                   source=f"{source}, {len(targets)} records, {features.shape[1]} features",
                   location=str(raw_file.resolve()) if raw_file else None)
