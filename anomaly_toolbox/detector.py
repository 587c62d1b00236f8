"""A scikit-learn-style API over every method (model files: :mod:`anomaly_toolbox.model_files`).

    from anomaly_toolbox import EGBAD, load
    model = EGBAD(epochs=20).fit(x_train)            # uint8 images [N, H, W, C] (or [N, H, W])
    scores = model.decision_function(x)              # anomaly scores, higher = more anomalous
    flags = model.predict(x)                         # 1 = anomalous, 0 = normal
    model.save("my-model"); same = load("my-model")

Conventions are PyOD's detectors': ``decision_function`` is the anomaly score (higher = more
anomalous), ``predict`` returns 1 for anomalies and 0 for normal samples, and after ``fit`` the
training samples' scores, the threshold and their labels are ``decision_scores_``,
``threshold_`` and ``labels_``; ``fit_predict`` fits and labels the training samples.
``score_samples`` keeps scikit-learn's sign (higher = more normal): the negated anomaly score.
Setters return the detector, so calls chain.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import math
import shutil
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from anomaly_toolbox.datasets.pipeline import PreparedData, cached_dataset
from anomaly_toolbox.datasets.splits import OneClassSplits, Split
from anomaly_toolbox.datasets.table import TableEncoder, TableError
from anomaly_toolbox.registry import EXPERIMENTS, api_names, trainer_class
from anomaly_toolbox.hps import JsonError, full_hps, json_file_text, strict_json
from anomaly_toolbox.model_files import (METADATA_FILE, ModelError, check_metadata,
                                         threshold_for_fpr, train_select_finish,
                                         trainer_reconstructs)
from anomaly_toolbox.results import write_json_atomically
from anomaly_toolbox.runtime import apply_determinism, resolve_jit
from anomaly_toolbox.schemas import method_schema
from anomaly_toolbox.training.evaluation import MODEL_DIR
from anomaly_toolbox.trainers.shallow import (PICKLED_DETECTOR_FILE, ShallowTrainer,
                                              UntrustedModel)


class Detector:
    """Base of the per-method classes (``EGBAD``, ``GANomaly``, ...): hps as keyword arguments.

    Args:
        seed: seed of the validation hold-out and of training.
        log_dir: where checkpoints, TensorBoard logs and the model go: each ``fit`` writes a new
            ``<experiment>/api-<time>-<random>/`` there (default: a temporary directory that is
            deleted with the detector).
        jit_compile: XLA on/off (default: the method's, see ``anomaly-box --list``).
        deterministic: TensorFlow op determinism (default: on without a GPU; process-wide).
        val_share: share of ``x`` held out for validation when ``fit`` gets no ``x_val``.
        **hps: the method's hyperparameters (see ``anomaly-box --list``).
    """

    experiment: ClassVar[str]
    #: Constructor arguments besides the method's hps keys, with their defaults.
    OWN_PARAMS: ClassVar[dict[str, Any]] = {"seed": 42, "log_dir": None, "jit_compile": None,
                                            "deterministic": None, "val_share": 0.1}

    def __init__(self, *, seed: int = 42, log_dir: str | Path | None = None,
                 jit_compile: bool | None = None, deterministic: bool | None = None,
                 val_share: float = 0.1, **hps: Any) -> None:
        """Store the arguments unchanged (scikit-learn's rule, so that ``clone`` works) and check
        them, without side effects: op determinism is applied by ``fit``."""
        self.seed, self.log_dir, self.jit_compile = seed, log_dir, jit_compile
        self.deterministic, self.val_share = deterministic, val_share
        self._given_hps = dict(hps)
        self.trainer: Any = None
        self.metadata: dict[str, Any] = {}
        self.model_dir: Path | None = None
        self._temporary: weakref.finalize | None = None
        self._check_params()

    def _check_params(self) -> None:
        self._resolved_hps()
        if not 0.0 < self.val_share < 1.0:
            raise ModelError(f"val_share must be in (0, 1), got {self.val_share}")

    @property
    def hps(self) -> dict[str, Any]:
        """Every hyperparameter of the method: the given ones over the defaults, jit_compile
        resolved to what will run."""
        return self._resolved_hps()

    def _resolved_hps(self) -> dict[str, Any]:
        hps = full_hps(self._given_hps, method_schema(self.experiment),
                       type(self).__name__)
        if "jit_compile" in hps:
            requested = self.jit_compile if self.jit_compile is not None else hps["jit_compile"]
            hps["jit_compile"] = resolve_jit(requested, trainer_class(self.experiment))
        return hps

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as given (scikit-learn's estimator interface)."""
        return {**{name: getattr(self, name) for name in self.OWN_PARAMS}, **self._given_hps}

    def set_params(self, **params: Any) -> Detector:
        """Change constructor arguments, checked by the constructor first (a rejected change
        leaves this detector as it was); returns self."""
        type(self)(**{**self.get_params(), **params})
        for name, value in params.items():
            if name in self.OWN_PARAMS:
                setattr(self, name, value)
            else:
                self._given_hps[name] = value
        return self

    def __repr__(self) -> str:
        shown = {name: value for name, value in self.get_params().items()
                 if name not in self.OWN_PARAMS or value != self.OWN_PARAMS[name]}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __getstate__(self) -> dict[str, Any]:
        if self.trainer is not None:
            raise TypeError(f"a fitted {type(self).__name__} holds TensorFlow networks and "
                            f"cannot be pickled; use model.save(path) and "
                            f"anomaly_toolbox.load(path)")
        return {**self.__dict__, "_temporary": None}

    def _new_run_dir(self) -> Path:
        """A fresh directory for one ``fit``: ``<log_dir>/<experiment>/api-<time>-<random>``, so
        that detectors sharing a ``log_dir`` never overwrite each other. Without ``log_dir``, a
        temporary directory that is deleted with the detector (or at exit) and by the next fit."""
        if self._temporary is not None:
            self._temporary()
        if self.log_dir is None:
            root = Path(tempfile.mkdtemp(prefix="anomaly-box-"))
            self._temporary = weakref.finalize(self, shutil.rmtree, root, ignore_errors=True)
        else:
            root = Path(self.log_dir)
        parent = root / self.experiment
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"api-{time.strftime('%Y%m%d-%H%M%S')}-",
                                     dir=parent))

    # ---------------------------------------------------------------------------- training
    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
            progress_bar: bool = False) -> Detector:
        """Train on normal samples ``x``; select the final model and threshold on validation.
        With ``progress_bar`` False nothing is printed.

        ``x_val``/``y_val`` (1 = anomalous) pick the best epoch and the max-F1 threshold; without
        them, ``val_share`` of ``x`` is held out, the method's label-free rule chooses the weights
        (hps ``selection`` 'auto': synthetic anomalies made from the held-out normals, or the
        last epoch, as measured per method) and the threshold is the 95th percentile of its
        scores.
        """
        apply_determinism(self.deterministic)
        given = x
        if x_val is None:
            samples = np.asarray(x) if _is_table(x) else _as_samples(x, "x")
            order = np.random.default_rng(self.seed).permutation(len(samples))
            cut = max(1, int(round(self.val_share * len(samples))))
            x_val, y_val, x = samples[order[:cut]], np.zeros(cut, np.int64), samples[order[cut:]]
        # A table's encoder sees the training rows only, as with --dataset csv.
        table = TableEncoder.fit(x) if _is_table(x) else None
        x, x_val = _as_samples(x, "x", table), _as_samples(x_val, "x_val", table)
        if x_val.shape[1:] != x.shape[1:]:
            raise ModelError(f"x_val samples have shape {x_val.shape[1:]}, x has {x.shape[1:]}")
        y_val = np.zeros(len(x_val), np.int64) if y_val is None else np.asarray(y_val)
        if y_val.shape != (len(x_val),) or not set(np.unique(y_val)) <= {0, 1}:
            raise ModelError("y_val must hold one label per x_val sample, 0 (normal) or "
                             "1 (anomalous)")
        cls, hps = trainer_class(self.experiment), self.hps
        self.trainer = cls(hps, sample_shape=x.shape[1:], seed=self.seed)
        validation = Split(x_val, y_val.astype(np.int64))
        splits = OneClassSplits(Split(x, np.zeros(len(x), np.int64)), validation, validation,
                                "normal", 0, 0.0)
        data = PreparedData.from_splits(splits, cls.side_for(x.shape[1:]), seed=self.seed)
        run_dir = self._new_run_dir()
        writer = tf.summary.create_file_writer(str(run_dir))
        console = contextlib.nullcontext() if progress_bar else contextlib.redirect_stdout(
            io.StringIO())
        with console:
            self.metadata = train_select_finish(
                self.experiment, self.trainer, data, run_dir, writer, self.seed,
                progress_bar=progress_bar, show_scoring_progress=progress_bar,
                table=table).metadata
        self.model_dir = run_dir / MODEL_DIR
        self._train_samples, self._train_scores = given, None
        return self

    # ----------------------------------------------------------------------------- scoring
    @property
    def threshold(self) -> float:
        return self._fitted()["threshold"]

    @property
    def threshold_(self) -> float:
        """PyOD's name of :attr:`threshold`."""
        return self.threshold

    def set_threshold(self, threshold: float | None = None,
                      fpr: float | None = None) -> Detector:
        """Replace the validation threshold: a value, or the one that gives false-positive rate
        ``fpr`` on the normal validation samples; returns the detector."""
        if (threshold is None) == (fpr is None):
            raise ModelError("give exactly one of threshold and fpr")
        if threshold is not None and not math.isfinite(threshold):
            raise ModelError(f"the threshold must be a finite number, got {threshold}")
        metadata = self._fitted()
        if fpr is not None:
            threshold = threshold_for_fpr(np.array(metadata["validation_normal_scores"]), fpr)
            metadata["threshold_rule"] = f"false-positive rate {fpr:g} on normal validation"
        else:
            metadata["threshold_rule"] = "given by the user"
        metadata["threshold"] = float(threshold)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores ``[N]`` (higher = more anomalous)."""
        cached = self._cached(x)
        return self.trainer.final_scores(cached)

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn's sign: ``-decision_function(x)`` ``[N]`` (higher = more normal)."""
        return -self.decision_function(x)

    @property
    def decision_scores_(self) -> np.ndarray:
        """Anomaly scores ``[N]`` of the samples given to ``fit`` (its held-out validation share
        included), scored once on first use: a pass over them."""
        if getattr(self, "_train_scores", None) is None:
            if getattr(self, "_train_samples", None) is None:
                raise ModelError("decision_scores_ exists after fit (a loaded model has not "
                                 "kept its training samples); score them with "
                                 "decision_function")
            self._train_scores = self.decision_function(self._train_samples)
        return self._train_scores

    @property
    def labels_(self) -> np.ndarray:
        """1 where a sample given to ``fit`` scores at or above the threshold, else 0 ``[N]``."""
        return (self.decision_scores_ >= self.threshold).astype(np.int64)

    def fit_predict(self, x: np.ndarray, x_val: np.ndarray | None = None,
                    y_val: np.ndarray | None = None) -> np.ndarray:
        """``fit(x, x_val, y_val)``, then :attr:`labels_`: one label per sample of ``x``."""
        return self.fit(x, x_val, y_val).labels_

    def normalised_scores(self, x: np.ndarray) -> np.ndarray:
        """Scores mapped to [0, 1] by the validation minimum and maximum (clipped)."""
        return self.normalise(self.decision_function(x))

    def normalise(self, scores: np.ndarray) -> np.ndarray:
        """Scores already computed ``[N]`` mapped to [0, 1] as :meth:`normalised_scores` does."""
        metadata = self._fitted()
        low, high = metadata["score_min"], metadata["score_max"]
        return np.clip((np.asarray(scores) - low) / max(high - low, 1e-12), 0.0, 1.0)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """1 where the score reaches the threshold (anomalous), else 0 ``[N]``."""
        return (self.decision_function(x) >= self.threshold).astype(np.int64)

    @property
    def reconstructs(self) -> bool:
        """Whether :meth:`reconstruct` gives images (the method reconstructs, the data are
        images)."""
        return trainer_reconstructs(self.trainer)

    def reconstruct(self, x: np.ndarray) -> np.ndarray | None:
        """Reconstructions in the model's range [-1, 1] ``[N, S, S, C]``, or None for methods
        that do not reconstruct (Deep SVDD, scikit-learn baselines, tabular data)."""
        if not self.reconstructs:
            return None
        trainer = self.trainer
        images = [x for x, _ in self._cached(x).batch(trainer.hps["batch_size"])]
        parts = [trainer.compiled_reconstruct(batch) for batch in images]
        return np.concatenate([part.numpy() for part in parts])

    def model_inputs(self, x: np.ndarray) -> np.ndarray:
        """``x`` as the networks see it (resized, scaled to [-1, 1] for images)."""
        return np.concatenate([batch.numpy() for batch, _ in self._cached(x).batch(1024)])

    # ------------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Copy the model (weights and metadata, with the current threshold) to ``path`` (its own
        directory: only the metadata is rewritten). A baseline loaded from an older pickle is
        stored in the safe skops format there, without the pickle."""
        self._fitted()
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ModelError(f"{path} is a file; save a model to a directory")
        if not (path.is_dir() and path.samefile(self.model_dir)):
            shutil.copytree(self.model_dir, path, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(PICKLED_DETECTOR_FILE))
        if isinstance(self.trainer, ShallowTrainer):
            self.trainer.save_detector(path)
        write_json_atomically(path / METADATA_FILE, self.metadata)
        return path

    @property
    def table(self) -> TableEncoder | None:
        """For models of tables, the encoder from raw rows to the networks' features (fitted on
        the training rows), else None."""
        stored = self._fitted().get("table")
        return None if stored is None else TableEncoder.from_dict(stored)

    # ---------------------------------------------------------------------------- helpers
    def _fitted(self) -> dict[str, Any]:
        if not self.metadata:
            raise ModelError(f"this {type(self).__name__} is not fitted; call fit() or load()")
        return self.metadata

    def _cached(self, x: np.ndarray) -> tf.data.Dataset:
        metadata = self._fitted()
        x = _as_samples(x, "x", self.table)
        expected = tuple(metadata["sample_shape"])
        if x.shape[1:] != expected:
            kind = "tabular samples" if len(expected) == 1 else "images"
            raise ModelError(f"this model was trained on {kind} of shape {expected}; got "
                             f"{x.shape[1:]}. Resize or convert the data the same way as the "
                             f"training data.")
        return cached_dataset(Split(x, np.zeros(len(x), np.int64)), self.trainer.image_size)


def _is_table(x: Any) -> bool:
    """Whether ``x`` is table rows ``[N, C]`` (numbers of any type, or text cells), not one
    uint8 image ``[H, W]``."""
    x = np.asarray(x)
    return x.ndim == 2 and x.dtype != np.uint8


def _as_samples(x: np.ndarray, name: str, table: TableEncoder | None = None) -> np.ndarray:
    """Images as uint8 ``[N, H, W, C]``, or table rows encoded by ``table`` as float features
    ``[N, F]`` (without an encoder, tables must be float features already).

    Images may be uint8 (0-255) or floats in [0, 1]; ``[N, H, W]`` gains C = 1, and a single
    image (``[H, W, C]`` with C = 1 or 3, or a uint8 ``[H, W]``) gains N = 1."""
    if table is not None:
        try:
            return table.transform(x)
        except TableError as error:
            raise ModelError(f"{name}: {error}") from None
    x = np.asarray(x)
    if x.ndim == 2 and x.dtype == np.uint8:
        x = x[None, ..., None]
    elif x.ndim == 3:
        x = x[None] if x.shape[-1] in (1, 3) else x[..., None]
    if x.ndim == 4:
        if np.issubdtype(x.dtype, np.floating):
            if not np.all(np.isfinite(x)) or x.min(initial=0.0) < 0.0 or x.max(initial=0.0) > 1.0:
                raise ModelError(f"{name}: float images must hold values in [0, 1] (or give uint8 "
                                 f"0-255, as read from files); got values from {np.nanmin(x):g} "
                                 f"to {np.nanmax(x):g}")
            x = np.round(x * 255.0).astype(np.uint8)
        elif x.dtype != np.uint8:
            raise ModelError(f"{name}: images must be uint8 with values 0-255 (as read from "
                             f"files) or floats in [0, 1], got dtype {x.dtype}")
        if x.shape[-1] not in (1, 3):
            raise ModelError(f"{name}: images need 1 or 3 channels, got {x.shape[-1]}")
    elif x.ndim == 2:
        if not np.issubdtype(x.dtype, np.floating):
            raise ModelError(f"{name}: tabular samples must be floats, got dtype {x.dtype}")
        x = x.astype(np.float32)
    else:
        raise ModelError(f"{name}: expected images [N, H, W(, C)] or one image [H, W, C], or "
                         f"tabular samples [N, F], got an array of shape {x.shape}")
    if len(x) == 0:
        raise ModelError(f"{name} is empty")
    return x


def load(path: str | Path, trusted: bool = False) -> Detector:
    """A fitted :class:`Detector` from a model directory, or a run directory holding ``model/``.

    Nothing in the directory runs code by default: networks load as weights only and
    scikit-learn baselines from skops files. ``trusted=True`` also loads what could run code
    (a baseline's pickle from older versions, unknown object types): only for directories you
    made. Raises :class:`ModelError` naming the file and the fix when the path,
    ``metadata.json`` or a saved network is missing, corrupt, untrusted or does not match the
    rest.
    """
    path = Path(path)
    if path.is_file():
        raise ModelError(f"{path} is a file; pass a run directory (the one with results.json and "
                         f"model/) or its model/ folder")
    if not path.is_dir():
        raise ModelError(f"{path} does not exist; pass a run directory (the one with "
                         f"results.json and model/) or its model/ folder")
    model_dir = path / MODEL_DIR if (path / MODEL_DIR / METADATA_FILE).is_file() else path
    metadata_file = model_dir / METADATA_FILE
    try:
        metadata = strict_json(json_file_text(metadata_file))
    except FileNotFoundError:
        raise ModelError(f"{path} holds no {METADATA_FILE}: pass a run directory (the one with "
                         f"results.json and model/) or its model/ folder") from None
    except (UnicodeDecodeError, json.JSONDecodeError, JsonError) as error:
        raise ModelError(f"{metadata_file} is not valid JSON ({error}); retrain the run or "
                         f"restore the file") from None
    except ValueError as error:
        raise ModelError(str(error)) from None
    check_metadata(metadata, metadata_file)
    _check_hps_match_method(metadata, metadata_file)
    apply_determinism(None)
    detector = detector_for(metadata["experiment"])(seed=metadata["seed"], **{
        key: value for key, value in metadata["hps"].items() if key != "jit_compile"})
    cls, hps = trainer_class(detector.experiment), detector.hps
    try:
        detector.trainer = cls(hps, sample_shape=tuple(metadata["sample_shape"]),
                               seed=metadata["seed"])
        detector.trainer.load_model(model_dir, trusted=trusted)
    except FileNotFoundError as error:
        raise ModelError(f"{model_dir}: {error.filename or error} is missing; the model is "
                         f"incomplete. Retrain the run (same command with --restart).") from None
    except UntrustedModel as error:
        raise ModelError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - Keras reports corrupt files in many ways
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(
            error).__name__
        raise ModelError(f"{model_dir}: the saved networks do not load into the model that "
                         f"{METADATA_FILE} describes ({reason}). A file is corrupt or "
                         f"metadata.json was edited: restore it or retrain the run (same "
                         f"command with --restart).") from None
    detector.metadata, detector.model_dir = metadata, model_dir
    return detector


def _check_hps_match_method(metadata: dict[str, Any], source: Path) -> None:
    """Refuse metadata whose hps are not those of the method it names (say whose they are)."""
    experiment = metadata["experiment"]
    keys = set(metadata["hps"])
    foreign = sorted(keys - set(method_schema(experiment)))
    if not foreign:
        return
    owners = [name for name in EXPERIMENTS
              if name != experiment and keys <= set(method_schema(name))]
    fits = f"; they are {' or '.join(owners)}'s" if owners else ""
    raise ModelError(f"{source} names method '{experiment}', but its hps are not "
                     f"{experiment}'s ({', '.join(foreign)}{fits}): the method name or the hps "
                     f"were edited. Restore the file or retrain the run")


#: API classes made so far, by experiment name: each is made once, from its registration.
_CLASSES: dict[str, type[Detector]] = {}


def _signature(experiment: str) -> inspect.Signature:
    """``cls(*, seed=42, ..., <hps key>=<default>, ...)``: the constructor's own arguments and
    the method's hps keys with their defaults, keyword-only, as ``help()`` and IDEs show them."""
    schema = method_schema(experiment)
    own = {**Detector.OWN_PARAMS}
    keys = {key: param.default for key, param in schema.items() if key not in own}
    return inspect.Signature([
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in {**own, **keys}.items()])


def detector_for(experiment: str) -> type[Detector]:
    """The API class of registered ``experiment`` (``EGBAD`` for 'egbad'), made once from its
    registration: its API name, its description and the trainer module's paper and deviations
    as the docstring, its hps keys in the signature; ``KeyError`` if unregistered."""
    if experiment not in _CLASSES:
        registered = EXPERIMENTS[experiment]
        trainer = trainer_class(experiment)
        schema = trainer.schema()
        keys = "\n".join(f"    {key} ({param.kind.__name__}, default {param.default!r}): "
                         f"{param.help}" for key, param in schema.items())
        doc = (f"{registered.description}\n\n{(sys.modules[trainer.__module__].__doc__ or '').strip()}"
               f"\n\nHyperparameters (keyword arguments):\n{keys}\n\n{Detector.__doc__}")
        cls = type(registered.api_name, (Detector,), {
            "experiment": experiment, "__doc__": doc, "__module__": __name__,
            "__qualname__": registered.api_name})
        cls.__signature__ = _signature(experiment)
        _CLASSES[experiment] = cls
    return _CLASSES[experiment]


def detector_class(api_name: str) -> type[Detector]:
    """The API class named ``api_name`` (``"EGBAD"``); ``KeyError`` if none is registered."""
    return detector_for({api: name for name, api in api_names().items()}[api_name])


def __getattr__(name: str) -> type[Detector]:
    """The API classes by name (``from anomaly_toolbox.detector import EGBAD``; pickle finds
    them this way too)."""
    if name in api_names().values():
        return detector_class(name)
    raise AttributeError(f"module '{__name__}' has no attribute '{name}'")
