"""Accuracy benchmark: methods x class labels x seeds under one protocol, as paper tables.

Every cell is an ordinary run of :func:`~anomaly_toolbox.experiments.runner.run_experiment`
(validation-selected model, threshold on validation, test metrics), so a benchmark that is
interrupted resumes: completed runs are read back, not retrained.
"""

from __future__ import annotations

import platform
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomaly_toolbox.cpu import describe_cpu, onednn_state
from anomaly_toolbox.datasets import DATASETS, load_raw
from anomaly_toolbox.datasets.splits import check_label
from anomaly_toolbox.experiments.anchors import FAMILY_DATA, anchors_for
from anomaly_toolbox.experiments.ray_sweep import RaySettings
from anomaly_toolbox.experiments.runner import RunConfig, data_label, run_experiment
from anomaly_toolbox.hps import load_grid
from anomaly_toolbox.pictures import write_benchmark_figure
from anomaly_toolbox.results import (benchmark_table, chosen_run, describe_code, rules_table,
                                     write_text_atomically)
from anomaly_toolbox.schemas import method_schema
from anomaly_toolbox.timing import clock_text

PROTOCOL_NAMES = {"anomalous": "P1: the class is the anomaly, the other classes are normal",
                  "normal": "P3: the class is normal, the other classes are anomalies"}


@dataclass
class BenchmarkConfig:
    """What to run: ``methods`` x ``labels`` x ``seeds`` on one dataset. ``labels`` None: every
    class, or the dataset's default class when it has two (kdd99, folder, mvtec)."""

    methods: list[str]
    dataset: str = "mnist"
    protocol: str = "anomalous"
    labels: list[int] | None = None
    seeds: list[int] = field(default_factory=lambda: [42])
    log_dir: Path = Path("logs")
    data_dir: Path | None = None
    category: str | None = None
    #: The dataset's own options (csv: ``label_column``, ``normal_value``).
    dataset_options: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    #: Grid file per method (else its defaults); with ``tuning`` every combination is run and
    #: each cell reports the run chosen by the rule that chose its runs' models.
    hps_paths: dict[str, Path] = field(default_factory=dict)
    tuning: bool = False
    jit_compile: bool | None = None
    progress_bar: bool = False
    command: str = ""
    #: Run every cell as a Ray task (see :mod:`anomaly_toolbox.experiments.ray_sweep`).
    ray: RaySettings | None = None
    #: Train every cell again instead of reusing finished runs (``--restart``).
    restart: bool = False
    #: Keep each run's checkpoints and per-rule best weights (``--keep-checkpoints``).
    keep_checkpoints: bool = False


def run_benchmark(config: BenchmarkConfig) -> tuple[str, Path]:
    """Run (or read back) every cell; write and return the Markdown report and its path.

    Grid files are checked before any data is loaded, and every label against the data before
    any run trains."""
    for method, path in config.hps_paths.items():
        load_grid(path, method_schema(method))
    raw = load_raw(config.dataset, config.data_dir, config.category, config.dataset_options)
    every_label = ([DATASETS[config.dataset].label] if raw.num_classes == 2
                   else list(range(raw.num_classes)))
    labels = every_label if config.labels is None else config.labels
    for label in labels:
        check_label(raw, label)
    cells = [(method, label, seed) for method in config.methods for label in labels
             for seed in config.seeds]
    configs = [RunConfig(
        experiment=method, dataset=config.dataset, protocol=config.protocol, label=label,
        seed=seed, log_dir=config.log_dir, data_dir=config.data_dir, category=config.category,
        dataset_options=config.dataset_options, hps_path=config.hps_paths.get(method),
        tuning=config.tuning, jit_compile=config.jit_compile, progress_bar=config.progress_bar,
        overrides=config.overrides, restart=config.restart,
        keep_checkpoints=config.keep_checkpoints) for method, label, seed in cells]
    names = [f"{method}, class {label}, seed {seed}" for method, label, seed in cells]
    if config.ray is not None:
        from anomaly_toolbox.experiments.ray_sweep import run_all

        outcomes = run_all(run_experiment, configs, names, raw, config.ray)
    else:
        outcomes, started = [], time.perf_counter()
        seconds_by_method: dict[str, list[float]] = defaultdict(list)
        for index, cell_config in enumerate(configs):
            left = time_left_text([method for method, _, _ in cells[index:]], seconds_by_method)
            print(f"\n##### benchmark run {index + 1}/{len(cells)}: {names[index]} "
                  f"({clock_text(time.perf_counter() - started)} so far{left})")
            cell_started = time.perf_counter()
            outcomes.append(run_experiment(cell_config, raw=raw))
            seconds_by_method[cell_config.experiment].append(
                recorded_seconds(outcomes[-1]) or time.perf_counter() - cell_started)
    runs = [failed_cell(cell_config, outcome) if isinstance(outcome, BaseException)
            else chosen_run(outcome) or outcome[0]
            for cell_config, outcome in zip(configs, outcomes)]
    report = benchmark_report(runs, config, labels, raw.source,
                              all_classes=set(every_label) <= set(labels))
    path = config.log_dir / f"benchmark-{data_label(raw)}-{config.protocol}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, report)
    published = {method: [(anchor.source, anchor.per_class) for anchor in anchors_for(
        method, config.dataset, config.protocol, "auroc", config.category)]
        for method in config.methods}
    figure = write_benchmark_figure(path.with_suffix(".png"), runs, config.methods, labels,
                                    published, f"{raw.name}, {PROTOCOL_NAMES[config.protocol]}\n"
                                    f"models chosen by: {rules_by_method(runs, config.methods)}")
    if figure is not None:
        print(f"Figure: {figure}")
    return report, path


