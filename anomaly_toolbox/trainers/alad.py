"""ALAD: adversarially learned anomaly detection, a BiGAN with two cycle discriminators.

Paper: H. Zenati, M. Romain, C.-S. Foo, B. Lecouat, V. Chandrasekhar, "Adversarially Learned
Anomaly Detection", ICDM 2018. Settings from its official code
(github.com/houssamzenati/Adversarially-Learned-Anomaly-Detection, ``alad/run.py`` and
``alad/cifar10_utilities.py``), networks in :mod:`anomaly_toolbox.models.alad`.

With x real and z ~ N(0, I), each discriminator tells a real pair from a fake one:

* D_xz: BCE(D_xz(x, E(x)), 1) + BCE(D_xz(G(z), z), 0) (the BiGAN's);
* D_xx: BCE(D_xx(x, x), 1) + BCE(D_xx(x, G(E(x))), 0) (cycle in image space);
* D_zz: BCE(D_zz(z, z), 1) + BCE(D_zz(z, E(G(z))), 0) (cycle in latent space).

G minimises BCE(D_xz(G(z), z), 1) + C and E minimises BCE(D_xz(x, E(x)), 0) + C, with the cycle
term C = BCE(D_xx(x, x), 0) + BCE(D_xx(x, G(E(x))), 1) + BCE(D_zz(z, z), 0) +
BCE(D_zz(z, E(G(z))), 1) (D_zz's half only with ``zz_discriminator``), each a batch mean. A step
updates the three discriminators, then G and E on a fresh pass with new codes, the code's order.
Adam 2e-4 (beta_1 0.5), batch 32, latent size 100; scoring uses the weights' average (EMA
0.999), as the code's.

Score (``score``): fm = ||f_xx(x, x) - f_xx(x, G(E(x)))||_1, f_xx the last hidden layer of
D_xx (the paper's choice); the code's alternatives l1 = ||x - G(E(x))||_1, l2 (the L2 norm)
and ch = BCE(D_xx(x, G(E(x))), 1) are reported beside it (``l1_*``, ...).

Deviations from the paper and its code:

* D_xx sees (x, x') stacked on channels. The code concatenates on axis 1, which for its
  channels-last images stacks the two on top of each other (one 64x32 image): a slip for the
  pair the paper describes.
* The G/E update reuses the step's real batch with fresh z (the code draws a second,
  independently shuffled batch).
* None in BatchNorm: each network's moving statistics move only in its own update's pass, as
  the code's update ops do, so E's learn from x and from G(z) in the G/E pass. (Keeping them
  from real images only, as MEMGAN does here, cut CBiGAN's last-checkpoint test AUROC by 20-30
  points; ``benchmarks/RESULTS.md``, issue 44.)
* A fixed budget and this toolbox's selection rules instead of the code's early stopping, which
  never finds an epoch better than its starting value of 0 (``BUDGET_SOURCE``).
* ALAD was not published on MNIST: MNIST is resized to 32x32 and trained with the CIFAR-10
  networks on one channel, as the MEMGAN and AMA authors must have done for their tables.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from anomaly_toolbox.models.alad import build_alad
from anomaly_toolbox.schemas import alad as schema
from anomaly_toolbox.trainers.base import EncoderGeneratorTrainer
from anomaly_toolbox.trainers.helpers import moving_statistics_kept
from anomaly_toolbox.trainers.losses import bce_with_logits, discriminator_bce, per_sample_l1

DISCRIMINATORS = ("discriminator_xz", "discriminator_xx", "discriminator_zz")


def discriminator_losses(logits: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Each discriminator's BCE on its real and fake pairs (logits ``[B, 1]`` keyed
    ``xz_real``, ``xz_fake``, ``xx_real``, ...) -> scalars keyed by network."""
    return {f"discriminator_{kind}": discriminator_bce(logits[f"{kind}_real"],
                                                       logits[f"{kind}_fake"])
            for kind in ("xz", "xx", "zz")}


