"""Hyperparameters of the convolutional autoencoder baseline: types, defaults, bounds and help.

``hps/ae.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import common_hparams

#: Test AUROC without labels, P3 classes 0/2/8 of the bundled data (benchmarks/RESULTS.md):
#: last 0.9272, synthetic 0.9269.
LABEL_FREE_SELECTION = "last"

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    'ours: a baseline with no paper; 20 epochs of one MNIST class (6,000 images)')

HPARAMS = common_hparams(epochs=20, batch_size=64, learning_rate=1e-3, beta_1=0.9,
                         latent_dim=32, filters=32)
