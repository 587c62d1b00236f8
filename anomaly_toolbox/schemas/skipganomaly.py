"""Hyperparameters of Skip-GANomaly: types, defaults, bounds and help.

``hps/skipganomaly.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import CIFAR10_P1_TRAIN_IMAGES, HParam, common_hparams

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    "Skip-GANomaly's code: 15 epochs (its niter) under P1 on CIFAR-10, an epoch being the "
    "45,000 images of the nine normal classes")

HPARAMS = (
    # The U-Net's bottleneck is its innermost convolution (8 filters x 1 x 1), so latent_dim,
    # which every other method has, is left out.
    *(param for param in common_hparams(epochs=15, batch_size=64, learning_rate=2e-4,
                                        beta_1=0.5, latent_dim=1, filters=64,
                                        images_per_epoch=CIFAR10_P1_TRAIN_IMAGES)
      if param.name != "latent_dim"),
    HParam("adversarial_weight", float, 1.0, "w_adv, G's BCE(D(x_hat), 1)", minimum=0.0),
    HParam("contextual_weight", float, 40.0, "w_con, ||x - x_hat||_1 (the paper's 40; the "
           "code's default 50)", minimum=0.0),
    HParam("latent_weight", float, 1.0, "w_lat, ||f(x) - f(x_hat)||_2^2", minimum=0.0),
    HParam("score_lambda", float, 0.9, "lambda in A = lambda R + (1 - lambda) L",
           minimum=0.0, maximum=1.0),
)
