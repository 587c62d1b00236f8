"""Shared fixtures and helpers: the bundled data (loaded once), tiny hyperparameters for fast
runs, grid files, and small fakes written to disk: a CSV table of payments, KDD99 records,
PNG files and an MVTec AD folder."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from anomaly_toolbox.datasets import load_raw  # noqa: E402

TINY = {"filters": 4, "latent_dim": 8, "batch_size": 32, "epochs": 1, "jit_compile": False}


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
