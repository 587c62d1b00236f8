"""AMA, the adversarial mirrored autoencoder.

Paper: G. Somepalli, Y. Wu, Y. Balaji, B. Vinzamuri, S. Feizi, "Unsupervised Anomaly Detection
with Adversarial Mirrored AutoEncoders", UAI 2021.

A Wasserstein critic D judges channel-stacked pairs: (x, x) is real, (x, x_hat) fake, with
x_hat = G(E(x)). With x_inter = G(z_inter), a synthetic anomaly x_neg = G(z_neg) and its
reconstruction x_neg_hat = G(E(x_neg)):

* L_normal = E[D(x,x) - D(x,x_hat)] + lambda_inter E[D(x,x) - D(x,x_inter)] + lambda_reg E||E(x)||
* L_neg = E[D(x_neg,x_neg) - D(x_neg,x_neg_hat)]
* min_{E,G} max_{D in Lip-1} L_normal - lambda_neg s / (1 - s) L_neg, s = ``negative_share``.

L_neg is the paper's eq. (4) with x drawn from the anomalies (its semi-supervised case puts real
anomalies there), as in the authors' released code: D raises D(x_neg, x_neg_hat) above D(x_neg,
x_neg), E and G lower D(x_neg, x_neg_hat) (the paper: "anomalies are not reconstructed well").
x_neg is data, held fixed: no gradient reaches G through it.

The weight of L_neg: the paper writes lambda_neg = 5 (its CIFAR-10 and SVHN setting; MNIST's is
in an appendix we do not have) beside expectations over each population, but its code, which
produced its numbers, replaces a share s = 10% of each batch by negatives and weights them by
lambda_neg inside one batch mean: per expectation, lambda_neg s / (1 - s) = 5/9 against the
normal term. Here each step decodes round(s B) negatives beside the B normal images and weights
their term so; at a weight of 5 per expectation (the text read literally) the term made class 0
of mnist-5k swing between validation AUROC 0.48 and 0.99 (``benchmarks/RESULTS.md``).

D is kept 1-Lipschitz on every pair type by spectral normalisation of all its layers (the paper's
SN-GAN critic). An optional gradient penalty (``gp_weight``, off by default) covers the three
(real, fake) pair types alike.

Simplex interpolation: z_inter = sum_i a_i e_i / sum_i a_i over k codes, a_i ~ U(0, 0.5): E(x) and
k - 1 codes of the batch, so x_inter is judged against one of the images it mixes (the authors'
released code averages over all k; by symmetry the same in expectation). Atypical selection: z_neg
= r u with u uniform on the unit sphere and r drawn between sqrt(d) and sqrt(d) +/- delta (outward
or inward), from ``negative_start_epoch`` on (or scaled codes, see the deviations). A weight of 0
switches a term off (the paper's ablation). Each train step decodes x_hat, x_inter and x_neg_hat
once for ``n_critic`` critic updates on the same batch (5: the paper does not say; the authors'
released code defaults to 5 per batch), then once more for one encoder/decoder update. Only E(x)
and its decode move BatchNorm moving statistics, so at test time E and G normalise with statistics
of normal data; x_neg is decoded with them, in inference mode, as the released code does. Learning
rates drop x``lr_decay_rate`` every ``lr_decay_every`` epochs (the paper: x0.1 at epochs 30, 60 and
90 of 100). Both schedules count published epochs: when ``min_steps`` stretches a run on a small
dataset to N > ``epochs`` epochs, trained epoch e is published epoch floor(e * epochs / N), so they
keep their share of training.

Scores: R(x) = ||f(x,x) - f(x,x_hat)||_1 (f: the critic's feature layer), and the A-score, the
paper's reported score, from a Gaussian N(mu, sigma) fitted to the training R-scores of the
current weights: A(x) = -log N(R(x); mu, sigma), the same order as -pdf (higher = more
anomalous) without underflow far in the tails. The A-score drives per-epoch model selection,
test metrics, the Python API and ``anomaly-box score``; results also report the R-score alone
under ``r_score_*`` keys, on validation and test. The Gaussian is refitted for the selected
weights, saved in ``model/gaussian.json`` and restored when a model is loaded.

Model selection (the paper does not say; as the authors' released code): validation picks among
the checks after published epoch ``select_after_epoch`` (20) only, so that the selected model
has trained with the negatives, which switch on at epoch 11; the checks before still show in
TensorBoard. Without it, selection keeps the early peak of a model that has never seen one.

Deviations from the paper:

* The encoder, decoder and critic are this toolbox's DCGAN pyramids, not the paper's residual
  SN-GAN networks (same normalisation scheme, fewer layers), so that every method shares one
  architecture family and runs at MNIST scale on a CPU.
* lambda_neg weighs L_neg as the authors' code does (s / (1 - s) per expectation, above), not
  per expectation as the text's eq. (2) reads.
* Atypical latents follow the paper's annulus around sqrt(d) by default, though our codes'
  norms measured 2-7 against its radius 10 (``benchmarks/RESULTS.md``), so the negatives lie
  far outside the data; ``negative_codes='scaled'`` scales each image's own code as the
  released code does (by U(0, 0.5) inward, by its inverse outward). Which one detects better
  is not measured yet (a class takes about 2.5 hours on a 2-core CPU). The released code's
  latent size is 128; the default here stays at 100. The interpolation term
  trains E and G as the paper says (the released code detaches it from both).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from anomaly_toolbox.datasets.pipeline import PreparedData
from anomaly_toolbox.models.ama import build_ama
from anomaly_toolbox.schemas import ama as schema
from anomaly_toolbox.trainers.base import EncoderGeneratorTrainer
from anomaly_toolbox.trainers.helpers import (EpochMilestones, adam, moving_statistics_kept,
                                             published_epoch)
from anomaly_toolbox.trainers.wgan import train_critic
from anomaly_toolbox.training.callbacks import Callback
from anomaly_toolbox.training.evaluation import score_dataset

GAUSSIAN_FILE = "gaussian.json"
HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def pair(first: tf.Tensor, second: tf.Tensor) -> tf.Tensor:
    """Channel-stack two image batches: ``[B, S, S, C]`` x 2 -> ``[B, S, S, 2C]``."""
    return tf.concat([first, second], axis=-1)


def negative_log_gaussian(values: tf.Tensor, mean: tf.Tensor, std: tf.Tensor) -> tf.Tensor:
    """-log N(values; mean, std) elementwise."""
    return 0.5 * tf.square((values - mean) / std) + tf.math.log(std) + HALF_LOG_TWO_PI


class AMATrainer(EncoderGeneratorTrainer):
    """AMA on 32x32 images; optimisers, schedule and weights as in the paper."""

    label_free_selection = schema.LABEL_FREE_SELECTION
    hparams = schema.HPARAMS

    distribution_off_reason = ("its interpolations mix each image's code with partners indexed "
                               "in the whole batch, which one replica's slice does not hold")

    image_size = 32

    def __init__(self, *args, **kwargs) -> None:
        self.gaussian = tf.Variable([0.0, 1.0], dtype=tf.float64, trainable=False,
                                    name="r_score_gaussian")
        super().__init__(*args, **kwargs)
        self._compiled_r_score = self.traced_for_any_batch(self.r_score)

    def build_networks(self) -> dict[str, keras.Model]:
        return build_ama(self.image_shape, self.hps["latent_dim"], self.hps["filters"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        every = self.hps["lr_decay_every"]
        milestones = tuple(range(every, self.hps["epochs"], every))

        def optimizer(beta_1: float) -> keras.optimizers.Adam:
            schedule = EpochMilestones(self.hps["learning_rate"], milestones,
                                       self.hps["lr_decay_rate"], self.epoch, self.epoch_scale)
            return adam(schedule, beta_1, self.hps["beta_2"])

        return {"critic": (optimizer(self.hps["beta_1"]), ("critic",)),
                "generator": (optimizer(self.hps["beta_1"]), ("generator",)),
                "encoder": (optimizer(self.hps["encoder_beta_1"]), ("encoder",))}

    def checkpointed(self) -> dict[str, Any]:
        return {**super().checkpointed(), "r_score_gaussian": self.gaussian}

    def callbacks(self) -> list[Callback]:
        return [AScoreGaussian(self)]

    def sample_noise(self, batch_size: int, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        seeds = tf.random.experimental.stateless_split(seed, 5)
        d, k = self.hps["latent_dim"], self.hps["interpolation_codes"]
        negatives = max(1, round(self.hps["negative_share"] * batch_size))
        direction = tf.random.stateless_normal([negatives, d], seeds[3])
        offset = tf.random.stateless_uniform([negatives, 1], seeds[4], 0.0,
                                             self.hps["negative_delta"])
        outward = self.hps["negative_direction"] == "outward"
        radius = math.sqrt(d) + (offset if outward else -offset)
        shrink = tf.random.stateless_uniform([negatives, 1], seeds[4], 1e-3, 0.5)
        return {
            "penalty_mix": tf.random.stateless_uniform([self.hps["n_critic"], batch_size],
                                                       seeds[0]),
            "simplex_weights": tf.random.stateless_uniform([batch_size, k], seeds[1], 0.0, 0.5),
            "simplex_partners": tf.random.stateless_uniform([batch_size, k - 1], seeds[2], 0,
                                                            batch_size, dtype=tf.int32),
            "z_negative": tf.math.l2_normalize(direction, axis=1) * radius,
            "code_scale": 1.0 / shrink if outward else shrink,
            "negatives_on": tf.cast(published_epoch(self.epoch, self.epoch_scale) + 1
                                    >= self.hps["negative_start_epoch"], tf.float32),
        }

    def negative_codes(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> tf.Tensor:
        """Atypical latents ``[N, d]``: on the annulus around sqrt(d) (``negative_codes``
        'annulus', the paper's text), or the codes E(x) of the batch's first N images scaled
        by c (``'scaled'``, the released code): c ~ U(0, 0.5) inward, 1 / c outward."""
        if self.hps["negative_codes"] == "annulus":
            return noise["z_negative"]
        count = noise["code_scale"].shape[0]
        codes = self.networks["encoder"](images[:count], training=False)
        return codes * noise["code_scale"][:tf.shape(codes)[0]]

    def _decode(self, images: tf.Tensor, codes: tf.Tensor, negatives: tf.Tensor | None,
                noise: dict[str, tf.Tensor]) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
        """Per term, the two halves ``[B, S, S, C]`` of its fake critic input, whose real input
        mirrors the first: ``reconstruction`` (x, G(E(x))), and where switched on
        ``interpolation`` (x, G(z_inter)) and ``negative`` (x_neg, G(E(x_neg))). Only E(x) and
        its decode update BatchNorm moving statistics."""
        encoder, generator = self.networks["encoder"], self.networks["generator"]
        decoded = {"reconstruction": (images, generator(codes, training=True))}
        with moving_statistics_kept(encoder, generator):
            if self.hps["lambda_inter"] > 0:
                weights = noise["simplex_weights"][..., None]
                mixed = tf.concat([codes[:, None], tf.gather(codes, noise["simplex_partners"])], 1)
                z_inter = tf.reduce_sum(weights * mixed, axis=1) / tf.reduce_sum(weights, 1)
                decoded["interpolation"] = (images, generator(z_inter, training=True))
            if negatives is not None:
                decoded["negative"] = (negatives, generator(encoder(negatives, training=True),
                                                            training=True))
        return decoded

    def _objective(self, codes: tf.Tensor, decoded: dict[str, tuple[tf.Tensor, tf.Tensor]],
                   noise: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """L_normal - lambda_neg L_neg (D maximises it, E and G minimise it) and its parts."""
        critic = self.networks["critic"]

        def judged(first: tf.Tensor, second: tf.Tensor) -> tf.Tensor:
            return critic(pair(first, second), training=True)[0]

        images = decoded["reconstruction"][0]
        mirrored = judged(images, images)
        gaps = {kind: tf.reduce_mean(mirrored - judged(images, fake))
                for kind, (_, fake) in decoded.items() if kind != "negative"}
        if "negative" in decoded:
            negatives, reconstructed = decoded["negative"]
            gaps["negative"] = tf.reduce_mean(judged(negatives, negatives) -
                                              judged(negatives, reconstructed))
        parts = {"w_distance": gaps["reconstruction"]}
        normal = parts["w_distance"]
        if "interpolation" in gaps:
            parts["l_inter"] = gaps["interpolation"]
            normal += self.hps["lambda_inter"] * parts["l_inter"]
        if self.hps["lambda_reg"] > 0:
            parts["l_reg"] = tf.reduce_mean(tf.norm(codes, axis=1))
            normal += self.hps["lambda_reg"] * parts["l_reg"]
        parts["l_normal"] = normal
        objective = normal
        if "negative" in gaps:
            parts["l_neg"] = gaps["negative"]
            share = self.hps["negative_share"]
            objective -= (self.hps["lambda_neg"] * share / (1.0 - share) * noise["negatives_on"]
                          * parts["l_neg"])
        return objective, parts

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        encoder = self.networks["encoder"]
        negatives = None
        if self.hps["lambda_neg"] > 0:
            negatives = tf.stop_gradient(
                self.networks["generator"](self.negative_codes(images, noise), training=False))
        codes = encoder(images, training=True)
        decoded = self._decode(images, codes, negatives, noise)
        pairs = [(pair(reference, reference), pair(reference, fake))
                 for reference, fake in decoded.values()]
        _, penalty, critic_loss = train_critic(
            self, lambda _: (self._objective(codes, decoded, noise)[0], 0.0), lambda _: pairs,
            noise["penalty_mix"])
        with tf.GradientTape(persistent=True) as tape:
            codes = encoder(images, training=True)
            objective, parts = self._objective(codes, self._decode(images, codes, negatives,
                                                                   noise), noise)
        self.apply_gradients(tape, {"encoder": objective, "generator": objective})
        return {**parts, "critic_loss": critic_loss, "gradient_penalty": penalty,
                "autoencoder_loss": objective}

    def selection_note(self) -> str | None:
        after = self.hps["select_after_epoch"]
        if after == 0:
            return None
        if after >= self.hps["epochs"]:
            return (f"model selection took the last check: select_after_epoch {after} is not "
                    f"below the {self.hps['epochs']} epochs")
        return (f"model selection considered only the checks after epoch {after} of "
                f"{self.hps['epochs']} (published epochs; the last check always counts)")

    def r_score(self, images: tf.Tensor) -> tf.Tensor:
        """R(x) = ||f(x, x) - f(x, G(E(x)))||_1 by the scoring networks ``[B]``."""
        _, reconstruction = self.encode_decode(images)
        critic = self.scoring_networks["critic"]
        _, real = critic(pair(images, images), training=False)
        _, fake = critic(pair(images, reconstruction), training=False)
        return tf.reduce_sum(tf.abs(real - fake), axis=1)

    def score(self, images: tf.Tensor) -> tf.Tensor:
        """The A-score -log N(R(x); mu, sigma) under the current Gaussian ``[B]``."""
        mean, std = tf.unstack(tf.cast(self.gaussian, tf.float32))
        return negative_log_gaussian(self.r_score(images), mean, std)

    def fit_gaussian(self, data: PreparedData) -> tuple[float, float]:
        """Fit N(mu, sigma) to the training split's R-scores."""
        return self.fit_gaussian_to(score_dataset(self, data.train, self._compiled_r_score))

    def fit_gaussian_to(self, r_scores: np.ndarray) -> tuple[float, float]:
        """Set the A-score's Gaussian to the maximum-likelihood N(mu, sigma) of ``r_scores``
        ``[N]``; returns ``(mu, sigma)``."""
        mean, std = float(np.mean(r_scores)), max(float(np.std(r_scores)), 1e-12)
        self.gaussian.assign([mean, std])
        return mean, std

    def load_model(self, model_dir: Path, trusted: bool = False) -> None:
        """Load the networks and the A-score's Gaussian of a saved model."""
        super().load_model(model_dir, trusted)
        path = model_dir / GAUSSIAN_FILE
        try:
            stored = json.loads(path.read_text())
            mean, std = float(stored["mean"]), float(stored["std"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path} does not hold the A-score's Gaussian as "
                             f'{{"mean": ..., "std": ...}} ({error}); retrain the run') from error
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise ValueError(f"{path} holds mean {mean} and std {std}; the std must be a "
                             f"positive number and both finite; retrain the run")
        self.gaussian.assign([mean, std])

    def score_variants(self) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
        """The R-score alone (metrics under ``r_score_*`` keys)."""
        return {"r_score": self.r_score}


class AScoreGaussian(Callback):
    """The A-score's Gaussian fitted to the training R-scores of every check's weights and of
    the final model (stored with it); checks selectable only after ``select_after_epoch``."""

    def __init__(self, trainer: AMATrainer) -> None:
        self.trainer = trainer

    def on_check_begin(self, data: PreparedData) -> None:
        self.trainer.fit_gaussian(data)

    def selectable(self, epoch: int, planned_epochs: int) -> bool:
        """Once more than ``select_after_epoch`` published epochs are trained (trained epoch
        ``epoch`` of a stretched run counts ``epochs / planned_epochs`` each)."""
        hps = self.trainer.hps
        return epoch * hps["epochs"] // planned_epochs > hps["select_after_epoch"]

    def on_weights_chosen(self, data: PreparedData, model_dir: Path | None) -> None:
        mean, std = self.trainer.fit_gaussian(data)
        if model_dir is not None:
            (model_dir / GAUSSIAN_FILE).write_text(json.dumps({"mean": mean, "std": std}) + "\n")
