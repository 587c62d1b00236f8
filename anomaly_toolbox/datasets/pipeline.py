"""tf.data pipelines over a :class:`~anomaly_toolbox.datasets.splits.Split`.

Images are scaled to [-1, 1] and resized to the method's size once, in a few large batched ops
(not per element), kept in memory, and only then shuffled (a fresh order every epoch, derived
from the seed and the epoch so a resumed run sees the same order) into full training batches. Evaluation batches keep every
sample: no ``drop_remainder``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from anomaly_toolbox.datasets.splits import OneClassSplits, Split
from anomaly_toolbox.datasets.synthetic import split_digest, synthetic_split


def to_model_range(images: tf.Tensor, image_size: int) -> tf.Tensor:
    """uint8 ``[..., H, W, C]`` -> float32 in [-1, 1], resized to ``image_size`` x ``image_size``."""
    images = tf.cast(images, tf.float32) / 127.5 - 1.0
    if images.shape[-3] != image_size or images.shape[-2] != image_size:
        images = tf.clip_by_value(tf.image.resize(images, (image_size, image_size)), -1.0, 1.0)
    return images


#: Images preprocessed per op in :func:`cached_dataset` (bounds the peak memory).
PREPROCESS_CHUNK = 4096


def preprocess(x: np.ndarray, image_size: int) -> np.ndarray:
    """Samples as the networks take them: images through :func:`to_model_range` (in chunks of
    :data:`PREPROCESS_CHUNK`), tabular samples ``[N, F]`` (already scaled) as float32."""
    if x.ndim == 2:
        return x.astype(np.float32)
    chunks = [to_model_range(tf.constant(x[start:start + PREPROCESS_CHUNK]), image_size).numpy()
              for start in range(0, len(x), PREPROCESS_CHUNK)]
    return (np.concatenate(chunks) if chunks else
            np.zeros((0, image_size, image_size, x.shape[-1]), np.float32))


def cached_dataset(split: Split, image_size: int) -> tf.data.Dataset:
    """Preprocessed ``(sample, label)`` pairs in memory, unbatched and in split order."""
    return tf.data.Dataset.from_tensor_slices((preprocess(split.x, image_size), split.y))


def train_batches(samples: tf.Tensor, batch_size: int, seed: int,
                  epoch: int) -> Iterator[tf.Tensor]:
    """Full batches ``[batch_size, ...]`` of the preprocessed training ``samples`` in an order
    drawn from ``(seed, epoch)``: reproducible, fresh every epoch, the same when a run resumes.

    A NumPy permutation and one gather per batch: building a shuffled ``tf.data`` pipeline every
    epoch retraced its functions and cost seconds per epoch.
    """
    size = int(samples.shape[0])
    if size < batch_size:
        raise ValueError(f"the training split has {size} images, fewer than batch_size "
                         f"{batch_size}; lower batch_size in the hps file")
    order = np.random.default_rng((seed, epoch)).permutation(size)
    for start in range(0, size - batch_size + 1, batch_size):
        yield tf.gather(samples, order[start:start + batch_size])


def eval_batches(cached: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """``(images, labels)`` batches in split order, the last one partial: every sample is scored."""
    return cached.batch(batch_size).prefetch(tf.data.AUTOTUNE)


@dataclass
class PreparedData:
    """Cached pipelines of one set of splits at a method's image size."""

    train: tf.data.Dataset
    train_size: int
    validation: tf.data.Dataset
    validation_labels: np.ndarray
    test: tf.data.Dataset
    test_labels: np.ndarray
    #: The dataset's "top share" rule (KDD99: 0.2): also report precision/recall/F1 when the
    #: highest-scoring share of samples is called anomalous.
    top_share: float | None = None
    #: The preprocessed training samples as one tensor, for :func:`train_batches`.
    train_samples: tf.Tensor | None = None
    #: One raw sample's shape as the data came (``(H, W, C)`` before resizing, ``(F,)``).
    sample_shape: tuple[int, ...] = ()
    #: Label-free selection set (:mod:`~anomaly_toolbox.datasets.synthetic`): held-out normal
    #: validation samples against synthetic anomalies made from other ones; None with fewer
    #: than two normal validation samples.
    synthetic: tf.data.Dataset | None = None
    synthetic_labels: np.ndarray | None = None
    #: Sizes and a digest of the synthetic set, for results files.
    synthetic_description: dict | None = None

    @property
    def has_validation_anomalies(self) -> bool:
        """Whether validation holds labelled anomalies to rank models on."""
        return bool(np.any(self.validation_labels == 1))

    @classmethod
    def from_splits(cls, splits: OneClassSplits, image_size: int,
                    top_share: float | None = None, seed: int = 0) -> PreparedData:
        """The splits at ``image_size``; ``seed`` draws the synthetic selection set from the
        normal validation samples alone."""
        train = tf.constant(preprocess(splits.train.x, image_size))
        validation = splits.validation
        synthetic = synthetic_split(validation.x[validation.y == 0], seed)
        return cls(tf.data.Dataset.from_tensor_slices((train, splits.train.y)), len(splits.train),
                   cached_dataset(validation, image_size), validation.y,
                   cached_dataset(splits.test, image_size), splits.test.y, top_share, train,
                   tuple(int(d) for d in splits.train.x.shape[1:]),
                   None if synthetic is None else cached_dataset(synthetic, image_size),
                   None if synthetic is None else synthetic.y,
                   None if synthetic is None else {
                       "normals": int(np.sum(synthetic.y == 0)),
                       "anomalies": int(synthetic.y.sum()), "digest": split_digest(synthetic),
                       "seed": seed})
