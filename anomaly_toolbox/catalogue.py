"""The experiments and their hps keys as ``anomaly-box --list`` prints them.

Everything it reads (the registry and :mod:`anomaly_toolbox.schemas`) is free of TensorFlow, so
``--list`` answers at once.
"""

from __future__ import annotations

from anomaly_toolbox.registry import EXPERIMENTS
from anomaly_toolbox.schemas import (budget_source, cpu_jit_off_reason, label_free_reason,
                                     label_free_selection, method_schema)


def render() -> str:
    """Every experiment with its description, then its hps keys: type, default and help."""
    lines = ["Experiments (--experiment) and their hyperparameters (hps keys, defaults):"]
    for name, experiment in EXPERIMENTS.items():
        lines.append(f"  {name:10s} {experiment.description}")
        jit_reason = cpu_jit_off_reason(name)
        for key, param in method_schema(name).items():
            default = "auto" if param.default is None else param.default
            if key == "jit_compile":
                default = "GPU only" if jit_reason else "on"
            lines.append(f"      {key:20s} {param.kind.__name__:5s} {default!s:10s} {param.help}")
            if key == "jit_compile" and jit_reason:
                lines.append(f"      {'':20s} {'':5s} {'':10s} (off without a GPU: {jit_reason})")
            if key == "min_steps":
                lines.append(f"      {'':20s} {'':5s} {'':10s} (budget: {budget_source(name)})")
            if key == "selection":
                lines.append(f"      {'':20s} {'':5s} {'':10s} (auto without labelled "
                             f"validation anomalies: {label_free_selection(name)}; "
                             f"{label_free_reason(name)})")
    return "\n".join(lines) + "\n"
