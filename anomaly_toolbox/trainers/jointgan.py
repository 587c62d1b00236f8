"""Encoder + WGAN-GP trained jointly, for training data in the wild.

Paper: M. Berg, J. Ahlberg, M. Felsberg, "Unsupervised Adversarial Learning of Anomaly Detection
in the Wild", ECAI 2020.

min_{G,E} max_D E[D(x)] - E[D(G(z))] + w_c C(z) (+ gradient penalty for D), with the encoder
trained together with G, not afterwards. C is the image-space consistency
``||G(z) - G(E(G(z)))||_1`` (``encoder_loss='image'``, the paper's choice) or the latent-space
one ``||z - E(G(z))||_1`` (``'latent'``, its comparison): each sample's L1 norm, summed over its
pixels (or code entries) as eq. 1 writes it, then averaged over the batch. The paper takes its
generator, critic and loss from the progressive GAN (pGAN, Karras et al. 2018), whose WGAN-GP
makes one critic update per generator update and adds a drift penalty
``drift_weight * E[D(x)^2]`` (0.001) to the critic's loss; so does each step here
(``n_critic`` 1), then one joint G/E update. With ``n_critic`` > 1 (Gulrajani et al.'s WGAN-GP
schedule) the critic updates of a step share its real batch and G(z), where WGAN-GP draws a
fresh batch for each. z ~ N(0, I) in R^512 (the paper's N_z) scaled to unit length,
as the paper's progressive GAN does with its prior; the generator also scales every code it
decodes (E(x) too) to unit length. The paper explains the latent-norm score by it (normal images
end up far from the origin, anomalies near it, like unit-length noise). The latent-space
consistency compares E(G(z)) with the unit-length z.

Score a = lambda Ln + (1 - lambda) Lo with
Ln = ||w(x) - w(G(E(x)))||_2 / N_X (w: per-image min-max normalisation to [0, 1], N_X pixels) and
Lo = -||E(x)||_2 / sqrt(N_z): a small code norm is anomalous. Results report Ln, Lo and a, on
validation (``ln_auroc``, ...) and test, and every validation check logs each part's AUROC.
Nothing in the objective holds ||E(x)|| (G rescales every code, so the consistency term ignores
the norm), and Lo's direction is not guaranteed: on MNIST the normal class's codes shrink below
the anomalies' as training goes on (``benchmarks/RESULTS.md``, jointgan section);
``score_lambda=1.0`` scores and selects with Ln alone.

Deviations from the paper:

* Progressive growing is left out: at 28-32 px a DCGAN-sized WGAN-GP trains directly, so the
  generator and critic are this toolbox's DCGAN pyramids (the generator keeps DCGAN BatchNorm,
  whose statistics come from unit-length codes in training and at test time alike), and the
  batch size stays at 64 instead of shrinking from 128.
* pGAN's optimiser settings (learning rate 1e-3, Adam beta_2 0.99) go with its equalised
  learning rate, which these networks do not have; they keep WGAN-GP's (1e-4, beta_2 0.9).
* The encoder has no BatchNorm, like ClusterGAN's encoder that the paper follows: it is trained
  on generated images only, so BatchNorm statistics would come from G(z) and then be applied to
  real images at test time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from anomaly_toolbox.models.jointgan import build_jointgan
from anomaly_toolbox.schemas import jointgan as schema
from anomaly_toolbox.trainers.base import EncoderGeneratorTrainer
from anomaly_toolbox.trainers.losses import per_sample_l1
from anomaly_toolbox.trainers.wgan import train_critic


def min_max_normalise(images: tf.Tensor) -> tf.Tensor:
    """Scale each image of ``[B, ...]`` to [0, 1] by its own minimum and maximum."""
    axes = list(range(1, len(images.shape)))
    low = tf.reduce_min(images, axis=axes, keepdims=True)
    high = tf.reduce_max(images, axis=axes, keepdims=True)
    return (images - low) / tf.maximum(high - low, 1e-12)


def consistency_loss(reference: tf.Tensor, reconstruction: tf.Tensor) -> tf.Tensor:
    """E ||reference - reconstruction||_1 of eq. 1: the L1 norm of each sample ``[B, ...]``
    (summed over its elements), averaged over the batch -> scalar."""
    return tf.reduce_mean(per_sample_l1(reference, reconstruction))


def drift_penalty(real_scores: tf.Tensor) -> tf.Tensor:
    """E[D(x)^2] over the critic's scores of real images ``[B, ...]`` -> scalar: the progressive
    GAN's drift term, which keeps the scores near 0 with one critic step per generator step."""
    return tf.reduce_mean(tf.square(real_scores))


