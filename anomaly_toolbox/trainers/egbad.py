"""EGBAD: a BiGAN whose encoder makes reconstruction-based scoring cheap.

Paper: H. Zenati, C. S. Foo, B. Lecouat, G. Manek, V. R. Chandrasekhar, "Efficient GAN-Based
Anomaly Detection", ICLR 2018 workshop; settings as in F. Di Mattia, P. Galeone, M. De Simoni,
E. Ghelfi, "A Survey on GANs for Anomaly Detection", arXiv 2019 (its Table 1).

Losses (D(x, z) a logit, f(x, z) its feature layer, z ~ N(0, I)):

* D: BCE(D(x, E(x)), 1) + BCE(D(G(z), z), 0)
* G: ``generator_loss='bce'``: BCE(D(G(z), z), 1); ``'fm'``: ||mean f(x, E(x)) - mean f(G(z), z)||_2^2
* E: BCE(D(x, E(x)), 0), plus ||x - G(E(x))||_1 when ``encoder_loss='bce_residual'`` (survey Table 1)

Score, w = ``score_weight``: (1 - w) ||x - G(E(x))||_1 + w s_D with s_D =
``'fm'``: ||f(x, E(x)) - f(G(E(x)), E(x))||_1 or ``'bce'``: BCE(D(pair), 1). The pair is
``bce_score_pair``: ``'reconstruction'`` (G(E(x)), E(x)) as Zenati et al.'s published code, which
produced their tables and Di Mattia et al.'s, or ``'input'`` (x, E(x)) as eq. 9 of the consistency-BiGAN
paper writes EGBAD's score.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from anomaly_toolbox.models.egbad import build_dense_egbad, build_egbad
from anomaly_toolbox.schemas import egbad as schema
from anomaly_toolbox.trainers.base import EncoderGeneratorTrainer
from anomaly_toolbox.trainers.bigan import bigan_terms
from anomaly_toolbox.trainers.losses import bce_with_logits, per_sample_l1


class EGBADTrainer(EncoderGeneratorTrainer):
    """EGBAD on 28x28 images, or dense networks on tabular data (hps/egbad_kdd99.json).

    Defaults follow the paper and its MNIST code (latent 200, batch 100, Adam beta_1 0.5, weight
    EMA 0.999 for scoring, dropout 0.5 after every layer of D, the code's network widths at
    ``filters`` 32: models/egbad.py) except the learning rate (2e-4 instead of 1e-5) and 40 epochs, so
    the bundled 5k-image subset trains in minutes on a CPU: at 1e-5 the generator still draws
    gray blobs after thousands of steps. Dropout masks are drawn inside the compiled step, so
    with dropout on, XLA and plain runs of the same seed differ (each is reproducible).
    """

    label_free_selection = schema.LABEL_FREE_SELECTION
    hparams = schema.HPARAMS

    image_size = 28
    supports_tabular = True

    def build_networks(self) -> dict[str, keras.Model]:
        if self.tabular:
            return build_dense_egbad(self.input_shape[0], self.hps["latent_dim"],
                                     self.hps["filters"], self.hps["dropout"])
        return build_egbad(self.image_shape, self.hps["latent_dim"], self.hps["filters"],
                           self.hps["dropout"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        return self.adam_per_network(("discriminator", "generator", "encoder"))

    def sample_noise(self, batch_size: int, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"z": self.standard_normal_codes(batch_size, seed)}

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        encoder, generator, discriminator = (self.networks[k] for k in
                                             ("encoder", "generator", "discriminator"))
        z = noise["z"]
        with tf.GradientTape(persistent=True) as tape:
            z_encoded = encoder(images, training=True)
            terms = bigan_terms(discriminator, images, z_encoded, generator(z, training=True), z)
            if self.hps["generator_loss"] == "bce":
                g_loss = terms.generator_adversarial
            else:
                g_loss = tf.reduce_sum(tf.square(tf.reduce_mean(terms.features_real, axis=0) -
                                                 tf.reduce_mean(terms.features_fake, axis=0)))
            e_loss = terms.encoder_adversarial
            losses = {"d_loss": terms.d_loss, "g_loss": g_loss, "e_loss": e_loss}
            if self.hps["encoder_loss"] == "bce_residual":
                residual = tf.reduce_mean(per_sample_l1(images,
                                                        generator(z_encoded, training=True)))
                e_loss += residual
                losses.update(e_loss=e_loss, e_residual=residual)
        self.apply_gradients(tape, {"discriminator": terms.d_loss, "generator": g_loss,
                                    "encoder": e_loss})
        return losses

    def score(self, images: tf.Tensor) -> tf.Tensor:
        z, reconstruction = self.encode_decode(images)
        discriminator = self.scoring_networks["discriminator"]
        logit_rec, features_rec = discriminator([reconstruction, z], training=False)
        logit_real, features_real = discriminator([images, z], training=False)
        if self.hps["score"] == "fm":
            disc_score = per_sample_l1(features_real, features_rec)
        elif self.hps["bce_score_pair"] == "reconstruction":
            disc_score = bce_with_logits(1.0, logit_rec)
        else:
            disc_score = bce_with_logits(1.0, logit_real)
        weight = self.hps["score_weight"]
        return (1.0 - weight) * per_sample_l1(images, reconstruction) + weight * disc_score

