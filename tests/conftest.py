"""Shared fixtures and helpers: the bundled data (loaded once), tiny hyperparameters for fast
runs, grid files, and a small synthetic CSV table of payments."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

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
