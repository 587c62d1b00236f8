"""Glue the CLI calls: data -> splits -> one trainer per hyperparameter set -> results.

Directory layout under ``log_dir`` (each run resumes when the same command is run again)::

    <experiment>/<data>-<digest>-<protocol><label>-v<val share>-c<contamination>-s<seed>/
        results.md (every run, ranked on validation), HParams config
        <run name>/   TensorBoard events, checkpoints/, best_validation/, best_synthetic/, model/,
                      results.json (with the run's fingerprint), error.log if it failed

``<data>`` names what was really loaded (``mnist-5k`` when ``mnist`` fell back to it) and
``<digest>`` is a hash of the loaded arrays, so other data never lands among these runs. A run's
name is the start of its fingerprint (toolbox version, data identity, splits, seed and hps): a
run is resumed or shown again only when everything it trained on and with is the same. A lock
file keeps a second process from writing a run that another live process is writing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import summary as hparams_summary

from anomaly_toolbox.cpu import onednn_state
from anomaly_toolbox.datasets import load_raw, one_class_splits
from anomaly_toolbox.datasets.pipeline import PreparedData
from anomaly_toolbox.datasets.sources import RawData
from anomaly_toolbox.datasets.splits import OneClassSplits
from anomaly_toolbox.datasets.table import TableEncoder, encode_splits
from anomaly_toolbox.evaluation import PRO_FPR_LIMIT, ranking_metrics
from anomaly_toolbox.experiments.ray_sweep import RaySettings
from anomaly_toolbox.faults import MachineFault, memory_fault, storage_fault
from anomaly_toolbox.hps import check_batch_fits, expand, load_grid
from anomaly_toolbox.locks import LOCK_FILE, run_lock
from anomaly_toolbox.model_files import pixel_results, train_select_finish
from anomaly_toolbox.pictures import write_map_examples, write_run_pictures
from anomaly_toolbox.registry import trainer_class
from anomaly_toolbox.results import (RESULTS_FILE, RULES, TABLE_FILE,
                                     choice_summary, describe_code, read_results, safe_name,
                                     write_json_atomically, write_results_table,
                                     write_text_atomically)
from anomaly_toolbox.runtime import apply_determinism, distribution_strategy, resolve_jit
from anomaly_toolbox.schemas import method_schema
from anomaly_toolbox.timing import run_clock_start
from anomaly_toolbox.trainers import MethodTrainer
from anomaly_toolbox.trainers.base import Trainer
from anomaly_toolbox.training.engine import CHECKPOINT_DIR, TrainingDiverged
from anomaly_toolbox.training.selection import CHECKED_RULES, best_weights_dir
from anomaly_toolbox.version import __version__

TrainerClass = type[MethodTrainer]
ERROR_LOG = "error.log"


@dataclass
class RunConfig:
    """Everything a user chooses on the command line."""

    experiment: str
    dataset: str = "mnist"
    protocol: str = "anomalous"
    label: int = 0
    contamination: float = 0.0
    val_share: float = 0.1
    seed: int = 42
    log_dir: Path = Path("logs")
    data_dir: Path | None = None
    category: str | None = None
    #: The dataset's own options (csv: ``label_column``, ``normal_value``).
    dataset_options: dict[str, str] = field(default_factory=dict)
    hps_path: Path | None = None
    tuning: bool = False
    jit_compile: bool | None = None
    deterministic: bool | None = None
    restart: bool = False
    #: Keep the epoch checkpoints and each rule's best weights after the run completes.
    keep_checkpoints: bool = False
    progress_bar: bool = True
    #: Values that replace the hps file's for every run, checked already
    #: (:func:`~anomaly_toolbox.hps.checked_overrides`); keys the method lacks are ignored.
    overrides: dict[str, Any] = field(default_factory=dict)
    #: Run a grid's sets as Ray tasks (see :mod:`anomaly_toolbox.experiments.ray_sweep`).
    ray: RaySettings | None = None
    #: Run only this set of the grid (what one Ray task of a grid does).
    set_index: int | None = None
    #: ``"mirrored"``: train each run data-parallel over every visible GPU
    #: (:func:`~anomaly_toolbox.runtime.distribution_strategy`).
    distribute: str | None = None


def data_label(raw: RawData) -> str:
    """The data's name in log paths: what was loaded (``mnist-5k`` for the fallback), and for
    ``folder`` and ``csv`` the folder's or file's name."""
    label = raw.name
    if raw.name in ("folder", "csv") and raw.location:
        label = f"{raw.name}-{Path(raw.location).stem}"
    return safe_name(label)


def experiment_dir(config: RunConfig, raw: RawData) -> Path:
    """``<log_dir>/<experiment>/<data>-<digest>-<protocol><label>-v<val share>-c<g>-s<seed>``:
    every run below it trained on the same data and splits (the digest is of the loaded arrays)."""
    return (config.log_dir / config.experiment /
            f"{data_label(raw)}-{raw.digest[:8]}-{config.protocol}{config.label}"
            f"-v{config.val_share:g}-c{config.contamination:g}-s{config.seed}")


def run_fingerprint(config: RunConfig, raw: RawData, hps: dict[str, Any]) -> dict[str, Any]:
    """What a run trained on and with: the toolbox version, data identity, split settings, seed
    and hps, plus ``id``, a SHA-256 of all of them. A run is resumed or reused only when its
    fingerprint matches, so runs of another release are trained again, not shown as this one's."""
    fingerprint = {"toolbox": __version__, "data": raw.identity(),
                   "protocol": config.protocol, "label": config.label,
                   "contamination": config.contamination, "val_share": config.val_share,
                   "seed": config.seed, "hps": hps}
    encoded = json.dumps(fingerprint, sort_keys=True).encode()
    return {**fingerprint, "id": hashlib.sha256(encoded).hexdigest()[:16]}


