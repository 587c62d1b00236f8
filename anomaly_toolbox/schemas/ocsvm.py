"""Hyperparameters of the one-class SVM baseline: types, defaults, bounds and help.

``hps/ocsvm.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import HParam, shallow_hparams

HPARAMS = (
    *shallow_hparams(),
    HParam("nu", float, 0.1, "upper bound on the share of training outliers", minimum=1e-4,
           maximum=1.0),
    HParam("gamma", float, None, "RBF kernel width (default: set by width_rule)",
           positive=True),
    HParam("width_rule", str, "validation", "how an unset gamma is set: 'validation', the "
           "best of 2^k / (d var(x)), k = -3..6, on the labelled validation split (Ruff et "
           "al. chose it on a labelled hold-out); 'scale', scikit-learn's 1 / (d var(x)), "
           "no labels", choices=("validation", "scale")),
)
