"""DCGAN building blocks shared by the image methods.

Images are ``[B, S, S, C]`` in [-1, 1]. The conv pyramid halves the side with 4x4 stride-2
convolutions while the side stays even and at least 8 (28 -> 14 -> 7, 32 -> 16 -> 8 -> 4), doubling
the filters each time. BatchNorm uses PyTorch's settings (momentum 0.9, epsilon 1e-5) and LeakyReLU
slope 0.2, as in the DCGAN and GANomaly reference code.
"""

from __future__ import annotations

import keras
from keras import layers

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
LEAKY_SLOPE = 0.2


def pyramid_steps(image_size: int) -> int:
    """Number of stride-2 stages for a square image of side ``image_size``."""
    steps, side = 0, image_size
    while side % 2 == 0 and side >= 8:
        side //= 2
        steps += 1
    if steps == 0:
        raise ValueError(f"image side {image_size} cannot be downsampled; use an even side >= 8")
    return steps


def batch_norm(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


#: Normalisation of a conv pyramid: ``dcgan`` BatchNorm after every conv but the first, ``batch``
#: after every conv, ``none`` (WGAN-GP critics: the penalty is per sample), ``spectral`` spectral
#: normalisation of every conv's kernel, ``spectral_batch`` both spectral normalisation and
#: BatchNorm on every conv.
NORMALISATIONS = ("dcgan", "batch", "none", "spectral", "spectral_batch")


@keras.saving.register_keras_serializable(package="anomaly_toolbox")
class LeakyReLUOfRelus(layers.Layer):
    """relu(x) - slope relu(-x), any shape: LeakyReLU as two ReLUs (see :func:`conv_pyramid`)."""

    def __init__(self, negative_slope: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.negative_slope = negative_slope

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        return keras.ops.relu(x) - self.negative_slope * keras.ops.relu(-x)

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


def conv_pyramid(x: keras.KerasTensor, filters: int, steps: int, prefix: str,
                 normalisation: str = "dcgan") -> keras.KerasTensor:
    """``steps`` x [Conv 4x4 s2 -> normalisation -> LeakyReLU]; filters double each stage.

    Without BatchNorm (``none``, ``spectral``: the critics of jointgan's WGAN-GP and of AMA)
    LeakyReLU is computed as relu(x) - slope relu(-x) (:class:`LeakyReLUOfRelus`), the same
    function: TensorFlow 2.21's graph remapper tries to fuse Conv2D + BiasAdd + LeakyRelu
    inside the gradient penalty's second-order gradients, fails, and prints an error line
    ("remapper failed: ... Mutation::Apply error") on every run.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation '{normalisation}'; use one of {NORMALISATIONS}")
    for i in range(steps):
        with_bn = (normalisation in ("batch", "spectral_batch") or
                   (normalisation == "dcgan" and i > 0))
        conv = layers.Conv2D(filters * 2 ** i, 4, strides=2, padding="same", use_bias=not with_bn,
                             name=f"{prefix}_conv{i}")
        if normalisation.startswith("spectral"):
            conv = layers.SpectralNormalization(conv, name=f"{prefix}_sn{i}")
        x = conv(x)
        if with_bn:
            x = batch_norm(f"{prefix}_bn{i}")(x)
        activation = (LeakyReLUOfRelus(LEAKY_SLOPE, name=f"{prefix}_lrelu{i}")
                      if normalisation in ("none", "spectral")
                      else layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{prefix}_lrelu{i}"))
        x = activation(x)
    return x


def build_encoder(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
                  name: str = "encoder", normalisation: str = "dcgan") -> keras.Model:
    """Image ``[B, S, S, C]`` -> code ``[B, latent_dim]``."""
    images = keras.Input(image_shape, name="images")
    features = conv_pyramid(images, filters, pyramid_steps(image_shape[0]), name, normalisation)
    code = layers.Dense(latent_dim, name=f"{name}_code")(layers.Flatten()(features))
    return keras.Model(images, code, name=name)


def build_decoder(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
                  name: str = "decoder", unit_code: bool = False) -> keras.Model:
    """Code ``[B, latent_dim]`` -> image ``[B, S, S, C]`` in [-1, 1] (tanh).

    ``unit_code``: scale each code to unit L2 length first, as progressive GANs do with their
    latents, so that only a code's direction matters.
    """
    side, channels = image_shape[0], image_shape[2]
    steps = pyramid_steps(side)
    base_side, top_filters = side // 2 ** steps, filters * 2 ** (steps - 1)
    code = keras.Input((latent_dim,), name="code")
    x = layers.UnitNormalization(name=f"{name}_unit_code")(code) if unit_code else code
    x = layers.Dense(base_side * base_side * top_filters, use_bias=False, name=f"{name}_project")(x)
    x = layers.Reshape((base_side, base_side, top_filters))(x)
    x = layers.ReLU()(batch_norm(f"{name}_bn_project")(x))
    for i in reversed(range(steps - 1)):
        x = layers.Conv2DTranspose(filters * 2 ** i, 4, strides=2, padding="same", use_bias=False,
                                   name=f"{name}_deconv{i}")(x)
        x = layers.ReLU()(batch_norm(f"{name}_bn{i}")(x))
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name=f"{name}_to_image")(x)
    return keras.Model(code, layers.Activation("tanh")(x), name=name)


def build_discriminator(image_shape: tuple[int, int, int], filters: int,
                        name: str = "discriminator", normalisation: str = "dcgan") -> keras.Model:
    """Image ``[B, S, S, C]`` -> ``(logit [B, 1], features [B, F])``; features feed feature matching.

    ``normalisation='none'`` builds a WGAN-GP critic; ``'spectral'`` a critic whose every layer
    (the logit too) is spectrally normalised, so that it is about 1-Lipschitz everywhere
    (Miyato et al. 2018).
    """
    images = keras.Input(image_shape, name="images")
    features = layers.Flatten(name=f"{name}_features")(
        conv_pyramid(images, filters, pyramid_steps(image_shape[0]), name, normalisation))
    logit_layer = layers.Dense(1, name=f"{name}_logit")
    if normalisation == "spectral":
        logit_layer = layers.SpectralNormalization(logit_layer, name=f"{name}_sn_logit")
    logit = logit_layer(features)
    return keras.Model(images, [logit, features], name=name)
