"""One-class Deep SVDD: map normal data into a small hypersphere.

Paper: L. Ruff, R. Vandermeulen, N. Goernitz, L. Deecke, S. A. Siddiqui, A. Binder, E. Mueller,
M. Kloft, "Deep One-Class Classification", ICML 2018.

Before the first step, the feature map phi is pretrained as the encoder of an autoencoder
(``pretrain``, on by default, as in the paper's reported results and the reference code): a
mirrored bias-free decoder is trained with phi on the mean squared reconstruction error for as
many steps as Deep SVDD then trains (the reference code: 150 epochs each), and thrown away. Then
the centre c is the mean of phi(x) over the training split (inference mode, as the reference
code), with coordinates closer to 0 than ``centre_eps`` pushed to +-eps so that a zero feature
cannot trivially hit them. Loss: mean ||phi(x) - c||_2^2 over the batch; score per image:
||phi(x) - c||_2^2.

Deviations from the paper and the reference code:

* No weight decay (5e-7 for Deep SVDD, 5e-4 for the autoencoder): the bias-free network does not
  need it to avoid collapse.
* No learning-rate drop (x0.1 after 50 of 150 epochs) and no global-contrast normalisation of the
  images: every method here sees the same [-1, 1] pixels.
* The decoder upsamples and convolves (this toolbox's style) rather than using transposed
  convolutions; it is only a pretraining aid.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from anomaly_toolbox.datasets.pipeline import PreparedData, eval_batches, train_batches
from anomaly_toolbox.hps import HParam, common_hparams
from anomaly_toolbox.models.deepsvdd import (build_centre, build_feature_map,
                                             build_pretraining_decoder)
from anomaly_toolbox.trainers.base import Trainer, adam
from anomaly_toolbox.trainers.losses import per_sample_squared_error


class DeepSVDDTrainer(Trainer):
    """One-class Deep SVDD on 28x28 images (the paper's MNIST LeNet: 8 and 4 filters, d = 32)."""

    image_size = 28
    hparams = (
        *common_hparams(epochs=30, batch_size=128, learning_rate=1e-4, beta_1=0.9,
                        latent_dim=32, filters=8),
        HParam("centre_eps", float, 0.1, "coordinates of c closer to 0 than this become +-eps",
               minimum=0.0),
        HParam("pretrain", bool, True, "pretrain the feature map as an autoencoder's encoder for "
               "as many steps as Deep SVDD trains"),
    )

    def build_networks(self) -> dict[str, keras.Model]:
        return {"feature_map": build_feature_map(self.image_shape, self.hps["latent_dim"],
                                                 self.hps["filters"]),
                "centre": build_centre(self.hps["latent_dim"])}

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        return {"feature_map": (adam(self.hps["learning_rate"], self.hps["beta_1"]),
                                ("feature_map",))}

    def before_training(self, data: PreparedData) -> None:
        feature_map = self.networks["feature_map"]
        if self.hps["pretrain"]:
            with self.stopwatch.measure("train_steps"):
                losses = self.pretrain(data)
            print(f"Pretrained: reconstruction loss {losses[0]:.4f} at the first step, "
                  f"{np.mean(losses[-10:]):.4f} over the last 10")
            for name, network in self.scoring_networks.items():
                network.set_weights(self.networks[name].get_weights())
        features = np.concatenate([feature_map(x, training=False).numpy()
                                   for x, _ in eval_batches(data.train, self.hps["batch_size"])])
        centre = features.mean(axis=0)
        eps = self.hps["centre_eps"]
        centre[(np.abs(centre) < eps) & (centre < 0)] = -eps
        centre[(np.abs(centre) < eps) & (centre >= 0)] = eps
        for networks in (self.networks, self.scoring_networks):
            networks["centre"].get_layer("centre").centre.assign(centre)

    def pretrain(self, data: PreparedData) -> list[float]:
        """Train phi and a mirrored decoder on the mean squared reconstruction error for
        ``epochs_planned`` epochs of the training split (batch orders drawn apart from the
        training epochs'), with Deep SVDD's Adam settings. Returns the loss of every step."""
        feature_map = self.networks["feature_map"]
        with self.strategy.scope():
            decoder = build_pretraining_decoder(self.image_shape, self.hps["latent_dim"],
                                                self.hps["filters"])
            variables = feature_map.trainable_variables + decoder.trainable_variables
            optimizer = adam(self.hps["learning_rate"], self.hps["beta_1"])
            optimizer.build(variables)

        def replica_step(images: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                reconstruction = decoder(feature_map(images, training=True), training=True)
                loss = tf.reduce_mean(per_sample_squared_error(
                    images, tf.cast(reconstruction, images.dtype)))
            gradients = [g / self.replicas for g in tape.gradient(loss, variables)]
            optimizer.apply_gradients(zip(gradients, variables))
            return loss

        step = tf.function(lambda images: self.on_replicas(replica_step, images),
                           jit_compile=bool(self.hps.get("jit_compile")) and self.replicas == 1)
        epochs = self.epochs_planned
        steps = epochs * (data.train_size // self.hps["batch_size"])
        print(f"Pretraining the feature map as an autoencoder: {steps} steps")
        return [float(step(images)) for epoch in range(epochs)
                for images in train_batches(data.train_samples, self.hps["batch_size"],
                                            self.seed, epochs + epoch)]

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            features = self.networks["feature_map"](images, training=True)
            loss = tf.reduce_mean(self.networks["centre"](features, training=True))
        self.apply_gradients(tape, {"feature_map": loss})
        return {"distance_loss": loss}

    def score(self, images: tf.Tensor) -> tf.Tensor:
        features = self.scoring_networks["feature_map"](images, training=False)
        return self.scoring_networks["centre"](features, training=False)
