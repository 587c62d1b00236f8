"""Skip-GANomaly: a U-Net generator with skip connections, trained adversarially to reconstruct.

Paper: S. Akcay, A. Atapour-Abarghouei, T. P. Breckon, "Skip-GANomaly: Skip Connected and
Adversarially Trained Encoder-Decoder Anomaly Detection", IJCNN 2019. Settings from the paper
and its official code (github.com/samet-akcay/skip-ganomaly, ``lib/models/skipganomaly.py``,
``options.py``); networks in :mod:`anomaly_toolbox.models.skipganomaly`.

With x_hat = G(x) and f the discriminator's last hidden layer:

* G: w_adv BCE(D(x_hat), 1) + w_con ||x - x_hat||_1 + w_lat ||f(x) - f(x_hat)||_2^2 (batch and
  element means, as the code's losses), weights 1 / 40 / 1 (the paper's).
* D: BCE(D(x), 1) + BCE(D(x_hat), 0).

Both update at once from one pass (the code's order computes D's loss on x_hat from before G's
update too). Adam 2e-4 (beta_1 0.5), batch 64, ngf = ndf = 64.

Score: A(x) = lambda R(x) + (1 - lambda) L(x), lambda 0.9, with R the mean of (x - x_hat)^2 and
L the mean of (f(x) - f(x_hat))^2 over their elements, as the code computes them (it then
min-max scales the scores of the whole test set, a monotone map that leaves AUROC as it is and
needs the set; here each image's score stands alone). Results also report R and L alone
(``reconstruction_*``, ``latent_*``).

Deviations from the paper and its code:

* D's loss is the paper's. The code adds G's latent term to D's loss as well (its backward pass
  reuses ``err_g_lat``), so its D also learns to make f(x) and f(x_hat) alike, against its task.
* The code re-initialises D whenever its loss falls below 1e-5; not done here (as GANomaly).
* The code adds ``self.noise`` to G's input, a tensor allocated with ``torch.empty`` and not
  filled in that file; no noise is added here.
* w_con is the paper's 40 (the code's default: 50).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from anomaly_toolbox.models.skipganomaly import build_skipganomaly
from anomaly_toolbox.schemas import skipganomaly as schema
from anomaly_toolbox.trainers.base import Trainer
from anomaly_toolbox.trainers.losses import (bce_with_logits, discriminator_bce,
                                             per_sample_squared_error)


class SkipGANomalyTrainer(Trainer):
    """Skip-GANomaly on 32x32 images."""

    hparams = schema.HPARAMS

    image_size = 32

    def build_networks(self) -> dict[str, keras.Model]:
        return build_skipganomaly(self.image_shape, self.hps["filters"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        return self.adam_per_network(("generator", "discriminator"))

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        generator, discriminator = self.networks["generator"], self.networks["discriminator"]
        with tf.GradientTape(persistent=True) as tape:
            reconstruction = generator(images, training=True)
            logit_real, features_real = discriminator(images, training=True)
            logit_fake, features_fake = discriminator(reconstruction, training=True)
            adversarial = tf.reduce_mean(bce_with_logits(1.0, logit_fake))
            contextual = tf.reduce_mean(tf.abs(images - reconstruction))
            latent = tf.reduce_mean(tf.square(features_real - features_fake))
            g_loss = (self.hps["adversarial_weight"] * adversarial +
                      self.hps["contextual_weight"] * contextual +
                      self.hps["latent_weight"] * latent)
            d_loss = discriminator_bce(logit_real, logit_fake)
        self.apply_gradients(tape, {"generator": g_loss, "discriminator": d_loss})
        return {"g_loss": g_loss, "g_adversarial": adversarial, "g_contextual": contextual,
                "g_latent": latent, "d_loss": d_loss}

    def score_parts(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(R, L)``, each ``[B]``: the reconstruction's and the features' mean squared error."""
        reconstruction = self.reconstruct(images)
        discriminator = self.scoring_networks["discriminator"]
        _, features_real = discriminator(images, training=False)
        _, features_fake = discriminator(reconstruction, training=False)
        return (per_sample_squared_error(images, reconstruction),
                per_sample_squared_error(features_real, features_fake))

    def score(self, images: tf.Tensor) -> tf.Tensor:
        reconstruction, latent = self.score_parts(images)
        weight = self.hps["score_lambda"]
        return weight * reconstruction + (1.0 - weight) * latent

    def score_variants(self) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
        """R and L alone (``reconstruction_*``, ``latent_*``)."""
        return {"reconstruction": lambda images: self.score_parts(images)[0],
                "latent": lambda images: self.score_parts(images)[1]}

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:
        return self.scoring_networks["generator"](images, training=False)
