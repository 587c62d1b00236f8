"""BiGAN with consistency losses and a projection discriminator.

Paper: the consistency-BiGAN paper, whose copy in ``shared/papers/consistency-bigan-projection.txt``
lacks its title page, so its title, authors and year are unknown to us; it builds on EGBAD (Zenati et al., "Efficient
GAN-Based Anomaly Detection", 2018) and the projection discriminator (T. Miyato, M. Koyama,
"cGANs with Projection Discriminator", ICLR 2018).

BiGAN adversarial terms as EGBAD (D: BCE(D(x, E(x)), 1) + BCE(D(G(z), z), 0); E: BCE(D(x, E(x)), 0);
G: BCE(D(G(z), z), 1)), plus the consistency terms
L_img = ||x - G(E(x))||_1 and L_lat = ||z - E(G(z))||_1, per-sample sums as the paper writes them,
averaged over the batch. (Element means, used before, made the consistency terms ~1 while the
adversarial BCE, with logits near 100, was 80 to 280: the adversarial term swamped consistency,
reconstructions barely improved and class 2's validation AUROC fell below 0.5 after ~65 epochs.)
E and G each minimise alpha (L_img + L_lat) + (1 - alpha) L_adv (their own adversarial term).
BatchNorm follows every hidden convolution of E, G and D, and D's convolutions are spectrally
normalised, for both discriminator kinds. BatchNorm behaves as Keras' does: E's moving
statistics, which scoring applies to real images, learn from both its passes, over x and over
G(z) (for L_lat). Keeping them from x alone, as MEMGAN does here, looks more correct and measured
far worse: under P3 on the bundled data (seed 42) it left the selected-by-validation models as
they were but cut the last checkpoint's test AUROC from 0.898 to 0.598 (class 0) and from 0.796
to 0.655 (class 2) (``benchmarks/RESULTS.md``, issue 44).

Score: (1 - lambda) ||x - G(E(x))||_1 + lambda ||f(x) - f(G(E(x)))||_1 (per-image sums), f the
discriminator's features of (x, E(x)) and (G(E(x)), E(x)).

Deviations from the paper:

* The projection discriminator's dense heads f_1 and f_z are spectrally normalised too (as in
  Miyato & Koyama); without it the logit grows without bound (see models/cbigan.py).
* The paper does not state its MVTec input size; RGB images run at 32 px like every method here.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from anomaly_toolbox.models.cbigan import build_cbigan
from anomaly_toolbox.schemas import cbigan as schema
from anomaly_toolbox.trainers.base import EncoderGeneratorTrainer
from anomaly_toolbox.trainers.bigan import bigan_terms
from anomaly_toolbox.trainers.losses import per_sample_l1, residual_and_feature_score


class CBiGANTrainer(EncoderGeneratorTrainer):
    """Consistency BiGAN on 28x28 images; Adam 1e-4, betas (0.9, 0.999) as in the paper."""

    label_free_selection = schema.LABEL_FREE_SELECTION
    hparams = schema.HPARAMS

    image_size = 28

    def build_networks(self) -> dict[str, keras.Model]:
        return build_cbigan(self.image_shape, self.hps["latent_dim"], self.hps["filters"],
                            self.hps["discriminator"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        return self.adam_per_network(("discriminator", "generator", "encoder"))

    def sample_noise(self, batch_size: int, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"z": self.standard_normal_codes(batch_size, seed)}

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        encoder, generator, discriminator = (self.networks[k] for k in
                                             ("encoder", "generator", "discriminator"))
        z, alpha = noise["z"], self.hps["alpha"]
        with tf.GradientTape(persistent=True) as tape:
            z_encoded = encoder(images, training=True)
            generated = generator(z, training=True)
            terms = bigan_terms(discriminator, images, z_encoded, generated, z)
            image_consistency = tf.reduce_mean(per_sample_l1(
                images, generator(z_encoded, training=True)))
            latent_consistency = tf.reduce_mean(per_sample_l1(
                z, encoder(generated, training=True)))
            consistency = alpha * (image_consistency + latent_consistency)
            e_loss = consistency + (1.0 - alpha) * terms.encoder_adversarial
            g_loss = consistency + (1.0 - alpha) * terms.generator_adversarial
        self.apply_gradients(tape, {"discriminator": terms.d_loss, "encoder": e_loss,
                                    "generator": g_loss})
        return {"d_loss": terms.d_loss, "e_loss": e_loss, "g_loss": g_loss,
                "image_consistency": image_consistency, "latent_consistency": latent_consistency}

    def score(self, images: tf.Tensor) -> tf.Tensor:
        z, reconstruction = self.encode_decode(images)
        discriminator = self.scoring_networks["discriminator"]
        _, features_real = discriminator([images, z], training=False)
        _, features_rec = discriminator([reconstruction, z], training=False)
        return residual_and_feature_score(images, reconstruction, features_real, features_rec,
                                          self.hps["score_lambda"])

