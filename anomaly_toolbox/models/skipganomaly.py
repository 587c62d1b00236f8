"""Skip-GANomaly networks (Akcay et al. 2019): a U-Net generator with skip connections and the
DCGAN discriminator of GANomaly, at the widths of the official code (ngf = ndf = ``filters``).

The generator is pix2pix's U-Net, which the official code builds: for a side S = 2^n, n
stride-2 4x4 convolutions down to 1x1 (f, 2f, 4f, 8f, then 8f; LeakyReLU 0.2 before each but
the first, BatchNorm after each but the first and the innermost), and n transposed
convolutions back up (ReLU before each, BatchNorm after each but the last, tanh at the end),
each level's decoder input concatenating the encoder's output at that level.

The LeakyReLU after the first (biased, unnormalised) convolution is computed as relu(x) - slope
relu(-x) (:class:`~anomaly_toolbox.models.dcgan.LeakyReLUOfRelus`), the same function:
TensorFlow 2.21's graph remapper fuses Conv2D + BiasAdd + LeakyRelu there, though the skip
connection still reads the BiasAdd, fails, and prints an error line ("remapper failed: ...
Mutation::Apply error") on every run.

The convolutions are :mod:`~anomaly_toolbox.models.matmul_convolutions`' layers, Keras's with
the same weights and results: at the 1x1 and 2x2 levels they run as matrix products, where
TensorFlow's CPU convolutions were slow (on an AVX2 AMD EPYC a train step 1.2-1.6x faster with
oneDNN, 4x without).
"""

from __future__ import annotations

import math

import keras
from keras import layers

from anomaly_toolbox.models.dcgan import (LEAKY_SLOPE, LeakyReLUOfRelus, batch_norm,
                                          build_discriminator)
from anomaly_toolbox.models.matmul_convolutions import MatmulConv2D, MatmulConv2DTranspose


def unet_widths(side: int, filters: int) -> list[int]:
    """The down path's widths for a square side 2^n: f, 2f, 4f, 8f, then 8f to 1x1."""
    levels = round(math.log2(side))
    if 2 ** levels != side or levels < 2:
        raise ValueError(f"the U-Net halves the side down to 1; {side} is not a power of 2 >= 4")
    return [filters * min(2 ** level, 8) for level in range(levels)]


def build_unet(image_shape: tuple[int, int, int], filters: int,
               name: str = "generator") -> keras.Model:
    """Image ``[B, S, S, C]`` -> reconstruction ``[B, S, S, C]`` in [-1, 1] (tanh)."""
    widths = unet_widths(image_shape[0], filters)
    images = keras.Input(image_shape, name="images")
    x, skips = images, []
    for level, width in enumerate(widths):
        if level == 1:
            x = LeakyReLUOfRelus(LEAKY_SLOPE)(x)
        elif level > 1:
            x = layers.LeakyReLU(negative_slope=LEAKY_SLOPE)(x)
        normalised = 0 < level < len(widths) - 1
        x = MatmulConv2D(width, 4, strides=2, padding="same", use_bias=not normalised,
                          name=f"{name}_down{level}")(x)
        if normalised:
            x = batch_norm(f"{name}_down_bn{level}")(x)
        skips.append(x)
    for level in reversed(range(len(widths))):
        if level < len(widths) - 1:
            x = layers.Concatenate(name=f"{name}_skip{level}")([skips[level], x])
        x = layers.ReLU()(x)
        if level == 0:
            x = MatmulConv2DTranspose(image_shape[-1], 4, strides=2, padding="same",
                                      name=f"{name}_to_image")(x)
            break
        x = MatmulConv2DTranspose(widths[level - 1], 4, strides=2, padding="same",
                                  use_bias=False, name=f"{name}_up{level}")(x)
        x = batch_norm(f"{name}_up_bn{level}")(x)
    return keras.Model(images, layers.Activation("tanh")(x), name=name)


def build_skipganomaly(image_shape: tuple[int, int, int],
                       filters: int) -> dict[str, keras.Model]:
    """Networks keyed ``generator`` (the U-Net) and ``discriminator`` (``(logit [B, 1],
    features [B, F])``, the features f(x) of the latent loss and the score)."""
    return {"generator": build_unet(image_shape, filters),
            "discriminator": build_discriminator(image_shape, filters, "discriminator")}
