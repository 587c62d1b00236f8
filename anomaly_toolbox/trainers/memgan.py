"""MEMGAN: a memory-augmented BiGAN (Algorithm 1 of the paper).

Paper: Z. Yang, T. Zhang, I. Soltani Bozchalooi, E. Darve, "Memory Augmented Generative
Adversarial Networks for Anomaly Detection", arXiv 2020.

Fake codes are random convex combinations of the memory rows, z = alpha M with
alpha = softmax(r), r ~ N(0, I). With P the memory projection:

* D: BCE(D(x, E(x)), 1) + BCE(D(G(z), z), 0)
* l_adv: E: log D(x, E(x)) as Algorithm 1 (``encoder_adversarial='log_d'``), or the
  non-saturating BCE(D(x, E(x)), 0) = -log(1 - D(x, E(x))); G: -log D(G(z), z)
* l_cyc = ||x - G(P(E(x)))||_2, l_proj = ||E(x) - P(E(x))||_2 (per image, batch mean)
* l_mi = -sum_i alpha_i log alpha'_i with alpha' = softmax(M E(G(z)))
* E minimises adv + cyc + proj + mi, G adv + cyc + mi, M cyc + proj + mi, each term scaled by
  its hps weight; the four optimizers step together on gradients taken before any update.
* E's pass over G(z) (for l_mi) leaves E's BatchNorm moving statistics alone: scoring encodes
  real images, so those come from real images only.

Score: ||x - G(P(E(x)))||_2.

The encoder keeps the paper's log D: the non-saturating form measured no better on the bundled
MNIST subset, P3, all ten classes, paper settings (mean test AUROC 0.662 vs 0.661 for log D,
every class within 0.007; benchmarks/RESULTS.md).

Deviations from the paper:

* The networks are this toolbox's DCGAN pyramids at 32 px (MNIST is resized); the paper's exact
  layer configurations are in its supplementary material, which we do not have.
* One learning rate (1e-4) for every class; the paper varied it per class between 1e-5 and
  1e-4 without saying on which data it chose. A per-class choice here is a grid over
  ``learning_rate`` run with ``--tuning``, which chooses on validation data.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from anomaly_toolbox.models.memgan import build_memgan
from anomaly_toolbox.schemas import memgan as schema
from anomaly_toolbox.trainers.base import Trainer
from anomaly_toolbox.trainers.bigan import bigan_terms
from anomaly_toolbox.trainers.helpers import moving_statistics_kept
from anomaly_toolbox.trainers.losses import bce_with_logits
from anomaly_toolbox.training.callbacks import Callback

IMAGES_PER_ROW = 10


def per_sample_l2(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``||a - b||_2`` over all but the batch axis -> ``[B]``."""
    return tf.norm(tf.reshape(a - b, [tf.shape(a)[0], -1]), axis=1)


class MEMGANTrainer(Trainer):
    """MEMGAN on 32x32 images (MNIST is resized), defaults of the paper's MNIST setting."""

    label_free_selection = schema.LABEL_FREE_SELECTION
    hparams = schema.HPARAMS

    image_size = 32

    def build_networks(self) -> dict[str, keras.Model]:
        return build_memgan(self.image_shape, self.hps["latent_dim"], self.hps["filters"],
                            self.hps["memory_units"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        return self.adam_per_network(("discriminator", "encoder", "generator", "memory"))

    @property
    def memory_layer(self) -> keras.layers.Layer:
        return self.networks["memory"].get_layer("memory_units")

    def sample_noise(self, batch_size: int, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = tf.random.stateless_normal([batch_size, self.hps["memory_units"]], seed)
        return {"alpha": tf.nn.softmax(logits, axis=-1)}

    def losses(self, images: tf.Tensor, alpha: tf.Tensor) -> dict[str, tf.Tensor]:
        """Every loss term (scalars) of one batch in training mode."""
        encoder, generator, discriminator = (self.networks[k] for k in
                                             ("encoder", "generator", "discriminator"))
        memory = self.memory_layer
        z_fake = memory.combine(alpha)
        z_real = encoder(images, training=True)
        projected = self.networks["memory"](z_real, training=True)
        generated = generator(z_fake, training=True)
        terms = bigan_terms(discriminator, images, z_real, generated, z_fake)
        encoder_adversarial = terms.encoder_adversarial
        if self.hps["encoder_adversarial"] == "log_d":
            encoder_adversarial = -tf.reduce_mean(bce_with_logits(1.0, terms.logit_real))
        with moving_statistics_kept(encoder):  # scoring encodes real images only
            alpha_recovered = memory.coefficients(encoder(generated, training=True))
        return {
            "d_loss": terms.d_loss,
            "e_adv": encoder_adversarial,
            "g_adv": terms.generator_adversarial,
            "cyc": tf.reduce_mean(per_sample_l2(images, generator(projected, training=True))),
            "proj": tf.reduce_mean(per_sample_l2(z_real, projected)),
            "mi": tf.reduce_mean(-tf.reduce_sum(
                alpha * tf.math.log(alpha_recovered + 1e-12), axis=-1)),
        }

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        w = {k: self.hps[f"{k}_weight"] for k in
             ("adversarial", "cycle", "projection", "mutual_information")}
        with tf.GradientTape(persistent=True) as tape:
            terms = self.losses(images, noise["alpha"])
            shared = w["cycle"] * terms["cyc"] + w["mutual_information"] * terms["mi"]
            e_loss = w["adversarial"] * terms["e_adv"] + shared + w["projection"] * terms["proj"]
            g_loss = w["adversarial"] * terms["g_adv"] + shared
            m_loss = shared + w["projection"] * terms["proj"]
        self.apply_gradients(tape, {"discriminator": terms["d_loss"], "encoder": e_loss,
                                    "generator": g_loss, "memory": m_loss})
        return {**terms, "e_loss": e_loss, "g_loss": g_loss, "m_loss": m_loss}

    def _reconstruction(self, images: tf.Tensor) -> tf.Tensor:
        networks = self.scoring_networks
        codes = networks["memory"](networks["encoder"](images, training=False), training=False)
        return networks["generator"](codes, training=False)

    def score(self, images: tf.Tensor) -> tf.Tensor:
        return per_sample_l2(images, self._reconstruction(images))

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:
        return self._reconstruction(images)

    def callbacks(self) -> list[Callback]:
        return [MemoryPictures(self)]

    def memory_summary(self, step: int) -> None:
        """Decoded memory units G(m_i) as one image grid, ``IMAGES_PER_ROW`` units per row."""
        memory = self.scoring_networks["memory"].get_layer("memory_units").memory
        decoded = (self.scoring_networks["generator"](memory, training=False) + 1.0) / 2.0
        units, side = self.hps["memory_units"], self.image_size
        rows = -(-units // IMAGES_PER_ROW)
        padded = tf.pad(decoded, [[0, rows * IMAGES_PER_ROW - units], [0, 0], [0, 0], [0, 0]])
        grid = tf.reshape(padded, [rows, IMAGES_PER_ROW, side, side, -1])
        grid = tf.reshape(tf.transpose(grid, [0, 2, 1, 3, 4]),
                          [1, rows * side, IMAGES_PER_ROW * side, -1])
        tf.summary.image("memory/decoded_units", grid, step=step)


class MemoryPictures(Callback):
    """The decoded memory units in TensorBoard after every check."""

    def __init__(self, trainer: MEMGANTrainer) -> None:
        self.trainer = trainer

    def on_check_end(self, epoch: int, step: int) -> None:
        self.trainer.memory_summary(step)
