"""Hyperparameters of the consistency BiGAN: types, defaults, bounds and help.

``hps/cbigan.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import HParam, common_hparams

#: Joint discriminators: the projection discriminator, or D(x, z) on concatenated features.
DISCRIMINATORS = ("projection", "concat")

#: Test AUROC without labels, P3 classes 0/2/8 of the bundled data (benchmarks/RESULTS.md;
#: re-measured in issue 44's control run at the same code: synthetic 0.8270, last 0.8163):
#: synthetic 0.8290, last 0.8245.
LABEL_FREE_SELECTION = "synthetic"

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    'ours: the CBiGAN paper states no epoch count; 40 epochs of one MNIST class (6,000 images)')

HPARAMS = (
    *common_hparams(epochs=40, batch_size=64, learning_rate=1e-4, beta_1=0.9,
                    latent_dim=100, filters=32),
    HParam("discriminator", str, "projection", "joint discriminator kind",
           choices=DISCRIMINATORS),
    HParam("alpha", float, 0.9, "weight of the consistency terms vs adversarial",
           minimum=0.0, maximum=1.0),
    HParam("score_lambda", float, 0.1, "lambda in (1 - lambda) residual + lambda features",
           minimum=0.0, maximum=1.0),
)
