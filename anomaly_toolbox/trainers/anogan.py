"""AnoGAN: a DCGAN trained on normal data, scored by a latent search.

Paper: T. Schlegl, P. Seeböck, S. M. Waldstein, U. Schmidt-Erfurth, G. Langs, "Unsupervised
Anomaly Detection with Generative Adversarial Networks to Guide Marker Discovery", IPMI 2017.

Training: D minimises BCE(D(x), 1) + BCE(D(G(z)), 0), G minimises BCE(D(G(z)), 1), z ~ N(0, I).

Scoring searches, for each image, the z that G maps closest to it, minimising
L(z) = (1 - lambda) ||x - G(z)||_1 + lambda ||f(x) - f(G(z))||_1 (lambda = ``feature_weight``);
the score is L at the last step. The search is batched: a ``[batch_size, latent_dim]`` z is
optimised at once by Keras's Adam inside one compiled function (XLA with ``jit_compile``), with
its state reset for every batch and a stepped learning rate (EGBAD's code: 0.01, 0.001 from step
200, 0.0005 from step 300). Every image starts from the same seeded z0, drawn once from a
truncated normal, so a score depends only on its image, never on the rest of the batch.

Per-epoch model selection would cost a full search of the validation split every epoch, so it
scores the first ``validation_subset`` validation images with ``validation_search_steps`` steps;
the threshold and the test scores use the full split and ``search_steps``. Results say so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from anomaly_toolbox.models.anogan import build_anogan
from anomaly_toolbox.schemas import anogan as schema
from anomaly_toolbox.trainers.base import Trainer
from anomaly_toolbox.trainers.helpers import adam
from anomaly_toolbox.trainers.losses import (bce_with_logits, discriminator_bce,
                                             residual_and_feature_score)
from anomaly_toolbox.training.callbacks import Callback


class AnoGANTrainer(Trainer):
    """AnoGAN on 28x28 images."""

    label_free_selection = schema.LABEL_FREE_SELECTION
    cpu_jit_off_reason = schema.CPU_JIT_OFF_REASON
    hparams = schema.HPARAMS

    image_size = 28

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.hps["search_boundary_1"] >= self.hps["search_boundary_2"]:
            raise ValueError(f"search_boundary_1 ({self.hps['search_boundary_1']}) must be "
                             f"smaller than search_boundary_2 ({self.hps['search_boundary_2']})")
        batch, latent = self.hps["batch_size"], self.hps["latent_dim"]
        self._z0 = tf.random.stateless_truncated_normal([1, latent], [self.seed, 0])
        self._z = tf.Variable(tf.zeros([batch, latent]), trainable=False, name="search_z")
        self._search_steps = tf.Variable(self.hps["search_steps"], trainable=False,
                                         name="search_steps")
        self.search_schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [self.hps["search_boundary_1"], self.hps["search_boundary_2"]],
            [self.hps["search_lr_1"], self.hps["search_lr_2"], self.hps["search_lr_3"]])
        self._search_optimizer = adam(self.search_schedule, beta_1=0.9)
        self._search_optimizer.build([self._z])

    def build_networks(self) -> dict[str, keras.Model]:
        return build_anogan(self.image_shape, self.hps["latent_dim"], self.hps["filters"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        return self.adam_per_network(("discriminator", "generator"))

    def sample_noise(self, batch_size: int, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"z": self.standard_normal_codes(batch_size, seed)}

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        generator, discriminator = self.networks["generator"], self.networks["discriminator"]
        with tf.GradientTape(persistent=True) as tape:
            generated = generator(noise["z"], training=True)
            logit_real, _ = discriminator(images, training=True)
            logit_fake, _ = discriminator(generated, training=True)
            d_loss = discriminator_bce(logit_real, logit_fake)
            g_loss = tf.reduce_mean(bce_with_logits(1.0, logit_fake))
        self.apply_gradients(tape, {"discriminator": d_loss, "generator": g_loss})
        return {"d_loss": d_loss, "g_loss": g_loss}

    # ------------------------------------------------------------------------ latent search
    def search_loss(self, images: tf.Tensor, real_features: tf.Tensor,
                    z: tf.Tensor) -> tf.Tensor:
        """L(z) per image ``[B]``; ``real_features`` = f(x), computed once per batch."""
        generated = self.scoring_networks["generator"](z, training=False)
        _, generated_features = self.scoring_networks["discriminator"](generated, training=False)
        return residual_and_feature_score(images, generated, real_features, generated_features,
                                          self.hps["feature_weight"])

    def _search(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Optimise z for ``[n <= batch_size]`` images; returns ``(L(z*) [n], z* [n, d])``."""
        count = tf.shape(images)[0]
        padded = tf.pad(images, [[0, self.hps["batch_size"] - count], [0, 0], [0, 0], [0, 0]])
        _, real_features = self.scoring_networks["discriminator"](padded, training=False)
        self._z.assign(tf.broadcast_to(self._z0, tf.shape(self._z)))
        for variable in self._search_optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        for _ in tf.range(self._search_steps):
            with tf.GradientTape() as tape:
                tape.watch(self._z)
                loss = tf.reduce_sum(self.search_loss(padded, real_features, self._z))
            self._search_optimizer.apply_gradients([(tape.gradient(loss, self._z), self._z)])
        return (self.search_loss(padded, real_features, self._z)[:count],
                self._z.read_value()[:count])

    def score(self, images: tf.Tensor) -> tf.Tensor:
        return self._search(images)[0]

    scoring_batch_is_a_limit = True

    def scoring_batch_size(self) -> int:
        """The search's z variable holds ``batch_size`` codes: batches never exceed it."""
        return self.hps["batch_size"]

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:
        return self.scoring_networks["generator"](self._search(images)[1], training=False)

    def check_subset(self) -> int:
        return self.hps["validation_subset"]

    def selection_note(self) -> str:
        return (f"per-epoch model selection scored the first {self.hps['validation_subset']} "
                f"validation (and synthetic) images with "
                f"{self.hps['validation_search_steps']} search steps; "
                f"the threshold and test used every image and {self.hps['search_steps']} steps")

    @contextlib.contextmanager
    def searching_with(self, steps: int) -> Iterator[None]:
        """Scores in this context search ``steps`` steps instead of ``search_steps``."""
        previous = int(self._search_steps.numpy())
        self._search_steps.assign(steps)
        try:
            yield
        finally:
            self._search_steps.assign(previous)

    def callbacks(self) -> list[Callback]:
        return [CheaperChecks(self)]

    def scores_with_steps(self, images: np.ndarray | tf.Tensor, steps: int) -> np.ndarray:
        """Scores of at most ``batch_size`` images after ``steps`` search steps (for benchmarks
        and tests)."""
        with self.searching_with(steps):
            return self.compiled_score(tf.convert_to_tensor(images)).numpy()


class CheaperChecks(Callback):
    """Per-epoch checks search ``validation_search_steps`` steps per image, not
    ``search_steps``."""

    def __init__(self, trainer: AnoGANTrainer) -> None:
        self.trainer = trainer

    def checking(self) -> contextlib.AbstractContextManager:
        return self.trainer.searching_with(self.trainer.hps["validation_search_steps"])
