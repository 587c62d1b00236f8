"""One-class Deep SVDD: map normal data into a small hypersphere.

Paper: L. Ruff, R. Vandermeulen, N. Goernitz, L. Deecke, S. A. Siddiqui, A. Binder, E. Mueller,
M. Kloft, "Deep One-Class Classification", ICML 2018.

Before the first step, the feature map phi is pretrained as the encoder of an autoencoder
(``pretrain``, on by default, as in the paper's reported results and the reference code): a
mirrored bias-free decoder is trained with phi on the mean squared reconstruction error plus
``ae_weight_decay``/2 times the squared weights, for as many steps as Deep SVDD then trains (the
reference code: 150 epochs each), and thrown away. Then the centre c is the mean of phi(x) over
the training split (inference mode, as the reference code), with coordinates closer to 0 than
``centre_eps`` pushed to +-eps so that a zero feature cannot trivially hit them. Loss: mean
||phi(x) - c||_2^2 over the batch plus ``weight_decay``/2 times the squared weights (the paper's
objective; PyTorch's Adam weight decay, as the reference code applies it, is the same gradient);
score per image: ||phi(x) - c||_2^2. phi is the reference code's LeNet for the images' kind
(``filters`` and ``latent_dim`` at "auto"): MNIST's on grayscale, CIFAR-10's on RGB. Both
phases drop the learning rate x0.1 from published epoch ``lr_milestone`` on, and train the
reference code's MNIST budget: 150 epochs at batch 200 (``min_steps`` 4,500, its steps on 6,000
images).

``contrast_norm`` (off by default) puts the reference code's global contrast normalisation in
front of phi: per image, subtract the mean and divide by the mean absolute deviation, then map
the training split's extreme values onto [0, 1] (``models.deepsvdd.ContrastNormalization``,
adapted before pretraining and saved with the model); the pretraining decoder then reconstructs
the normalised image.

Deviations from the paper and the reference code:

* No global contrast normalisation by default: every method here sees the same [-1, 1] pixels,
  as AMA's paper does for its Deep SVDD column ("we removed this additional normalization
  step to make the method comparable").
* The decoder upsamples and convolves (this toolbox's style) rather than using transposed
  convolutions; it is only a pretraining aid. The reference CIFAR-10 autoencoder also
  batch-normalises the code (no affine terms) before decoding; ours does not.
* Every epoch drops its last partial batch (the reference code trains on it).
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

from anomaly_toolbox.datasets.pipeline import PreparedData, eval_batches, train_batches
from anomaly_toolbox.models.deepsvdd import (build_centre, build_feature_map,
                                             build_pretraining_decoder)
from anomaly_toolbox.schemas import deepsvdd as schema
from anomaly_toolbox.timing import eta_text
from anomaly_toolbox.trainers.base import Trainer
from anomaly_toolbox.trainers.helpers import EpochMilestones, adam
from anomaly_toolbox.trainers.losses import per_sample_squared_error
from anomaly_toolbox.training.callbacks import Callback


class DeepSVDDTrainer(Trainer):
    """One-class Deep SVDD: on 28x28 grayscale images the paper's MNIST LeNet (8 and 4 filters,
    d = 32), on 32x32 RGB images its CIFAR-10 LeNet (32, 64 and 128 filters, d = 128)."""

    label_free_selection = schema.LABEL_FREE_SELECTION
    hparams = schema.HPARAMS

    image_size = 28

    def __init__(self, hps: dict, sample_shape: tuple[int, ...], seed: int) -> None:
        """``filters`` and ``latent_dim`` left at None ("auto") become the LeNet's of the
        images' kind (:data:`~anomaly_toolbox.schemas.deepsvdd.LENET_WIDTHS`), recorded in the
        hps."""
        rgb = len(sample_shape) == 3 and sample_shape[-1] == 3
        for key, (grayscale, colour) in schema.LENET_WIDTHS.items():
            if hps.get(key) is None:
                hps[key] = colour if rgb else grayscale
        super().__init__(hps, sample_shape, seed)

    def build_networks(self) -> dict[str, keras.Model]:
        return {"feature_map": build_feature_map(self.image_shape, self.hps["latent_dim"],
                                                 self.hps["filters"], self.hps["contrast_norm"]),
                "centre": build_centre(self.hps["latent_dim"])}

    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        return {"feature_map": (self.adam_with_milestone(self.epoch), ("feature_map",))}

    def adam_with_milestone(self, epoch: tf.Variable) -> keras.optimizers.Adam:
        """Adam (learning_rate, beta_1, PyTorch's epsilon) whose rate drops x0.1 from published
        epoch ``lr_milestone`` on, counting the epochs of ``epoch``."""
        milestone = self.hps["lr_milestone"]
        schedule = EpochMilestones(self.hps["learning_rate"], (milestone,) if milestone else (),
                                   0.1, epoch, self.epoch_scale)
        return adam(schedule, self.hps["beta_1"])

    def weight_penalty(self, lam: float, *networks: keras.Model) -> tf.Tensor:
        """lambda/2 times the sum of the squared trainable weights of ``networks`` (float32)."""
        if lam == 0:
            return tf.constant(0.0)
        return lam / 2 * tf.add_n([tf.reduce_sum(tf.square(w)) for network in networks
                                   for w in network.trainable_weights])

    def callbacks(self) -> list[Callback]:
        return [PlaceCentre(self)]

    def place_centre(self, data: PreparedData) -> None:
        """Before a fresh run: pretrain phi as an autoencoder (``pretrain``), then set the centre
        c to the mean of phi over the training split, each coordinate at least ``centre_eps``
        away from 0 (the reference code's rule)."""
        if self.hps["lr_milestone"] >= self.hps["epochs"]:
            print(f"Note: lr_milestone {self.hps['lr_milestone']} is not below epochs "
                  f"{self.hps['epochs']}, so the learning rate never drops (the reference code "
                  "drops it at epoch 50 of 150; lr_milestone=0 turns the drop off)")
        feature_map = self.networks["feature_map"]
        if self.hps["contrast_norm"]:
            low, high = feature_map.get_layer("contrast").adapt(
                x for x, _ in eval_batches(data.train, self.hps["batch_size"]))
            print(f"Contrast normalisation: the training images' values span [{low:.3f}, "
                  f"{high:.3f}], mapped onto [0, 1]")
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
        """Train phi and a mirrored decoder on the mean squared reconstruction error (of the
        contrast-normalised image with ``contrast_norm``) plus the ``ae_weight_decay`` penalty
        for ``epochs_planned`` epochs of the training split (batch orders drawn apart from the
        training epochs'), with Deep SVDD's Adam settings and learning-rate milestone. Returns
        the reconstruction error of every step."""
        feature_map = self.networks["feature_map"]
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="pretraining_epoch")
        with self.strategy.scope():
            decoder = build_pretraining_decoder(self.image_shape, self.hps["latent_dim"],
                                                self.hps["filters"])
            variables = feature_map.trainable_variables + decoder.trainable_variables
            optimizer = self.adam_with_milestone(epoch)
            optimizer.build(variables)
        target = (feature_map.get_layer("contrast") if self.hps["contrast_norm"]
                  else tf.identity)

        def replica_step(images: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                reconstruction = decoder(feature_map(images, training=True), training=True)
                error = tf.reduce_mean(per_sample_squared_error(
                    target(images), tf.cast(reconstruction, images.dtype)))
                loss = error + self.weight_penalty(self.hps["ae_weight_decay"], feature_map,
                                                   decoder)
            gradients = [g / self.replicas for g in tape.gradient(loss, variables)]
            optimizer.apply_gradients(zip(gradients, variables))
            return error

        step = tf.function(lambda images: self.on_replicas(replica_step, images),
                           jit_compile=bool(self.hps.get("jit_compile")) and self.replicas == 1)
        epochs = self.epochs_planned
        steps = epochs * (data.train_size // self.hps["batch_size"])
        print(f"Pretraining the feature map as an autoencoder: {steps} steps")
        errors: list[float] = []
        report_every, started = math.ceil(epochs / self.hps["epochs"]), time.perf_counter()
        for pretraining_epoch in range(epochs):
            epoch.assign(pretraining_epoch)
            errors += [float(step(images)) for images in train_batches(
                data.train_samples, self.hps["batch_size"], self.seed, epochs + pretraining_epoch)]
            done = pretraining_epoch + 1
            if done % report_every == 0 or done == epochs:
                print(f"pretraining epoch {done}/{epochs}: reconstruction error "
                      f"{errors[-1]:.4f} ({eta_text(started, done, epochs - done)})")
        return errors

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            features = self.networks["feature_map"](images, training=True)
            distance = tf.reduce_mean(self.networks["centre"](features, training=True))
            penalty = self.weight_penalty(self.hps["weight_decay"], self.networks["feature_map"])
            loss = tf.cast(distance, tf.float32) + penalty
        self.apply_gradients(tape, {"feature_map": loss})
        return {"distance_loss": distance, "loss": loss}

    def score(self, images: tf.Tensor) -> tf.Tensor:
        features = self.scoring_networks["feature_map"](images, training=False)
        return self.scoring_networks["centre"](features, training=False)


class PlaceCentre(Callback):
    """Deep SVDD's centre, placed before the first step of a fresh run (a resumed run restores
    it from the checkpoint)."""

    def __init__(self, trainer: DeepSVDDTrainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, data: PreparedData) -> None:
        self.trainer.place_centre(data)
