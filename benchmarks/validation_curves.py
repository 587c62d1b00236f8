"""Validation curves of runs: every check's validation metrics, read from each run's TensorBoard
event files, as a Markdown table with each metric's best check.

It shows which score ranks a run's validation data and when (jointgan's a and its parts Ln and
Lo, AMA's variants), and which epoch a run that selected on another metric would have kept (the
trainer keeps the highest value, and of equal ones the one whose other ranking metric, auroc or
auprc, is higher: the best column marks ties, that metric's row settles them). A resumed run's
event files repeat the epochs it trained again; the newest value of each epoch counts. Works on
running runs too. Run:
python benchmarks/validation_curves.py RUN_DIR [RUN_DIR ...] [--metrics auroc,ln_auroc]
[--epochs 19,38,57]
"""

from __future__ import annotations

import json
from pathlib import Path

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import click  # noqa: E402

from anomaly_toolbox.cli import int_list  # noqa: E402
from anomaly_toolbox.curves import check_curves  # noqa: E402


def validation_curves(run_dir: Path) -> dict[str, dict[int, float]]:
    """``{metric: {epoch: value}}`` of every ``validation/<metric>`` scalar of the run (see
    :func:`anomaly_toolbox.curves.check_curves`)."""
    return check_curves(run_dir, "validation/")


def best_check(curve: dict[int, float]) -> str:
    """The highest value and its epoch (the latest of equal ones, marked as a tie)."""
    top = max(curve.values())
    epochs = [epoch for epoch, value in sorted(curve.items()) if value == top]
    tie = f", tie with {', '.join(map(str, epochs[:-1]))}" if len(epochs) > 1 else ""
    return f"{top:.3f} ({epochs[-1]}{tie})"


def run_name(run_dir: Path) -> str:
    """``<experiment> class <label> seed <seed>`` from the run's results.json, else the folder."""
    results_file = run_dir / "results.json"
    if not results_file.is_file():
        return run_dir.name
    results = json.loads(results_file.read_text())
    return f"{results['experiment']} class {results['label']} seed {results['seed']}"


def epoch_list(context: click.Context, parameter: click.Parameter,
               text: str | None) -> list[int] | None:
    """``--epochs`` as integers, refused as the command line refuses ``--labels``."""
    return None if text is None else int_list("--epochs", text)


@click.command()
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--metrics", default=None,
              help="Comma-separated metrics to show, e.g. auroc,ln_auroc (default: all).")
@click.option("--epochs", "wanted_epochs", default=None, callback=epoch_list,
              help="Comma-separated epochs to show as columns (default: every check); the "
                   "best column always looks at every check.")
def main(run_dirs: tuple[Path, ...], metrics: str | None,
         wanted_epochs: list[int] | None) -> None:
    wanted_metrics = None if metrics is None else [m.strip() for m in metrics.split(",")
                                                     if m.strip()]
    if wanted_metrics == []:
        raise click.BadParameter("--metrics is empty; give metric names like auroc,ln_auroc, or "
                                 "leave it out for all")
    runs = [(run_dir, validation_curves(run_dir)) for run_dir in run_dirs]
    for run_dir, curves in runs:
        if not curves:
            raise click.BadParameter(f"{run_dir} has no validation scalars in its event files; "
                                     f"give a run directory (the one holding events.out.tfevents.*)"
                                     f" whose validation split has anomalies")
        missing = sorted(set(wanted_metrics or []) - set(curves))
        if missing:
            raise click.BadParameter(f"{run_dir} logged no {', '.join(missing)}; it has "
                                     f"{', '.join(sorted(curves))}")
    columns = wanted_epochs or sorted({epoch for _, curves in runs
                                       for curve in curves.values() for epoch in curve})
    print("| run | metric | " + " | ".join(f"epoch {epoch}" for epoch in columns)
          + " | best (epoch) |\n|" + "---|" * (len(columns) + 3))
    for run_dir, curves in runs:
        for metric in wanted_metrics or sorted(curves):
            curve = curves[metric]
            cells = [f"{curve[epoch]:.3f}" if epoch in curve else "-" for epoch in columns]
            print(f"| {run_name(run_dir)} | {metric} | " + " | ".join(cells)
                  + f" | {best_check(curve)} |")


if __name__ == "__main__":
    main()
