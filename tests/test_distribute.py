"""``--distribute mirrored`` on two logical CPU devices: a run trained over both replicas has the
single-device run's shapes and finite losses, scores within a small tolerance of it from the same
seed, and its model scores on one device."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow

#: One run in a fresh process whose CPU is split into two logical devices (before TensorFlow
#: picks its devices); prints the run's results.json path.
TWO_DEVICES = """
import sys
from pathlib import Path
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from anomaly_toolbox.experiments.runner import RunConfig, run_experiment
experiment, log_dir, distribute = sys.argv[1], Path(sys.argv[2]), sys.argv[3] or None
[result] = run_experiment(RunConfig(
    experiment=experiment, dataset="mnist-5k", protocol="normal", label=1, log_dir=log_dir,
    distribute=distribute, progress_bar=False,
    overrides={"epochs": 2, "filters": 8, "latent_dim": 16, "batch_size": 32}))
print("RESULTS", Path(result["run_dir"]) / "results.json")
"""


def run(experiment, log_dir, distribute):
    done = subprocess.run([sys.executable, "-c", TWO_DEVICES, experiment, str(log_dir),
                           distribute or ""], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    path = done.stdout.strip().splitlines()[-1].split(" ", 1)[1]
    return json.loads(open(path).read())


@pytest.mark.parametrize("experiment", ["ae", "egbad", "deepsvdd"])
def test_mirrored_training_matches_one_device_and_its_model_scores_on_one(tmp_path, bundled,
                                                                          experiment):
    from anomaly_toolbox import load

    single = run(experiment, tmp_path / "single", None)
    mirrored = run(experiment, tmp_path / "mirrored", "mirrored")
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert mirrored["status"] == "completed"
    assert mirrored["steps_trained"] == single["steps_trained"]
    images = bundled.x_test[:200]
    scores = [load(result["run_dir"]).decision_function(images) for result in (single, mirrored)]
    assert scores[1].shape == (200,) and np.all(np.isfinite(scores[1]))
    np.testing.assert_allclose(scores[1], scores[0], rtol=0.02,
                               atol=0.02 * float(np.abs(scores[0]).max()))
    assert np.corrcoef(scores[0], scores[1])[0, 1] > 0.99


def test_a_method_that_cannot_split_its_batch_says_so(tmp_path):
    done = subprocess.run([sys.executable, "-c", TWO_DEVICES, "ama", str(tmp_path), "mirrored"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "ama does not train with --distribute" in done.stderr
