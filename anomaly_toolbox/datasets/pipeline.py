"""tf.data pipelines over a :class:`~anomaly_toolbox.datasets.splits.Split`.

Images are scaled to [-1, 1] and resized to the method's size once, cached, and only then shuffled
(a fresh order every epoch, derived from the seed and the epoch so a resumed run sees the same
order). Evaluation batches keep every sample: no ``drop_remainder``.
"""

from __future__ import annotations

import tensorflow as tf

from anomaly_toolbox.datasets.splits import Split


def to_model_range(images: tf.Tensor, image_size: int) -> tf.Tensor:
    """uint8 ``[..., H, W, C]`` -> float32 in [-1, 1], resized to ``image_size`` x ``image_size``."""
    images = tf.cast(images, tf.float32) / 127.5 - 1.0
    if images.shape[-3] != image_size or images.shape[-2] != image_size:
        images = tf.clip_by_value(tf.image.resize(images, (image_size, image_size)), -1.0, 1.0)
    return images


def cached_dataset(split: Split, image_size: int) -> tf.data.Dataset:
    """Preprocessed ``(sample, label)`` pairs, cached in memory, unbatched and in split order.

    Images go through :func:`to_model_range`; tabular samples ``[N, F]`` (already scaled by their
    loader) only become float32.
    """
    dataset = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    if split.x.ndim == 2:
        return dataset.map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()
    dataset = dataset.map(lambda x, y: (to_model_range(x, image_size), y),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.cache()


def train_batches(cached: tf.data.Dataset, size: int, batch_size: int, seed: int,
                  epoch: int) -> tf.data.Dataset:
    """Images only, shuffled with a per-epoch seed, full batches (static shapes for XLA).

    Args:
        cached: output of :func:`cached_dataset`.
        size: number of elements in ``cached``.
    """
    if size < batch_size:
        raise ValueError(f"the training split has {size} images, fewer than batch_size "
                         f"{batch_size}; lower batch_size in the hps file")
    return (cached.shuffle(size, seed=seed * 100_003 + epoch, reshuffle_each_iteration=False)
            .map(lambda x, y: x)
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE))


def eval_batches(cached: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """``(images, labels)`` batches in split order, the last one partial: every sample is scored."""
    return cached.batch(batch_size).prefetch(tf.data.AUTOTUNE)
