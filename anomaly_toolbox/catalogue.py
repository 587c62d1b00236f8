"""The experiments and their hps keys as ``anomaly-box --list`` prints them, without TensorFlow.

Rendering the list imports every trainer (and so TensorFlow, ~5-10 s); ``--list`` prints the
rendering saved in ``catalogue.txt`` instead. A test checks that the file equals a fresh
rendering; after changing a method's hps keys, defaults or descriptions, rewrite it with
``python -m anomaly_toolbox.catalogue``.
"""

from __future__ import annotations

from pathlib import Path

from anomaly_toolbox.registry import EXPERIMENTS

CATALOGUE_FILE = Path(__file__).with_name("catalogue.txt")


def render() -> str:
    """Every experiment with its description, then its hps keys: type, default and help."""
    from anomaly_toolbox.registry import trainer_class

    lines = ["Experiments (--experiment) and their hyperparameters (hps keys, defaults):"]
    for name, experiment in EXPERIMENTS.items():
        lines.append(f"  {name:10s} {experiment.description}")
        cls = trainer_class(name)
        for key, param in cls.schema().items():
            default = "auto" if param.default is None else param.default
            if key == "jit_compile":
                default = "on" if cls.jit_by_default(False) else "GPU only"
            lines.append(f"      {key:20s} {param.kind.__name__:5s} {default!s:10s} {param.help}")
            if key == "jit_compile" and cls.cpu_jit_off_reason:
                lines.append(f"      {'':20s} {'':5s} {'':10s} (off without a GPU: "
                             f"{cls.cpu_jit_off_reason})")
            if key == "selection":
                lines.append(f"      {'':20s} {'':5s} {'':10s} (auto without labelled "
                             f"validation anomalies: {cls.label_free_selection}; why: "
                             f"benchmarks/RESULTS.md, 'Numbers without labels')")
    return "\n".join(lines) + "\n"


def saved() -> str:
    """The rendering that ships with the package."""
    return CATALOGUE_FILE.read_text(encoding="utf-8")


if __name__ == "__main__":
    CATALOGUE_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {CATALOGUE_FILE}")
