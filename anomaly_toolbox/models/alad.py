"""ALAD networks at the widths of Zenati et al.'s CIFAR-10 code, for 32x32 images.

Widths scale with ``filters`` f; the default f = 128 gives the code's. Kernels are drawn from
N(0, 0.01); BatchNorm has TensorFlow 1's settings (momentum 0.99, epsilon 1e-3); LeakyReLU's
slope is 0.2, computed as the code writes it, relu(x) - 0.2 relu(-x). Every discriminator layer
but the logits, and the encoder's convolutions, are spectrally normalised (the code's ``--sn``;
``spectral`` off is its ablation).

* E: 3 x [conv 4x4 s2 (f, 2f, 4f), BN, LReLU] -> dense latent_dim (the code's 4x4 valid conv).
* G: dense (S/8)^2 4f, BN, ReLU -> deconv 4x4 s2 2f, f (BN, ReLU) -> deconv 4x4 s2 C, tanh.
* D_xz: x: conv f, LReLU -> conv 2f, BN, LReLU -> conv 4f, BN, LReLU; z: 2 x [dense 4f,
  LReLU, dropout]; joint: dense 8f, LReLU, dropout (features) -> logit.
* D_xx: (x, x') stacked on channels: conv 5x5 s2 f/2, LReLU, dropout -> conv 5x5 s2 f, LReLU,
  dropout (flattened: the features of the score) -> logit.
* D_zz: (z, z') concatenated: dense 64, LReLU, dropout -> dense 32, LReLU, dropout (features)
  -> logit.
"""

from __future__ import annotations

import keras
from keras import layers

from anomaly_toolbox.models.dcgan import LeakyReLUOfRelus
from anomaly_toolbox.models.egbad import BN_EPSILON, BN_MOMENTUM

LEAKY_SLOPE = 0.2
#: D_zz's widths in the code, whatever the image networks' width.
ZZ_WIDTHS = (64, 32)


def _init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=0.01)


def _conv(filters: int, kernel: int, name: str, spectral: bool) -> layers.Layer:
    """A 4x4 or 5x5 stride-2 convolution, spectrally normalised when ``spectral``."""
    if spectral:
        return layers.SpectralNormalization(layers.Conv2D(
            filters, kernel, strides=2, padding="same", kernel_initializer=_init()), name=name)
    return layers.Conv2D(filters, kernel, strides=2, padding="same", kernel_initializer=_init(),
                         name=name)


def _dense(units: int, name: str, spectral: bool) -> layers.Layer:
    """A dense layer, spectrally normalised when ``spectral``."""
    if spectral:
        return layers.SpectralNormalization(layers.Dense(units, kernel_initializer=_init()),
                                            name=name)
    return layers.Dense(units, kernel_initializer=_init(), name=name)


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _lrelu(name: str) -> LeakyReLUOfRelus:
    return LeakyReLUOfRelus(LEAKY_SLOPE, name=name)


def _eighth_side(image_shape: tuple[int, int, int]) -> int:
    if image_shape[0] % 8:
        raise ValueError(f"ALAD's networks halve the side three times; {image_shape[0]} is not "
                         f"a multiple of 8")
    return image_shape[0] // 8


def build_encoder(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
                  spectral: bool = True) -> keras.Model:
    """``x [B, S, S, C]`` -> ``z [B, latent_dim]``."""
    _eighth_side(image_shape)
    images = keras.Input(image_shape, name="images")
    x = images
    for i in range(3):
        x = _conv(filters * 2 ** i, 4, f"encoder_conv{i}", spectral)(x)
        x = _lrelu(f"encoder_lrelu{i}")(_bn(f"encoder_bn{i}")(x))
    code = _dense(latent_dim, "encoder_code", False)(layers.Flatten()(x))
    return keras.Model(images, code, name="encoder")


