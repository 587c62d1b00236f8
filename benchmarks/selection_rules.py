"""What each selection rule gave in finished runs: per run, the test AUROC of the model that the
labelled validation split, the synthetic set and the end of the budget chose (with their
epochs), what the labels bought over the best label-free rule, and how well the synthetic set
ranks the run's checks as the labelled validation split does (Spearman's rho over every check,
from the run's TensorBoard files). Per method, the averages over its runs (four decimals, to show
how close the label-free rules come), and the label-free rule with the higher average, which is
how each method's ``label_free_selection`` was set. Run on a benchmark's log directory:
python benchmarks/selection_rules.py LOG_DIR [--methods egbad,ganomaly]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import click  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from anomaly_toolbox.cli import name_list  # noqa: E402
from anomaly_toolbox.curves import check_curves  # noqa: E402
from anomaly_toolbox.registry import EXPERIMENTS  # noqa: E402
from anomaly_toolbox.results import RULES, completed_runs  # noqa: E402

LABEL_FREE = ("synthetic", "last")


def rank_agreement(run_dir: Path, metric: str = "auroc") -> float | None:
    """Spearman's rho between the validation and the synthetic ``metric`` over the run's
    checks (None with fewer than three common checks or a constant curve)."""
    validation = check_curves(run_dir, "validation/").get(metric, {})
    synthetic = check_curves(run_dir, "synthetic/").get(metric, {})
    epochs = sorted(set(validation) & set(synthetic))
    if len(epochs) < 3:
        return None
    rho = spearmanr([validation[e] for e in epochs], [synthetic[e] for e in epochs]).statistic
    return None if np.isnan(rho) else float(rho)


def run_row(run_dir: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Test AUROC and epoch per rule, what the labels bought, and the rank agreement."""
    by_rule, checks = results["test_by_selection"], results.get("selection_checks", {})
    row = {"method": results["experiment"], "label": results["label"], "seed": results["seed"],
           "reported": results.get("selection_rule", ""),
           "auroc": {rule: by_rule[rule]["auroc"] for rule in RULES if rule in by_rule},
           "epoch": {rule: checks.get(rule, {}).get("epoch") for rule in RULES if rule in by_rule},
           "rho": rank_agreement(run_dir)}
    free = [row["auroc"][rule] for rule in LABEL_FREE if rule in row["auroc"]]
    row["bought"] = (row["auroc"]["validation"] - max(free)
                     if "validation" in row["auroc"] and free else None)
    return row


def cell(value: float | None, epoch: int | None = None, signed: bool = False,
         digits: int = 3) -> str:
    """A value (``-`` when missing) with its epoch in brackets when given."""
    if value is None:
        return "-"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return f"{text} ({epoch})" if epoch is not None else text


def mean(values: list[float | None]) -> float | None:
    """The mean, or None when any value is missing."""
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present and len(present) == len(values) else None


@click.command()
@click.argument("log_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--methods", default=None,
              help="Comma-separated methods to show (default: every method in LOG_DIR).")
def main(log_dir: Path, methods: str | None) -> None:
    wanted = None if methods is None else name_list("experiment", methods, list(EXPERIMENTS))
    runs = [(run_dir, results) for run_dir, results in completed_runs(log_dir, wanted)
            if "test_by_selection" in results]
    if not runs:
        raise click.BadParameter(f"{log_dir} holds no completed run that reports its selection "
                                 f"rules (<method>/<data>/<run>/results.json with "
                                 f"test_by_selection); give the --log-dir of a benchmark")
    rows = [run_row(run_dir, results) for run_dir, results in runs]
    print("| method | class | seed | reported | validation (epoch) | synthetic (epoch) | "
          "last (epoch) | labels bought | rho(validation, synthetic) over checks |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['method']} | {row['label']} | {row['seed']} | {row['reported']} | "
              + " | ".join(cell(row["auroc"].get(rule), row["epoch"].get(rule)) for rule in RULES)
              + f" | {cell(row['bought'], signed=True)} | {cell(row['rho'], signed=True)} |")
    print("\nPer method, averaged over its runs (a rule missing from any run leaves '-'):\n")
    print("| method | runs | validation | synthetic | last | labels bought | mean rho | "
          "best label-free rule |")
    print("|---|---|---|---|---|---|---|---|")
    for method in sorted({row["method"] for row in rows}):
        own = [row for row in rows if row["method"] == method]
        averages = {rule: mean([row["auroc"].get(rule) for row in own]) for rule in RULES}
        free = {rule: averages[rule] for rule in LABEL_FREE if averages[rule] is not None}
        best = max(free, key=lambda rule: (free[rule], rule == "synthetic")) if free else "-"
        print(f"| {method} | {len(own)} | "
              + " | ".join(cell(averages[rule], digits=4) for rule in RULES)
              + f" | {cell(mean([row['bought'] for row in own]), signed=True, digits=4)}"
              + f" | {cell(mean([row['rho'] for row in own]), signed=True)} | {best} |")


if __name__ == "__main__":
    main()
