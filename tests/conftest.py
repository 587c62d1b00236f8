"""Shared fixtures and helpers: the bundled data (loaded once), tiny hyperparameters for fast
runs, grid files, and small fakes written to disk: a CSV table of payments, KDD99 records,
PNG files and an MVTec AD folder."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from anomaly_toolbox.quiet import start_tensorflow_quietly  # noqa: E402

start_tensorflow_quietly()  # a test worker of pytest-xdist imports this with stderr uncaptured

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from anomaly_toolbox.datasets import load_raw  # noqa: E402
from anomaly_toolbox.datasets.pipeline import to_model_range  # noqa: E402
from anomaly_toolbox.registry import EXPERIMENTS, trainer_class  # noqa: E402
from anomaly_toolbox.hps import with_defaults  # noqa: E402
from anomaly_toolbox.results import read_results  # noqa: E402
from anomaly_toolbox.trainers.base import Trainer  # noqa: E402

TINY = {"filters": 4, "latent_dim": 8, "batch_size": 32, "epochs": 1, "jit_compile": False}
#: Per-method settings that make mechanics tests fast (fewer unrolled critic updates; ALAD
#: without its 13 spectral normalisations, which take about 20 s to trace).
FAST = {"ama": {"n_critic": 1}, "jointgan": {"n_critic": 1}, "fanogan": {"n_critic": 1},
        "alad": {"spectral_norm": False}}
SEED = tf.constant([1, 0], tf.int64)
#: Methods with Keras networks and a train step (the scikit-learn baselines have neither).
NETWORK_METHODS = [name for name in EXPERIMENTS if issubclass(trainer_class(name), Trainer)]


def make_trainer(experiment: str, jit_compile: bool = False,
                 sample_shape: tuple[int, ...] = (28, 28, 1), **overrides: Any) -> Trainer:
    """A trainer of ``experiment`` at tiny widths (and :data:`FAST` settings), seed 0."""
    cls = trainer_class(experiment)
    given = {**TINY, **FAST.get(experiment, {}), **overrides, "jit_compile": jit_compile}
    hps = with_defaults(cls.schema(), given)
    return cls(hps, sample_shape=sample_shape, seed=0)


def eager_step(trainer: Trainer, images: tf.Tensor, step: int = 0) -> dict[str, tf.Tensor]:
    """One train step (and the weight average) run op by op, seeded ``(0, step)``: the same
    math as ``compiled_train_step`` without the seconds of tracing a tiny model's graph."""
    seed = tf.constant([0, step], tf.int64)
    return trainer._train_step_and_average(images, trainer.sample_noise(images.shape[0], seed))


def images_of(bundled: Any, digit: int, trainer: Trainer, count: int) -> tf.Tensor:
    """``count`` training images of ``digit`` in the model's range and size."""
    x = bundled.x_train[bundled.y_train == digit][:count]
    return to_model_range(tf.constant(x), trainer.image_size)


@pytest.fixture(autouse=True)
def op_determinism_restored():
    """Whatever a test does to TensorFlow's process-wide op determinism (a CLI run in this
    process turns it on, as on any CPU) is undone after it, so that no test runs under another
    test's setting. The public API can only turn it on; TensorFlow's config module turns it off."""
    from tensorflow.python.framework import config

    before = config.is_op_determinism_enabled()
    yield
    if config.is_op_determinism_enabled() != before:
        (config.enable_op_determinism if before else config.disable_op_determinism)()


@pytest.fixture(scope="session")
def bundled():
    return load_raw("mnist-5k")


def write_grid(path: Path, values: dict) -> Path:
    """Write a grid file; a list value becomes several grid values, anything else one."""
    path.write_text(json.dumps({k: {"type": "Discrete", "values": v if isinstance(v, list) else [v]}
                                for k, v in values.items()}))
    return path


HEADER = ["amount", "kind", "hour", "label"]


