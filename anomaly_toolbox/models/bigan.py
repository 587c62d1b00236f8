"""The joint discriminator D(x, z) on DCGAN pyramids that MEMGAN and CBiGAN share."""

from __future__ import annotations

import keras
from keras import layers

from anomaly_toolbox.models.dcgan import LEAKY_SLOPE, conv_pyramid, pyramid_steps


def build_joint_discriminator(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
                              dropout: float, name: str = "discriminator",
                              normalisation: str = "dcgan") -> keras.Model:
    """``(x [B, S, S, C], z [B, latent_dim])`` -> ``(logit [B, 1], features [B, 16 * filters])``.

    x goes through the conv pyramid (``normalisation`` as :func:`conv_pyramid`), z through a dense
    layer; the concatenation passes one dense layer whose activations are the feature-matching
    features f(x, z). Dropout follows the x path, the z path and the joint layer.
    """
    images = keras.Input(image_shape, name="images")
    code = keras.Input((latent_dim,), name="code")
    x = layers.Flatten()(conv_pyramid(images, filters, pyramid_steps(image_shape[0]), f"{name}_x",
                                      normalisation))
    x = layers.Dropout(dropout)(x)
    z = layers.LeakyReLU(negative_slope=LEAKY_SLOPE)(layers.Dense(8 * filters, name=f"{name}_z")(code))
    z = layers.Dropout(dropout)(z)
    joint = layers.Concatenate()([x, z])
    features = layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_features")(
        layers.Dense(16 * filters, name=f"{name}_joint")(joint))
    logit = layers.Dense(1, name=f"{name}_logit")(layers.Dropout(dropout)(features))
    return keras.Model([images, code], [logit, features], name=name)
