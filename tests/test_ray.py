"""Sweeps on Ray (``--ray``): a local Ray instance with 2 CPUs runs a tiny benchmark whose tables
equal the sequential run's, a killed task is retried, and a second invocation reuses every run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

SWEEP = ["benchmark", "-e", "ae,ocsvm", "-d", "mnist-5k", "--labels", "0,1", "--epochs", "1"]


def anomaly_box(*args, background=False):
    """``anomaly-box ARGS`` in a fresh process, so that Ray never lives in the test process;
    with ``background``, the running process (output on its stdout)."""
    command = [sys.executable, "-m", "anomaly_toolbox", *map(str, args)]
    if background:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def auroc_table(report: str) -> str:
    return re.search(r"Test AUROC:\n\n(.*?)\n\n", report, flags=re.S).group(1)


def test_a_sweep_on_ray_gives_the_sequential_tables_and_reuses_finished_runs(tmp_path):
    sequential = anomaly_box(*SWEEP, "--log-dir", tmp_path / "sequential")
    assert sequential.returncode == 0, sequential.stdout + sequential.stderr
    on_ray = anomaly_box(*SWEEP, "--log-dir", tmp_path / "ray", "--ray")
    assert on_ray.returncode == 0, on_ray.stdout + on_ray.stderr
    assert "Ray: 4 done, 0 failed, 0 submitted" in on_ray.stdout
    assert auroc_table(on_ray.stdout) == auroc_table(sequential.stdout)
    assert "| 1 |" in auroc_table(on_ray.stdout) and "failed" not in auroc_table(on_ray.stdout)

    results = sorted((tmp_path / "ray").glob("*/*/*/results.json"))
    written = {path: path.stat().st_mtime_ns for path in results}
    again = anomaly_box(*SWEEP, "--log-dir", tmp_path / "ray", "--ray")
    assert again.returncode == 0 and auroc_table(again.stdout) == auroc_table(on_ray.stdout)
    assert {path: path.stat().st_mtime_ns for path in results} == written  # reused, not rerun


def test_a_task_killed_mid_run_is_retried_and_its_run_resumes(tmp_path):
    log_dir = tmp_path / "logs"
    sweep = anomaly_box("benchmark", "-e", "ae", "-d", "mnist-5k", "--labels", "0", "--epochs",
                        "25", "--log-dir", log_dir, "--ray", background=True)
    deadline, killed = time.monotonic() + 600, None
    while killed is None and time.monotonic() < deadline and sweep.poll() is None:
        checkpoints = list(log_dir.glob("ae/*/*/checkpoints/*.index"))
        locks = list(log_dir.glob("ae/*/*/.lock"))
        if checkpoints and locks:  # an epoch is saved: the run is under way in a worker
            killed = int(locks[0].read_text().split()[1])
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.5)
    output, _ = sweep.communicate(timeout=900)
    assert killed is not None, output
    assert sweep.returncode == 0, output
    assert "Ray: 1 done, 0 failed, 0 submitted" in output
    [results] = log_dir.glob("ae/*/*/results.json")
    text = results.read_text()
    assert '"status": "completed"' in text and '"epochs_trained": 25' in text
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)


def test_without_ray_nothing_imports_it(tmp_path):
    args = ["benchmark", "-e", "ocsvm", "-d", "mnist-5k", "--labels", "0", "--log-dir",
            str(tmp_path)]
    probe = ("import sys; from click.testing import CliRunner; from anomaly_toolbox.cli import "
             f"main; r = CliRunner().invoke(main, {args!r}); assert r.exit_code == 0, r.output; "
             "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_an_address_where_nothing_answers_fails_at_once_with_the_fix(tmp_path):
    from anomaly_toolbox.experiments.ray_sweep import RaySettings, RayUnavailable, connect

    started = time.monotonic()
    with pytest.raises(RayUnavailable, match="nothing answers at 'ray://127.0.0.1:1'.*ray start"):
        connect(RaySettings("ray://127.0.0.1:1"), tmp_path)
    assert time.monotonic() - started < 30
