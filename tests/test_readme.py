"""Every ``anomaly-box`` example and the Python example of the README, run from an installed
package in a directory outside the checkout, on small fakes of the data they name.

Each command keeps its meaning and gets only what makes it fast (one epoch; a benchmark one
class). Where the package is installed in editable mode (a developer's checkout), the test
installs it normally into a throw-away virtual environment that borrows this one's dependencies.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import (digit_images, kdd_rows, table_rows, write_kdd, write_mvtec,
                            write_png, write_table)

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")

pytestmark = pytest.mark.slow


#: Examples that join a Ray cluster, which a test machine does not have.
CLUSTER = re.compile(r"--ray (auto|ray://)")


def readme_commands() -> list[str]:
    """The ``anomaly-box`` lines of the README's text blocks (Set-up commands excluded), without
    their comments; the cluster examples are left out."""
    commands = []
    for block in re.findall(r"```text\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            if line.startswith("anomaly-box ") and not CLUSTER.search(line):
                commands.append(re.split(r"\s+#", line)[0].strip())
    return commands


def readme_python() -> str:
    """The README's Python example; a line ``EXPR  # -> TEXT`` also prints ``ARROW repr(EXPR)``
    so that the test can hold the README to what it says EXPR gives."""
    [block] = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    return re.sub(r"^(.*?)\s+# -> .*$", r"print('ARROW', repr(\1))", block, flags=re.M)


def fast(command: list[str]) -> list[str]:
    """The command with one epoch (and one class for a benchmark)."""
    if command[1] in ("score", "export") or "--list" in command:
        return command
    if command[1] == "benchmark":
        return [*command, "--labels", "0", "--epochs", "1"]
    return [*command, "--epochs", "1"]


def python_with_the_package_installed(tmp_path: Path) -> Path:
    """A Python whose ``anomaly_toolbox`` is an installed copy, not this checkout."""
    probe = subprocess.run([sys.executable, "-c", "import anomaly_toolbox; "
                            "print(anomaly_toolbox.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    if not Path(probe.stdout.strip()).resolve().is_relative_to(REPO):
        return Path(sys.executable)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()["
                           "'purelib'])"], capture_output=True, text=True, check=True)
    (Path(site.stdout.strip()) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"])
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", str(REPO)], check=True,
                   cwd=tmp_path)
    return python


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, bundled):
    """A directory outside the checkout with the files the README's examples name."""
    root = tmp_path_factory.mktemp("readme")
    write_kdd(root / "DIR", kdd_rows(400))
    bottle = write_mvtec(root / "mvtec_anomaly_detection" / "bottle", bundled)
    for index, image in enumerate(digit_images(bundled, 1, 160)[80:]):  # a batch of 64 fits
        write_png(bottle / "train" / "good" / f"extra{index:03d}.png", image)
    write_table(root / "payments.csv", table_rows(300))
    write_table(root / "new_payments.csv", table_rows(12, seed=5))
    for index, image in enumerate(bundled.x_test[:4]):
        write_png(root / "my_images" / f"{index}.png", image)
        write_png(root / "images" / f"{index}.png", image)
    write_png(root / "more.png", bundled.x_test[5])
    return root


def test_every_readme_command_runs_from_an_installed_package(workspace):
    python = python_with_the_package_installed(workspace)
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    commands = readme_commands()
    assert len(commands) >= 16 and any(" export " in c for c in commands)
    assert any("--ray" in c for c in commands) and any("--distribute" in c for c in commands)
    for line in commands:
        words = shlex.split(line)
        if "RUN_DIR" in words or any("<run>" in word for word in words):
            [results] = workspace.glob("logs/ganomaly/mnist-5k-*-anomalous3-*/*/results.json")
            words = [str(results.parent) if w == "RUN_DIR" or "<run>" in w else w
                     for w in words]
        if "TABLE_RUN_DIR" in words:
            [results] = workspace.glob("logs/egbad/csv-payments-*/*/results.json")
            words = [str(results.parent) if w == "TABLE_RUN_DIR" else w for w in words]
        done = subprocess.run(fast(words), cwd=workspace, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert (workspace / "logs" / "ganomaly").is_dir() and (workspace / "maps").is_dir()
    assert (workspace / "s.csv").is_file() and (workspace / "scores.csv").is_file()


def test_the_readme_python_example_runs_from_an_installed_package(workspace):
    python = python_with_the_package_installed(workspace)
    prelude = ("import numpy as np, anomaly_toolbox\n"
               "from anomaly_toolbox.datasets import load_raw\n"
               "raw = load_raw('mnist-5k')\n"
               "x_train = raw.x_train[raw.y_train == 1][:200]\n"
               "x = x_float = raw.x_test[:20]\n")
    check = "\nprint('PACKAGE', anomaly_toolbox.__file__)\n"
    done = subprocess.run([python, "-c", prelude + readme_python() + check], cwd=workspace,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    [package] = re.findall(r"^PACKAGE (.*)$", done.stdout, flags=re.M)
    assert not Path(package).resolve().is_relative_to(REPO)
    claims = re.findall(r"# -> (.*)$", README, flags=re.M)
    assert claims and re.findall(r"^ARROW (.*)$", done.stdout, flags=re.M) == claims
