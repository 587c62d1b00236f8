"""The ``anomaly-box`` group and what its commands share: the options, the checks of bad input
(one message, exit code 2), and TensorFlow's quiet start once the command line has been checked.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import shlex
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from anomaly_toolbox.datasets import DATASETS
from anomaly_toolbox.faults import MachineFault, describe_fault
from anomaly_toolbox.hps import JsonError, strict_json
from anomaly_toolbox.quiet import start_tensorflow_quietly
from anomaly_toolbox.version import __version__

def start_tensorflow() -> None:
    """Import TensorFlow and probe its devices with the C++ start-up lines (CUDA probing on a
    CPU machine, oneDNN notes, absl's pre-initialisation warning; no log level silences them)
    kept off the console: file descriptor 2 goes to a temporary file meanwhile, replayed only
    if the import fails. Log messages print as plain lines (configured before any library can):
    ours (data fallbacks, skipped files) from INFO, TensorFlow's from WARNING but its retracing
    notes (every run of a grid or benchmark builds its own compiled steps, so they say nothing
    to fix), absl's (tensorflow-datasets' probing) from ERROR. TensorFlow's C++ log starts at
    warnings (``TF_CPP_MIN_LOG_LEVEL`` 2) unless the user set the variable."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("anomaly_toolbox").setLevel(logging.INFO)
    start_tensorflow_quietly()
    tensorflow_log = logging.getLogger("tensorflow")
    tensorflow_log.setLevel(logging.WARNING)
    if not any(isinstance(f, NoRetracingNotes) for f in tensorflow_log.filters):
        tensorflow_log.addFilter(NoRetracingNotes())
    logging.getLogger("absl").setLevel(logging.ERROR)


class NoRetracingNotes(logging.Filter):
    """Drops TensorFlow's "... triggered tf.function retracing" warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


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
    refuse_repeats(kind, names)
    return names


def refuse_repeats(kind: str, values: list[Any]) -> None:
    """A value given twice would double a benchmark's rows: refuse it."""
    repeated = sorted({str(value) for value in values if values.count(value) > 1})
    if repeated:
        raise BadInput(f"{kind} {', '.join(repeated)} given twice; give each once")


@contextlib.contextmanager
def bad_input_as_exit_2() -> Iterator[None]:
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


def check_output_dir(option: str, path: Path) -> None:
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


def check_output_file(option: str, path: Path) -> None:
    """``path`` is, or can be created as, a writable file."""
    if path.is_dir():
        raise BadInput(f"{option} {path} is a directory; give a file name such as "
                       f"{path / 'report.md'}")
    check_output_dir(option, path.parent)


def hps_overrides(experiments: list[str], epochs: int | None, batch_size: int | None,
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
    from anomaly_toolbox.hps import HpsError, checked_overrides
    from anomaly_toolbox.schemas import method_schema

    try:
        return checked_overrides(given, {experiment: method_schema(experiment)
                                         for experiment in experiments})
    except HpsError as error:
        raise BadInput(str(error)) from None


def int_list(option: str, text: str) -> list[int]:
    """``text`` as comma-separated integers; a non-integer or an empty list is refused, naming
    ``option``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadInput(f"{option} takes comma-separated integers like 0,1,2; got '{text}'") from None
    refuse_repeats(option, values)
    if not values:
        raise BadInput(f"{option} is empty; give comma-separated integers like 0,1,2")
    return values


class TrainByDefault(click.Group):
    """A group that runs ``train`` when the first argument names no subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            close = difflib.get_close_matches(args[0], list(self.commands), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise click.UsageError(f"unknown command '{args[0]}'.{hint} Commands: "
                                   f"{', '.join(self.commands)}", ctx)
        if args and args[0] not in {*self.commands, *ctx.help_option_names, "--version"}:
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


def ray_settings(ray_address: str | None, cpus_per_run: float,
                  gpus_per_run: float | None) -> Any:
    """The Ray settings of the command line, or None without --ray (Ray is not imported)."""
    if ray_address is None:
        if gpus_per_run is not None or cpus_per_run != 1.0:
            raise BadInput("--cpus-per-run and --gpus-per-run apply with --ray only")
        return None
    from anomaly_toolbox.experiments.ray_sweep import RaySettings

    return RaySettings(ray_address, cpus_per_run, gpus_per_run)


@click.group(cls=TrainByDefault, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="anomaly-box", message="%(prog)s %(version)s")
def main() -> None:
    """GAN-based anomaly detection: train, benchmark, score.

    Without a command, the arguments go to `train`: anomaly-box -e egbad -d mnist
    """


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's stop) ends a run like Ctrl-C: marked interrupted, resumable."""
    raise KeyboardInterrupt


def labels_to_protocol(dataset: str, anomalous_label: int | None,
                        normal_label: int | None) -> tuple[str, int]:
    """The protocol and class chosen, else the dataset's default (P1 class 0 for most)."""
    if anomalous_label is not None and normal_label is not None:
        raise BadInput("give either --anomalous-label (P1) or --normal-label (P3), not both")
    if normal_label is not None:
        return "normal", normal_label
    if anomalous_label is not None:
        return "anomalous", anomalous_label
    return DATASETS[dataset].protocol, DATASETS[dataset].label


def check_data(dataset: str, data_dir: Path | None, category: str | None,
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


#: ``--model`` help of the commands that read a trained model.
MODEL_HELP = ("A run directory (with results.json and model/), its model/ folder, an experiment "
              "directory of runs (its chosen run is used), or DIR/latest for the newest completed "
              "run under DIR ('latest' alone: under ./logs).")


def model_run(path: Path) -> Path:
    """The run or model directory that ``--model path`` names (:data:`MODEL_HELP`); a chosen
    or newest run is announced. Paths that name no runs come back unchanged, for the loader's
    message."""
    from anomaly_toolbox.results import RESULTS_FILE, choice_summary, chosen_run, read_results

    if path.name == "latest" and not path.exists():
        root = path.parent if str(path) != "latest" else Path("logs")
        finished = [f for f in root.rglob(RESULTS_FILE)
                    if (read_results(f) or {}).get("status") == "completed"]
        if not finished:
            raise BadInput(f"{path}: no completed run under {root}")
        newest = max(finished, key=lambda f: f.stat().st_mtime).parent
        click.echo(f"Model: {newest} (the newest completed run under {root})")
        return newest
    if not path.is_dir() or any((path / name).is_file() for name in (RESULTS_FILE,
                                                                       "metadata.json")):
        return path
    runs = [results for results in (read_results(f) for f in sorted(path.glob(
        f"*/{RESULTS_FILE}"))) if results is not None and "run" in results]
    if not runs or (path / "model").is_dir():
        return path
    chosen = chosen_run(runs)
    if chosen is None:
        raise BadInput(f"{path} is an experiment directory whose runs have no completed model to "
                       f"choose; pass one run directory")
    click.echo(f"Model: {path / chosen['run']}, this experiment directory's {choice_summary(runs)}")
    return path / chosen["run"]
