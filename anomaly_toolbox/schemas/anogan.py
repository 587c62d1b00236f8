"""Hyperparameters of AnoGAN: types, defaults, bounds and help.

``hps/anogan.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import HParam, common_hparams

#: Test AUROC without labels, P3 classes 0/2/8 of the bundled data (benchmarks/RESULTS.md):
#: synthetic 0.8355, last 0.8275.
LABEL_FREE_SELECTION = "synthetic"

CPU_JIT_OFF_REASON = ("its latent search, which dominates a run, scored 25 images/s under "
                      "XLA against 59 as a plain graph on a 2-core CPU, and its train steps "
                      "gain nothing there either (benchmarks/RESULTS.md)")

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    'ours: AnoGAN was published on retinal OCT scans, with no MNIST budget; 20 epochs of one '
    'MNIST class (6,000 images)')

HPARAMS = (
    *common_hparams(epochs=20, batch_size=64, learning_rate=2e-4, beta_1=0.5,
                    latent_dim=100, filters=32),
    HParam("feature_weight", float, 0.1, "lambda in (1 - lambda) residual + lambda "
           "feature matching", minimum=0.0, maximum=1.0),
    HParam("search_steps", int, 500, "latent-search steps for the threshold and test",
           positive=True),
    HParam("search_lr_1", float, 0.01, "search learning rate before search_boundary_1",
           positive=True),
    HParam("search_boundary_1", int, 200, "search step where search_lr_2 starts",
           positive=True),
    HParam("search_lr_2", float, 0.001, "search learning rate up to search_boundary_2",
           positive=True),
    HParam("search_boundary_2", int, 300, "search step where search_lr_3 starts",
           positive=True),
    HParam("search_lr_3", float, 0.0005, "search learning rate after search_boundary_2",
           positive=True),
    HParam("validation_search_steps", int, 100, "search steps of per-epoch validation",
           positive=True),
    HParam("validation_subset", int, 256, "validation (and synthetic) images scored each epoch",
           positive=True),
)