def recorded_seconds(runs: list[dict[str, Any]]) -> float | None:
    """The wall time a cell's runs recorded (``timings.wall_seconds`` summed; for a cell read
    back, the time it took when trained), or None where a run recorded none (a baseline's, a
    failed run's)."""
    seconds = [run.get("timings", {}).get("wall_seconds") for run in runs]
    return float(sum(seconds)) if seconds and None not in seconds else None


def time_left_text(methods_left: list[str], seconds_by_method: dict[str, list[float]]) -> str:
    """``', about h:mm:ss left'`` for the cells of ``methods_left`` (one entry a cell), each at
    its method's mean recorded cell time; empty until every one of those methods has one."""
    if not methods_left or not all(seconds_by_method.get(method) for method in methods_left):
        return ""
    left = sum(sum(seconds_by_method[method]) / len(seconds_by_method[method])
               for method in methods_left)
    return f", about {clock_text(left)} left"


def failed_cell(config: RunConfig, error: BaseException) -> dict[str, Any]:
    """The table entry of a cell whose run could not finish (a Ray task out of retries)."""
    return {"experiment": config.experiment, "label": config.label, "seed": config.seed,
            "status": "failed", "error": str(error).strip().splitlines()[-1][:300]}


def describe_overrides(overrides: dict[str, Any], methods: list[str]) -> str:
    """``key=value`` per override, with the methods it reached when some lack the key."""
    parts = []
    for key, value in sorted(overrides.items()):
        reached = [method for method in methods if key in method_schema(method)]
        parts.append(f"{key}={value}" if len(reached) == len(methods)
                     else f"{key}={value} ({', '.join(reached)} only)")
    return ", ".join(parts) or "none"


