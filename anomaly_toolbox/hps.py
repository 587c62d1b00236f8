"""Hyperparameter schemas, JSON grid files and grid expansion.

A grid file maps each key to ``{"type": "Discrete", "values": [...]}`` (the format of the
toolbox by Di Mattia et al., "A Survey on GANs for Anomaly Detection", arXiv 2019). Without
``--tuning`` a run takes the first value of every key; with it, every combination. Keys a file
leaves out take the method's defaults.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable
from typing import Any

GRID_TYPES = ("Discrete",)
#: Validation metrics a run can select its final model by.
SELECTION_METRICS = ("auroc", "auprc")
#: Rules that choose a run's final weights (``selection``): the best check on the labelled
#: validation split, the best check on the synthetic set (no labels), or the last weights.
SELECTION_RULES = ("validation", "synthetic", "last")
#: Epoch sizes that turn a method's epochs into ``min_steps`` (its schema's ``BUDGET_SOURCE``
#: says which one and why): one class of MNIST's training part, the one-class-normal protocol
#: (P3) of most papers here and the size for epoch counts that are ours;
MNIST_CLASS_IMAGES = 6000
#: one class of CIFAR-10's training part (papers that ran P3 on CIFAR-10 only);
CIFAR10_CLASS_IMAGES = 5000
#: nine classes of full MNIST under P1, as GANomaly's code splits them: 80% of the 63,000
#: normal images train;
MNIST_P1_TRAIN_IMAGES = 50_400
#: nine classes of CIFAR-10's training part under P1 (Skip-GANomaly's protocol).
CIFAR10_P1_TRAIN_IMAGES = 45_000
#: What ``anomaly-box --list`` says of a method whose schema states no ``BUDGET_SOURCE``.
BUDGET_SOURCE = "not stated"
#: Upper bounds of the budget and widths: far beyond any published setting (epochs <= 1,500,
#: filters <= 128, latent_dim <= 200), low enough that a typo is refused instead of running for
#: years or asking for terabytes (filters 4096 already needs tens of GiB for GANomaly).
MAX_EPOCHS = 100_000
MAX_STEPS = 100_000_000
MAX_BATCH = 65_536
MAX_FILTERS = 4096
MAX_LATENT_DIM = 65_536
MAX_STEPS_PER_EXECUTION = 1000
#: Why XLA stays off by default without a GPU, for a method that states no reason of its own
#: (``CPU_JIT_OFF_REASON`` of its schema module; empty: on everywhere). On both CPUs of our
#: machine kind, with oneDNN on (TensorFlow's default on the Intel Xeon, the toolbox's on the
#: AVX2-only AMD EPYC: :mod:`anomaly_toolbox.cpu`), XLA train steps were no faster than plain
#: graphs: whole runs on the Xeon (benchmarks/RESULTS.md, "XLA on a CPU"); on the EPYC GANomaly
#: 329 against 274 ms a step, EGBAD 65 against 57 ms (issue 42). Compiling adds 2-20 s per run
#: on top. (Only against plain graphs without oneDNN was XLA faster there, 1.3-1.7x: a user who
#: turns oneDNN off may want ``--jit``.)
CPU_JIT_OFF_REASON = ("XLA train steps measured no faster than plain graphs with oneDNN on two "
                      "x86 CPUs (AVX-512 and AVX2-only), and compiling adds 2-20 s "
                      "(benchmarks/RESULTS.md)")
#: The rule ``selection`` 'auto' uses without labelled validation anomalies, for a method whose
#: schema module states none (``LABEL_FREE_SELECTION``).
LABEL_FREE_SELECTION = "synthetic"


#: Largest JSON file the toolbox reads (grids, model metadata): far above any real one.
MAX_JSON_BYTES = 64 * 2**20


class HpsError(ValueError):
    """A hyperparameter file or value is invalid; the message names file, key and problem."""


class JsonError(ValueError):
    """JSON that parses but is refused: a key given twice, or nesting too deep to read."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise JsonError(f"key '{key}' appears twice in one object (JSON keeps only the "
                            f"last); give it once")
    return dict(pairs)


