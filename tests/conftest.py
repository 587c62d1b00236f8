"""Shared fixtures: the bundled data (loaded once) and tiny hyperparameters for fast runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
