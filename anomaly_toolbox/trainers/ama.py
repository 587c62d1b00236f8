"""AMA, the adversarial mirrored autoencoder (seed paper).

A Wasserstein critic D judges channel-stacked pairs: (x, x) is real, (x, x_hat) fake, with
x_hat = G(E(x)). With x_inter = G(z_inter) and x_neg = G(z_neg):

* L_normal = E[D(x,x) - D(x,x_hat)] + lambda_inter E[D(x,x) - D(x,x_inter)] + lambda_reg E||E(x)||
* L_neg = E[D(x,x) - D(x,x_neg)]
* min_{E,G} max_D L_normal - lambda_neg L_neg, D with a gradient penalty over the whole stacked
  input between (x, x) and (x, x_hat).

Simplex interpolation: z_inter = sum_i a_i e_i / sum_i a_i over k codes of the batch, a_i ~ U(0, 0.5).
Atypical selection: z_neg = r u with u uniform on the unit sphere and r drawn between sqrt(d) and
sqrt(d) +/- delta (outward or inward), from ``negative_start_epoch`` on. A weight of 0 switches a
term off (the paper's ablation). Each train step makes ``n_critic`` critic updates on its batch
(fresh penalty interpolation each), then one encoder/decoder update.

Scores: R(x) = ||f(x,x) - f(x,x_hat)||_1 (f: the critic's feature layer), and the A-score from a
Gaussian fitted to the training R-scores of the selected model (stored in ``model/gaussian.json``
and the checkpoint), reported as -log pdf(R(x)): the same order as -pdf, higher = more anomalous,
without underflow far in the tails.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from scipy.stats import norm

from anomaly_toolbox.hps import HParam
from anomaly_toolbox.models.ama import build_ama
from anomaly_toolbox.trainers.base import PreparedData, Trainer, common_hparams, test_metrics
from anomaly_toolbox.trainers.wgan import train_critic

GAUSSIAN_FILE = "gaussian.json"


def pair(first: tf.Tensor, second: tf.Tensor) -> tf.Tensor:
    """Channel-stack two image batches: ``[B, S, S, C]`` x 2 -> ``[B, S, S, 2C]``."""
    return tf.concat([first, second], axis=-1)


class AMATrainer(Trainer):
    """AMA on 32x32 images; optimisers and weights as in the paper."""

    name = "ama"
    image_size = 32
    hparams = (
        *common_hparams(epochs=100, batch_size=256, learning_rate=3e-4, beta_1=0.0,
                        latent_dim=100, filters=64),
        HParam("encoder_beta_1", float, 0.5, "Adam beta_1 of the encoder (D and G: beta_1)",
               minimum=0.0, maximum=0.999),
        HParam("beta_2", float, 0.9, "Adam beta_2 of every optimizer", minimum=0.0,
               maximum=0.9999),
        HParam("lr_decay_steps", int, 10000, "steps between learning-rate decays", positive=True),
        HParam("lr_decay_rate", float, 1.0, "factor applied every lr_decay_steps (1 = none)",
               positive=True, maximum=1.0),
        HParam("n_critic", int, 5, "critic updates per encoder/decoder update", positive=True),
        HParam("gp_weight", float, 10.0, "gradient-penalty weight", minimum=0.0),
        HParam("lambda_inter", float, 0.5, "simplex-interpolation weight (0 = off)", minimum=0.0),
        HParam("interpolation_codes", int, 3, "k, codes mixed per interpolation", positive=True),
        HParam("lambda_neg", float, 5.0, "atypical-negative weight (0 = off)", minimum=0.0),
        HParam("negative_direction", str, "outward", "atypical radius beyond or inside sqrt(d)",
               choices=("outward", "inward")),
        HParam("negative_delta", float, 5.0, "width of the atypical radius band", positive=True),
        HParam("negative_start_epoch", int, 11, "first epoch (1-based) with negatives",
               positive=True),
        HParam("lambda_reg", float, 1.0, "latent-norm regulariser weight (0 = off)",
               minimum=0.0),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gaussian = tf.Variable([0.0, 1.0], dtype=tf.float64, trainable=False,
                                    name="r_score_gaussian")

    def build_networks(self) -> dict[str, keras.Model]:
        return build_ama(self.image_shape, self.hps["latent_dim"], self.hps["filters"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        def optimizer(beta_1: float) -> keras.optimizers.Adam:
            schedule = keras.optimizers.schedules.ExponentialDecay(
                self.hps["learning_rate"], self.hps["lr_decay_steps"], self.hps["lr_decay_rate"],
                staircase=True)
            return keras.optimizers.Adam(schedule, beta_1=beta_1, beta_2=self.hps["beta_2"],
                                         epsilon=1e-8)

        return {"critic": (optimizer(self.hps["beta_1"]), ("critic",)),
                "generator": (optimizer(self.hps["beta_1"]), ("generator",)),
                "encoder": (optimizer(self.hps["encoder_beta_1"]), ("encoder",))}

    def checkpoint(self) -> tf.train.Checkpoint:
        checkpoint = super().checkpoint()
        checkpoint.r_score_gaussian = self.gaussian
        return checkpoint

    def sample_noise(self, batch_size: int, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        seeds = tf.random.experimental.stateless_split(seed, 5)
        d, k = self.hps["latent_dim"], self.hps["interpolation_codes"]
        direction = tf.random.stateless_normal([batch_size, d], seeds[3])
        offset = tf.random.stateless_uniform([batch_size, 1], seeds[4], 0.0,
                                             self.hps["negative_delta"])
        sign = 1.0 if self.hps["negative_direction"] == "outward" else -1.0
        radius = math.sqrt(d) + sign * offset
        return {
            "penalty_mix": tf.random.stateless_uniform([self.hps["n_critic"], batch_size],
                                                       seeds[0]),
            "simplex_weights": tf.random.stateless_uniform([batch_size, k], seeds[1], 0.0, 0.5),
            "simplex_partners": tf.random.stateless_uniform([batch_size, k], seeds[2], 0,
                                                            batch_size, dtype=tf.int32),
            "z_negative": tf.math.l2_normalize(direction, axis=1) * radius,
            "negatives_on": tf.cast(self.epoch + 1 >= self.hps["negative_start_epoch"],
                                    tf.float32),
        }

    def _objective(self, images: tf.Tensor, codes: tf.Tensor, reconstruction: tf.Tensor,
                   noise: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """L_normal - lambda_neg L_neg (D maximises it, E and G minimise it) and its parts."""
        generator, critic = self.networks["generator"], self.networks["critic"]
        real = critic(pair(images, images), training=True)[0]
        fake = critic(pair(images, reconstruction), training=True)[0]
        parts = {"w_distance": tf.reduce_mean(real - fake)}
        normal = parts["w_distance"]
        if self.hps["lambda_inter"] > 0:
            weights = noise["simplex_weights"][..., None]
            partners = tf.gather(codes, noise["simplex_partners"])
            z_inter = tf.reduce_sum(weights * partners, axis=1) / tf.reduce_sum(weights, axis=1)
            inter = critic(pair(images, generator(z_inter, training=True)), training=True)[0]
            parts["l_inter"] = tf.reduce_mean(real - inter)
            normal += self.hps["lambda_inter"] * parts["l_inter"]
        if self.hps["lambda_reg"] > 0:
            parts["l_reg"] = tf.reduce_mean(tf.norm(codes, axis=1))
            normal += self.hps["lambda_reg"] * parts["l_reg"]
        parts["l_normal"] = normal
        objective = normal
        if self.hps["lambda_neg"] > 0:
            negative = critic(pair(images, generator(noise["z_negative"], training=True)),
                              training=True)[0]
            parts["l_neg"] = tf.reduce_mean(real - negative)
            objective -= self.hps["lambda_neg"] * noise["negatives_on"] * parts["l_neg"]
        return objective, parts

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        encoder, generator = self.networks["encoder"], self.networks["generator"]
        codes = encoder(images, training=True)
        reconstruction = generator(codes, training=True)
        _, penalty, critic_loss = train_critic(
            self, lambda: self._objective(images, codes, reconstruction, noise)[0],
            pair(images, images), pair(images, reconstruction), noise["penalty_mix"])
        with tf.GradientTape(persistent=True) as tape:
            codes = encoder(images, training=True)
            objective, parts = self._objective(images, codes, generator(codes, training=True),
                                               noise)
        self.apply_gradients(tape, {"encoder": objective, "generator": objective})
        return {**parts, "critic_loss": critic_loss, "gradient_penalty": penalty,
                "autoencoder_loss": objective}

    def score(self, images: tf.Tensor) -> tf.Tensor:
        _, reconstruction = self.encode_decode(images)
        critic = self.scoring_networks["critic"]
        _, real = critic(pair(images, images), training=False)
        _, fake = critic(pair(images, reconstruction), training=False)
        return tf.reduce_sum(tf.abs(real - fake), axis=1)

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:
        return self.encode_decode(images)[1]

    def calibrate(self, data: PreparedData, model_dir: Path) -> None:
        """Fit the Gaussian of the A-score to the training split's R-scores."""
        mean, std = (float(v) for v in norm.fit(self.score_dataset(data.train)))
        self.gaussian.assign([mean, max(std, 1e-12)])
        (model_dir / GAUSSIAN_FILE).write_text(json.dumps({"mean": mean, "std": std}) + "\n")

    def a_score(self, r_scores: np.ndarray) -> np.ndarray:
        """-log N(R; mean, std) of the fitted Gaussian: higher = more anomalous."""
        mean, std = self.gaussian.numpy()
        return -norm.logpdf(r_scores, loc=mean, scale=std)

    def evaluate(self, data: PreparedData,
                 validation_scores: np.ndarray | None = None) -> dict[str, float]:
        """Metrics of the R-score, and of the A-score under ``a_score_*`` keys."""
        validation = (self.final_scores(data.validation) if validation_scores is None
                      else validation_scores)
        test = self.final_scores(data.test)
        a_metrics = test_metrics(data, self.a_score(validation), self.a_score(test))
        return {**test_metrics(data, validation, test),
                **{f"a_score_{key}": value for key, value in a_metrics.items()}}