def run_dir_for(root: Path, fingerprint: dict[str, Any]) -> Path:
    """The run directory of ``fingerprint`` under ``root``: the one whose ``results.json`` holds
    this fingerprint, else the first free name (``<id>``, ``<id>-2``, ...). A directory holding
    another run (or checkpoints without a results file) is never reused."""
    for attempt in itertools.count(1):
        run_dir = root / (fingerprint["id"][:10] + (f"-{attempt}" if attempt > 1 else ""))
        if not run_dir.exists():
            return run_dir
        previous = read_results(run_dir / RESULTS_FILE)
        if previous is None and not (run_dir / CHECKPOINT_DIR).exists():
            return run_dir  # created but never written to (or being created right now)
        if previous is not None and previous.get("fingerprint") == fingerprint:
            return run_dir
    raise AssertionError("unreachable")


def hyperparameter_sets(config: RunConfig) -> list[dict[str, Any]]:
    """The runs to do: the grid file's first values, or its whole grid with ``tuning``.

    ``config.jit_compile`` (the --jit/--no-jit flag) overrides the hps key; the result is resolved
    to a bool so that it is logged as what really ran. Methods without the key ignore the flag.
    """
    schema = method_schema(config.experiment)
    grid = load_grid(config.hps_path, schema) if config.hps_path else {}
    sets = expand(grid, schema, config.tuning, config.overrides)
    if "jit_compile" not in schema:
        return sets
    for hps in sets:
        requested = config.jit_compile if config.jit_compile is not None else hps["jit_compile"]
        hps["jit_compile"] = resolve_jit(requested, trainer_class(config.experiment))
    return sets


def run_experiment(config: RunConfig, raw: RawData | None = None) -> list[dict[str, Any]]:
    """Train and test every hyperparameter set of ``config``; returns each run's results.

    ``raw``: the dataset's arrays when the caller has loaded them already (else loaded here).
    A single run whose settings do not fit the data raises ``ValueError`` before any directory
    is written; inside a grid that run is recorded as ``failed`` and the grid goes on.
    """
    trainer_cls = trainer_class(config.experiment)
    if config.distribute and (not issubclass(trainer_cls, Trainer)
                              or trainer_cls.distribution_off_reason):
        reason = getattr(trainer_cls, "distribution_off_reason", "") or (
            "a scikit-learn baseline fits on the CPU, with no replicas to spread over")
        raise ValueError(f"{config.experiment} does not train with --distribute: {reason}; "
                         f"drop --distribute")
    sets = hyperparameter_sets(config)
    deterministic = apply_determinism(config.deterministic)
    raw = raw if raw is not None else load_raw(config.dataset, config.data_dir, config.category,
                                               config.dataset_options)
    splits, table = encode_splits(raw, one_class_splits(
        raw, config.protocol, config.label, config.contamination, config.val_share, config.seed))
    if splits.train.x.ndim == 2 and not getattr(trainer_cls, "supports_tabular", True):
        raise ValueError(f"{config.experiment} works on images only and {raw.name} is a table; "
                         f"choose a method that takes tables (see anomaly-box --list)")
    root = experiment_dir(config, raw)
    print(f"Data: {raw.source}\nSplits: {json.dumps(splits.describe())}\nLogs: {root}")
    for note in {default_batch_capped(hps, len(splits.train)) for hps in sets} - {None}:
        print(note)
    results = []
    if config.ray is not None and len(sets) > 1:
        results = _sets_on_ray(config, raw, sets)  # each task prepares its own data
        if root.is_dir():
            write_results_table(root, compared=[r["run"] for r in results if "run" in r])
    else:
        data = PreparedData.from_splits(splits, trainer_cls.side_for(splits.train.x.shape[1:]),
                                        raw.top_share, seed=config.seed)
        in_grid = len(sets) > 1 or config.set_index is not None
        for index, hps in enumerate(sets):
            if config.set_index not in (None, index):
                continue
            if len(sets) > 1:
                print(f"\n=== run {index + 1}/{len(sets)}: {json.dumps(hps, sort_keys=True)}")
            run = RunContext(config, raw, splits, data, deterministic, in_grid=in_grid,
                             started=run_clock_start(), table=table)
            results.append(_run_one(trainer_cls, hps, run, root))
            write_results_table(root, compared=[r["run"] for r in results if "run" in r])
    print(f"\nResults: {root / TABLE_FILE}")
    if len(sets) > 1:
        print(choice_summary(results))
    return results


