"""EGBAD networks at the widths of Zenati et al.'s MNIST code: encoder E, generator G, joint D(x, z).

Widths scale with ``filters`` f; the default f = 32 gives the code's (its TensorFlow 1 layers:
BatchNorm momentum 0.99 and epsilon 1e-3, LeakyReLU slope 0.1, kernels drawn from N(0, 0.02)):

* E: conv 3x3 f (no activation) -> conv 3x3 s2 2f, BN, LReLU -> conv 3x3 s2 4f, BN, LReLU ->
  dense latent_dim.
* G: dense 32f, BN, ReLU -> dense (S/4)^2 4f, BN, ReLU -> deconv 4x4 s2 2f, BN, ReLU ->
  deconv 4x4 s2 C, tanh.
* D: x: conv 4x4 s2 2f, LReLU, dropout -> conv 4x4 s2 2f, BN, LReLU, dropout; z: dense 16f,
  LReLU, dropout; joint: dense 32f, LReLU, dropout (the feature-matching features f(x, z)) ->
  dense 1 (the logit).

LReLU is computed as the code writes it, relu(x) - 0.1 relu(-x) (:class:`~anomaly_toolbox.models.
dcgan.LeakyReLUOfRelus`), which also keeps TensorFlow's graph remapper from failing on D's
first layer.
"""

from __future__ import annotations

import keras
from keras import layers

from anomaly_toolbox.models.dcgan import LeakyReLUOfRelus
from anomaly_toolbox.models.dense import (build_dense_decoder, build_dense_encoder,
                                          build_dense_joint_discriminator)

#: The code's TensorFlow 1 defaults (``tf.layers.batch_normalization``) and LeakyReLU slope.
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
LEAKY_SLOPE = 0.1


def _init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=0.02)


def _conv(filters: int, kernel: int, strides: int, name: str) -> layers.Conv2D:
    return layers.Conv2D(filters, kernel, strides=strides, padding="same",
                         kernel_initializer=_init(), name=name)


def _dense(units: int, name: str) -> layers.Dense:
    return layers.Dense(units, kernel_initializer=_init(), name=name)


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _lrelu(name: str) -> LeakyReLUOfRelus:
    return LeakyReLUOfRelus(LEAKY_SLOPE, name=name)


def _quarter_side(image_shape: tuple[int, int, int]) -> int:
    if image_shape[0] % 4:
        raise ValueError(f"EGBAD's networks halve the side twice; {image_shape[0]} is not a "
                         f"multiple of 4")
    return image_shape[0] // 4


def build_encoder(image_shape: tuple[int, int, int], latent_dim: int, filters: int) -> keras.Model:
    """``x [B, S, S, C]`` -> ``z [B, latent_dim]``."""
    _quarter_side(image_shape)
    images = keras.Input(image_shape, name="images")
    x = _conv(filters, 3, 1, "encoder_conv0")(images)
    for i in (1, 2):
        x = _conv(filters * 2 ** i, 3, 2, f"encoder_conv{i}")(x)
        x = _lrelu(f"encoder_lrelu{i}")(_bn(f"encoder_bn{i}")(x))
    code = _dense(latent_dim, "encoder_code")(layers.Flatten()(x))
    return keras.Model(images, code, name="encoder")


def build_generator(image_shape: tuple[int, int, int], latent_dim: int,
                    filters: int) -> keras.Model:
    """``z [B, latent_dim]`` -> ``x [B, S, S, C]`` in [-1, 1]."""
    side = _quarter_side(image_shape)
    code = keras.Input((latent_dim,), name="code")
    x = layers.ReLU()(_bn("generator_bn0")(_dense(32 * filters, "generator_dense0")(code)))
    x = _dense(side * side * 4 * filters, "generator_dense1")(x)
    x = layers.Reshape((side, side, 4 * filters))(layers.ReLU()(_bn("generator_bn1")(x)))
    x = layers.Conv2DTranspose(2 * filters, 4, strides=2, padding="same",
                               kernel_initializer=_init(), name="generator_deconv0")(x)
    x = layers.ReLU()(_bn("generator_bn2")(x))
    x = layers.Conv2DTranspose(image_shape[-1], 4, strides=2, padding="same",
                               kernel_initializer=_init(), name="generator_deconv1")(x)
    return keras.Model(code, layers.Activation("tanh")(x), name="generator")


def build_discriminator(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
                        dropout: float) -> keras.Model:
    """``(x [B, S, S, C], z [B, latent_dim])`` -> ``(logit [B, 1], features [B, 32 * filters])``."""
    _quarter_side(image_shape)
    images = keras.Input(image_shape, name="images")
    code = keras.Input((latent_dim,), name="code")
    x = layers.Dropout(dropout)(_lrelu("discriminator_x_lrelu0")(
        _conv(2 * filters, 4, 2, "discriminator_x_conv0")(images)))
    x = _bn("discriminator_x_bn1")(_conv(2 * filters, 4, 2, "discriminator_x_conv1")(x))
    x = layers.Flatten()(layers.Dropout(dropout)(_lrelu("discriminator_x_lrelu1")(x)))
    z = layers.Dropout(dropout)(_lrelu("discriminator_z_lrelu")(
        _dense(16 * filters, "discriminator_z")(code)))
    joint = _lrelu("discriminator_joint_lrelu")(
        _dense(32 * filters, "discriminator_joint")(layers.Concatenate()([x, z])))
    features = layers.Dropout(dropout, name="discriminator_features")(joint)
    logit = _dense(1, "discriminator_logit")(features)
    return keras.Model([images, code], [logit, features], name="discriminator")


def build_egbad(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
                dropout: float) -> dict[str, keras.Model]:
    """The three EGBAD networks keyed ``encoder``, ``generator``, ``discriminator``."""
    return {
        "encoder": build_encoder(image_shape, latent_dim, filters),
        "generator": build_generator(image_shape, latent_dim, filters),
        "discriminator": build_discriminator(image_shape, latent_dim, filters, dropout),
    }


def build_dense_egbad(features: int, latent_dim: int, width: int,
                      dropout: float) -> dict[str, keras.Model]:
    """EGBAD for tabular samples ``[B, F]`` (Zenati et al.'s KDD99 networks), same keys."""
    return {
        "encoder": build_dense_encoder(features, latent_dim, width, "encoder"),
        "generator": build_dense_decoder(features, latent_dim, width, "generator"),
        "discriminator": build_dense_joint_discriminator(features, latent_dim, width, dropout),
    }