def build_generator(image_shape: tuple[int, int, int], latent_dim: int,
                    filters: int) -> keras.Model:
    """``z [B, latent_dim]`` -> ``x [B, S, S, C]`` in [-1, 1]."""
    side = _eighth_side(image_shape)
    code = keras.Input((latent_dim,), name="code")
    x = _dense(side * side * 4 * filters, "generator_project", False)(code)
    x = layers.Reshape((side, side, 4 * filters))(x)
    x = layers.ReLU()(_bn("generator_bn0")(x))
    for i, width in enumerate((2 * filters, filters), start=1):
        x = layers.Conv2DTranspose(width, 4, strides=2, padding="same",
                                   kernel_initializer=_init(), name=f"generator_deconv{i}")(x)
        x = layers.ReLU()(_bn(f"generator_bn{i}")(x))
    x = layers.Conv2DTranspose(image_shape[-1], 4, strides=2, padding="same",
                               kernel_initializer=_init(), name="generator_to_image")(x)
    return keras.Model(code, layers.Activation("tanh")(x), name="generator")


def build_discriminator_xz(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
                           dropout: float, spectral: bool = True) -> keras.Model:
    """``(x, z)`` -> ``(logit [B, 1], features [B, 8 * filters])``."""
    _eighth_side(image_shape)
    images = keras.Input(image_shape, name="images")
    code = keras.Input((latent_dim,), name="code")
    x = _lrelu("d_xz_x_lrelu0")(_conv(filters, 4, "d_xz_x_conv0", spectral)(images))
    for i in (1, 2):
        x = _bn(f"d_xz_x_bn{i}")(_conv(filters * 2 ** i, 4, f"d_xz_x_conv{i}", spectral)(x))
        x = _lrelu(f"d_xz_x_lrelu{i}")(x)
    z = code
    for i in range(2):
        z = layers.Dropout(dropout)(_lrelu(f"d_xz_z_lrelu{i}")(
            _dense(4 * filters, f"d_xz_z_dense{i}", spectral)(z)))
    joint = layers.Concatenate()([layers.Flatten()(x), z])
    features = layers.Dropout(dropout, name="d_xz_features")(
        _lrelu("d_xz_joint_lrelu")(_dense(8 * filters, "d_xz_joint", spectral)(joint)))
    logit = _dense(1, "d_xz_logit", False)(features)
    return keras.Model([images, code], [logit, features], name="discriminator_xz")


def build_discriminator_xx(image_shape: tuple[int, int, int], filters: int, dropout: float,
                           spectral: bool = True) -> keras.Model:
    """``(x, x')`` -> ``(logit [B, 1], features [B, F])``, the pair stacked on channels."""
    first = keras.Input(image_shape, name="images")
    second = keras.Input(image_shape, name="paired")
    x = layers.Concatenate(axis=-1)([first, second])
    for i, width in enumerate((max(1, filters // 2), filters)):
        x = _lrelu(f"d_xx_lrelu{i}")(_conv(width, 5, f"d_xx_conv{i}", spectral)(x))
        x = layers.Dropout(dropout)(x)
    features = layers.Flatten(name="d_xx_features")(x)
    logit = _dense(1, "d_xx_logit", False)(features)
    return keras.Model([first, second], [logit, features], name="discriminator_xx")


def build_discriminator_zz(latent_dim: int, dropout: float, spectral: bool = True) -> keras.Model:
    """``(z, z')`` -> ``(logit [B, 1], features [B, 32])``."""
    first = keras.Input((latent_dim,), name="code")
    second = keras.Input((latent_dim,), name="paired")
    y = layers.Concatenate()([first, second])
    for i, width in enumerate(ZZ_WIDTHS):
        y = _lrelu(f"d_zz_lrelu{i}")(_dense(width, f"d_zz_dense{i}", spectral)(y))
        y = layers.Dropout(dropout)(y)
    logit = _dense(1, "d_zz_logit", False)(y)
    return keras.Model([first, second], [logit, y], name="discriminator_zz")


def build_alad(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
               dropout: float, spectral: bool = True) -> dict[str, keras.Model]:
    """Networks keyed ``encoder``, ``generator``, ``discriminator_xz``, ``discriminator_xx``
    and ``discriminator_zz``; ``spectral`` off is the code's ablation without ``--sn``."""
    return {
        "encoder": build_encoder(image_shape, latent_dim, filters, spectral),
        "generator": build_generator(image_shape, latent_dim, filters),
        "discriminator_xz": build_discriminator_xz(image_shape, latent_dim, filters, dropout,
                                                   spectral),
        "discriminator_xx": build_discriminator_xx(image_shape, filters, dropout, spectral),
        "discriminator_zz": build_discriminator_zz(latent_dim, dropout, spectral),
    }
