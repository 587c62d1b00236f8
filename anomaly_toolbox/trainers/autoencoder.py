"""Convolutional autoencoder baseline: trained on ||x - D(E(x))||_2^2, scored by the same error.

Loss: mean over pixels of (x - D(E(x)))^2; score per image: the same mean. A plain reconstruction
baseline that every GAN-based method should beat.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from anomaly_toolbox.models.autoencoder import build_autoencoder
from anomaly_toolbox.schemas import ae as schema
from anomaly_toolbox.trainers.base import Trainer
from anomaly_toolbox.trainers.helpers import adam
from anomaly_toolbox.trainers.losses import per_sample_squared_error


class AutoencoderTrainer(Trainer):
    """Convolutional autoencoder on 32x32 images."""

    label_free_selection = schema.LABEL_FREE_SELECTION
    hparams = schema.HPARAMS

    image_size = 32

    def build_networks(self) -> dict[str, keras.Model]:
        return build_autoencoder(self.image_shape, self.hps["latent_dim"], self.hps["filters"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        return {"autoencoder": (adam(self.hps["learning_rate"], self.hps["beta_1"]),
                                ("encoder", "decoder"))}

    def _reconstruction(self, images: tf.Tensor, training: bool) -> tf.Tensor:
        networks = self.networks if training else self.scoring_networks
        return networks["decoder"](networks["encoder"](images, training=training),
                                   training=training)

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(per_sample_squared_error(
                images, self._reconstruction(images, training=True)))
        self.apply_gradients(tape, {"autoencoder": loss})
        return {"reconstruction_loss": loss}

    def score(self, images: tf.Tensor) -> tf.Tensor:
        return per_sample_squared_error(images, self._reconstruction(images, training=False))

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:
        return self._reconstruction(images, training=False)
