"""One-class Deep SVDD: map normal data into a small hypersphere.

Paper: L. Ruff, R. Vandermeulen, N. Goernitz, L. Deecke, S. A. Siddiqui, A. Binder, E. Mueller,
M. Kloft, "Deep One-Class Classification", ICML 2018.

Before the first step, the centre c is the mean of phi(x) over the training split (inference mode,
as the reference code), with coordinates closer to 0 than ``centre_eps`` pushed to +-eps so that
a zero feature cannot trivially hit them. Loss: mean ||phi(x) - c||_2^2 over the batch; score per
image: ||phi(x) - c||_2^2.

Left out on purpose: the autoencoder pretraining (an option in the paper, not part of the
objective) and the tiny weight decay (5e-7), which the bias-free network does not need to avoid
collapse.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from anomaly_toolbox.datasets.pipeline import PreparedData, eval_batches
from anomaly_toolbox.hps import HParam, common_hparams
from anomaly_toolbox.models.deepsvdd import build_centre, build_feature_map
from anomaly_toolbox.trainers.base import Trainer, adam


class DeepSVDDTrainer(Trainer):
    """One-class Deep SVDD on 28x28 images (the paper's MNIST LeNet: 8 and 16 filters, d = 32)."""

    image_size = 28
    hparams = (
        *common_hparams(epochs=30, batch_size=128, learning_rate=1e-4, beta_1=0.9,
                        latent_dim=32, filters=8),
        HParam("centre_eps", float, 0.1, "coordinates of c closer to 0 than this become +-eps",
               minimum=0.0),
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
        features = np.concatenate([feature_map(x, training=False).numpy()
                                   for x, _ in eval_batches(data.train, self.hps["batch_size"])])
        centre = features.mean(axis=0)
        eps = self.hps["centre_eps"]
        centre[(np.abs(centre) < eps) & (centre < 0)] = -eps
        centre[(np.abs(centre) < eps) & (centre >= 0)] = eps
        for networks in (self.networks, self.scoring_networks):
            networks["centre"].get_layer("centre").centre.assign(centre)

    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            features = self.networks["feature_map"](images, training=True)
            loss = tf.reduce_mean(self.networks["centre"](features, training=True))
        self.apply_gradients(tape, {"feature_map": loss})
        return {"distance_loss": loss}

    def score(self, images: tf.Tensor) -> tf.Tensor:
        features = self.scoring_networks["feature_map"](images, training=False)
        return self.scoring_networks["centre"](features, training=False)
