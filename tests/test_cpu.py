"""oneDNN where TensorFlow leaves it off, never over the user's own setting (issue 42)."""

import json
import os
import subprocess
import sys

import pytest

from anomaly_toolbox.cpu import describe_cpu, onednn_setting
from tests.conftest import TINY, write_grid
from tests.test_bad_input import invoke

AVX2_ONLY = frozenset({"sse4_2", "avx", "avx2", "fma"})  # an AMD EPYC of our machine kind
WITH_VNNI = AVX2_ONLY | {"avx512f", "avx512_vnni"}  # an Intel Xeon where TF turns it on


@pytest.mark.parametrize("flags, environ, imported, expected", [
    (AVX2_ONLY, {}, False, ("1", "toolbox")),
    (WITH_VNNI, {}, False, (None, "tensorflow default")),
    (frozenset({"sse4_2", "avx"}), {}, False, (None, "tensorflow default")),
    (AVX2_ONLY, {"TF_ENABLE_ONEDNN_OPTS": "0"}, False, (None, "user")),
    (AVX2_ONLY, {"TF_ENABLE_ONEDNN_OPTS": ""}, False, (None, "user")),
    (AVX2_ONLY, {}, True, (None, "tensorflow imported first")),
], ids=["avx2-only", "vnni", "no-avx2", "user-off", "user-empty", "tf-first"])
def test_onednn_is_turned_on_only_where_tensorflow_leaves_it_off(flags, environ, imported,
                                                                  expected):
    assert onednn_setting(flags, environ, imported) == expected


#: "1" where TensorFlow leaves oneDNN off is the toolbox's own choice too, so only "0" runs
#: by default; the subprocess costs a TensorFlow import (about 13 s on 2 cores).
@pytest.mark.parametrize("value, enabled", [("0", False),
                                            pytest.param("1", True, marks=pytest.mark.slow)])
def test_the_users_own_setting_is_never_overridden(value, enabled):
    code = ("import os, anomaly_toolbox; from anomaly_toolbox.cpu import onednn_state; "
            "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], onednn_state())")
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": value, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == f"{value} {{'enabled': {enabled}, 'decided_by': 'user'}}"


def test_results_record_onednn_and_benchmarks_name_the_cpu(tmp_path):
    grid = write_grid(tmp_path / "ae.json", {**TINY, "filters": 2})
    result = invoke("-e", "ae", "-d", "mnist-5k", "--hps-path", grid, "--log-dir",
                    tmp_path / "logs", "-q")
    assert result.exit_code == 0, result.output
    [path] = (tmp_path / "logs").rglob("results.json")
    onednn = json.loads(path.read_text())["onednn"]
    assert isinstance(onednn["enabled"], bool) and onednn["decided_by"] in (
        "user", "toolbox", "tensorflow default", "tensorflow imported first")
    assert "CPU cores" in describe_cpu() and "(" in describe_cpu()
