"""Results files: one ``results.json`` per run (written atomically) and a Markdown table over runs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_toolbox.version import __version__

if TYPE_CHECKING:
    from anomaly_toolbox.experiments.anchors import Anchor

RESULTS_FILE = "results.json"
TABLE_FILE = "results.md"
#: The runs that the last command of an experiment directory compared (``results.md`` and the
#: console choose among the same runs).
COMPARISON_FILE = "comparison.json"
TABLE_METRICS = ("auroc", "auprc", "f1", "precision", "recall")
RULES = ("validation", "synthetic", "last")


def safe_name(text: str, limit: int = 80) -> str:
    """``text`` as one file name that stays in its folder: characters other than letters,
    digits, ``.``, ``_`` and ``-`` become ``_``, no leading dot, and a name over ``limit``
    characters is cut and ends with a digest of the whole (names stay distinct)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".") or "_"
    if len(name) > limit:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        name = f"{name[:limit - 9]}-{digest}"
    return name


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` always holds either the old or the new complete file:
    through a temporary file of unpredictable name in the same folder (created exclusively, so
    a link planted there is never followed), then renamed over ``path``."""
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                           suffix=".partial")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """:func:`write_bytes_atomically` of ``text`` in UTF-8."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    write_text_atomically(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def describe_code(package: Path = Path(__file__).parent) -> str:
    """The toolbox version, plus the git commit when ``package`` is a checkout's tracked source
    (an installed copy, even inside a checkout's ignored venv, has none), marked when the
    package or its grids differ from that commit, with a digest of that difference, so two
    different sets of uncommitted edits read as different code."""
    version = f"anomaly-toolbox {__version__}"

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


def completed_runs(log_dir: Path,
                   methods: list[str] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """``(run_dir, results)`` of every completed run under a benchmark's ``log_dir`` (laid out
    ``<method>/<data and split>/<run>/results.json``), of ``methods`` only when given, sorted by
    method, class and seed."""
    runs = []
    for path in log_dir.glob(f"*/*/*/{RESULTS_FILE}"):
        results = read_results(path)
        if (isinstance(results, dict) and results.get("status") == "completed"
                and (methods is None or results.get("experiment") in methods)):
            runs.append((path.parent, results))
    return sorted(runs, key=lambda item: (str(item[1].get("experiment")),
                                          item[1].get("label", -1), item[1].get("seed", -1)))


def ranked_set(rule: str) -> str:
    """The set a rule's models are ranked on: the labelled validation split for 'validation',
    the synthetic set for the label-free rules ('last' has no checks; runs chosen by it are
    compared by their last model's synthetic metrics)."""
    return "validation" if rule == "validation" else "synthetic"


def _rule_checks(run: dict[str, Any], rule: str) -> dict[str, Any] | None:
    """A run's record of the model ``rule`` chose (``selection_checks``); a run with one model
    (a scikit-learn baseline) answers for every rule with it. Runs of older versions only have
    their validation metrics, which count for 'validation'."""
    checks = run.get("selection_checks")
    if checks is None:
        return {"validation": run.get("validation", {})} if rule == "validation" else None
    return checks.get(rule) or (next(iter(checks.values())) if len(checks) == 1 else None)


def ranking_key(run: dict[str, Any], metric: str, rule: str = "validation",
                ) -> tuple[float, float]:
    """How a completed run ranks under ``rule``: ``metric`` of the model the rule chose, on
    the rule's set (:func:`ranked_set`), then the other ranking metric."""
    other = "auprc" if metric == "auroc" else "auroc"
    values = (_rule_checks(run, rule) or {}).get(ranked_set(rule), {})
    return values.get(metric, -np.inf), values.get(other, -np.inf)


def selection_metric(runs: list[dict[str, Any]]) -> str:
    """The runs' shared ``selection_metric`` hps value (AUROC when they differ or lack one)."""
    metrics = {run.get("hps", {}).get("selection_metric", "auroc") for run in runs}
    return metrics.pop() if len(metrics) == 1 else "auroc"


def selection_rule(runs: list[dict[str, Any]]) -> str:
    """The rule that ranks runs, the same that chose each run's model: the runs' shared
    ``selection_rule``; where they differ, 'validation' when every run has labelled validation
    metrics, else 'synthetic'."""
    completed = [run for run in runs if run.get("status") == "completed"]
    rules = {run.get("selection_rule", "validation") for run in completed}
    if len(rules) == 1:
        return rules.pop()
    labelled = all(ranking_key(run, "auroc", "validation")[0] > -np.inf for run in completed)
    return "validation" if labelled else "synthetic"


def rule_test(run: dict[str, Any], rule: str) -> dict[str, float]:
    """The test metrics of the model ``rule`` chose in ``run`` (its reported ones when the run
    has no record per rule)."""
    by_rule = run.get("test_by_selection", {})
    if rule in by_rule:
        return by_rule[rule]
    return by_rule[next(iter(by_rule))] if len(by_rule) == 1 else run.get("test", {})


def chosen_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completed run that ranks best under :func:`selection_rule` (ties: the other ranking
    metric, then the run name); None when no run has metrics on that rule's set. The test split
    plays no part in the choice."""
    metric, rule = selection_metric(runs), selection_rule(runs)
    ranked = [run for run in runs if run.get("status") == "completed"
              and ranking_key(run, metric, rule)[0] > -np.inf]
    if not ranked:
        return None
    return max(sorted(ranked, key=lambda r: r.get("run", "")),
               key=lambda r: ranking_key(r, metric, rule))


def choice_summary(runs: list[dict[str, Any]]) -> str:
    """One line: which run the rule chose among which runs, its ranking metric and its test
    AUROC."""
    chosen = chosen_run(runs)
    names = ", ".join(run["run"] for run in runs if "run" in run)
    if chosen is None:
        return (f"No run was chosen among {names}: no completed run has metrics to rank on.")
    metric, rule = selection_metric(runs), selection_rule(runs)
    value = ranking_key(chosen, metric, rule)[0]
    return (f"chosen by {rule} ({ranked_set(rule)} {metric} {value:.4f}) among "
            f"{len(runs)} runs ({names}): run {chosen['run']}; its test auroc "
            f"{rule_test(chosen, rule)['auroc']:.4f}")


#: Pixel-level test metrics (data with ground-truth masks), as results.json's ``test_pixel``.
PIXEL_METRICS = ("pixel_auroc", "pro")


def markdown_table(runs: list[dict[str, Any]], compared: list[str] | None = None) -> str:
    """One row per run, best first under the ranking rule: name, status, whether it was compared
    and chosen, the hps that differ between runs, the rule that chose its model, the ranking
    metric, validation then test metrics of its model, its test AUROC under every selection
    rule, and training time. ``compared``: the names of the runs the choice is among (every
    run when None)."""
    names = {run.get("run") for run in runs} if compared is None else set(compared)
    pool = [run for run in runs if run.get("run") in names]
    varying = sorted({key for run in runs for key in run.get("hps", {})
                      if len({json.dumps(r.get("hps", {}).get(key)) for r in runs}) > 1})
    metric, rule, chosen = selection_metric(pool), selection_rule(pool), chosen_run(pool)
    pixel = [m for m in PIXEL_METRICS if any(m in run.get("test_pixel", {}) for run in runs)]
    header = ["run", "status", "compared", "chosen", *varying, "chosen by",
              f"rank: {ranked_set(rule)} {metric}", "validation auroc", "validation auprc",
              *(f"test {m}" for m in TABLE_METRICS),
              *(f"test auroc [{name}]" for name in RULES),
              *(f"test {m.replace('_', ' ')}" for m in pixel), "train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ordered = sorted(sorted(runs, key=lambda r: r.get("run", "")),
                     key=lambda r: (r.get("run") in names, ranking_key(r, metric, rule)),
                     reverse=True)
    for run in ordered:
        test, validation = run.get("test", {}), run.get("validation", {})
        by_rule = run.get("test_by_selection", {})
        rank = ranking_key(run, metric, rule)[0]
        cells = [run.get("run", "?"), run.get("status", "?"),
                 "yes" if run.get("run") in names else "no",
                 "**chosen**" if chosen is not None and run is chosen else "",
                 *(str(run.get("hps", {}).get(key, "")) for key in varying),
                 run.get("selection_rule", ""), f"{rank:.4f}" if rank > -np.inf else "",
                 *(f"{validation[m]:.4f}" if m in validation else "" for m in ("auroc", "auprc")),
                 *(f"{test[m]:.4f}" if m in test else "" for m in TABLE_METRICS),
                 *(f"{by_rule[name]['auroc']:.4f}" if name in by_rule else "" for name in RULES),
                 *(f"{run['test_pixel'][m]:.4f}" if m in run.get("test_pixel", {}) else ""
                   for m in pixel),
                 f"{run['timings']['train_seconds']:.0f}" if "timings" in run else ""]
        lines.append("| " + " | ".join(cells) + " |")
    note = (f"Compared: the {len(pool)} runs of the last command in this directory; runs marked "
            f"'no' were trained by other commands and take no part in the choice. Ranked by "
            f"{rule} on {ranked_set(rule)} {metric} of the model that rule chose in each run "
            f"(ties: the other metric, then the run name); the test columns play no part in "
            f"the choice. 'chosen by' is the rule that chose each run's reported model "
            f"(validation: labelled validation anomalies; synthetic: synthetic anomalies made "
            f"from normal validation images; last: the weights at the end of the budget).")
    return ("\n".join(lines) + "\n\n" + (choice_summary(pool) if pool else "") + "\n\n" + note
            + "\n")


def write_results_table(experiment_dir: Path, compared: list[str] | None = None) -> Path:
    """Regenerate ``results.md`` from every run's results under ``experiment_dir``;
    ``compared``: the runs of the command that writes it, stored so that later rewrites choose
    among the same runs (else the stored list, else every run)."""
    runs = [r for r in (read_results(p) for p in sorted(experiment_dir.glob(f"*/{RESULTS_FILE}")))
            if r is not None]
    stored = experiment_dir / COMPARISON_FILE
    if compared is not None:
        write_json_atomically(stored, {"runs": compared})
    else:
        previous = read_results(stored)
        compared = previous.get("runs") if isinstance(previous, dict) else None
    first = runs[0] if runs else {}
    title = (f"# {first.get('experiment', '')} on {first.get('dataset', '')}: "
             f"{first.get('protocol', '')} label {first.get('label', '')}, "
             f"contamination {first.get('contamination', '')}, seed {first.get('seed', '')}\n\n"
             f"Data used: {first.get('data_source', '')}\n\n")
    path = experiment_dir / TABLE_FILE
    write_text_atomically(path, title + markdown_table(runs, compared))
    return path


def mean_std(values: list[float]) -> str:
    """``mean ± std`` with 3 decimals; the sample std (ddof 1), left out for a single value."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def _column(by_cell: dict[tuple[str, int], list[dict[str, Any]]], method: str,
            labels: list[int], value: Callable[[dict[str, Any]], float | None]) -> list[str]:
    """One method's cells, a row per label and the average last. A cell is mean ± std over the
    seeds whose run completed and has a value; "failed" when every run of the cell failed, "-"
    when there is none yet. The average: per seed the mean over all labels (only seeds complete
    for every label), then mean ± std over those seeds."""
    def completed(label: int) -> dict[int, float]:
        return {run["seed"]: value(run) for run in by_cell.get((method, label), [])
                if run.get("status") == "completed" and value(run) is not None}

    per_label = [completed(label) for label in labels]
    cells = [mean_std(list(values.values())) if values
             else "failed" if by_cell.get((method, label)) else "-"
             for label, values in zip(labels, per_label)]
    seeds = set.intersection(*(set(values) for values in per_label)) if per_label else set()
    cells.append(mean_std([float(np.mean([values[seed] for values in per_label]))
                           for seed in sorted(seeds)]) if seeds else "-")
    return cells


def _published_column(anchor: Anchor, labels: list[int], all_classes: bool) -> list[str]:
    """A paper's numbers per label ("-" where it gives none) and its average: the printed one
    when ``labels`` are all the classes, else the mean of its numbers for ``labels`` ("-" unless
    it gives each)."""
    values = [anchor.per_class.get(label) for label in labels]
    average = (anchor.average if all_classes else
               None if None in values else sum(values) / len(values))
    return [f"{v:.3f}" if v is not None else "-" for v in [*values, average]]


def _table(labels: list[int], columns: list[tuple[str, list[str]]]) -> str:
    """Markdown rows of labels and the average row from ``(header, cells)`` columns."""
    lines = ["| class | " + " | ".join(header for header, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for row, label in enumerate([*labels, "**average**"]):
        lines.append(f"| {label} | " + " | ".join(cells[row] for _, cells in columns) + " |")
    return "\n".join(lines) + "\n"


def _by_cell(runs: list[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    by_cell: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        by_cell.setdefault((run["experiment"], run["label"]), []).append(run)
    return by_cell


def benchmark_table(runs: list[dict[str, Any]], metric: str, methods: list[str],
                    labels: list[int],
                    published: dict[str, list[tuple[str, Anchor]]] | None = None,
                    all_classes: bool = True) -> str:
    """Markdown table of test ``metric`` of each run's reported model: one row per class label,
    one column per method (cells as :func:`_column`), and the average row. ``published``: per
    method, ``(reference mark, anchor)`` pairs, each shown as a column beside the method's
    (averaged as :func:`_published_column` says with ``all_classes``)."""
    published = published or {}
    by_cell = _by_cell(runs)
    columns = []
    for method in methods:
        columns.append((method, _column(by_cell, method, labels,
                                        lambda run: run["test"].get(metric))))
        columns += [(f"{method} paper{mark}", _published_column(anchor, labels, all_classes))
                    for mark, anchor in published.get(method, [])]
    return _table(labels, columns)


def rules_table(runs: list[dict[str, Any]], metric: str, methods: list[str], labels: list[int],
                published: dict[str, list[tuple[str, Anchor]]] | None = None,
                all_classes: bool = True) -> str:
    """Markdown table of test ``metric`` under every selection rule a method's runs report: one
    row per method and rule (a scikit-learn baseline: its own rule, and 'last' for its default
    setting when labels chose another), one column per class label and the average; each
    paper's row right after ours of the rule that paper used (averaged as
    :func:`_published_column` says with ``all_classes``)."""
    published = published or {}
    by_cell = _by_cell(runs)
    lines = ["| method | model chosen by | " + " | ".join(map(str, labels)) + " | average |",
             "|---|---|" + "---|" * (len(labels) + 1)]
    for method in methods:
        reported = [run for run in runs if run["experiment"] == method]
        present = [rule for rule in RULES
                   if any(rule in run.get("test_by_selection", {}) for run in reported)]
        anchors = published.get(method, [])
        rows = []
        for rule in present:
            rows.append((rule, _column(
                by_cell, method, labels,
                lambda run, rule=rule: run.get("test_by_selection", {}).get(rule, {}).get(metric))))
            rows += [(f"paper{mark}, {rule}", _published_column(anchor, labels, all_classes))
                     for mark, anchor in anchors if anchor.selection == rule]
        rows += [(f"paper{mark}, {anchor.selection or 'rule not stated'}",
                  _published_column(anchor, labels, all_classes))
                 for mark, anchor in anchors if anchor.selection not in present]
        lines += [f"| {method} | {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    return "\n".join(lines) + "\n"
