"""Hyperparameters of the Isolation Forest baseline: types, defaults, bounds and help.

``hps/iforest.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import HParam, shallow_hparams

HPARAMS = (
    *shallow_hparams(),
    HParam("n_estimators", int, 100, "trees in the forest", positive=True),
)
