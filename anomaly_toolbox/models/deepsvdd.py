"""Deep SVDD networks (Ruff et al. 2018): a bias-free LeNet-style feature map, the centre c, and
the mirrored decoder that pretrains the feature map as an autoencoder's encoder.

Two LeNets, as the reference code picks by dataset: on grayscale images its MNIST LeNet (28 px,
two stages whose filters halve, 8 -> 4, and 32 features at the defaults), on RGB images its
CIFAR-10 LeNet (32 px, three stages whose filters double, 32 -> 64 -> 128, and 128 features).

Every layer is bias-free and BatchNorm has no affine terms (epsilon 1e-4, as the reference code),
because a bias would let the network map every input onto c, the trivial solution the paper rules
out. LeakyReLU slope 0.01 (PyTorch's default, used by the reference code). Optionally the feature
map first applies the reference code's global contrast normalisation (:class:`ContrastNormalization`).
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import tensorflow as tf
from keras import layers

from anomaly_toolbox.models.dcgan import pyramid_steps

BN_EPSILON = 1e-4
LEAKY_SLOPE = 0.01


@keras.saving.register_keras_serializable(package="anomaly_toolbox")
class MaxPool2x2(keras.layers.Layer):
    """2x2 max pooling, stride 2, of ``[B, H, W, C]`` with even H and W, as a reshape and a max.

    Same values as ``MaxPooling2D(2)``, but its gradient is an ordinary reduction: XLA has no
    deterministic MaxPool gradient, so with op determinism on, ``MaxPooling2D`` cannot be
    compiled (an error even on CPU).
    """

    def call(self, x: tf.Tensor) -> tf.Tensor:
        _, height, width, channels = x.shape
        blocks = tf.reshape(x, [-1, height // 2, 2, width // 2, 2, channels])
        return tf.reduce_max(blocks, axis=[2, 4])


@keras.saving.register_keras_serializable(package="anomaly_toolbox")
class ContrastNormalization(keras.layers.Layer):
    """Global contrast normalisation of ``[B, H, W, C]`` images as Ruff et al.'s reference code:
    per image, v = (x - mean(x)) / mean|x - mean(x)| (the L1 scale; the same for any positive
    affine map of the pixels, so for [-1, 1] as for [0, 1] images), then (v - low) / (high -
    low), with ``low`` and ``high`` the extreme values of v over the training images (set by
    :meth:`adapt`, not trained), which maps the training data onto [0, 1]."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.low = self.add_weight(shape=(), initializer="zeros", trainable=False, name="low")
        self.high = self.add_weight(shape=(), initializer="ones", trainable=False, name="high")

    @staticmethod
    def contrast(images: tf.Tensor) -> tf.Tensor:
        """v = (x - mean(x)) / mean|x - mean(x)| per image ``[B, H, W, C]``."""
        centred = images - tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        scale = tf.reduce_mean(tf.abs(centred), axis=[1, 2, 3], keepdims=True)
        return centred / tf.maximum(scale, tf.cast(1e-12, images.dtype))

    def adapt(self, batches: Iterable[tf.Tensor]) -> tuple[float, float]:
        """Set ``low`` and ``high`` to the extremes of v over ``batches`` of training images;
        returns them."""
        extremes = [(float(tf.reduce_min(v)), float(tf.reduce_max(v)))
                    for v in map(self.contrast, batches)]
        low, high = min(e[0] for e in extremes), max(e[1] for e in extremes)
        self.low.assign(low)
        self.high.assign(high)
        return low, high

    def call(self, images: tf.Tensor) -> tf.Tensor:
        low, high = tf.cast(self.low, images.dtype), tf.cast(self.high, images.dtype)
        return (self.contrast(images) - low) / (high - low)


