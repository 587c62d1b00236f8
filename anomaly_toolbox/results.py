"""Results files: one ``results.json`` per run (written atomically) and a Markdown table over runs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import anomaly_toolbox

if TYPE_CHECKING:
    from anomaly_toolbox.experiments.anchors import Anchor

RESULTS_FILE = "results.json"
TABLE_FILE = "results.md"
TABLE_METRICS = ("auroc", "auprc", "f1", "precision", "recall")


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` always holds either the old or the new complete file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    write_text_atomically(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def describe_code(package: Path = Path(anomaly_toolbox.__file__).parent) -> str:
    """The toolbox version, plus the git commit when ``package`` is a checkout's tracked source
    (an installed copy, even inside a checkout's ignored venv, has none), marked when the
    package or its grids differ from that commit, with a digest of that difference, so two
    different sets of uncommitted edits read as different code."""
    version = f"anomaly-toolbox {anomaly_toolbox.__version__}"

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(package), *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()

    try:
        if not git("ls-files", "--", "__init__.py"):
            return version
        commit = git("rev-parse", "--short", "HEAD")
        changes = git("diff", "--no-color", "--no-ext-diff", "HEAD", "--", ".", "../hps")
    except (OSError, subprocess.SubprocessError):
        return version
    if not changes:
        return f"{version}, git commit {commit}"
    digest = hashlib.sha256(changes.encode()).hexdigest()[:8]
    return f"{version}, git commit {commit} with uncommitted changes (diff {digest})"


def read_results(path: Path) -> dict[str, Any] | None:
    """A run's results, or None if the file is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def ranking_key(run: dict[str, Any], metric: str) -> tuple[float, float]:
    """How a completed run ranks on validation: ``metric``, then the other ranking metric."""
    other = "auprc" if metric == "auroc" else "auroc"
    validation = run.get("validation", {})
    return validation.get(metric, -np.inf), validation.get(other, -np.inf)


def selection_metric(runs: list[dict[str, Any]]) -> str:
    """The runs' shared ``selection_metric`` hps value (AUROC when they differ or lack one)."""
    metrics = {run.get("hps", {}).get("selection_metric", "auroc") for run in runs}
    return metrics.pop() if len(metrics) == 1 else "auroc"


def chosen_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completed run with the best validation selection metric (ties: the other ranking
    metric, then the run name); None when no run has validation metrics (no anomalies there).
    The test split plays no part in the choice."""
    metric = selection_metric(runs)
    ranked = [run for run in runs
              if run.get("status") == "completed" and run.get("validation", {}).get(metric)
              is not None]
    if not ranked:
        return None
    return max(sorted(ranked, key=lambda r: r.get("run", "")),
               key=lambda r: ranking_key(r, metric))


def choice_summary(runs: list[dict[str, Any]]) -> str:
    """One line: which run validation chose, its validation metric and its test AUROC."""
    chosen = chosen_run(runs)
    if chosen is None:
        return "No run was chosen: no completed run has validation anomalies to rank on."
    metric = selection_metric(runs)
    return (f"chosen on validation: run {chosen['run']} (validation {metric} "
            f"{chosen['validation'][metric]:.4f}); its test auroc {chosen['test']['auroc']:.4f}")


def markdown_table(runs: list[dict[str, Any]]) -> str:
    """One row per run, best validation first: name, status, whether validation chose it, the hps
    that differ between runs, validation then test metrics, and training time."""
    varying = sorted({key for run in runs for key in run.get("hps", {})
                      if len({json.dumps(r.get("hps", {}).get(key)) for r in runs}) > 1})
    header = ["run", "status", "chosen", *varying, "validation auroc", "validation auprc",
              *(f"test {m}" for m in TABLE_METRICS), "train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    metric, chosen = selection_metric(runs), chosen_run(runs)
    ordered = sorted(sorted(runs, key=lambda r: r.get("run", "")),
                     key=lambda r: ranking_key(r, metric), reverse=True)
    for run in ordered:
        test, validation = run.get("test", {}), run.get("validation", {})
        cells = [run.get("run", "?"), run.get("status", "?"),
                 "**chosen**" if chosen is not None and run is chosen else "",
                 *(str(run.get("hps", {}).get(key, "")) for key in varying),
                 *(f"{validation[m]:.4f}" if m in validation else "" for m in ("auroc", "auprc")),
                 *(f"{test[m]:.4f}" if m in test else "" for m in TABLE_METRICS),
                 f"{run['timings']['train_seconds']:.0f}" if "timings" in run else ""]
        lines.append("| " + " | ".join(cells) + " |")
    rule = (f"Ranked on validation {metric} (ties: the other validation metric, then the run "
            f"name); the test columns play no part in the choice.")
    return "\n".join(lines) + "\n\n" + (choice_summary(runs) if runs else "") + "\n\n" + rule + "\n"


def write_results_table(experiment_dir: Path) -> Path:
    """Regenerate ``results.md`` from every run's results under ``experiment_dir``."""
    runs = [r for r in (read_results(p) for p in sorted(experiment_dir.glob(f"*/{RESULTS_FILE}")))
            if r is not None]
    first = runs[0] if runs else {}
    title = (f"# {first.get('experiment', '')} on {first.get('dataset', '')}: "
             f"{first.get('protocol', '')} label {first.get('label', '')}, "
             f"contamination {first.get('contamination', '')}, seed {first.get('seed', '')}\n\n"
             f"Data used: {first.get('data_source', '')}\n\n")
    path = experiment_dir / TABLE_FILE
    write_text_atomically(path, title + markdown_table(runs))
    return path


def mean_std(values: list[float]) -> str:
    """``mean ± std`` with 3 decimals; the sample std (ddof 1), left out for a single value."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def benchmark_table(runs: list[dict[str, Any]], metric: str, methods: list[str],
                    labels: list[int],
                    published: dict[str, list[tuple[str, Anchor]]] | None = None) -> str:
    """Markdown table of test ``metric``: one row per class label, one column per method.

    A cell is mean ± std over the seeds whose run completed; "failed" when every run of the cell
    failed, "-" when there is none yet. The last row averages over classes: per seed the mean over
    all labels (only seeds complete for every label), then mean ± std over those seeds.
    ``published``: per method, ``(reference mark, anchor)`` pairs, each shown as a column beside
    the method's ("-" where the paper has no number for that class).
    """
    published = published or {}
    by_cell: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        by_cell.setdefault((run["experiment"], run["label"]), []).append(run)

    def completed(method: str, label: int) -> dict[int, float]:
        return {run["seed"]: run["test"][metric] for run in by_cell.get((method, label), [])
                if run.get("status") == "completed"}

    def published_cells(method: str, value: Callable[[Anchor], float | None]) -> list[str]:
        return [f"{value(anchor):.3f}" if value(anchor) is not None else "-"
                for _, anchor in published.get(method, [])]

    header = [column for method in methods
              for column in [method] + [f"{method} paper{mark}"
                                        for mark, _ in published.get(method, [])]]
    lines = ["| class | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for label in labels:
        cells = []
        for method in methods:
            values = completed(method, label)
            cells.append(mean_std(list(values.values())) if values
                         else "failed" if by_cell.get((method, label)) else "-")
            cells += published_cells(method, lambda anchor: anchor.per_class.get(label))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    averages = []
    for method in methods:
        per_label = [completed(method, label) for label in labels]
        seeds = set.intersection(*(set(values) for values in per_label)) if per_label else set()
        averages.append(mean_std([float(np.mean([values[seed] for values in per_label]))
                                  for seed in sorted(seeds)]) if seeds else "-")
        averages += published_cells(method, lambda anchor: anchor.average)
    lines.append("| **average** | " + " | ".join(averages) + " |")
    return "\n".join(lines) + "\n"