def table_rows(count: int, seed: int = 0) -> list[list[str]]:
    """Payments: normal rows ('ok') near amount 100, kinds a/b, daytime hours; every sixth row
    is fraud (amount near 400, kind c, night hours)."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        fraud = index % 6 == 0
        rows.append([f"{rng.normal(400 if fraud else 100, 10):.2f}",
                     str(rng.choice(["c", "a"] if fraud else ["a", "b"])),
                     str(int(rng.integers(0, 5) if fraud else rng.integers(8, 18))),
                     "fraud" if fraud else "ok"])
    return rows


def write_table(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


KDD_PROTOCOLS = ["tcp", "udp", "icmp"]
KDD_SERVICES = ["http", "smtp", "private"]
KDD_FLAGS = ["SF", "S0"]


def kdd_rows(count, seed=0):
    """Records in the KDD layout: 41 features and a label; normal traffic sends many bytes."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        normal = i % 4 == 0
        numbers = rng.integers(0, 5, size=37).astype(float)
        numbers[0] = rng.integers(2000, 3000) if normal else rng.integers(0, 100)
        rows.append([str(rng.integers(0, 10)), KDD_PROTOCOLS[i % 3], KDD_SERVICES[(i // 3) % 3],
                     KDD_FLAGS[i % 2], *(f"{v:g}" for v in numbers),
                     "normal." if normal else "smurf."])
    return rows


def write_kdd(directory, rows, name="kddcup.data_10_percent"):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("\n".join(",".join(row) for row in rows) + "\n")
    return directory


def write_png(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    tf.io.write_file(str(path), tf.io.encode_png(tf.constant(image, tf.uint8)))


def digit_images(bundled, digit, count, side=40):
    images = bundled.x_train[bundled.y_train == digit][:count]
    return tf.cast(tf.image.resize(images, (side, side)), tf.uint8).numpy()


def write_mvtec(root, bundled, rgb_one=False):
    """train/good: 1s (two sizes), test/good: 1s, test/crack: 7s, plus files to skip or ignore."""
    for i, image in enumerate(digit_images(bundled, 1, 60)):
        write_png(root / "train" / "good" / f"{i:03d}.png", image if i % 2 else image[:30, :30])
    for i, image in enumerate(digit_images(bundled, 1, 70)[60:]):
        write_png(root / "test" / "good" / f"{i:03d}.png", image)
    for i, image in enumerate(digit_images(bundled, 7, 10)):
        write_png(root / "test" / "crack" / f"{i:03d}.png", image)
    if rgb_one:
        write_png(root / "test" / "crack" / "colour.png", np.full((20, 20, 3), 200, np.uint8))
    (root / "train" / "good" / "broken.png").write_bytes(b"this is not a png")
    (root / "train" / "good" / "notes.txt").write_text("ignored: not an image")
    (root / "ground_truth" / "crack").mkdir(parents=True)
    return root


def invoke(*args: Any) -> Any:
    """``anomaly-box ARGS`` in this process (click's test runner); the result has exit_code and
    output."""
    from click.testing import CliRunner

    from anomaly_toolbox.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def train_tiny(tmp_path, experiment, grid, *args, log_dir="logs"):
    """Run ``experiment`` on mnist-5k with the hps ``grid`` and extra CLI ``args``, quietly."""
    hps = write_grid(tmp_path / "grid.json", grid)
    return invoke("-e", experiment, "-d", "mnist-5k", "--hps-path", hps, "--log-dir",
                  tmp_path / log_dir, "-q", *args)


def run_dirs(log_dir):
    return sorted(p.parent for p in log_dir.glob("*/*/*/results.json"))


def only_run(tmp_path, experiment, grid, *args):
    """Train a single run that must succeed; its directory and results."""
    result = train_tiny(tmp_path, experiment, grid, *args)
    assert result.exit_code == 0, result.output
    [run_dir] = run_dirs(tmp_path / "logs")
    return run_dir, read_results(run_dir / "results.json")


def summary_values(run_dir):
    return [value for path in run_dir.glob("events.out.tfevents.*")
            for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value]


def train_on_table(tmp_path: Path, rows: list[list[str]], epochs: int) -> Path:
    """EGBAD (tiny) trained on ``rows`` written as ``payments.csv`` (normal rows: label 'ok');
    the run directory."""
    table = write_table(tmp_path / "payments.csv", rows)
    grid = write_grid(tmp_path / "grid.json", {**TINY, "epochs": epochs})
    result = invoke("-e", "egbad", "-d", "csv", "--data-dir", table, "--label-column", "label",
                    "--normal-value", "ok", "--hps-path", grid, "--log-dir", tmp_path / "logs",
                    "-q")
    assert result.exit_code == 0, result.output
    [results] = (tmp_path / "logs").glob("egbad/csv-payments-*/*/results.json")
    return results.parent


@pytest.fixture(scope="session")
def ae_and_iforest_runs(tmp_path_factory, bundled):
    """A tiny autoencoder (reconstructs) and Isolation Forest (does not), and one digit PNG,
    trained once per test process for the bad-input and hardening tests (which edit copies)."""
    root = tmp_path_factory.mktemp("trained")
    models = {}
    for experiment, grid in (("ae", {**TINY, "filters": 2}), ("iforest", {"n_estimators": 5})):
        hps = write_grid(root / f"{experiment}.json", grid)
        result = invoke("-e", experiment, "-d", "mnist-5k", "--normal-label", 1, "--hps-path",
                        hps, "--log-dir", root / "logs", "-q")
        assert result.exit_code == 0, result.output
        [models[experiment]] = [p.parent for p in (root / "logs" / experiment).glob(
            "*/*/results.json")]
    image = root / "digit.png"
    write_png(image, bundled.x_test[0])
    return models, image


@pytest.fixture(scope="session")
def ganomaly_run(tmp_path_factory):
    """A tiny two-epoch GANomaly run on mnist-5k (7 anomalous) trained by the CLI, once per test
    process, for the tests that read, score and export a run directory (without editing it)."""
    root = tmp_path_factory.mktemp("ganomaly")
    grid = write_grid(root / "grid.json", {**TINY, "epochs": 2})
    result = invoke("-e", "ganomaly", "-d", "mnist-5k", "--anomalous-label", "7", "--hps-path",
                    grid, "--log-dir", root / "logs", "-q")
    assert result.exit_code == 0, result.output
    [results] = (root / "logs").glob("*/*/*/results.json")
    return results.parent
