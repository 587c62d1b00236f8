"""GANomaly: encoder-decoder-encoder generator with an adversarial critic.

Paper: S. Akcay, A. Atapour-Abarghouei, T. P. Breckon, "GANomaly: Semi-Supervised Anomaly
Detection via Adversarial Training", ACCV 2018.

With x_hat = GD(GE(x)) and f the discriminator's feature layer:

* G (GE, GD, E together): w_adv ||f(x) - f(x_hat)||_2^2 + w_con ||x - x_hat||_1
  + w_enc ||GE(x) - E(x_hat)||_2^2 (means over elements, as the official code), weights 1 / 50 / 1.
* D: BCE(D(x), 1) + BCE(D(x_hat), 0).

Score per image: ||GE(x) - E(G(x))||_2, with no normalisation across the batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from anomaly_toolbox.models.ganomaly import build_dense_ganomaly, build_ganomaly
from anomaly_toolbox.schemas import ganomaly as schema
from anomaly_toolbox.trainers.base import Trainer
from anomaly_toolbox.trainers.helpers import adam
from anomaly_toolbox.trainers.losses import discriminator_bce

GENERATOR_NETWORKS = ("encoder_in", "decoder", "encoder_out")


class GANomalyTrainer(Trainer):
    """GANomaly on 32x32 images, or dense networks on tabular data (hps/ganomaly_kdd99.json)."""

    label_free_selection = schema.LABEL_FREE_SELECTION
    hparams = schema.HPARAMS

    image_size = 32
    supports_tabular = True

    def build_networks(self) -> dict[str, keras.Model]:
        if self.tabular:
            return build_dense_ganomaly(self.input_shape[0], self.hps["latent_dim"],
                                        self.hps["filters"])
        return build_ganomaly(self.image_shape, self.hps["latent_dim"], self.hps["filters"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        lr, beta_1 = self.hps["learning_rate"], self.hps["beta_1"]
        return {"generator": (adam(lr, beta_1), GENERATOR_NETWORKS),
                "discriminator": (adam(lr, beta_1), ("discriminator",))}

    def _forward(self, images: tf.Tensor, training: bool) -> tuple[tf.Tensor, ...]:
        """``(GE(x) [B, d], x_hat [B, S, S, C], E(x_hat) [B, d])``: training networks when
        ``training``, else the scoring networks in inference mode."""
        networks = self.networks if training else self.scoring_networks
        latent_in = networks["encoder_in"](images, training=training)
        reconstruction = networks["decoder"](latent_in, training=training)
        latent_out = networks["encoder_out"](reconstruction, training=training)
        return latent_in, reconstruction, latent_out

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        discriminator = self.networks["discriminator"]
        with tf.GradientTape(persistent=True) as tape:
            latent_in, reconstruction, latent_out = self._forward(images, training=True)
            logit_real, features_real = discriminator(images, training=True)
            logit_fake, features_fake = discriminator(reconstruction, training=True)
            adversarial = tf.reduce_mean(tf.square(features_real - features_fake))
            contextual = tf.reduce_mean(tf.abs(images - reconstruction))
            encoder = tf.reduce_mean(tf.square(latent_in - latent_out))
            g_loss = (self.hps["adversarial_weight"] * adversarial +
                      self.hps["contextual_weight"] * contextual +
                      self.hps["encoder_weight"] * encoder)
            d_loss = discriminator_bce(logit_real, logit_fake)
        self.apply_gradients(tape, {"generator": g_loss, "discriminator": d_loss})
        return {"g_loss": g_loss, "g_adversarial": adversarial, "g_contextual": contextual,
                "g_encoder": encoder, "d_loss": d_loss}

    def score(self, images: tf.Tensor) -> tf.Tensor:
        latent_in, _, latent_out = self._forward(images, training=False)
        return tf.norm(latent_in - latent_out, axis=1)

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:
        return self._forward(images, training=False)[1]
