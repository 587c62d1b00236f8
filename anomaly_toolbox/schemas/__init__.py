"""Each method's hyperparameters, one module per registered name, importable without TensorFlow.

A module ``schemas/<name>.py`` holds ``HPARAMS`` (the method's keys: ``common_hparams(...)`` with
its defaults, then its own), ``BUDGET_SOURCE`` (where its ``epochs`` and the epoch size
that converts them into ``min_steps`` come from) and, where measured, ``LABEL_FREE_SELECTION`` and
``CPU_JIT_OFF_REASON``. The trainer takes them from there; ``anomaly-box --list``, the check of
``--set`` overrides and grid files read them here, so none of these loads TensorFlow.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from anomaly_toolbox import hps
from anomaly_toolbox.hps import Schema, schema_of
from anomaly_toolbox.registry import EXPERIMENTS


def schema_module(name: str) -> ModuleType:
    """The schema module of registered experiment ``name`` (``KeyError`` if unregistered)."""
    return importlib.import_module(EXPERIMENTS[name].schema_module)


def method_schema(name: str) -> Schema:
    """Key -> :class:`~anomaly_toolbox.hps.HParam` of experiment ``name``, in ``--list`` order."""
    return schema_of(*schema_module(name).HPARAMS)


def label_free_selection(name: str) -> str:
    """The rule ``selection`` 'auto' takes for ``name`` without labelled validation anomalies."""
    return getattr(schema_module(name), "LABEL_FREE_SELECTION", hps.LABEL_FREE_SELECTION)


def label_free_reason(name: str) -> str:
    """Where ``name``'s label-free rule comes from: a measurement, or the toolbox's default."""
    if hasattr(schema_module(name), "LABEL_FREE_SELECTION"):
        return "measured: the README's table 'Numbers without labels'; benchmarks/RESULTS.md"
    return "not measured for this method yet: the toolbox's default"


def cpu_jit_off_reason(name: str) -> str:
    """Why XLA stays off by default for ``name`` without a GPU (empty: on everywhere)."""
    return getattr(schema_module(name), "CPU_JIT_OFF_REASON", hps.CPU_JIT_OFF_REASON)


def budget_source(name: str) -> str:
    """Where ``name``'s default budget comes from: its epochs and the epoch they count."""
    return getattr(schema_module(name), "BUDGET_SOURCE", hps.BUDGET_SOURCE)
