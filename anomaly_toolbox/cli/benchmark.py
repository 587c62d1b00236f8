"""``anomaly-box benchmark``: paper-style tables over methods, classes and seeds."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

import anomaly_toolbox.cli.common as common
from anomaly_toolbox.cli.common import (CONTEXT, PATH, SEED, BadInput, bad_input_as_exit_2,
                                        check_data, check_output_dir, check_output_file,
                                        data_options, hps_overrides, int_list, main, name_list,
                                        ray_options, ray_settings)
from anomaly_toolbox.datasets import DATASETS
from anomaly_toolbox.registry import EXPERIMENTS


def _grid_files(entries: tuple[str, ...], methods: list[str]) -> dict[str, Path]:
    """``--hps-path`` values of benchmark: ``METHOD=FILE``, or a bare ``FILE`` for one method."""
    files = {}
    for entry in entries:
        method, _, file = entry.rpartition("=")
        if not method:
            if len(methods) != 1:
                raise BadInput(f"--hps-path {entry}: with several methods write METHOD=FILE, "
                               f"e.g. --hps-path {methods[0]}={entry}")
            method = methods[0]
        if method not in methods:
            raise BadInput(f"--hps-path {entry}: '{method}' is not among the benchmarked "
                           f"methods ({', '.join(methods)})")
        files[method] = Path(file)
    return files


@main.command(context_settings=CONTEXT)
@click.option("--experiments", "-e", "--methods", "-m", "methods", default="all",
              show_default=True,
              help="Comma-separated experiments (as --experiment of train; --methods and -m "
                   "are the older names), or 'all' (GAN methods and baselines: "
                   f"{', '.join(EXPERIMENTS)}).")
@data_options
@click.option("--protocol", type=click.Choice(["anomalous", "normal"]),
              help="anomalous = P1 (each class in turn is the anomaly), normal = P3 (each class "
                   "in turn is normal). Default: the dataset's (P1 for most).")
@click.option("--labels", help="Comma-separated classes (default: every class; for two-class "
                               "datasets the dataset's default class).")
@click.option("--seeds", default="42", show_default=True, help="Comma-separated seeds.")
@click.option("--epochs", type=int, help="Train every network for exactly this many epochs "
                                         "instead of each method's budget (min_steps off; "
                                         "said in the report).")
@click.option("--hps-path", "hps_paths", multiple=True,
              help="Grid file (or shipped grid name) of a method, as METHOD=FILE (repeatable; "
                   "a bare FILE when one method is benchmarked). Without --tuning its first "
                   "values are used.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Set an hps key for every benchmarked method that has it, as --set of "
                   "train (repeatable; listed in the report's header): --set "
                   "score_lambda=1.0.")
@click.option("--tuning/--no-tuning", default=False, show_default=True,
              help="Run every combination of the grid files; each cell reports the run chosen "
                   "on validation.")
@click.option("--log-dir", type=PATH, default=Path("logs"),
              show_default=True, help="Where runs and the report go; finished runs are reused.")
@click.option("--jit/--no-jit", "jit_compile", default=None,
              help="XLA-compile steps (default: each method's, see --list).")
@click.option("--output", type=PATH, help="Also write the report here.")
@click.option("--restart", is_flag=True,
              help="Train every cell from scratch instead of reusing its finished run (after "
                   "changing the code: runs are reused by version, data, seed and hps). An "
                   "interrupted --restart resumes when run again without it.")
@click.option("--keep-checkpoints", is_flag=True,
              help="Keep each run's epoch checkpoints and every selection rule's best weights "
                   "after it completes (default: only model/, all a completed run needs, "
                   "stays; they are most of its size on disk).")
@ray_options
def benchmark(methods: str, dataset: str, protocol: str | None, labels: str | None, seeds: str,
              epochs: int | None, hps_paths: tuple[str, ...], settings: tuple[str, ...],
              tuning: bool, log_dir: Path, data_dir: Path | None, category: str | None,
              label_column: str | None, normal_value: str | None, jit_compile: bool | None,
              output: Path | None, restart: bool, keep_checkpoints: bool, ray_address: str | None, cpus_per_run: float,
              gpus_per_run: float | None) -> None:
    """Paper-style tables: test AUROC and AUPRC per class, mean ± std over seeds.

    Example: anomaly-box benchmark -e ganomaly,ocsvm -d mnist-5k --labels 0,1 --seeds 1,2,3
    """
    chosen = list(EXPERIMENTS) if methods == "all" else name_list("experiment", methods,
                                                                  list(EXPERIMENTS))
    dataset_options = check_data(dataset, data_dir, category, label_column, normal_value)
    if epochs is not None and epochs <= 0:
        raise BadInput(f"--epochs must be > 0, got {epochs}")
    label_list = None if labels is None else int_list("--labels", labels)
    seed_list = int_list("--seeds", seeds)
    for seed in seed_list:
        if not SEED.min <= seed <= SEED.max:
            raise BadInput(f"--seeds: {seed} is not in the range {SEED.min}..{SEED.max}")
    grid_files = _grid_files(hps_paths, chosen)
    overrides = hps_overrides(chosen, None, None, settings)
    if epochs is not None:
        if "epochs" in overrides:
            raise BadInput("--epochs and --set epochs=... both set 'epochs'; give it once")
        overrides["epochs"] = epochs
    check_output_dir("--log-dir", log_dir)
    if output is not None:
        check_output_file("--output", output)
    ray = ray_settings(ray_address, cpus_per_run, gpus_per_run)

    common.start_tensorflow()
    from anomaly_toolbox.experiments.benchmark import BenchmarkConfig, run_benchmark

    config = BenchmarkConfig(
        methods=chosen, dataset=dataset, protocol=protocol or DATASETS[dataset].protocol,
        labels=label_list, seeds=seed_list, log_dir=log_dir, data_dir=data_dir,
        category=category, dataset_options=dataset_options, jit_compile=jit_compile,
        hps_paths=grid_files, tuning=tuning,
        overrides=overrides, ray=ray, restart=restart, keep_checkpoints=keep_checkpoints,
        command="anomaly-box " + shlex.join(click.get_current_context().find_root().meta.get(
            "argv", [])))
    with bad_input_as_exit_2():
        report, path = run_benchmark(config)
    if output is not None:
        from anomaly_toolbox.results import write_text_atomically

        output.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(output, report)
    click.echo(f"\n{report}\nReport: {path}")
