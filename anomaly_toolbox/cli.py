"""The ``anomaly-box`` command line.

Heavy imports (TensorFlow) happen only when a run starts, so ``--help`` and ``--list`` are instant.
Bad input ends with one message and exit code 2.
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path

import click

from anomaly_toolbox.datasets import DATASET_HELP, DATASETS
from anomaly_toolbox.experiments import EXPERIMENTS

DEFAULT_ANOMALOUS_LABEL = 0


class BadInput(click.ClickException):
    """Invalid user input: printed as ``Error: ...`` with exit code 2."""

    exit_code = 2


def _check_name(kind: str, name: str, known: list[str]) -> None:
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise BadInput(f"unknown {kind} '{name}'.{hint} Known: {', '.join(known)} "
                       f"(see anomaly-box --list).")


def _print_catalogue() -> None:
    from anomaly_toolbox.experiments import trainer_class

    click.echo("Experiments (--experiment) and their hyperparameters (hps keys, defaults):")
    for name, (_, _, description) in EXPERIMENTS.items():
        click.echo(f"  {name:10s} {description}")
        for key, param in trainer_class(name).schema().items():
            default = "auto" if param.default is None else param.default
            click.echo(f"      {key:20s} {param.kind.__name__:5s} {default!s:10s} {param.help}")
    click.echo("\nDatasets (--dataset):")
    for name, text in DATASET_HELP.items():
        click.echo(f"  {name:10s} {text}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--experiment", "-e", help=f"Method to train: {', '.join(EXPERIMENTS)}.")
@click.option("--dataset", "-d", default="mnist", show_default=True,
              help=f"Dataset: {', '.join(DATASETS)}.")
@click.option("--hps-path", type=click.Path(path_type=Path),
              help="JSON grid of hyperparameters (see hps/). Default: the method's defaults.")
@click.option("--tuning/--no-tuning", default=False, show_default=True,
              help="Run every combination of the grid (else only the first values).")
@click.option("--anomalous-label", type=int,
              help=f"Protocol P1: this class is the anomaly, the rest normal "
                   f"(default: P1 with class {DEFAULT_ANOMALOUS_LABEL}).")
@click.option("--normal-label", type=int,
              help="Protocol P3: this class is normal, the rest anomalous.")
@click.option("--contamination", type=float, default=0.0, show_default=True,
              help="Share of anomalies put into the training split, in [0, 1).")
@click.option("--val-share", type=float, default=0.1, show_default=True,
              help="Share of training normals (and spare anomalies) held out for validation.")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of splits and training.")
@click.option("--log-dir", type=click.Path(path_type=Path), default=Path("logs"),
              show_default=True, help="Where TensorBoard logs, checkpoints, models, results go.")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="tensorflow-datasets data directory (default: tfds' own).")
@click.option("--jit/--no-jit", "jit_compile", default=None,
              help="XLA-compile train and score steps (default: hps key jit_compile, else on "
                   "when a GPU is visible).")
@click.option("--restart", is_flag=True, help="Delete this run's directory and train from scratch "
                                              "(default: resume or reuse it).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--list", "list_all", is_flag=True, help="List experiments, hps keys and datasets.")
def main(experiment: str | None, dataset: str, hps_path: Path | None, tuning: bool,
         anomalous_label: int | None, normal_label: int | None, contamination: float,
         val_share: float, seed: int, log_dir: Path, data_dir: Path | None,
         jit_compile: bool | None, restart: bool, quiet: bool, list_all: bool) -> None:
    """Train, select on validation and test GAN-based anomaly detectors.

    Example: anomaly-box --experiment egbad --dataset mnist --anomalous-label 3
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if list_all:
        _print_catalogue()
        return
    if experiment is None:
        raise BadInput("--experiment is required; one of: " + ", ".join(EXPERIMENTS))
    _check_name("experiment", experiment, list(EXPERIMENTS))
    _check_name("dataset", dataset, list(DATASETS))
    if anomalous_label is not None and normal_label is not None:
        raise BadInput("give either --anomalous-label (P1) or --normal-label (P3), not both")
    if not 0.0 <= contamination < 1.0:
        raise BadInput(f"--contamination must be in [0, 1), got {contamination}")
    if not 0.0 < val_share < 1.0:
        raise BadInput(f"--val-share must be in (0, 1), got {val_share}")
    if data_dir is not None and not data_dir.is_dir():
        raise BadInput(f"--data-dir {data_dir} is not a directory")

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from anomaly_toolbox.experiments.runner import RunConfig, run_experiment
    from anomaly_toolbox.hps import HpsError

    protocol, label = (("normal", normal_label) if normal_label is not None
                       else ("anomalous", DEFAULT_ANOMALOUS_LABEL if anomalous_label is None
                             else anomalous_label))
    config = RunConfig(experiment=experiment, dataset=dataset, protocol=protocol, label=label,
                       contamination=contamination, val_share=val_share, seed=seed,
                       log_dir=log_dir, data_dir=data_dir, hps_path=hps_path, tuning=tuning,
                       jit_compile=jit_compile, restart=restart, progress_bar=not quiet)
    try:
        results = run_experiment(config)
    except (HpsError, ValueError) as error:
        raise BadInput(str(error)) from None
    failed = [r["run"] for r in results if r.get("status") != "completed"]
    if failed:
        raise click.ClickException(f"{len(failed)} run(s) failed: {', '.join(failed)}")
