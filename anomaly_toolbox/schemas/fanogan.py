"""Hyperparameters of f-AnoGAN: types, defaults, bounds and help.

``hps/fanogan.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import CIFAR10_CLASS_IMAGES, HParam, common_hparams

#: Test AUROC without labels, P3 all ten classes of the bundled data, seed 42
#: (benchmarks/RESULTS.md, issue 45): synthetic 0.9492, last 0.9431 (labelled validation 0.9491).
LABEL_FREE_SELECTION = "synthetic"

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    "Berg et al. section 4.2, who ran f-AnoGAN as their comparator: 7 epochs of its WGAN-GP on "
    "one CIFAR-10 class (5,000 images) at batch 16; the encoder's equal share after them is "
    "ours (the official code trains it 50,000 iterations of 64 images)")

HPARAMS = (
    *common_hparams(epochs=14, batch_size=80, learning_rate=1e-4, beta_1=0.0,
                    latent_dim=128, filters=64, images_per_epoch=CIFAR10_CLASS_IMAGES),
    HParam("beta_2", float, 0.9, "Adam beta_2 of G and D", minimum=0.0, maximum=0.9999),
    HParam("n_critic", int, 5, "critic updates per generator update; each takes its own "
           "batch_size / n_critic images of the step's batch", positive=True),
    HParam("gp_weight", float, 10.0, "gradient-penalty weight", minimum=0.0),
    HParam("encoder_share", float, 0.5, "share of the train steps, at the end, that train "
           "the izi_f encoder with G and D frozen (the WGAN-GP trains before)", positive=True,
           maximum=0.99),
    HParam("encoder_learning_rate", float, 5e-5, "RMSProp learning rate of the encoder",
           positive=True),
    HParam("kappa", float, 1.0, "weight of the critic-feature residual in the izi_f loss and "
           "the score", minimum=0.0),
)