def generator_encoder_losses(logits: dict[str, tf.Tensor],
                             with_zz: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(G's loss, E's loss, the cycle term C)``: each fools D_xz its own way and both flip
    the cycle discriminators (C: real pairs judged fake, reconstructed pairs judged real)."""
    def flipped(kind: str) -> tf.Tensor:
        return tf.reduce_mean(bce_with_logits(0.0, logits[f"{kind}_real"]) +
                              bce_with_logits(1.0, logits[f"{kind}_fake"]))

    cycle = flipped("xx") + (flipped("zz") if with_zz else 0.0)
    generator = tf.reduce_mean(bce_with_logits(1.0, logits["xz_fake"])) + cycle
    encoder = tf.reduce_mean(bce_with_logits(0.0, logits["xz_real"])) + cycle
    return generator, encoder, cycle


class ALADTrainer(EncoderGeneratorTrainer):
    """ALAD on 32x32 images at the widths and settings of its CIFAR-10 code."""

    hparams = schema.HPARAMS
    label_free_selection = schema.LABEL_FREE_SELECTION

    image_size = 32

    def build_networks(self) -> dict[str, keras.Model]:
        return build_alad(self.image_shape, self.hps["latent_dim"], self.hps["filters"],
                          self.hps["dropout"], self.hps["spectral_norm"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        return self.adam_per_network(("encoder", "generator", *DISCRIMINATORS))

    def sample_noise(self, batch_size: int, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """Codes for the discriminators' pass and fresh ones for G's and E's."""
        seeds = tf.random.experimental.stateless_split(seed, 2)
        return {"z_discriminators": self.standard_normal_codes(batch_size, seeds[0]),
                "z_generators": self.standard_normal_codes(batch_size, seeds[1])}

    def pair_logits(self, images: tf.Tensor, z: tf.Tensor) -> dict[str, tf.Tensor]:
        """The six logits ``[B, 1]`` of one training pass: each discriminator on its real and
        fake pair."""
        encoder, generator, d_xz, d_xx, d_zz = (self.networks[name] for name in (
            "encoder", "generator", *DISCRIMINATORS))
        encoded = encoder(images, training=True)
        generated = generator(z, training=True)
        reconstruction = generator(encoded, training=True)
        recoded = encoder(generated, training=True)
        return {"xz_real": d_xz([images, encoded], training=True)[0],
                "xz_fake": d_xz([generated, z], training=True)[0],
                "xx_real": d_xx([images, images], training=True)[0],
                "xx_fake": d_xx([images, reconstruction], training=True)[0],
                "zz_real": d_zz([z, z], training=True)[0],
                "zz_fake": d_zz([z, recoded], training=True)[0]}

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        with_zz = self.hps["zz_discriminator"]
        with tf.GradientTape(persistent=True) as tape:
            with moving_statistics_kept(self.networks["encoder"], self.networks["generator"]):
                d_losses = discriminator_losses(self.pair_logits(images,
                                                                 noise["z_discriminators"]))
        if not with_zz:
            d_losses.pop("discriminator_zz")
        self.apply_gradients(tape, d_losses)
        with tf.GradientTape(persistent=True) as tape:
            with moving_statistics_kept(self.networks["discriminator_xz"]):
                g_loss, e_loss, cycle = generator_encoder_losses(
                    self.pair_logits(images, noise["z_generators"]), with_zz)
        self.apply_gradients(tape, {"generator": g_loss, "encoder": e_loss})
        return {**{f"d_{name.split('_')[1]}_loss": loss for name, loss in d_losses.items()},
                "g_loss": g_loss, "e_loss": e_loss, "cycle_loss": cycle}

    def scores_by_kind(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """Every score of :data:`~anomaly_toolbox.schemas.alad.SCORES`, each ``[B]``."""
        _, reconstruction = self.encode_decode(images)
        d_xx = self.scoring_networks["discriminator_xx"]
        _, features_real = d_xx([images, images], training=False)
        logit, features_reconstructed = d_xx([images, reconstruction], training=False)
        residual = tf.reshape(images - reconstruction, [tf.shape(images)[0], -1])
        return {"fm": per_sample_l1(features_real, features_reconstructed),
                "l1": tf.reduce_sum(tf.abs(residual), axis=1),
                "l2": tf.norm(residual, axis=1),
                "ch": bce_with_logits(1.0, logit)}

    def score(self, images: tf.Tensor) -> tf.Tensor:
        return self.scores_by_kind(images)[self.hps["score"]]

    def score_variants(self) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
        """The scores other than ``score`` (metrics under ``l1_*``, ``ch_*``, ...)."""
        return {kind: (lambda images, kind=kind: self.scores_by_kind(images)[kind])
                for kind in schema.SCORES if kind != self.hps["score"]}
