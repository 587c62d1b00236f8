"""Hyperparameters of the KDE baseline: types, defaults, bounds and help.

``hps/kde.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import HParam, shallow_hparams

HPARAMS = (
    *shallow_hparams(),
    HParam("bandwidth", float, None, "Gaussian kernel bandwidth (default: set by "
           "width_rule)", positive=True),
    HParam("width_rule", str, "validation", "how an unset bandwidth is chosen among 2^k x "
           "the median pairwise distance, k = -4..1: 'validation', the best on the "
           "labelled validation split; 'likelihood', the best 5-fold cross-validated "
           "log-likelihood of the training images (Ruff et al.'s rule, no labels)",
           choices=("validation", "likelihood")),
)
