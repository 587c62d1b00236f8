"""Glue the CLI calls: data -> splits -> one trainer per hyperparameter set -> results.

Directory layout under ``log_dir`` (each run resumes when the same command is run again)::

    <experiment>/<dataset>-<protocol><label>-c<contamination>-s<seed>/   results.md, hparams config
        <run name>/   TensorBoard events, checkpoints/, best_auroc/, best_auprc/, model/, results.json

A run's name is a short hash of its full hyperparameters, so grid runs never share a directory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from anomaly_toolbox.datasets import load_raw, one_class_splits
from anomaly_toolbox.datasets.sources import RawData
from anomaly_toolbox.datasets.splits import OneClassSplits
from anomaly_toolbox.detector import finish_model
from anomaly_toolbox.experiments import trainer_class
from anomaly_toolbox.hps import HpsError, expand, load_grid
from anomaly_toolbox.results import (RESULTS_FILE, TABLE_METRICS, read_results,
                                     write_json_atomically, write_results_table)
from anomaly_toolbox.trainers.base import PreparedData, Trainer, TrainingDiverged
from anomaly_toolbox.trainers.shallow import ShallowTrainer

TrainerClass = type[Trainer] | type[ShallowTrainer]


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
    hps_path: Path | None = None
    tuning: bool = False
    jit_compile: bool | None = None
    deterministic: bool | None = None
    restart: bool = False
    progress_bar: bool = True
    #: Values that replace the hps file's for every run (keys the method lacks are ignored).
    overrides: dict[str, Any] = field(default_factory=dict)


def resolve_jit(requested: bool | None) -> bool:
    """XLA on when asked, else on exactly when a GPU is visible."""
    return bool(tf.config.list_physical_devices("GPU")) if requested is None else requested


def apply_determinism(requested: bool | None) -> bool:
    """Turn on TensorFlow op determinism when ``requested``, or by default when no GPU is
    visible, so that a seed gives identical results on the same CPU. On GPUs it is opt-in:
    it slows some kernels down, and ops without a deterministic GPU kernel then raise an error.
    Process-wide: once on, it stays on. Returns whether it is on."""
    enabled = not tf.config.list_physical_devices("GPU") if requested is None else requested
    if enabled:
        tf.config.experimental.enable_op_determinism()
    return enabled


def run_name(hps: dict[str, Any]) -> str:
    """Stable 10-hex-digit name of a full hyperparameter set."""
    return hashlib.sha1(json.dumps(hps, sort_keys=True).encode()).hexdigest()[:10]


def data_name(dataset: str, data_dir: Path | None, category: str | None) -> str:
    """The dataset's name in log paths: with its category, and for 'folder' the folder's name,
    so that two image folders never share runs."""
    if category:
        return f"{dataset}-{category}"
    if dataset == "folder" and data_dir is not None:
        return f"folder-{Path(data_dir).resolve().name}"
    return dataset


def experiment_dir(config: RunConfig) -> Path:
    name = data_name(config.dataset, config.data_dir, config.category)
    return (config.log_dir / config.experiment /
            f"{name}-{config.protocol}{config.label}-c{config.contamination:g}-s{config.seed}")


def hyperparameter_sets(config: RunConfig) -> list[dict[str, Any]]:
    """The runs to do: the grid file's first values, or its whole grid with ``tuning``.

    ``config.jit_compile`` (the --jit/--no-jit flag) overrides the hps key; the result is resolved
    to a bool so that it is logged as what really ran. Methods without the key ignore the flag.
    """
    schema = trainer_class(config.experiment).schema()
    grid = load_grid(config.hps_path, schema) if config.hps_path else {}
    sets = expand(grid, schema, config.tuning)
    for key, value in config.overrides.items():
        if key in schema:
            try:
                checked = schema[key].check(value)
            except HpsError as error:
                raise HpsError(f"override '{key}': {error}") from None
            for hps in sets:
                hps[key] = checked
    if "jit_compile" not in schema:
        return sets
    for hps in sets:
        requested = config.jit_compile if config.jit_compile is not None else hps["jit_compile"]
        hps["jit_compile"] = resolve_jit(requested)
    return sets


def run_experiment(config: RunConfig, raw: RawData | None = None) -> list[dict[str, Any]]:
    """Train and test every hyperparameter set of ``config``; returns each run's results.

    ``raw``: the dataset's arrays when the caller has loaded them already (else loaded here).
    """
    trainer_cls = trainer_class(config.experiment)
    sets = hyperparameter_sets(config)
    deterministic = apply_determinism(config.deterministic)
    raw = raw if raw is not None else load_raw(config.dataset, config.data_dir, config.category)
    splits = one_class_splits(raw, config.protocol, config.label, config.contamination,
                              config.val_share, config.seed)
    data = PreparedData.from_splits(splits, trainer_cls.image_size, raw.top_share)
    root = experiment_dir(config)
    root.mkdir(parents=True, exist_ok=True)
    _write_hparams_config(root, trainer_cls)
    print(f"Data: {raw.source}\nSplits: {json.dumps(splits.describe())}\nLogs: {root}")
    results = []
    for index, hps in enumerate(sets):
        if len(sets) > 1:
            print(f"\n=== run {index + 1}/{len(sets)}: {json.dumps(hps, sort_keys=True)}")
        results.append(_run_one(trainer_cls, hps, config, raw, splits, data, root / run_name(hps),
                                deterministic))
        write_results_table(root)
    print(f"\nResults: {root / 'results.md'}")
    return results


def _write_hparams_config(root: Path, trainer_cls: TrainerClass) -> None:
    metrics = [hp.Metric(f"test/{m}", display_name=f"test {m}") for m in TABLE_METRICS]
    metrics += [hp.Metric(f"validation/{m}", display_name=f"validation {m}")
                for m in ("auroc", "auprc")]
    with tf.summary.create_file_writer(str(root)).as_default():
        hp.hparams_config(hparams=[hp.HParam(name) for name in trainer_cls.schema()],
                          metrics=metrics)


def _run_one(trainer_cls: TrainerClass, hps: dict[str, Any], config: RunConfig, raw: RawData,
             splits: OneClassSplits, data: PreparedData, run_dir: Path,
             deterministic: bool) -> dict[str, Any]:
    if config.restart and run_dir.exists():
        shutil.rmtree(run_dir)
    results_path = run_dir / RESULTS_FILE
    previous = read_results(results_path)
    if previous is not None and previous.get("status") == "completed":
        print(f"{run_dir} already completed; showing its results (--restart trains again)")
        return previous
    trainer = trainer_cls(hps, sample_shape=splits.train.x.shape[1:], seed=config.seed,
                          jit_compile=hps.get("jit_compile", False))
    run_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "run": run_dir.name, "run_dir": str(run_dir), "experiment": config.experiment,
        "dataset": config.dataset, "data_source": raw.source, "protocol": config.protocol,
        "label": config.label, "contamination": config.contamination, "seed": config.seed,
        "splits": splits.describe(), "hps": hps, "deterministic": deterministic,
        "status": "running",
    }
    write_json_atomically(results_path, results)
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default():
        hp.hparams({key: "auto" if value is None else value for key, value in hps.items()},
                   trial_id=run_dir.name)
    started = time.perf_counter()
    try:
        trainer.fit(data, run_dir, writer, progress_bar=config.progress_bar)
    except TrainingDiverged as error:
        results.update(status="failed", error=str(error))
        write_json_atomically(results_path, results)
        print(f"Run {run_dir.name} failed: {error}")
        return results
    except KeyboardInterrupt:
        results.update(status="interrupted")
        write_json_atomically(results_path, results)
        raise
    train_seconds = time.perf_counter() - started
    results["selected_model"] = trainer.select_final_model(run_dir, data)
    started = time.perf_counter()
    validation_scores = trainer.final_scores(data.validation)
    metadata = finish_model(config.experiment, trainer, run_dir, data, raw.x_train.shape[1:],
                            config.seed, writer, validation_scores)
    results["threshold"] = {"value": metadata["threshold"], "rule": metadata["threshold_rule"]}
    note = trainer.selection_note()
    if note:
        results["selection_note"] = note
    test = trainer.evaluate(data, validation_scores)
    test_seconds = time.perf_counter() - started
    summary = trainer.training_summary()
    with writer.as_default():
        for metric, value in test.items():
            tf.summary.scalar(f"test/{metric}", value, step=summary["epochs_trained"])
    writer.flush()
    results.update(
        status="completed", test=test, **summary,
        timings={"train_seconds": train_seconds, "test_seconds": test_seconds,
                 "test_images_per_second": len(splits.test) / max(test_seconds, 1e-9)})
    write_json_atomically(results_path, results)
    print(f"Test: {json.dumps({k: round(v, 4) for k, v in test.items()})} "
          f"({results['selected_model']})")
    return results
