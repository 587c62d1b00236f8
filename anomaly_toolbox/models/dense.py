"""Dense building blocks for tabular samples ``[B, F]`` (Zenati et al.'s KDD99 networks).

``width`` is the methods' ``filters`` hyperparameter; 64 gives Zenati's sizes (encoder 64,
generator 64 -> 128, discriminator 128). LeakyReLU slope 0.1 and dropout as in that code.
"""

from __future__ import annotations

import keras
from keras import layers

LEAKY_SLOPE = 0.1


def dense_leaky(x: keras.KerasTensor, units: int, name: str) -> keras.KerasTensor:
    return layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_lrelu")(
        layers.Dense(units, name=name)(x))


def build_dense_encoder(features: int, latent_dim: int, width: int,
                        name: str = "encoder") -> keras.Model:
    """Sample ``[B, F]`` -> code ``[B, latent_dim]``: Dense(width) + LeakyReLU, Dense(latent)."""
    samples = keras.Input((features,), name="samples")
    code = layers.Dense(latent_dim, name=f"{name}_code")(dense_leaky(samples, width, f"{name}_h"))
    return keras.Model(samples, code, name=name)


def build_dense_decoder(features: int, latent_dim: int, width: int,
                        name: str = "decoder") -> keras.Model:
    """Code ``[B, latent_dim]`` -> sample ``[B, F]``: Dense(width) ReLU, Dense(2 width) ReLU,
    linear Dense(F) (the features are scaled, not bounded)."""
    code = keras.Input((latent_dim,), name="code")
    x = layers.Dense(width, activation="relu", name=f"{name}_h0")(code)
    x = layers.Dense(2 * width, activation="relu", name=f"{name}_h1")(x)
    return keras.Model(code, layers.Dense(features, name=f"{name}_out")(x), name=name)


def build_dense_discriminator(features: int, width: int, dropout: float,
                              name: str = "discriminator") -> keras.Model:
    """Sample ``[B, F]`` -> ``(logit [B, 1], features [B, 2 width])``."""
    samples = keras.Input((features,), name="samples")
    hidden = dense_leaky(samples, 2 * width, f"{name}_features")
    logit = layers.Dense(1, name=f"{name}_logit")(layers.Dropout(dropout)(hidden))
    return keras.Model(samples, [logit, hidden], name=name)


def build_dense_joint_discriminator(features: int, latent_dim: int, width: int, dropout: float,
                                    name: str = "discriminator") -> keras.Model:
    """``(x [B, F], z [B, latent_dim])`` -> ``(logit [B, 1], features [B, 2 width])``: each input
    through Dense(2 width) + LeakyReLU + dropout, the concatenation through one more such layer."""
    samples = keras.Input((features,), name="samples")
    code = keras.Input((latent_dim,), name="code")
    x = layers.Dropout(dropout)(dense_leaky(samples, 2 * width, f"{name}_x"))
    z = layers.Dropout(dropout)(dense_leaky(code, 2 * width, f"{name}_z"))
    joint = dense_leaky(layers.Concatenate()([x, z]), 2 * width, f"{name}_joint")
    logit = layers.Dense(1, name=f"{name}_logit")(layers.Dropout(dropout)(joint))
    return keras.Model([samples, code], [logit, joint], name=name)