def benchmark_report(runs: list[dict[str, Any]], config: BenchmarkConfig, labels: list[int],
                     source: str, all_classes: bool = True) -> str:
    """Title, data and settings, then the AUROC and AUPRC tables of the reported models, each
    followed by its table per selection rule, which holds the published numbers (and precision,
    recall and F1 at the top-share threshold for datasets that define one, as KDD99).
    ``all_classes``: ``labels`` cover every class the protocol takes in turn, so a paper's
    printed average stands beside ours; else its average is over the labels shown."""
    overrides = describe_overrides(config.overrides, config.methods)
    grids = ", ".join(f"{m}: {p}" for m, p in config.hps_paths.items())
    hyperparameters = ("each method's defaults" if not grids else
                       f"grid files ({grids}), "
                       + ("every combination, each cell the run its selection rule chose"
                          if config.tuning else "their first values") + ", else defaults")
    code = describe_code()
    lines = [
        f"## {runs[0]['dataset'] if runs else config.dataset}, "
        f"{PROTOCOL_NAMES[config.protocol]}",
        "",
        f"- Data: {source}",
        f"- Seeds: {', '.join(map(str, config.seeds))} (cells: mean ± sample std over seeds)",
        f"- Hyperparameters: {hyperparameters}; overrides: {overrides}",
        f"- Code: {code}",
    ]
    trained_by = Counter(run.get("code", "not recorded") for run in runs
                         if run.get("status") == "completed")
    if set(trained_by) - {code}:
        lines.append("- Cells trained by other code, cells per version: " + "; ".join(
            f"{version} ({count})" for version, count in sorted(trained_by.items())))
    lines.append(f"- Machine: {describe_machine()}")
    if config.command:
        lines.append(f"- Command: `{config.command}`")
    metrics = ["auroc", "auprc"]
    if any("top_f1" in run.get("test", {}) for run in runs):
        metrics += ["top_precision", "top_recall", "top_f1"]
    lines.append(f"- Reported models chosen by: {reported_rules(runs, config.methods)}")
    sources: list[str] = []
    rules_of_sources: dict[str, str | None] = {}
    for metric in metrics:
        published = {}
        for method in config.methods:
            for anchor in anchors_for(method, config.dataset, config.protocol, metric,
                                      config.category):
                if anchor.source not in sources:
                    sources.append(anchor.source)
                rules_of_sources.setdefault(anchor.source, anchor.selection)
                published.setdefault(method, []).append(
                    (f"[{sources.index(anchor.source) + 1}]", anchor))
        name = (f"Test {metric.upper().replace('TOP_', '').replace('_', ' ')}"
                f"{' (top-scoring share called anomalous)' if 'top' in metric else ''}")
        by_rule = metric in ("auroc", "auprc") and any("test_by_selection" in run for run in runs)
        lines += ["", f"{name}:", "", benchmark_table(runs, metric, config.methods, labels,
                                                      None if by_rule else published,
                                                      all_classes)]
        if by_rule:
            lines += ["", f"{name} by selection rule: the model each rule chose in the same runs "
                          f"(each paper's row under ours of the rule that paper used):", "",
                      rules_table(runs, metric, config.methods, labels, published,
                                  all_classes)]
    if sources:
        loaded = runs[0]["dataset"] if runs else config.dataset
        subset = (", a 5,000-image subset, so the two are not directly comparable"
                  if loaded == "mnist-5k" else "")
        lines += ["", "Published numbers (\"paper\" rows of the by-rule tables; columns for runs "
                      "of versions that reported one rule), measured on the full "
                      f"{FAMILY_DATA.get(config.dataset, config.dataset)}; ours on {loaded}"
                      f"{subset}.{'' if all_classes else SUBSET_AVERAGES} Sources:", ""]
        lines += [f"{index}. {source}; its model chosen by: "
                  f"{RULE_WORDS.get(rules_of_sources[source], 'not stated in the paper')}"
                  for index, source in enumerate(sources, 1)]
    if config.tuning:
        lines += ["", "Configurations chosen in each cell (by the rule that chose its runs' models, "
                      "on its selection metric, as results.md ranks them):",
                  "", "| method | class | seed | run | validation | hps |", "|---|---|---|---|---|---|"]
        for run in runs:
            validation = ", ".join(f"{k} {v:.4f}" for k, v in run.get("validation", {}).items())
            tuned = ", ".join(f"{k}={run['hps'][k]}"
                              for k in load_grid(config.hps_paths[run["experiment"]],
                                                 method_schema(run["experiment"]))
                              ) if run["experiment"] in config.hps_paths else "defaults"
            lines.append(f"| {run['experiment']} | {run['label']} | {run['seed']} | "
                         f"{run['run']} | {validation} | {tuned} |")
    return "\n".join(lines)


#: The note on paper averages in a table of some of the classes.
SUBSET_AVERAGES = (" With some of the classes, a paper's average is the mean of its numbers for "
                   "the classes shown ('-' where it prints only its average over all classes).")

#: What each selection rule means, for the reports' notes.
RULE_WORDS = {
    "validation": "validation (the best check on labelled validation anomalies)",
    "synthetic": "synthetic (the best check on synthetic anomalies made from normal "
                 "validation images; no labels)",
    "last": "last (the weights at the end of a fixed budget; no labels)",
}


def rules_by_method(runs: list[dict[str, Any]], methods: list[str]) -> str:
    """Per method, the rules that chose its reported models (with cell counts when mixed)."""
    parts = []
    for method in methods:
        counts = Counter(run.get("selection_rule", "validation") for run in runs
                         if run["experiment"] == method and run.get("status") == "completed")
        if counts:
            parts.append(f"{method}: " + ", ".join(
                rule if len(counts) == 1 else f"{rule} ({count})"
                for rule, count in sorted(counts.items())))
    return "; ".join(parts)


def reported_rules(runs: list[dict[str, Any]], methods: list[str]) -> str:
    """:func:`rules_by_method`, then what each rule means."""
    chosen = rules_by_method(runs, methods)
    return chosen + (". " if chosen else "") + "; ".join(
        RULE_WORDS.values()) + "; a scikit-learn baseline's one model counts as 'last' unless " \
        "labelled validation chose its kernel width"


def describe_machine() -> str:
    """CPU model, instruction sets and core count, oneDNN's state, GPUs (as TensorFlow sees
    them) and library versions."""
    import keras
    import tensorflow as tf

    gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]
    onednn = onednn_state()
    return (f"{describe_cpu()}, oneDNN {'on' if onednn['enabled'] else 'off'} "
            f"({onednn['decided_by']}), GPU: {', '.join(gpus) or 'none'}; TensorFlow "
            f"{tf.__version__}, Keras {keras.__version__}, Python {platform.python_version()}")
