"""The ``anomaly-box`` command line: ``train`` (the default command), ``benchmark``, ``score``.

``anomaly-box --experiment egbad`` is short for ``anomaly-box train --experiment egbad``. Heavy
imports (TensorFlow) happen only once the command line has been checked, so ``--help``,
``--list`` (from the saved catalogue) and bad input answer at once; TensorFlow's C++ start-up
lines stay off the console. Bad input ends with one message and exit code 2.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import math
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from anomaly_toolbox.datasets import DATASETS, DATASET_HELP
from anomaly_toolbox.experiments import EXPERIMENTS
from anomaly_toolbox.faults import MachineFault, describe_fault
from anomaly_toolbox.hps import JsonError, strict_json

if TYPE_CHECKING:
    import numpy as np

_tensorflow_imported_quietly = False


def _start_tensorflow() -> None:
    """Import TensorFlow and probe its devices with the C++ start-up lines (CUDA probing on a
    CPU machine, oneDNN notes, absl's pre-initialisation warning; no log level silences them)
    kept off the console: file descriptor 2 goes to a temporary file meanwhile, replayed only
    if the import fails. Log messages print as plain lines (configured before any library can):
    ours (data fallbacks, skipped files) from INFO, TensorFlow's from WARNING, absl's
    (tensorflow-datasets' probing) from ERROR."""
    global _tensorflow_imported_quietly
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("anomaly_toolbox").setLevel(logging.INFO)
    if not _tensorflow_imported_quietly:
        with _stderr_captured(replay_on_error=True):
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
        _tensorflow_imported_quietly = True
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    logging.getLogger("absl").setLevel(logging.ERROR)


@contextlib.contextmanager
def _stderr_captured(replay_on_error: bool) -> Iterator[None]:
    """File descriptor 2 (where C++ libraries log) goes to a temporary file meanwhile; it is
    written out if the block raises and ``replay_on_error``, else dropped."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            if replay_on_error:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class BadInput(click.ClickException):
    """Invalid user input: printed as ``Error: ...`` with exit code 2."""

    exit_code = 2


def check_name(kind: str, name: str, known: list[str]) -> None:
    """Refuse ``name`` unless it is in ``known``, suggesting the closest known name."""
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise BadInput(f"unknown {kind} '{name}'.{hint} Known: {', '.join(known)} "
                       f"(see anomaly-box --list).")


def name_list(kind: str, text: str, known: list[str]) -> list[str]:
    """``text`` as comma-separated names of ``kind``, each checked by :func:`check_name`; empty
    parts are skipped, as :func:`int_list` does, and no name at all is refused."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise BadInput(f"no {kind} given; give comma-separated names like {','.join(known[:2])}")
    for name in names:
        check_name(kind, name, known)
    _refuse_repeats(kind, names)
    return names


def _refuse_repeats(kind: str, values: list[Any]) -> None:
    """A value given twice would double a benchmark's rows: refuse it."""
    repeated = sorted({str(value) for value in values if values.count(value) > 1})
    if repeated:
        raise BadInput(f"{kind} {', '.join(repeated)} given twice; give each once")


@contextlib.contextmanager
def _bad_input_as_exit_2() -> Iterator[None]:
    """Errors that mean bad input (hps, labels, data that is missing or malformed), a run that
    another process is writing, or a fault of the machine (full disk, no permission, no
    memory) -> one line and exit 2; Ctrl-C -> one line with the command that resumes, exit
    130."""
    from anomaly_toolbox.datasets import DatasetUnavailable
    from anomaly_toolbox.experiments.ray_sweep import RayUnavailable
    from anomaly_toolbox.locks import RunLocked

    try:
        yield
    except (ValueError, DatasetUnavailable, RunLocked, MachineFault, RayUnavailable) as error:
        raise BadInput(str(error)) from None
    except KeyboardInterrupt:
        args = [arg for arg in click.get_current_context().find_root().meta.get("argv", [])
                if arg != "--restart"]
        click.echo(f"\nInterrupted. Resume with: anomaly-box {shlex.join(args)}", err=True)
        raise click.exceptions.Exit(130) from None


def _check_output_dir(option: str, path: Path) -> None:
    """``path`` is, or can be created as, a writable directory; checked without creating it."""
    if path.exists() and not path.is_dir():
        raise BadInput(f"{option} {path} is a file, not a directory; choose a directory")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"{option} {path} cannot be created: {existing} is a file; choose another "
                       f"{option}")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise BadInput(f"{option} {path} is not writable ({existing}: {error.strerror}); "
                       f"choose another {option}") from None


def _check_output_file(option: str, path: Path) -> None:
    """``path`` is, or can be created as, a writable file."""
    if path.is_dir():
        raise BadInput(f"{option} {path} is a directory; give a file name such as "
                       f"{path / 'report.md'}")
    _check_output_dir(option, path.parent)


def _overrides(experiments: list[str], epochs: int | None, batch_size: int | None,
               settings: tuple[str, ...]) -> dict[str, Any]:
    """``--epochs``, ``--batch-size`` and ``--set KEY=VALUE`` as hps values checked by every one
    of ``experiments`` that has the key (at least one must). A VALUE is read as JSON when it
    parses (1e-4, true, null, "text"), else as a plain string."""
    given: list[tuple[str, str, Any]] = [
        (option, key, value) for option, key, value in (("--epochs", "epochs", epochs),
                                                        ("--batch-size", "batch_size", batch_size))
        if value is not None]
    for entry in settings:
        key, separator, text = entry.partition("=")
        if not separator or not key.strip():
            raise BadInput(f"--set takes KEY=VALUE, e.g. --set learning_rate=1e-4; got '{entry}'")
        try:
            value = strict_json(text)
        except json.JSONDecodeError:
            value = text
        except JsonError as error:
            raise BadInput(f"--set {key.strip()}: {error}") from None
        given.append((f"--set {key.strip()}", key.strip(), value))
    if not given:
        return {}
    _start_tensorflow()
    from anomaly_toolbox.experiments import trainer_class
    from anomaly_toolbox.hps import HpsError

    schemas = [trainer_class(experiment).schema() for experiment in experiments]
    known = list(dict.fromkeys(key for schema in schemas for key in schema))
    overrides: dict[str, Any] = {}
    for option, key, value in given:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise BadInput(f"{option}: '{key}' is not an hps key of {' or '.join(experiments)}."
                           f"{hint} Known: {', '.join(known)} (see anomaly-box --list).")
        if key in overrides:
            raise BadInput(f"{option}: '{key}' is set twice; give it once")
        try:
            checked = [schema[key].check(value) for schema in schemas if key in schema]
        except HpsError as error:
            raise BadInput(f"{option}: {error}") from None
        overrides[key] = checked[0]
    return overrides


def int_list(option: str, text: str) -> list[int]:
    """``text`` as comma-separated integers; a non-integer or an empty list is refused, naming
    ``option``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadInput(f"{option} takes comma-separated integers like 0,1,2; got '{text}'") from None
    _refuse_repeats(option, values)
    if not values:
        raise BadInput(f"{option} is empty; give comma-separated integers like 0,1,2")
    return values


def _print_catalogue() -> None:
    from anomaly_toolbox.catalogue import saved
    from anomaly_toolbox.hps import shipped_grids

    click.echo(saved(), nl=False)
    click.echo(f"\nShipped grids (--hps-path NAME): {', '.join(shipped_grids())}")
    click.echo("\nDatasets (--dataset):")
    for name, text in DATASET_HELP.items():
        click.echo(f"  {name:10s} {text}")


class TrainByDefault(click.Group):
    """A group that runs ``train`` when the first argument names no subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            close = difflib.get_close_matches(args[0], list(self.commands), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise click.UsageError(f"unknown command '{args[0]}'.{hint} Commands: "
                                   f"{', '.join(self.commands)}", ctx)
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["train", *args]
        ctx.meta["argv"] = list(args)
        return super().parse_args(ctx, args)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """SIGTERM (a scheduler's stop) ends any command like Ctrl-C, from the first moment."""
        signal.signal(signal.SIGTERM, _interrupt)
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; Ctrl-C or SIGTERM outside a run -> "Interrupted." and exit 130, a
        fault of the machine (full disk, no permission, no memory) -> one line and exit 2."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            raise click.exceptions.Exit(130) from None
        except Exception as error:  # noqa: BLE001 - only machine faults are turned into a line
            fault = describe_fault(error)
            if fault is None:
                raise
            raise BadInput(fault) from None


CONTEXT = {"help_option_names": ["-h", "--help"]}
#: Grid runs that start without --yes.
MAX_RUNS_UNASKED = 100


class GivenPath(click.Path):
    """A path option that refuses the empty string (which would mean the current directory)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty; give a path (write . for the current directory)", param, ctx)
        return super().convert(value, param, ctx)


PATH = GivenPath(path_type=Path)
TRUST_MODEL = click.option(
    "--trust-model", is_flag=True,
    help="Also load model files that can run code when loaded (a scikit-learn baseline's pickle "
         "written by earlier versions): only for a model directory you made yourself.")
SEED = click.IntRange(0, 2**32 - 1)


def data_options(command: Callable) -> Callable:
    """--dataset, --data-dir and --category, shared by the commands that load data."""
    for option in reversed([
        click.option("--dataset", "-d", default="mnist", show_default=True,
                     help=f"Dataset: {', '.join(DATASETS)}."),
        click.option("--data-dir", type=PATH,
                     help="tfds data directory (default: tfds' own); for kdd99 the folder with "
                          "the raw KDD file or scikit-learn's cache; for folder/mvtec the image "
                          "folder; for csv the CSV file."),
        click.option("--category", help="Category of datasets that have them (mvtec: e.g. "
                                        "bottle)."),
        click.option("--label-column", help="csv: the column that holds each row's label."),
        click.option("--normal-value", help="csv: the label of normal rows (class 0); every "
                                            "other label is class 1."),
    ]):
        command = option(command)
    return command


def ray_options(command: Callable) -> Callable:
    """--ray [ADDRESS], --cpus-per-run and --gpus-per-run, shared by train and benchmark."""
    for option in reversed([
        click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
                     metavar="[ADDRESS]",
                     help="Run each run (each grid set, each benchmark cell) as a Ray task: "
                          "alone, on a local Ray instance; with auto or ray://host:10001, on "
                          "that cluster (--log-dir must then be a shared filesystem). Needs "
                          "pip install \"anomaly-toolbox[ray]\"."),
        click.option("--cpus-per-run", type=click.FloatRange(min=0, min_open=True), default=1.0,
                     show_default=True, help="With --ray: CPUs each run asks for."),
        click.option("--gpus-per-run", type=click.FloatRange(min=0),
                     help="With --ray: GPUs each run asks for (default: 1 when the cluster "
                          "has GPUs, else 0)."),
    ]):
        command = option(command)
    return command


def _ray_settings(ray_address: str | None, cpus_per_run: float,
                  gpus_per_run: float | None) -> Any:
    """The Ray settings of the command line, or None without --ray (Ray is not imported)."""
    if ray_address is None:
        if gpus_per_run is not None or cpus_per_run != 1.0:
            raise BadInput("--cpus-per-run and --gpus-per-run apply with --ray only")
        return None
    from anomaly_toolbox.experiments.ray_sweep import RaySettings

    return RaySettings(ray_address, cpus_per_run, gpus_per_run)


@click.group(cls=TrainByDefault, context_settings=CONTEXT)
def main() -> None:
    """GAN-based anomaly detection: train, benchmark, score.

    Without a command, the arguments go to `train`: anomaly-box -e egbad -d mnist
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's stop) ends a run like Ctrl-C: marked interrupted, resumable."""
    raise KeyboardInterrupt


def _labels_to_protocol(dataset: str, anomalous_label: int | None,
                        normal_label: int | None) -> tuple[str, int]:
    """The protocol and class chosen, else the dataset's default (P1 class 0 for most)."""
    if anomalous_label is not None and normal_label is not None:
        raise BadInput("give either --anomalous-label (P1) or --normal-label (P3), not both")
    if normal_label is not None:
        return "normal", normal_label
    if anomalous_label is not None:
        return "anomalous", anomalous_label
    return DATASETS[dataset].protocol, DATASETS[dataset].label


def _check_data(dataset: str, data_dir: Path | None, category: str | None,
                label_column: str | None, normal_value: str | None) -> dict[str, str]:
    """Check the data options; returns the dataset's own options (csv: label column and normal
    value)."""
    check_name("dataset", dataset, list(DATASETS))
    spec = DATASETS[dataset]
    if spec.data_file:
        if data_dir is None or not data_dir.is_file():
            raise BadInput(f"dataset '{dataset}' reads one file: pass --data-dir FILE.csv"
                           f"{'' if data_dir is None else f' ({data_dir} is not a file)'}")
    elif data_dir is not None and not data_dir.is_dir():
        raise BadInput(f"--data-dir {data_dir} is not a directory")
    if data_dir is not None and dataset == "mnist-5k":
        raise BadInput("--data-dir does not apply to mnist-5k, which is bundled with the "
                       "toolbox; drop --data-dir (or use -d mnist or -d folder for your data)")
    if DATASETS[dataset].needs_category and not category:
        raise BadInput(f"dataset '{dataset}' needs --category, e.g. --category bottle")
    if category and not DATASETS[dataset].needs_category:
        raise BadInput(f"--category applies to datasets with categories (mvtec), not "
                       f"'{dataset}'")
    given = {"label_column": label_column, "normal_value": normal_value}
    for option, value in given.items():
        flag = "--" + option.replace("_", "-")
        if value is not None and option not in spec.options:
            raise BadInput(f"{flag} applies to the csv dataset, not '{dataset}'")
        if value is None and option in spec.options:
            raise BadInput(f"dataset '{dataset}' needs {flag}")
    return {option: value for option, value in given.items() if option in spec.options}


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
          restart: bool, quiet: bool, distribute: str | None, ray_address: str | None,
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
    dataset_options = _check_data(dataset, data_dir, category, label_column, normal_value)
    protocol, label = _labels_to_protocol(dataset, anomalous_label, normal_label)
    if not 0.0 <= contamination < 1.0:
        raise BadInput(f"--contamination must be in [0, 1), got {contamination}")
    if not 0.0 < val_share < 1.0:
        raise BadInput(f"--val-share must be in (0, 1), got {val_share}")
    _check_output_dir("--log-dir", log_dir)
    overrides = _overrides([experiment], epochs, batch_size, settings)
    ray = _ray_settings(ray_address, cpus_per_run, gpus_per_run)
    if ray is not None and not tuning:
        raise BadInput("--ray spreads the runs of a grid; add --tuning (with --hps-path) or "
                       "drop --ray for a single run")
    if tuning and hps_path is not None and not yes:
        _check_grid_size(experiment, hps_path)

    _start_tensorflow()
    from anomaly_toolbox.experiments.runner import RunConfig, run_experiment

    config = RunConfig(experiment=experiment, dataset=dataset, protocol=protocol, label=label,
                       contamination=contamination, val_share=val_share, seed=seed,
                       log_dir=log_dir, data_dir=data_dir, category=category,
                       dataset_options=dataset_options,
                       hps_path=hps_path, tuning=tuning,
                       jit_compile=jit_compile, deterministic=deterministic, restart=restart,
                       progress_bar=not quiet, overrides=overrides, ray=ray,
                       distribute=distribute)
    with _bad_input_as_exit_2():
        results = run_experiment(config)
    failed = [r.get("run_dir") or f"grid set {json.dumps(r['hps'], sort_keys=True)}"
              for r in results if r.get("status") != "completed"]
    if failed:
        raise click.ClickException(f"{len(failed)} run(s) failed: {', '.join(failed)} (the "
                                   f"reason is in each one's results.json and error.log)")


def _check_grid_size(experiment: str, hps_path: Path) -> None:
    """Refuse a grid of more than :data:`MAX_RUNS_UNASKED` combinations unless ``--yes``."""
    from anomaly_toolbox.experiments import trainer_class
    from anomaly_toolbox.hps import HpsError, load_grid

    try:
        grid = load_grid(hps_path, trainer_class(experiment).schema())
    except HpsError as error:
        raise BadInput(str(error)) from None
    runs = math.prod(len(values) for values in grid.values())
    if runs > MAX_RUNS_UNASKED:
        raise BadInput(f"{hps_path} makes {runs:,} runs with --tuning; give --yes to start "
                       f"them all, or shrink the grid")


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
@ray_options
def benchmark(methods: str, dataset: str, protocol: str | None, labels: str | None, seeds: str,
              epochs: int | None, hps_paths: tuple[str, ...], settings: tuple[str, ...],
              tuning: bool, log_dir: Path, data_dir: Path | None, category: str | None,
              label_column: str | None, normal_value: str | None, jit_compile: bool | None,
              output: Path | None, restart: bool, ray_address: str | None, cpus_per_run: float,
              gpus_per_run: float | None) -> None:
    """Paper-style tables: test AUROC and AUPRC per class, mean ± std over seeds.

    Example: anomaly-box benchmark -e ganomaly,ocsvm -d mnist-5k --labels 0,1 --seeds 1,2,3
    """
    chosen = list(EXPERIMENTS) if methods == "all" else name_list("experiment", methods,
                                                                  list(EXPERIMENTS))
    dataset_options = _check_data(dataset, data_dir, category, label_column, normal_value)
    if epochs is not None and epochs <= 0:
        raise BadInput(f"--epochs must be > 0, got {epochs}")
    label_list = None if labels is None else int_list("--labels", labels)
    seed_list = int_list("--seeds", seeds)
    for seed in seed_list:
        if not SEED.min <= seed <= SEED.max:
            raise BadInput(f"--seeds: {seed} is not in the range {SEED.min}..{SEED.max}")
    grid_files = _grid_files(hps_paths, chosen)
    overrides = _overrides(chosen, None, None, settings)
    if epochs is not None:
        if "epochs" in overrides:
            raise BadInput("--epochs and --set epochs=... both set 'epochs'; give it once")
        overrides["epochs"] = epochs
    _check_output_dir("--log-dir", log_dir)
    if output is not None:
        _check_output_file("--output", output)
    ray = _ray_settings(ray_address, cpus_per_run, gpus_per_run)

    _start_tensorflow()
    from anomaly_toolbox.experiments.benchmark import BenchmarkConfig, run_benchmark

    config = BenchmarkConfig(
        methods=chosen, dataset=dataset, protocol=protocol or DATASETS[dataset].protocol,
        labels=label_list, seeds=seed_list, log_dir=log_dir, data_dir=data_dir,
        category=category, dataset_options=dataset_options, jit_compile=jit_compile,
        hps_paths=grid_files, tuning=tuning,
        overrides=overrides, ray=ray, restart=restart,
        command="anomaly-box " + shlex.join(click.get_current_context().find_root().meta.get(
            "argv", [])))
    with _bad_input_as_exit_2():
        report, path = run_benchmark(config)
    if output is not None:
        from anomaly_toolbox.results import write_text_atomically

        output.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(output, report)
    click.echo(f"\n{report}\nReport: {path}")


@main.command(context_settings=CONTEXT)
@click.option("--model", "model_path", required=True, type=PATH,
              help="A run directory (with results.json and model/) or a model directory.")
@click.argument("images", nargs=-1, required=True, type=PATH)
@TRUST_MODEL
@click.option("--threshold", type=float, help="Call scores >= this anomalous (default: the "
                                              "threshold chosen on validation at training).")
@click.option("--fpr", type=float, help="Instead, the threshold with this false-positive rate "
                                        "on the normal validation images, in (0, 1).")
@click.option("--csv", "csv_path", type=PATH, help="Also write a CSV here.")
@click.option("--save-maps", type=PATH,
              help="Write a PNG per image here: input, reconstruction and the error map "
                   "over the input on one colour scale for all images (the validation "
                   "anomalies' 99th percentile), with score and verdict (reconstructing "
                   "methods).")
def score(model_path: Path, images: tuple[Path, ...], trust_model: bool, threshold: float | None,
          fpr: float | None, csv_path: Path | None, save_maps: Path | None) -> None:
    """Score image files (or folders of them), or the rows of CSV files for a model trained on
    a table (--dataset csv), with a trained model.

    Prints per image or row: the anomaly score, the score normalised to [0, 1] by the
    validation minimum and maximum, and whether it is anomalous under the threshold.

    Example: anomaly-box score --model logs/egbad/.../0d6965c683 digits/ --csv scores.csv
    """
    if threshold is not None and fpr is not None:
        raise BadInput("give either --threshold or --fpr, not both")
    if threshold is not None and not math.isfinite(threshold):
        raise BadInput(f"--threshold must be a finite number, got {threshold}")
    if fpr is not None and not 0.0 < fpr < 1.0:
        raise BadInput(f"--fpr must be in (0, 1), got {fpr}")
    if csv_path is not None:
        _check_output_file("--csv", csv_path)
    if save_maps is not None:
        _check_output_dir("--save-maps", save_maps)
    _start_tensorflow()
    from anomaly_toolbox.detector import load

    for path in images:
        if not path.exists():
            raise BadInput(f"{path} is neither an image file (or CSV of rows) nor a folder")
    with _bad_input_as_exit_2():
        model = load(model_path, trusted=trust_model)
        if threshold is not None or fpr is not None:
            model.set_threshold(threshold=threshold, fpr=fpr)
        if save_maps is not None and not model.reconstructs:
            raise BadInput(f"{model.experiment} does not reconstruct its input images, so it "
                           f"has no anomaly maps; --save-maps works with reconstructing "
                           f"methods on images")
        if model.table is not None:
            read, x = _table_rows(images, model.table)
        elif len(model.metadata["sample_shape"]) != 3:
            raise BadInput("this model was trained on kdd99 features, encoded by its loader "
                           "without a saved encoder; score encoded features with the Python "
                           "API (anomaly_toolbox.load(...).score_samples(array)), or train on "
                           "the table with --dataset csv to score raw rows here")
        else:
            read, x = _images(images, tuple(model.metadata["sample_shape"]))
        _check_outputs_spare_inputs(csv_path, save_maps, images, model_path, model.model_dir)
    scores = model.score_samples(x)
    normalised = model.normalise(scores)
    flags = scores >= model.threshold
    rows = [(str(path), float(s), float(n), bool(f))
            for path, s, n, f in zip(read, scores, normalised, flags)]
    kind = "row" if model.table is not None else "image"
    width = max(len(row[0]) for row in rows)
    click.echo(f"{kind:{width}s}  {'score':>12s}  {'normalised':>10s}  is_anomaly")
    for path, value, norm, flag in rows:
        click.echo(f"{path:{width}s}  {value:12.6g}  {norm:10.4f}  {flag}")
    click.echo(f"threshold {model.threshold:.6g} ({model.metadata['threshold_rule']}); "
               f"{int(flags.sum())} of {len(rows)} anomalous")
    if csv_path is not None:
        _write_scores_csv(csv_path, kind, rows)
    if save_maps is not None:
        _save_maps(model, x, read, scores, save_maps)


def _check_outputs_spare_inputs(csv_path: Path | None, maps: Path | None,
                                given_paths: tuple[Path, ...], model_path: Path,
                                model_dir: Path) -> None:
    """Refuse a ``--csv`` file or ``--save-maps`` folder that is one of the given files (or in
    a given folder's files) or lies in the model (its run directory or model folder)."""
    def real(path: Path) -> Path:
        return Path(os.path.realpath(path))  # never raises, even on a looping link

    inputs = set()
    for given in given_paths:
        files = given.rglob("*") if given.is_dir() else [given]
        inputs |= {real(file) for file in files}
    protected = [real(model_dir), real(model_path)]
    for option, path in (("--csv", csv_path), ("--save-maps", maps)):
        if path is None:
            continue
        target = real(path)
        if target in inputs:
            raise BadInput(f"{option} {path} is one of the files being scored; writing there "
                           f"would destroy it. Choose another {option}")
        folders = protected + ([real(given) for given in given_paths if given.is_dir()]
                               if option == "--save-maps" else [])
        inside = next((folder for folder in folders
                       if target == folder or folder in target.parents), None)
        if inside is not None:
            raise BadInput(f"{option} {path} is inside {inside}, which is read here (the model "
                           f"or the images); writing there could destroy it. Choose a path "
                           f"outside it")


def _images(paths: tuple[Path, ...], shape: tuple[int, ...]) -> tuple[list[str], np.ndarray]:
    """Image files (folders searched) read for a model of ``shape``: their names and pixels."""
    from anomaly_toolbox.datasets.folder import IMAGE_SUFFIXES, read_images_for_model

    files = []
    for path in paths:
        named = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       ) if path.is_dir() else [path]
        files += [p for p in named if p.is_file()]
        for skipped in (p for p in named if not p.is_file()):
            click.echo(f"skipped (not a readable file: a broken or looping link, or a folder): "
                       f"{skipped}", err=True)
    if not files:
        raise BadInput(f"no image files ({', '.join(IMAGE_SUFFIXES)}) among the given paths")
    x, read, skipped = read_images_for_model(files, shape)
    for path in skipped:
        click.echo(f"skipped (not a readable image): {path}", err=True)
    if not read:
        raise BadInput("none of the given files could be read as an image")
    return [str(path) for path in read], x


def _table_rows(paths: tuple[Path, ...], table) -> tuple[list[str], np.ndarray]:
    """Rows of CSV files (folders searched for ``*.csv``) with the columns ``table`` encodes:
    names ``FILE:ROW`` (ROW counts data rows from 1) and the raw cells."""
    import numpy as np

    from anomaly_toolbox.datasets.table import TableError, read_table

    files = []
    for path in paths:
        files += sorted(path.rglob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise BadInput("no .csv files among the given paths; this model scores table rows")
    names, parts = [], []
    for file in files:
        header, rows = read_table(file)
        parts.append(table.select(header, rows, str(file)))
        try:
            table.transform(parts[-1])
        except TableError as error:
            raise TableError(f"{file}: {error}") from None
        names += [f"{file}:{row}" for row in range(1, len(rows) + 1)]
    return names, np.concatenate(parts)


@main.command(context_settings=CONTEXT)
@click.option("--model", "model_path", required=True, type=PATH,
              help="A run directory (with results.json and model/) or a model directory.")
@click.option("--format", "fmt", type=click.Choice(["saved_model", "tflite", "onnx"]),
              default="saved_model", show_default=True,
              help="saved_model: a TensorFlow SavedModel; tflite: TensorFlow Lite built-in ops; "
                   "onnx: ONNX via tf2onnx (pip install \"anomaly-toolbox[onnx]\").")
@click.option("--output", type=PATH,
              help="Directory to write (default: export/ beside the model's model/ folder).")
@TRUST_MODEL
def export(model_path: Path, fmt: str, output: Path | None, trust_model: bool) -> None:
    """Export a trained model as one function: raw uint8 images (or CSV rows as strings) in,
    anomaly scores and verdicts out, with the threshold and preprocessing in
    anomaly_toolbox_export.json beside it. Loads with plain TensorFlow.

    Example: anomaly-box export --model logs/egbad/.../0d6965c683 --format saved_model
    """
    if output is not None:
        _check_output_dir("--output", output)
    _start_tensorflow()
    from anomaly_toolbox.detector import load
    from anomaly_toolbox.export import EXPORT_METADATA, export as export_model

    with _bad_input_as_exit_2():
        model = load(model_path, trusted=trust_model)
        output = output or model.model_dir.parent / "export"
        _check_output_dir("--output", output)
        with _stderr_captured(replay_on_error=False):  # the converter's MLIR dump; the
            target = export_model(model, output, fmt)  # error message names the ops
    spec = json.loads((output / EXPORT_METADATA).read_text(encoding="utf-8"))["input"]
    click.echo(f"Exported {model.experiment} as {fmt}: {target}\n"
               f"Input: {spec['name']}, {spec['dtype']} {spec['shape']}; output: score (float32) "
               f"and is_anomaly (score >= {model.threshold:.6g})\n"
               f"Details: {output / EXPORT_METADATA}")
    if fmt == "saved_model":
        click.echo(f"Use: scorer = tf.saved_model.load('{target}'); "
                   f"scorer.score({spec['name']})['score']")
    elif fmt == "tflite":
        click.echo(f"Use: tf.lite.Interpreter(model_path='{target}').get_signature_runner()"
                   f"({spec['name']}=...)['score']")
    else:
        click.echo(f"Use: onnxruntime.InferenceSession('{target}').run(['score'], "
                   f"{{'{spec['name']}': ...}})[0]")


def _write_scores_csv(path: Path, kind: str, rows: list[tuple[str, float, float, bool]]) -> None:
    import csv
    import io

    from anomaly_toolbox.results import write_text_atomically

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([kind, "score", "normalised_score", "is_anomaly"])
    writer.writerows((_spreadsheet_safe(name), *values) for name, *values in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, buffer.getvalue())
    click.echo(f"CSV: {path}")


def _spreadsheet_safe(cell: str) -> str:
    """A text cell that a spreadsheet shows as text, never runs as a formula: one that begins
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (OWASP's
    advice against CSV injection)."""
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _save_maps(model, x, paths: list[str], scores, directory: Path) -> None:
    import tensorflow as tf

    from anomaly_toolbox.results import safe_name
    from anomaly_toolbox.summaries import anomaly_map_pictures, error_scale

    inputs, reconstructions = model.model_inputs(x), model.reconstruct(x)
    scale = model.metadata.get("map_scale")
    if scale is None:
        scale = error_scale(inputs, reconstructions)
        click.echo(f"This model predates stored map scales: the maps share the 99th percentile "
                   f"of these images' pixel errors ({scale:.3g}) as their scale")
    directory.mkdir(parents=True, exist_ok=True)
    pictures = anomaly_map_pictures(inputs, reconstructions, scores, model.threshold, scale)
    for index, (path, picture) in enumerate(zip(paths, pictures)):
        tf.io.write_file(str(directory / f"{index:05d}-{safe_name(Path(path).stem)}.png"),
                         tf.io.encode_png(picture))
    click.echo(f"Maps: {directory} ({len(paths)} PNGs: input, reconstruction, |x - x_hat| over "
               f"the input on one colour scale, 0 to {scale:.3g}; score and verdict)")