"""Deep SVDD networks (Ruff et al. 2018): a bias-free LeNet-style feature map and the centre c.

Every layer is bias-free and BatchNorm has no affine terms (epsilon 1e-4, as the reference code),
because a bias would let the network map every input onto c, the trivial solution the paper rules
out. LeakyReLU slope 0.01 (PyTorch's default, used by the reference code).
"""

from __future__ import annotations

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


def build_feature_map(image_shape: tuple[int, int, int], latent_dim: int,
                      filters: int) -> keras.Model:
    """Image ``[B, S, S, C]`` -> features ``[B, latent_dim]``: per stage Conv 5x5 (no bias) ->
    BatchNorm (no affine) -> LeakyReLU -> MaxPool 2x2, filters doubling (28 -> 14 -> 7; 32 -> 16
    -> 8 -> 4, the paper's MNIST and CIFAR-10 LeNets), then a bias-free Dense."""
    images = keras.Input(image_shape, name="images")
    x = images
    for i in range(pyramid_steps(image_shape[0])):
        x = layers.Conv2D(filters * 2 ** i, 5, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, center=False, scale=False,
                                      name=f"bn{i}")(x)
        x = layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"lrelu{i}")(x)
        x = MaxPool2x2(name=f"pool{i}")(x)
    features = layers.Dense(latent_dim, use_bias=False, name="features")(layers.Flatten()(x))
    return keras.Model(images, features, name="feature_map")


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
