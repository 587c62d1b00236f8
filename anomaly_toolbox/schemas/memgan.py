"""Hyperparameters of MEMGAN: types, defaults, bounds and help.

``hps/memgan.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import HParam, common_hparams

#: Test AUROC without labels, P3 classes 0/2/8 of the bundled data, at the code of issue 44
#: (the encoder's statistics from real images only; benchmarks/RESULTS.md, "Issue 44, after
#: the changes"): last 0.9038, synthetic 0.8912 (labelled validation 0.9069).
LABEL_FREE_SELECTION = "last"

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    "MEMGAN's paper: 7 epochs under P3 on MNIST (one class, about 6,000 images)")

HPARAMS = (
    *common_hparams(epochs=7, batch_size=64, learning_rate=1e-4, beta_1=0.5, latent_dim=64,
                    filters=64),
    HParam("memory_units", int, 50, "n, rows of the memory M (its width is latent_dim)",
           positive=True),
    HParam("adversarial_weight", float, 1.0, "weight of l_adv", minimum=0.0),
    HParam("cycle_weight", float, 1.0, "weight of l_cyc", minimum=0.0),
    HParam("projection_weight", float, 1.0, "weight of l_proj", minimum=0.0),
    HParam("mutual_information_weight", float, 1.0, "weight of l_mi", minimum=0.0),
    HParam("encoder_adversarial", str, "log_d", "E's adversarial loss: log D(x, E(x)) as "
           "Algorithm 1, or the non-saturating BCE(D(x, E(x)), 0)",
           choices=("log_d", "non_saturating")),
)