def default_batch_capped(hps: dict[str, Any], train_size: int) -> str | None:
    """A default ``batch_size`` larger than the training split becomes the split's size (a
    small table would otherwise train no step); returns the note saying so. A batch size the
    user gave is left for :func:`check_batch_fits` to refuse."""
    if hps.get("batch_size", 0) <= train_size or "batch_size" in getattr(hps, "given", ()):
        return None
    default, hps["batch_size"] = hps["batch_size"], train_size
    return (f"batch_size {default} (the default) is larger than the {train_size} training "
            f"samples: training with batch_size {train_size} (--set batch_size=N to choose)")


@dataclass
class RunContext:
    """What every run of one invocation shares."""

    config: RunConfig
    raw: RawData
    splits: OneClassSplits
    data: PreparedData
    deterministic: bool
    in_grid: bool
    #: When this run's clock started (:func:`~anomaly_toolbox.timing.run_clock_start`); its
    #: "startup" is the time from then until its training starts.
    started: float
    #: For tables read as text, the encoder fitted on the training split (saved with the model).
    table: TableEncoder | None = None


def _sets_on_ray(config: RunConfig, raw: RawData,
                 sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every set of a grid as one Ray task; a set whose task ran out of retries is reported as
    failed with the reason."""
    from anomaly_toolbox.experiments.ray_sweep import run_all

    configs = [dataclasses.replace(config, ray=None, set_index=index)
               for index in range(len(sets))]
    outcomes = run_all(run_experiment, configs, [json.dumps(hps, sort_keys=True) for hps in sets],
                       raw, config.ray)
    return [{"hps": hps, "status": "failed", "error": str(outcome).strip().splitlines()[-1]}
            if isinstance(outcome, BaseException) else outcome[0]
            for hps, outcome in zip(sets, outcomes)]


def hparam_value(value: Any) -> bool | float | str:
    """An hps value as the HParams plugin stores it (ints as floats; None as 'auto')."""
    if value is None:
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _write_session_end(writer: tf.summary.SummaryWriter, status: str) -> None:
    """The run's end status in its HParams record (the dashboard's Status column and filter).
    The plugin knows success, failure, running and unknown: an interrupted run shows as unknown
    (its results.json says interrupted)."""
    codes = {"completed": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE,
             "interrupted": api_pb2.STATUS_UNKNOWN}
    with writer.as_default():
        tf.summary.experimental.write_raw_pb(
            hparams_summary.session_end_pb(codes[status]).SerializeToString(), step=0)
    writer.flush()


def _record_failure(run_dir: Path, results: dict[str, Any], error: BaseException) -> None:
    """Mark the run failed with a one-line reason; the traceback goes to ``error.log``."""
    reason = str(error) if isinstance(error, (TrainingDiverged, ValueError)) else (
        f"{type(error).__name__}: {error}")
    results.update(status="failed", error=reason)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(run_dir / ERROR_LOG, "".join(traceback.format_exception(error)))
    write_json_atomically(run_dir / RESULTS_FILE, results)
    print(f"Run {run_dir.name} failed: {reason}")


def _code_drift(previous: dict[str, Any]) -> str:
    """A line saying which code trained ``previous`` when it is not the code running now (a
    checkout's edits leave the fingerprint unchanged), else ''."""
    trained_by, running = previous.get("code", "code not recorded"), describe_code()
    if trained_by == running:
        return ""
    return f"\n  trained by {trained_by}; running now: {running}"


def _run_one(trainer_cls: TrainerClass, hps: dict[str, Any], run: RunContext,
             root: Path) -> dict[str, Any]:
    config, splits = run.config, run.splits
    fingerprint = run_fingerprint(config, run.raw, hps)
    run_dir = run_dir_for(root, fingerprint)
    results_path = run_dir / RESULTS_FILE
    previous = read_results(results_path)
    if not config.restart and previous is not None and previous.get("status") == "completed":
        print(f"{run_dir} already completed; showing its results (--restart trains again)"
              + _code_drift(previous))
        print(outcome_lines(previous))
        return previous
    results: dict[str, Any] = {
        "run": run_dir.name, "run_dir": str(run_dir), "experiment": config.experiment,
        "dataset": run.raw.name, "requested_dataset": config.dataset,
        "data_source": run.raw.source, "protocol": config.protocol, "label": config.label,
        "contamination": config.contamination, "val_share": config.val_share,
        "seed": config.seed, "splits": splits.describe(), "hps": hps,
        "hps_given": sorted(getattr(hps, "given", ())),
        "deterministic": run.deterministic, "onednn": onednn_state(),
        "fingerprint": fingerprint, "code": describe_code(),
        "status": "running",
    }
    try:
        check_batch_fits(hps, len(splits.train))
        with distribution_strategy(config.distribute).scope():
            trainer = trainer_cls(hps, sample_shape=splits.train.x.shape[1:], seed=config.seed)
    except (ValueError, MemoryError, tf.errors.ResourceExhaustedError) as error:
        fault = memory_fault(error)
        if not run.in_grid:
            raise MachineFault(f"building the networks: {fault}") if fault else error
        _record_failure(run_dir, results, error)
        return results
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        if config.restart:
            _empty(run_dir)
        return _train_and_test(trainer, results, run, run_dir)


def _empty(run_dir: Path) -> None:
    """Delete everything in ``run_dir`` but its lock (``--restart``)."""
    for path in run_dir.iterdir():
        if path.name != LOCK_FILE:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _train_and_test(trainer: MethodTrainer, results: dict[str, Any], run: RunContext,
                    run_dir: Path) -> dict[str, Any]:
    """Fit, select on validation, write the model and test it; ``results.json`` always ends as
    completed, failed (with the reason) or interrupted."""
    config, data = run.config, run.data
    results_path = run_dir / RESULTS_FILE
    write_json_atomically(results_path, results)
    try:
        writer = tf.summary.create_file_writer(str(run_dir))
    except tf.errors.OpError as error:
        with contextlib.suppress(Exception):
            _record_failure(run_dir, results, error)
        fault = storage_fault(error)
        raise (MachineFault(f"{run_dir}: {fault}") if fault else error) from None
    # Short enough for TensorBoard's HParams table, distinct: a run's name hashes its data,
    # split, seed and hps.
    trial_id = f"{config.experiment}/{run_dir.name}"
    with writer.as_default():
        hp.hparams({key: hparam_value(value) for key, value in results["hps"].items()},
                   trial_id=trial_id)
    clock = trainer.stopwatch
    clock.seconds["startup"] += time.perf_counter() - run.started
    try:
        finished = train_select_finish(
            config.experiment, trainer, data, run_dir, writer, config.seed,
            progress_bar=config.progress_bar, show_scoring_progress=True,
            fingerprint=results["fingerprint"], table=run.table)
        started = time.perf_counter()
        metadata, validation_scores = finished.metadata, finished.validation_scores
        results["selected_model"] = finished.selected
        results["threshold"] = {"value": metadata["threshold"], "rule": metadata["threshold_rule"]}
        results["validation"] = ranking_metrics(data.validation_labels, validation_scores)
        note = trainer.selection_note()
        if note:
            results["selection_note"] = note
        with clock.measure("final_scoring"):
            evaluated = trainer.evaluate(data, validation_scores)
            by_rule = trainer.by_selection(run_dir, data, evaluated["test"])
        results["validation"].update(evaluated["validation"])
        test = evaluated["test"]
        pixels = None
        if run.splits.test.masks is not None:
            with clock.measure("final_scoring"):
                pixels = pixel_results(trainer, data, run.splits.test.masks)
            results["test_pixel"] = pixels.metrics
        results.update(selection_rule=trainer.selection_rule,
                       test_by_selection={rule: report["test"] for rule, report in by_rule.items()},
                       selection_checks={rule: {key: report[key]
                                                for key in ("epoch", "validation", "synthetic")}
                                         for rule, report in by_rule.items()},
                       synthetic_set=data.synthetic_description)
        test_seconds = time.perf_counter() - started
    except KeyboardInterrupt:
        results.update(status="interrupted")
        write_json_atomically(results_path, results)
        _write_session_end(writer, "interrupted")
        raise
    except Exception as error:  # noqa: BLE001 - recorded as failed; a grid goes on
        fault = storage_fault(error) or (None if run.in_grid else memory_fault(error))
        if fault is None:
            return _failed(run_dir, results, writer, error)
        with contextlib.suppress(Exception):
            _failed(run_dir, results, writer, error)
        raise MachineFault(f"{run_dir}: {fault}") from None
    summary = trainer.training_summary()
    with writer.as_default():
        for metric, value in test.items():
            tf.summary.scalar(f"test/{metric}", value, step=summary["steps_trained"])
        for rule, rule_test in results["test_by_selection"].items():
            for metric in ("auroc", "auprc"):
                tf.summary.scalar(f"test_{rule}/{metric}", rule_test[metric],
                                  step=summary["steps_trained"])
    results.update(
        status="completed", test=test, **summary,
        timings={"train_seconds": finished.train_seconds, "test_seconds": test_seconds,
                 "test_images_per_second": len(run.splits.test) / max(test_seconds, 1e-9),
                 **clock.report(time.perf_counter() - run.started)})
    write_json_atomically(results_path, results)
    _write_session_end(writer, "completed")
    if not run.config.keep_checkpoints:
        prune_completed_run(run_dir)
    try:
        write_run_pictures(run_dir, data.test_labels, evaluated["test_scores"],
                           metadata["threshold"], test,
                           f"{config.experiment}, {run.raw.name} {config.protocol} "
                           f"{config.label}, seed {config.seed}; model chosen by "
                           f"{results['selection_rule']}")
        if pixels is not None and pixels.masks is not None:
            write_map_examples(run_dir, pixels.inputs, pixels.reconstructions, pixels.masks,
                               data.test_labels, evaluated["test_scores"], metadata["threshold"],
                               metadata["map_scale"])
    except Exception as error:  # noqa: BLE001 - the run is complete; its pictures are extras
        print(f"Note: the run's pictures could not be drawn ({type(error).__name__}: {error})")
    print(outcome_lines(results))
    return results


def prune_completed_run(run_dir: Path) -> None:
    """Remove what only an unfinished run needs: the epoch checkpoints (resume) and each
    selection rule's best weights (the final evaluation); ``model/``, the results and the
    TensorBoard events stay."""
    for stale in [run_dir / CHECKPOINT_DIR, *(best_weights_dir(run_dir, rule)
                                              for rule in CHECKED_RULES)]:
        shutil.rmtree(stale, ignore_errors=True)


def outcome_lines(results: dict[str, Any]) -> str:
    """The console's lines of a completed run: its test metrics with the rule that chose the
    model, then the test AUROC under every selection rule."""
    test = {key: round(value, 4) for key, value in results["test"].items()}
    lines = (f"Test: {json.dumps(test)} (chosen by {results['selected_model']})\n"
             f"{rules_line(results)}")
    pixel = results.get("test_pixel")
    if pixel and "unavailable" in pixel:
        lines += f"\nPixel-level: not available ({pixel['unavailable']})"
    elif pixel:
        lines += (f"\nPixel-level (test masks, {pixel['regions']} defect regions): pixel AUROC "
                  f"{pixel['pixel_auroc']:.4f}, PRO {pixel['pro']:.4f} (FPR up to "
                  f"{PRO_FPR_LIMIT}); maps with the masks' outlines: maps.png")
    return lines


def rules_line(results: dict[str, Any]) -> str:
    """The console's line of test AUROC under every selection rule, the reported one marked,
    and what labelled validation anomalies bought over the label-free rules."""
    by_rule, reported = results["test_by_selection"], results["selection_rule"]
    epochs = results["selection_checks"]
    parts = [f"{rule} {by_rule[rule]['auroc']:.4f} (epoch {epochs[rule]['epoch']}"
             f"{', reported' if rule == reported else ''})" for rule in RULES if rule in by_rule]
    line = "Test auroc by selection rule: " + " | ".join(parts)
    if reported == "validation" and len(by_rule) > 1:
        line += "\n  what the labelled validation anomalies bought: " + ", ".join(
            f"{by_rule['validation']['auroc'] - by_rule[rule]['auroc']:+.4f} over {rule}"
            for rule in by_rule if rule != "validation")
    return line


def _failed(run_dir: Path, results: dict[str, Any], writer: tf.summary.SummaryWriter,
            error: BaseException) -> dict[str, Any]:
    _record_failure(run_dir, results, error)
    _write_session_end(writer, "failed")
    return results