def strict_json(text: str) -> Any:
    """``text`` parsed as JSON; :class:`JsonError` for a duplicate key or too deep nesting,
    ``json.JSONDecodeError`` for malformed text."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise JsonError("JSON nested too deeply to read; no hyperparameter or model file "
                        "nests more than a few levels") from None


def json_file_text(path: Path) -> str:
    """The text of a JSON file; ``ValueError`` for something that is not a regular file or is
    larger than :data:`MAX_JSON_BYTES` (``FileNotFoundError`` and other ``OSError`` pass)."""
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is not a regular file (a device, pipe or folder); give a "
                         f"JSON file")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"{path} is {path.stat().st_size / 2**20:.0f} MiB; a JSON file here "
                         f"is at most {MAX_JSON_BYTES // 2**20} MiB. Is it the right file?")
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class HParam:
    """One hyperparameter: its type, default and allowed values.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``str``. ``default=None`` means "decided at run
    time" (e.g. ``jit_compile``: on when a GPU is visible).
    """

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False

    def check(self, value: Any) -> Any:
        """Return ``value`` converted to this parameter's type, or raise :class:`HpsError`."""
        if value is None and self.default is None:
            return None
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            raise HpsError(f"expects {self.kind.__name__}, got {value!r} "
                           f"({type(value).__name__})")
        if self.kind is float and not math.isfinite(value):
            raise HpsError(f"must be a finite number, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise HpsError(f"value {value!r} is not one of {list(self.choices)}")
        if self.positive and value <= 0:
            raise HpsError(f"must be > 0, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise HpsError(f"must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise HpsError(f"must be <= {self.maximum}, got {value!r}")
        return value


Schema = dict[str, HParam]


def schema_of(*params: HParam) -> Schema:
    """Schema keyed by parameter name."""
    return {param.name: param for param in params}


def defaults(schema: Schema) -> dict[str, Any]:
    """The default value of every key."""
    return {name: param.default for name, param in schema.items()}


def _unknown_key_message(key: str, schema: Schema) -> str:
    close = difflib.get_close_matches(key, schema, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown hyperparameter{hint} Known keys: {', '.join(sorted(schema))}"


def parse_grid(raw: Any, schema: Schema, source: str) -> dict[str, list[Any]]:
    """Validate a decoded grid file and return ``key -> list of checked values``.

    Args:
        raw: the decoded JSON document.
        source: name used in error messages (usually the file path).
    """
    if not isinstance(raw, dict):
        raise HpsError(f"{source}: the top level must be a JSON object mapping hyperparameter "
                       f"names to {{\"type\": \"Discrete\", \"values\": [...]}}")
    grid: dict[str, list[Any]] = {}
    for key, entry in raw.items():
        where = f"{source}: key '{key}'"
        if key not in schema:
            raise HpsError(f"{where}: {_unknown_key_message(key, schema)}")
        if not isinstance(entry, dict) or "values" not in entry:
            raise HpsError(f"{where}: expected {{\"type\": \"Discrete\", \"values\": [...]}}, "
                           f"got {json.dumps(entry)}")
        extra = set(entry) - {"type", "values"}
        if extra:
            raise HpsError(f"{where}: unexpected field(s) {sorted(extra)}; only 'type' and "
                           f"'values' are allowed")
        if entry.get("type", "Discrete") not in GRID_TYPES:
            raise HpsError(f"{where}: type {entry['type']!r} is not supported; use "
                           f"{' or '.join(GRID_TYPES)}")
        values = entry["values"]
        if not isinstance(values, list) or not values:
            raise HpsError(f"{where}: 'values' must be a non-empty list, got {json.dumps(values)}")
        checked = []
        for value in values:
            try:
                checked.append(schema[key].check(value))
            except HpsError as error:
                raise HpsError(f"{where}: {error}") from None
        grid[key] = checked
    return grid


def shipped_grids() -> dict[str, Path]:
    """The grids that ship with the package, by name: the repository's ``hps/``, installed as
    ``anomaly_toolbox/grids/`` (setup.py), read from ``hps/`` itself in a checkout."""
    package = Path(__file__).resolve().parent
    folder = package / "grids"
    if not folder.is_dir():
        folder = package.parent / "hps"
    return {path.stem: path for path in sorted(folder.glob("*.json"))}


def grid_path(path_or_name: str | Path) -> Path:
    """``path_or_name`` itself when it is a file; else the shipped grid of that name
    (``ganomaly_kdd99`` or ``ganomaly_kdd99.json``), so that examples work without a checkout."""
    path = Path(path_or_name)
    if path.is_file() or len(path.parts) != 1:
        return path
    return shipped_grids().get(path.name.removesuffix(".json"), path)


def load_grid(path: str | Path, schema: Schema) -> dict[str, list[Any]]:
    """Read and validate a grid file (a path, or the name of a shipped grid, see
    :func:`grid_path`); :class:`HpsError` says what is wrong and where."""
    path = grid_path(path)
    try:
        text = json_file_text(path)
    except FileNotFoundError:
        names = sorted(shipped_grids())
        close = difflib.get_close_matches(path.name.removesuffix(".json"), names, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise HpsError(f"{path}: hyperparameter file not found.{hint} Give a path, or the name "
                       f"of a shipped grid: {', '.join(names)}") from None
    except UnicodeDecodeError:
        raise HpsError(f"{path}: not a text file; a hyperparameter file is UTF-8 JSON like "
                       f"{{\"epochs\": {{\"type\": \"Discrete\", \"values\": [10]}}}}") from None
    except OSError as error:
        raise HpsError(f"{path}: cannot read hyperparameter file ({error.strerror})") from None
    except ValueError as error:
        raise HpsError(str(error)) from None
    try:
        raw = strict_json(text)
    except json.JSONDecodeError as error:
        raise HpsError(f"{path}: malformed JSON at line {error.lineno}, column {error.colno}: "
                       f"{error.msg}") from None
    except JsonError as error:
        raise HpsError(f"{path}: {error}") from None
    return parse_grid(raw, schema, str(path))


class Hps(dict):
    """A run's hyperparameters: every key of its schema, and in :attr:`given` the keys the
    user set (a grid file, ``--set``/``--epochs``, API keywords) rather than left to defaults."""

    def __init__(self, values: dict[str, Any], given: Iterable[str] = ()) -> None:
        super().__init__(values)
        self.given = frozenset(given)

    def set_given(self, values: dict[str, Any]) -> Hps:
        """Set ``values``, one layer the user gave (a grid's values, then the command line's
        over them), and mark their keys given. An ``epochs`` in a layer without ``min_steps``
        is trained exactly: ``min_steps`` becomes 0, so no step budget (the default, or an
        earlier layer's) stretches it. Returns self."""
        self.update(values)
        self.given = self.given | set(values)
        if "epochs" in values and "min_steps" not in values and "min_steps" in self:
            self["min_steps"] = 0
        return self


def with_defaults(schema: Schema, values: dict[str, Any]) -> Hps:
    """The schema's defaults with ``values`` set as one given layer (:meth:`Hps.set_given`)."""
    return Hps(defaults(schema)).set_given(values)


def expand(grid: dict[str, list[Any]], schema: Schema, tuning: bool,
           overrides: dict[str, Any] | None = None) -> list[Hps]:
    """Full hyperparameter sets: every combination when ``tuning``, else the first values only;
    ``overrides`` (checked command-line values) are set over the grid's as a layer of their own.
    A grid's keys count as given even where their first value is the default."""
    overrides = {key: value for key, value in (overrides or {}).items() if key in schema}
    keys = list(grid)
    combos = itertools.product(*(grid[key] for key in keys)) if tuning else [
        tuple(values[0] for values in grid.values())]
    return [with_defaults(schema, dict(zip(keys, combo))).set_given(overrides)
            for combo in combos]


def full_hps(values: dict[str, Any], schema: Schema, source: str = "hyperparameters",
             ) -> Hps:
    """The defaults updated with checked ``values`` (the keys given); :class:`HpsError` names a
    bad key or value."""
    checked = {}
    for key, value in values.items():
        if key not in schema:
            raise HpsError(f"{source}: '{key}': {_unknown_key_message(key, schema)}")
        try:
            checked[key] = schema[key].check(value)
        except HpsError as error:
            raise HpsError(f"{source}: '{key}': {error}") from None
    return with_defaults(schema, checked)


def common_hparams(epochs: int, batch_size: int, learning_rate: float, beta_1: float,
                   latent_dim: int, filters: int, ema_decay: float = 0.0,
                   images_per_epoch: int = MNIST_CLASS_IMAGES) -> tuple[HParam, ...]:
    """Keys every method has; each method passes its defaults (published ones where they exist).

    The training budget is stated twice so that it holds on any dataset size: ``epochs``, and
    ``min_steps``, the train steps those epochs give on ``images_per_epoch`` images: the epoch of
    the protocol and data a published count refers to (default: one class of MNIST,
    :data:`MNIST_CLASS_IMAGES`). The schema's ``BUDGET_SOURCE`` says where both come from. A run
    trains ``max(epochs, ceil(min_steps / steps per epoch))`` epochs (see
    :meth:`anomaly_toolbox.trainers.base.Trainer.planned_epochs`).
    """
    return (
        HParam("epochs", int, epochs, "training epochs (given alone, trained exactly: "
               "min_steps becomes 0)", positive=True, maximum=MAX_EPOCHS),
        HParam("min_steps", int, epochs * math.ceil(images_per_epoch / batch_size),
               "train at least this many steps: more epochs on small datasets (0 = epochs "
               f"only; default: what the default epochs give on {images_per_epoch:,} images; "
               "the budget line below says why)", minimum=0,
               maximum=MAX_STEPS),
        HParam("batch_size", int, batch_size, "images per training batch", positive=True,
               maximum=MAX_BATCH),
        HParam("learning_rate", float, learning_rate, "Adam learning rate", positive=True),
        HParam("beta_1", float, beta_1, "Adam beta_1", minimum=0.0, maximum=0.999),
        HParam("latent_dim", int, latent_dim, "size of the latent code z", positive=True,
               maximum=MAX_LATENT_DIM),
        HParam("filters", int, filters, "filters of the first conv stage (width)", positive=True,
               maximum=MAX_FILTERS),
        HParam("ema_decay", float, ema_decay, "decay of the weight EMA used for scoring and "
               "saved models (0 = off)", minimum=0.0, maximum=0.9999),
        HParam("jit_compile", bool, None, "XLA-compile train and score steps (default: on with "
               "a GPU; see the note below)"),
        HParam("steps_per_execution", int, 1, "train steps per compiled call of the training "
               "loop (as Keras' steps_per_execution); when epochs are shorter, one call spans "
               "epochs up to the next check. Results do not depend on it", positive=True,
               maximum=MAX_STEPS_PER_EXECUTION),
        HParam("mixed_precision", bool, False, "compute in bfloat16 with float32 weights and "
               "outputs (Keras 'mixed_bfloat16'; speeds up recent GPUs, no loss scaling needed)"),
        HParam("selection_metric", str, "auroc", "validation metric that picks the final model",
               choices=SELECTION_METRICS),
        HParam("selection", str, "auto", "rule that chooses the final weights: 'validation' (best "
               "check on labelled validation anomalies), 'synthetic' (best check on synthetic "
               "anomalies made from normal validation images; no labels), 'last' (the weights "
               "at the end of the budget); 'auto': validation when it holds labelled anomalies, "
               "else the method's measured label-free rule. Every rule's test numbers are "
               "reported", choices=("auto", *SELECTION_RULES)),
    )


def shallow_hparams() -> tuple[HParam, ...]:
    """Keys every scikit-learn baseline has."""
    return (
        HParam("max_train_samples", int, 10_000, "random subsample of the training split "
               "(kernel methods scale quadratically)", positive=True),
        HParam("selection_metric", str, "auroc", "validation metric that picks the candidate",
               choices=SELECTION_METRICS),
        HParam("pca_variance", float, 0.0, "share of the training images' variance kept by a "
               "PCA projection fitted on them before the detector (0 = off: raw pixels)",
               minimum=0.0, maximum=1.0),
    )


def check_batch_fits(hps: dict[str, Any], train_size: int) -> None:
    """``ValueError`` when a training batch is larger than the training split (no step at all)."""
    if hps.get("batch_size", 0) > train_size:
        raise ValueError(f"batch_size {hps['batch_size']} is larger than the {train_size} "
                         f"training samples, so an epoch has no step; lower batch_size")


def checked_overrides(given: list[tuple[str, str, Any]], schemas: dict[str, Schema]
                      ) -> dict[str, Any]:
    """Values set over the grid and the defaults (``--epochs``, ``--set KEY=VALUE``), checked
    once for every run that will use them: ``given`` holds ``(option, key, value)``, and each
    key must be an hps key of at least one method of ``schemas`` (method name -> schema) and
    pass the check of every one that has it. :class:`HpsError` names the option."""
    known = list(dict.fromkeys(key for schema in schemas.values() for key in schema))
    overrides: dict[str, Any] = {}
    for option, key, value in given:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise HpsError(f"{option}: '{key}' is not an hps key of {' or '.join(schemas)}."
                           f"{hint} Known: {', '.join(known)} (see anomaly-box --list).")
        if key in overrides:
            raise HpsError(f"{option}: '{key}' is set twice; give it once")
        try:
            checked = [schema[key].check(value) for schema in schemas.values() if key in schema]
        except HpsError as error:
            raise HpsError(f"{option}: {error}") from None
        overrides[key] = checked[0]
    return overrides

