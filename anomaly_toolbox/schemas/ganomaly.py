"""Hyperparameters of GANomaly: types, defaults, bounds and help.

``hps/ganomaly.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import MNIST_P1_TRAIN_IMAGES, HParam, common_hparams

#: Test AUROC without labels, P3 classes 0/2/8 of the bundled data (benchmarks/RESULTS.md):
#: last 0.9390, synthetic 0.9386.
LABEL_FREE_SELECTION = "last"

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    "GANomaly's paper: 15 epochs under P1 on full MNIST, an epoch being 50,400 normal images "
    "(80% of nine classes, its code's split)")

HPARAMS = (
    *common_hparams(epochs=15, batch_size=64, learning_rate=2e-4, beta_1=0.5,
                    latent_dim=100, filters=64,
                    images_per_epoch=MNIST_P1_TRAIN_IMAGES),
    HParam("adversarial_weight", float, 1.0, "w_adv (feature matching)", minimum=0.0),
    HParam("contextual_weight", float, 50.0, "w_con (L1 reconstruction)", minimum=0.0),
    HParam("encoder_weight", float, 1.0, "w_enc (latent consistency)", minimum=0.0),
)