def stage_filters(filters: int, stage: int, rgb: bool = False) -> int:
    """Filters of the feature map's ``stage`` (0-based): ``filters`` halved per stage, at least 1
    (the MNIST LeNet), or doubled per stage on RGB images (the CIFAR-10 LeNet)."""
    return filters * 2 ** stage if rgb else max(filters // 2 ** stage, 1)


def is_rgb(image_shape: tuple[int, int, int]) -> bool:
    """Whether images of ``image_shape`` take the CIFAR-10 LeNet (three channels)."""
    return image_shape[-1] == 3


def build_feature_map(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
                      contrast_normalised: bool = False) -> keras.Model:
    """Image ``[B, S, S, C]`` -> features ``[B, latent_dim]``: per stage Conv 5x5 (no bias) ->
    BatchNorm (no affine) -> LeakyReLU -> MaxPool 2x2 (:func:`stage_filters`: 28 -> 14 -> 7 with
    8 then 4 filters, the MNIST LeNet; 32 -> 16 -> 8 -> 4 with 32, 64, 128 on RGB, the CIFAR-10
    LeNet), then a bias-free Dense.
    ``contrast_normalised``: a :class:`ContrastNormalization` layer named ``contrast`` first."""
    images = keras.Input(image_shape, name="images")
    x = ContrastNormalization(name="contrast")(images) if contrast_normalised else images
    for i in range(pyramid_steps(image_shape[0])):
        x = layers.Conv2D(stage_filters(filters, i, is_rgb(image_shape)), 5, padding="same",
                          use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, center=False, scale=False,
                                      name=f"bn{i}")(x)
        x = layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"lrelu{i}")(x)
        x = MaxPool2x2(name=f"pool{i}")(x)
    features = layers.Dense(latent_dim, use_bias=False, name="features")(layers.Flatten()(x))
    return keras.Model(images, features, name="feature_map")


def build_pretraining_decoder(image_shape: tuple[int, int, int], latent_dim: int,
                              filters: int) -> keras.Model:
    """Features ``[B, latent_dim]`` -> image ``[B, S, S, C]``, the feature map mirrored: a
    bias-free Dense to the last stage's grid, then per stage BatchNorm (no affine) -> LeakyReLU ->
    2x upsampling -> Conv 5x5 (no bias) to the previous stage's filters, then tanh (images lie in
    [-1, 1])."""
    stages = pyramid_steps(image_shape[0])
    side = image_shape[0] // 2 ** stages
    features = keras.Input((latent_dim,), name="features")
    rgb = is_rgb(image_shape)
    last = stage_filters(filters, stages - 1, rgb)
    x = layers.Dense(side * side * last, use_bias=False, name="grid")(features)
    x = layers.Reshape((side, side, last))(x)
    for i in reversed(range(stages)):
        x = layers.BatchNormalization(epsilon=BN_EPSILON, center=False, scale=False,
                                      name=f"bn{i}")(x)
        x = layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"lrelu{i}")(x)
        x = layers.UpSampling2D(2, name=f"up{i}")(x)
        channels = stage_filters(filters, i - 1, rgb) if i > 0 else image_shape[-1]
        x = layers.Conv2D(channels, 5, padding="same", use_bias=False, name=f"conv{i}")(x)
    images = layers.Activation("tanh", name="tanh")(x)
    return keras.Model(features, images, name="pretraining_decoder")


@keras.saving.register_keras_serializable(package="anomaly_toolbox")
class HypersphereCentre(keras.layers.Layer):
    """Holds the fixed centre c ``[dim]`` (not trained); returns ||phi - c||^2 ``[B]``."""

    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim = dim
        self.centre = self.add_weight(shape=(dim,), initializer="zeros", trainable=False,
                                      name="centre")

    def call(self, features: tf.Tensor) -> tf.Tensor:
        centre = tf.cast(self.centre, features.dtype)
        return tf.reduce_sum(tf.square(features - centre), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim}


def build_centre(latent_dim: int) -> keras.Model:
    """Features ``[B, latent_dim]`` -> squared distance to c ``[B]``; c is set before training."""
    features = keras.Input((latent_dim,), name="features")
    return keras.Model(features, HypersphereCentre(latent_dim, name="centre")(features),
                       name="centre")
