"""f-AnoGAN: a WGAN-GP, then an encoder trained to invert it (izi_f), scored in one pass.

Paper: T. Schlegl, P. Seeböck, S. M. Waldstein, G. Langs, U. Schmidt-Erfurth, "f-AnoGAN: Fast
unsupervised anomaly detection with generative adversarial networks", Medical Image Analysis 54
(2019) 30-44. Settings from its official code (github.com/tSchlegl/f-AnoGAN,
``wgangp_64x64.py`` and ``z_encoding_izif.py``) and, for batch, latent size and budget, from
Berg et al. (ECAI 2020, ``shared/papers``), who ran it as their comparator.

One run, two phases; the last ``encoder_share`` of the train steps is the second:

1. WGAN-GP (Gulrajani et al. 2017). A step splits its batch into ``n_critic`` critic batches
   of b = batch_size // n_critic real images x_k. Critic update k minimises
   E[D(G(z_k))] - E[D(x_k)] + gp_weight GP(x_k, G(z_k)) with fresh z_k ~ N(0, I); then one
   generator update minimises -E[D(G(z))] on b fresh codes. Adam (lr 1e-4, betas 0 and 0.9).
2. izi_f: G and D frozen (inference mode); each of the step's critic batches makes one RMSProp
   update (lr 5e-5) of E on L = MSE(x, G(E(x))) + kappa MSE(f(x), f(G(E(x)))), f the critic's
   features (its flattened last convolution), kappa 1.

Score: A(x) = MSE(x, G(E(x))) + kappa MSE(f(x), f(G(E(x)))) per image (means over pixels and
over features), the izi_f loss itself: one encoder pass instead of AnoGAN's latent search.
Results also report its two parts (``image_residual_*``, ``feature_residual_*``). Model
selection considers only the checks after the encoder has started training.

Deviations from the paper and its code:

* DCGAN pyramids instead of the official 64x64 residual networks (Berg et al. also shrank
  them, by one residual block, for 32x32 images); the critic has no normalisation where the
  official one has layer normalisation (neither breaks the per-sample gradient penalty).
* b = 16 images per critic and encoder update, as Berg et al. ran it; the official code uses 64.
* The encoder trains for as many steps as the GAN (``encoder_share`` 0.5); the official code
  trains it 50,000 iterations, and Berg et al. report about 1 hour of encoder training against
  16 of GAN training, which at five critic updates per GAN step is about as many steps.
* RMSProp with Keras' accumulator started at 0 (TensorFlow 1's started at 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from anomaly_toolbox.models.fanogan import build_fanogan
from anomaly_toolbox.schemas import fanogan as schema
from anomaly_toolbox.trainers.base import EncoderGeneratorTrainer
from anomaly_toolbox.trainers.losses import per_sample_squared_error
from anomaly_toolbox.trainers.wgan import train_critic
from anomaly_toolbox.training.callbacks import Callback

#: Every loss a step reports; the phase that does not run reports 0 for its own.
LOSSES = ("critic_loss", "w_distance", "gradient_penalty", "g_loss", "encoder_loss",
          "image_residual", "feature_residual")


class FAnoGANTrainer(EncoderGeneratorTrainer):
    """f-AnoGAN on 32x32 images: WGAN-GP first, then the izi_f encoder."""

    label_free_selection = schema.LABEL_FREE_SELECTION
    hparams = schema.HPARAMS

    distribution_off_reason = ("each step splits its batch into n_critic critic batches and "
                               "switches phase inside the compiled step, neither written for "
                               "one replica's slice")

    image_size = 32

    def __init__(self, hps: dict[str, Any], sample_shape: tuple[int, ...], seed: int) -> None:
        if hps["batch_size"] < hps["n_critic"]:
            raise ValueError(f"fanogan splits each batch into n_critic {hps['n_critic']} critic "
                             f"batches; batch_size {hps['batch_size']} is smaller: give a "
                             f"batch_size of at least {hps['n_critic']}")
        #: The first train step of the encoder phase, set when training starts; until then
        #: every step is a WGAN-GP step.
        self.encoder_from_step = tf.Variable(tf.int64.max, dtype=tf.int64, trainable=False,
                                             name="encoder_from_step")
        super().__init__(hps, sample_shape, seed)

    def build_networks(self) -> dict[str, keras.Model]:
        return build_fanogan(self.image_shape, self.hps["latent_dim"], self.hps["filters"])

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        encoder = keras.optimizers.RMSprop(self.hps["encoder_learning_rate"], rho=0.9,
                                           epsilon=1e-10)
        return {**self.adam_per_network(("critic", "generator"), self.hps["beta_2"]),
                "encoder": (encoder, ("encoder",))}

    def sample_noise(self, batch_size: int, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """``z`` ``[n_critic + 1, b, d]``: one batch of codes per critic update and one for the
        generator's; ``penalty_mix`` ``[n_critic, b]``."""
        critics = self.hps["n_critic"]
        per_update = batch_size // critics
        seeds = tf.random.experimental.stateless_split(seed, 2)
        return {"z": tf.random.stateless_normal([critics + 1, per_update,
                                                 self.hps["latent_dim"]], seeds[0]),
                "penalty_mix": tf.random.stateless_uniform([critics, per_update], seeds[1])}

    def critic_batches(self, images: tf.Tensor) -> list[tf.Tensor]:
        """The step's batch ``[B, ...]`` as ``n_critic`` batches of B // n_critic images."""
        per_update = images.shape[0] // self.hps["n_critic"]
        return [images[k * per_update:(k + 1) * per_update] for k in range(self.hps["n_critic"])]

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return tf.cond(self.step < self.encoder_from_step,
                       lambda: self._wgan_updates(images, noise),
                       lambda: self._encoder_updates(images))

    def _wgan_updates(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        generator, critic = self.networks["generator"], self.networks["critic"]
        reals = self.critic_batches(images)
        fakes = [generator(noise["z"][k], training=True) for k in range(len(reals))]

        def w_distance(k: int) -> tuple[tf.Tensor, tf.Tensor]:
            return (tf.reduce_mean(critic(reals[k], training=True)[0]) -
                    tf.reduce_mean(critic(fakes[k], training=True)[0]), 0.0)

        distance, penalty, critic_loss = train_critic(
            self, w_distance, lambda k: [(reals[k], fakes[k])], noise["penalty_mix"])
        with tf.GradientTape() as tape:
            g_loss = -tf.reduce_mean(critic(generator(noise["z"][-1], training=True),
                                            training=True)[0])
        self.apply_gradients(tape, {"generator": g_loss})
        return {**dict.fromkeys(LOSSES, tf.constant(0.0)), "critic_loss": critic_loss,
                "w_distance": distance, "gradient_penalty": penalty, "g_loss": g_loss}

    def _encoder_updates(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        for batch in self.critic_batches(images):
            with tf.GradientTape() as tape:
                image_residual, feature_residual = self.izi_f_parts(batch, self.networks,
                                                                    training=True)
                image_loss = tf.reduce_mean(image_residual)
                feature_loss = tf.reduce_mean(feature_residual)
                loss = image_loss + self.hps["kappa"] * feature_loss
            self.apply_gradients(tape, {"encoder": loss})
        return {**dict.fromkeys(LOSSES, tf.constant(0.0)), "encoder_loss": loss,
                "image_residual": image_loss, "feature_residual": feature_loss}

    @staticmethod
    def izi_f_parts(images: tf.Tensor, networks: dict[str, keras.Model],
                    training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """``(MSE(x, G(E(x))), MSE(f(x), f(G(E(x)))))``, each ``[B]``; only E runs in training
        mode when ``training`` (G and D are frozen in the izi_f phase)."""
        reconstruction = networks["generator"](networks["encoder"](images, training=training),
                                               training=False)
        _, features = networks["critic"](images, training=False)
        _, reconstructed_features = networks["critic"](reconstruction, training=False)
        return (per_sample_squared_error(images, reconstruction),
                per_sample_squared_error(features, reconstructed_features))

    def score(self, images: tf.Tensor) -> tf.Tensor:
        image_residual, feature_residual = self.izi_f_parts(images, self.scoring_networks,
                                                            training=False)
        return image_residual + self.hps["kappa"] * feature_residual

    def score_variants(self) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
        """The image and the feature residual alone (``image_residual_*``,
        ``feature_residual_*``)."""
        return {"image_residual": lambda x: self.izi_f_parts(x, self.scoring_networks, False)[0],
                "feature_residual": lambda x: self.izi_f_parts(x, self.scoring_networks,
                                                               False)[1]}

    def callbacks(self) -> list[Callback]:
        return [*super().callbacks(), EncoderPhase(self)]

    def checkpointed(self) -> dict[str, Any]:
        return {**super().checkpointed(), "encoder_from_step": self.encoder_from_step}


class EncoderPhase(Callback):
    """Places the switch from WGAN-GP to izi_f training at the start of a fresh run (a resumed
    run keeps it from its checkpoint); checks are selectable once the encoder has trained."""

    def __init__(self, trainer: FAnoGANTrainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, data: Any) -> None:
        trainer = self.trainer
        steps = trainer.epochs_planned * (data.train_size // trainer.hps["batch_size"])
        trainer.encoder_from_step.assign(round(steps * (1.0 - trainer.hps["encoder_share"])))

    def selectable(self, epoch: int, planned_epochs: int) -> bool:
        return epoch > planned_epochs * (1.0 - self.trainer.hps["encoder_share"])
