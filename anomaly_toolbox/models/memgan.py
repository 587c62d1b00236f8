"""MEMGAN networks: a BiGAN (encoder E, generator G, joint D(x, z)) plus a memory M of n units.

The memory is a Keras layer holding M ``[n, d]``; it projects codes onto the convex hull of its
rows, P(z) = softmax(z M^T) M (the paper's M^T softmax(M z) for row-vector codes).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from anomaly_toolbox.models.bigan import build_joint_discriminator
from anomaly_toolbox.models.dcgan import build_decoder, build_encoder


@keras.saving.register_keras_serializable(package="anomaly_toolbox")
class Memory(keras.layers.Layer):
    """Trainable memory ``M [units, dim]``; calling it on codes ``[B, dim]`` returns P(z)."""

    def __init__(self, units: int, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.dim = units, dim
        self.memory = self.add_weight(shape=(units, dim), initializer="glorot_uniform",
                                      name="memory")

    def coefficients(self, codes: tf.Tensor) -> tf.Tensor:
        """alpha = softmax(z M^T) ``[B, units]``: non-negative, each row sums to 1."""
        memory = tf.cast(self.memory, codes.dtype)  # bfloat16 under mixed precision
        return tf.nn.softmax(tf.matmul(codes, memory, transpose_b=True), axis=-1)

    def combine(self, alpha: tf.Tensor) -> tf.Tensor:
        """Convex combinations alpha M ``[B, dim]`` of the memory rows."""
        return tf.matmul(alpha, tf.cast(self.memory, alpha.dtype))

    def call(self, codes: tf.Tensor) -> tf.Tensor:
        return self.combine(self.coefficients(codes))

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "dim": self.dim}


def build_memory(units: int, dim: int) -> keras.Model:
    """Model z ``[B, dim]`` -> P(z) ``[B, dim]`` whose only layer is the :class:`Memory`."""
    codes = keras.Input((dim,), name="codes")
    return keras.Model(codes, Memory(units, dim, name="memory_units")(codes), name="memory")


def build_memgan(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
                 memory_units: int) -> dict[str, keras.Model]:
    """Networks keyed ``encoder``, ``generator``, ``discriminator``, ``memory``."""
    return {
        "encoder": build_encoder(image_shape, latent_dim, filters, "encoder"),
        "generator": build_decoder(image_shape, latent_dim, filters, "generator"),
        "discriminator": build_joint_discriminator(image_shape, latent_dim, filters, dropout=0.0),
        "memory": build_memory(memory_units, latent_dim),
    }
