"""``anomaly-box train`` (the default command): one run, or a grid of runs, of one method."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

import anomaly_toolbox.cli.common as common
from anomaly_toolbox.cli.common import (CONTEXT, MAX_RUNS_UNASKED, PATH, SEED, BadInput,
                                        bad_input_as_exit_2, check_data, check_name,
                                        check_output_dir, data_options, hps_overrides,
                                        labels_to_protocol, main, ray_options, ray_settings)
from anomaly_toolbox.datasets import DATASET_HELP
from anomaly_toolbox.registry import EXPERIMENTS


def _print_catalogue() -> None:
    from anomaly_toolbox.catalogue import render
    from anomaly_toolbox.hps import shipped_grids

    click.echo(render(), nl=False)
    click.echo(f"\nShipped grids (--hps-path NAME): {', '.join(shipped_grids())}")
    click.echo("\nDatasets (--dataset):")
    for name, text in DATASET_HELP.items():
        click.echo(f"  {name:10s} {text}")


@main.command(context_settings=CONTEXT)
@click.option("--experiment", "-e",
              help=f"Experiment (the method) to train: {', '.join(EXPERIMENTS)}.")
@data_options
@click.option("--hps-path", type=PATH,
              help="JSON grid of hyperparameters: a file, or a shipped grid's name "
                   "(ganomaly_kdd99; see --list). Default: the method's defaults.")
@click.option("--tuning/--no-tuning", default=False, show_default=True,
              help="Run every combination of the grid (else only the first values).")
@click.option("--epochs", type=int, help="Train exactly this many epochs (short for --set "
                                         "epochs=N; min_steps then 0 unless set too).")
@click.option("--batch-size", type=int, help="Images per training batch (--set batch_size=N).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Set any hps key over the grid and the defaults, typed and checked as in "
                   "grid files (repeatable): --set learning_rate=1e-4 --set score=bce.")
@click.option("--anomalous-label", type=int,
              help="Protocol P1: this class is the anomaly, the rest normal (default: the "
                   "dataset's own, P1 with class 0 for most; P3 with class 0 for folder/mvtec).")
@click.option("--normal-label", type=int,
              help="Protocol P3: this class is normal, the rest anomalous.")
@click.option("--contamination", type=float, default=0.0, show_default=True,
              help="Share of anomalies put into the training split, in [0, 1).")
@click.option("--val-share", type=float, default=0.1, show_default=True,
              help="Share of training normals (and spare anomalies) held out for validation.")
@click.option("--seed", type=SEED, default=42, show_default=True,
              help="Seed of splits and training.")
@click.option("--log-dir", type=PATH, default=Path("logs"),
              show_default=True, help="Where TensorBoard logs, checkpoints, models, results go.")
@click.option("--jit/--no-jit", "jit_compile", default=None,
              help="XLA-compile train and score steps (default: hps key jit_compile, else on "
                   "with a GPU, off on a CPU where it measured no faster: see --list).")
@click.option("--deterministic/--no-deterministic", default=None,
              help="TensorFlow op determinism: identical results for a seed on one machine "
                   "(default: on without a GPU; on GPUs it is slower and opt-in).")
@click.option("--restart", is_flag=True, help="Delete this run's directory and train from scratch "
                                              "(default: resume or reuse it).")
@click.option("--keep-checkpoints", is_flag=True,
              help="Keep each run's epoch checkpoints and every selection rule's best weights "
                   "after it completes (default: only model/, all a completed run needs, "
                   "stays; they are most of its size on disk).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--distribute", type=click.Choice(["mirrored"]),
              help="mirrored: train each run data-parallel over all visible GPUs "
                   "(tf.distribute.MirroredStrategy; the global batch is split over them).")
@ray_options
@click.option("--yes", is_flag=True, help=f"Start a grid of more than {MAX_RUNS_UNASKED} runs "
                                          f"(without it such a grid is refused with its size).")
@click.option("--list", "list_all", is_flag=True, help="List experiments, hps keys and datasets.")
def train(experiment: str | None, dataset: str, hps_path: Path | None, tuning: bool,
          epochs: int | None, batch_size: int | None, settings: tuple[str, ...],
          anomalous_label: int | None, normal_label: int | None, contamination: float,
          val_share: float, seed: int, log_dir: Path, data_dir: Path | None,
          category: str | None, label_column: str | None, normal_value: str | None,
          jit_compile: bool | None, deterministic: bool | None,
          restart: bool, keep_checkpoints: bool, quiet: bool, distribute: str | None, ray_address: str | None,
          cpus_per_run: float,
          gpus_per_run: float | None, yes: bool, list_all: bool) -> None:
    """Train, select on validation and test GAN-based anomaly detectors.

    Example: anomaly-box --experiment egbad --dataset mnist --anomalous-label 3
    """
    if list_all:
        _print_catalogue()
        return
    if experiment is None:
        raise BadInput("--experiment is required; one of: " + ", ".join(EXPERIMENTS))
    check_name("experiment", experiment, list(EXPERIMENTS))
    dataset_options = check_data(dataset, data_dir, category, label_column, normal_value)
    protocol, label = labels_to_protocol(dataset, anomalous_label, normal_label)
    if not 0.0 <= contamination < 1.0:
        raise BadInput(f"--contamination must be in [0, 1), got {contamination}")
    if not 0.0 < val_share < 1.0:
        raise BadInput(f"--val-share must be in (0, 1), got {val_share}")
    check_output_dir("--log-dir", log_dir)
    overrides = hps_overrides([experiment], epochs, batch_size, settings)
    ray = ray_settings(ray_address, cpus_per_run, gpus_per_run)
    if ray is not None and not tuning:
        raise BadInput("--ray spreads the runs of a grid; add --tuning (with --hps-path) or "
                       "drop --ray for a single run")
    if tuning and hps_path is not None and not yes:
        _check_grid_size(experiment, hps_path)

    common.start_tensorflow()
    from anomaly_toolbox.experiments.runner import RunConfig, run_experiment

    config = RunConfig(experiment=experiment, dataset=dataset, protocol=protocol, label=label,
                       contamination=contamination, val_share=val_share, seed=seed,
                       log_dir=log_dir, data_dir=data_dir, category=category,
                       dataset_options=dataset_options,
                       hps_path=hps_path, tuning=tuning,
                       jit_compile=jit_compile, deterministic=deterministic, restart=restart,
                       keep_checkpoints=keep_checkpoints, progress_bar=not quiet, overrides=overrides, ray=ray,
                       distribute=distribute)
    with bad_input_as_exit_2():
        results = run_experiment(config)
    failed = [r.get("run_dir") or f"grid set {json.dumps(r['hps'], sort_keys=True)}"
              for r in results if r.get("status") != "completed"]
    if failed:
        raise click.ClickException(f"{len(failed)} run(s) failed: {', '.join(failed)} (the "
                                   f"reason is in each one's results.json and error.log)")


def _check_grid_size(experiment: str, hps_path: Path) -> None:
    """Refuse a grid of more than :data:`MAX_RUNS_UNASKED` combinations unless ``--yes``."""
    from anomaly_toolbox.hps import HpsError, load_grid
    from anomaly_toolbox.schemas import method_schema

    try:
        grid = load_grid(hps_path, method_schema(experiment))
    except HpsError as error:
        raise BadInput(str(error)) from None
    runs = math.prod(len(values) for values in grid.values())
    if runs > MAX_RUNS_UNASKED:
        raise BadInput(f"{hps_path} makes {runs:,} runs with --tuning; give --yes to start "
                       f"them all, or shrink the grid")