def latent_norm_score(codes: tf.Tensor) -> tf.Tensor:
    """Lo = -||z||_2 / sqrt(N_z) per code ``[B, N_z]`` -> ``[B]``."""
    return -tf.norm(codes, axis=1) / math.sqrt(codes.shape[-1])


class JointGANTrainer(EncoderGeneratorTrainer):
    """Joint encoder + WGAN-GP on 32x32 images; WGAN-GP's published optimiser settings."""

    label_free_selection = schema.LABEL_FREE_SELECTION
    hparams = schema.HPARAMS

    image_size = 32

    def build_networks(self) -> dict[str, keras.Model]:
        return build_jointgan(self.image_shape, self.hps["latent_dim"], self.hps["filters"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        return self.adam_per_network(("critic", "generator", "encoder"), self.hps["beta_2"])

    def sample_noise(self, batch_size: int, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        seeds = tf.random.experimental.stateless_split(seed, 2)
        z = tf.math.l2_normalize(self.standard_normal_codes(batch_size, seeds[0]), axis=1)
        return {"z": z,
                "penalty_mix": tf.random.stateless_uniform([self.hps["n_critic"], batch_size],
                                                           seeds[1])}

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        generator, encoder, critic = (self.networks[k] for k in ("generator", "encoder", "critic"))
        z = noise["z"]
        generated = generator(z, training=True)

        def w_distance(_: int) -> tuple[tf.Tensor, tf.Tensor]:
            real = critic(images, training=True)[0]
            distance = tf.reduce_mean(real) - tf.reduce_mean(critic(generated, training=True)[0])
            return distance, self.hps["drift_weight"] * drift_penalty(real)

        distance, penalty, critic_loss = train_critic(
            self, w_distance, lambda _: [(images, generated)], noise["penalty_mix"])
        with tf.GradientTape(persistent=True) as tape:
            generated = generator(z, training=True)
            adversarial = -tf.reduce_mean(critic(generated, training=True)[0])
            recoded = encoder(generated, training=True)
            if self.hps["encoder_loss"] == "image":
                consistency = consistency_loss(generated, generator(recoded, training=True))
            else:
                consistency = consistency_loss(z, recoded)
            weighted = self.hps["consistency_weight"] * consistency
            generator_loss = adversarial + weighted
        self.apply_gradients(tape, {"generator": generator_loss, "encoder": weighted})
        return {"critic_loss": critic_loss, "w_distance": distance, "gradient_penalty": penalty,
                "g_adversarial": adversarial, "consistency": consistency}

    def score_parts(self, images: tf.Tensor) -> tf.Tensor:
        """``[B, 2]``: Ln (normalised residual) and Lo (negative latent norm) per image."""
        codes, reconstruction = self.encode_decode(images)
        residual = tf.reshape(min_max_normalise(images) - min_max_normalise(reconstruction),
                              [tf.shape(images)[0], -1])
        pixels = float(np.prod(images.shape[1:]))
        return tf.stack([tf.norm(residual, axis=1) / pixels, latent_norm_score(codes)], axis=1)

    def score(self, images: tf.Tensor) -> tf.Tensor:
        parts = self.score_parts(images)
        weight = self.hps["score_lambda"]
        return weight * parts[:, 0] + (1.0 - weight) * parts[:, 1]

    def score_variants(self) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
        """Ln and Lo alone (metrics under ``ln_*`` and ``lo_*`` keys)."""
        return {"ln": lambda images: self.score_parts(images)[:, 0],
                "lo": lambda images: self.score_parts(images)[:, 1]}
