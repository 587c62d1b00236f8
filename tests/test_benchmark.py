"""The accuracy benchmark: its table writer and a two-class, one-seed run of tiny models."""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from anomaly_toolbox import __version__
from anomaly_toolbox.cli import main
from anomaly_toolbox.experiments.anchors import ANCHORS, anchors_for
from anomaly_toolbox.experiments.benchmark import (BenchmarkConfig, benchmark_report,
                                                   recorded_seconds, run_benchmark,
                                                   time_left_text)
from anomaly_toolbox.results import benchmark_table, describe_code, mean_std
from tests.conftest import TINY, only_run


def run(method, label, seed, auroc, status="completed"):
    result = {"experiment": method, "label": label, "seed": seed, "status": status}
    if status == "completed":
        result["test"] = {"auroc": auroc}
    return result


def test_mean_std_uses_the_sample_std_and_shows_one_value_alone():
    assert mean_std([0.5, 0.7]) == "0.600 ± 0.141"
    assert mean_std([0.8123]) == "0.812"


def test_table_has_a_row_per_class_marks_failures_and_averages_complete_seeds():
    runs = [run("a", 0, 1, 0.9), run("a", 0, 2, 0.7), run("a", 1, 1, 0.5), run("a", 1, 2, 0.3),
            run("b", 0, 1, 0.8), run("b", 1, 1, 0.6), run("b", 1, 2, 0.4),
            run("c", 0, 1, 0.0, status="failed")]
    lines = benchmark_table(runs, "auroc", ["a", "b", "c"], [0, 1]).splitlines()
    assert lines[0] == "| class | a | b | c |"
    assert lines[2] == "| 0 | 0.800 ± 0.141 | 0.800 | failed |"
    assert lines[3] == "| 1 | 0.400 ± 0.141 | 0.500 ± 0.141 | - |"
    # a: seed 1 -> 0.7, seed 2 -> 0.5; b: only seed 1 has both classes -> 0.7
    assert lines[4] == "| **average** | 0.600 ± 0.141 | 0.700 | - |"


def test_published_numbers_stand_beside_ours_with_their_sources_and_the_data_used():
    runs = [{**run(method, label, 42, value), "dataset": "mnist-5k",
             "test": {"auroc": value, "auprc": value}}
            for method, value in (("memgan", 0.7), ("ocsvm", 0.9), ("egbad", 0.6))
            for label in (0, 1)]
    config = BenchmarkConfig(methods=["memgan", "ocsvm", "egbad"], dataset="mnist-5k",
                             protocol="normal", labels=[0, 1])
    report = benchmark_report(runs, config, [0, 1], "bundled", all_classes=False)
    auroc = report.split("Test AUROC:")[1].split("Test AUPRC")[0].strip().splitlines()
    assert auroc[0] == "| class | memgan | memgan paper[1] | ocsvm | ocsvm paper[1] | egbad |"
    assert auroc[2] == "| 0 | 0.700 | 0.993 | 0.900 | - | 0.600 |"
    assert auroc[3] == "| 1 | 0.700 | 0.999 | 0.900 | - | 0.600 |"
    # two of ten classes: MEMGAN's classes 0 and 1 averaged, OC-SVM's ten-class average left out
    assert auroc[4] == "| **average** | 0.700 | 0.996 | 0.900 | - | 0.600 |"
    assert "a paper's average is the mean of its numbers for the classes shown" in report
    every_class = benchmark_report(runs, config, [0, 1], "bundled", all_classes=True)
    assert "| **average** | 0.700 | 0.965 | 0.900 | 0.913 | 0.600 |" in every_class
    assert "for the classes shown" not in every_class
    assert "| class | memgan | ocsvm | egbad |" in report.split("Test AUPRC")[1]  # no anchors
    assert "measured on the full MNIST (70,000 images); ours on mnist-5k, a 5,000-image" in report
    assert "1. Yang et al., Memory-augmented generative adversarial networks" in report

    anomalous = BenchmarkConfig(methods=["memgan"], dataset="mnist-5k", protocol="anomalous")
    assert "paper" not in benchmark_report(runs[:2], anomalous, [0, 1], "bundled")


def test_the_header_lists_the_code_of_cells_trained_by_other_code():
    runs = [{**run("ae", label, 42, 0.9), "dataset": "mnist-5k", "code": code,
             "test": {"auroc": 0.9, "auprc": 0.8}}
            for label, code in ((0, describe_code()), (1, "anomaly-toolbox 0.0.9"))]
    config = BenchmarkConfig(methods=["ae"], dataset="mnist-5k", labels=[0, 1])
    report = benchmark_report(runs, config, [0, 1], "bundled")
    assert (f"- Cells trained by other code, cells per version: anomaly-toolbox 0.0.9 (1); "
            f"{describe_code()} (1)") in report
    assert "trained by other code" not in benchmark_report(runs[:1], config, [0, 1], "bundled")


def test_two_anchors_of_one_method_get_a_column_each():
    assert [a.source.split(",")[0] for a in anchors_for("deepsvdd", "mnist", "normal", "auroc")] \
        == ["Yang et al.", "Somepalli et al."]
    assert anchors_for("egbad", "mvtec", "normal", "auroc", "bottle") == []
    assert anchors_for("egbad", "mvtec", "normal", "auroc", "metal_nut")[0].average == 0.78


@pytest.mark.slow
def test_two_classes_one_seed_of_tiny_models_fill_the_table(tmp_path, capsys):
    config = BenchmarkConfig(methods=["deepsvdd", "iforest"], dataset="mnist-5k", labels=[0, 1],
                             seeds=[0], log_dir=tmp_path, overrides=TINY)
    report, path = run_benchmark(config)
    assert path.read_text() == report
    assert "mnist-5k: bundled real MNIST subset" in report and "epochs=1" in report
    auroc_table, by_rule = report.split("Test AUROC:")[1].split("Test AUPRC:")[0].split(
        "Test AUROC by selection rule")
    rows = [line for line in auroc_table.splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "1", "**average**"]
    for row in rows:
        values = [float(cell) for cell in re.findall(r"\d\.\d{3}", row)]
        assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
    rule_rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): line
                 for line in by_rule.splitlines() if line.startswith("| ")}
    assert {key for key in rule_rows if key[0] != "method"} == {
        ("deepsvdd", "validation"), ("deepsvdd", "synthetic"), ("deepsvdd", "last"),
        ("iforest", "last")}
    reported = [re.findall(r"\d\.\d{3}", row)[0] for row in rows]
    assert re.findall(r"\d\.\d{3}", rule_rows[("deepsvdd", "validation")]) == reported
    assert "- Reported models chosen by: deepsvdd: validation; iforest: last." in report
    first = capsys.readouterr().out
    assert first.count("Test: ") == 4
    headers = [line for line in first.splitlines() if line.startswith("##### benchmark run")]
    assert ["left)" in line for line in headers] == [False, False, False, True], headers
    figure = path.with_suffix(".png")
    assert f"Figure: {figure}" in first
    assert tf.io.decode_png(tf.io.read_file(str(figure))).shape[1] >= 600
    assert run_benchmark(config)[0] == report
    assert capsys.readouterr().out.count("already completed") == 4


def test_time_left_counts_each_cell_at_its_methods_mean_once_every_method_has_one():
    """A benchmark's time estimate: each cell left at its method's mean recorded cell time,
    nothing while a method left has no finished cell; a cell's recorded time sums its runs'
    ``wall_seconds`` (a grid's), and a run without one gives none."""
    times = {"egbad": [3000.0, 3600.0], "ocsvm": [10.0]}
    assert time_left_text(["egbad", "egbad", "ocsvm"], times) == ", about 1:50:10 left"
    assert time_left_text(["egbad", "ganomaly"], times) == ""
    assert time_left_text([], times) == ""
    assert recorded_seconds([{"timings": {"wall_seconds": 60.5}},
                             {"timings": {"wall_seconds": 30}}]) == 90.5
    assert recorded_seconds([{"timings": {"wall_seconds": 60.5}}, {"status": "failed"}]) is None


def test_benchmark_rejects_bad_input_with_exit_code_2(tmp_path):
    """Bad names, labels and budgets exit 2 with what was wrong; every label is checked against
    the data before the first cell trains."""
    for args, message in [(["-m", "ganomly"], "Did you mean 'ganomaly'?"),
                          (["--labels", "one"], "--labels takes comma-separated integers"),
                          (["--epochs", "0"], "--epochs must be > 0"),
                          (["-d", "mnist-5k", "-m", "iforest", "--labels", "1,12"],
                           "label 12 is outside the dataset's classes 0..9")]:
        result = CliRunner().invoke(main, ["benchmark", *args, "--log-dir", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("iforest/*")), "a bad label must be refused before any cell runs"


def test_kdd99_report_adds_the_top_20_percent_tables(tmp_path):
    from tests.conftest import kdd_rows, write_kdd

    data = write_kdd(tmp_path / "kdd", kdd_rows(400))
    report, _ = run_benchmark(BenchmarkConfig(methods=["iforest", "kde"], dataset="kdd99",
                                              protocol="normal", data_dir=data,
                                              log_dir=tmp_path / "logs"))
    assert "| class | iforest | kde |" in report and "| 1 |" in report
    for title in ("Test AUROC:", "Test PRECISION (top-scoring", "Test F1 (top-scoring"):
        assert title in report


def test_restart_trains_every_cell_again_and_the_header_names_the_code(tmp_path):
    args = ["benchmark", "-e", "iforest", "-d", "mnist-5k", "--labels", "0", "--seeds", "0",
            "--log-dir", str(tmp_path)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "- Code: anomaly-toolbox " in first.output
    reused = CliRunner().invoke(main, args)
    assert "already completed" in reused.output
    again = CliRunner().invoke(main, [*args, "--restart"])
    assert again.exit_code == 0, again.output
    assert "already completed" not in again.output and "Test: " in again.output
    [results] = tmp_path.glob("iforest/*/*/results.json")
    assert json.loads(results.read_text())["code"] == describe_code()


@pytest.mark.slow
def test_set_reaches_every_method_that_has_the_key_and_the_header_lists_it(tmp_path):
    """Each key reaches only the method that has it (a fixed bandwidth also spares KDE its
    validation search)."""
    result = CliRunner().invoke(main, ["benchmark", "-e", "iforest,kde", "-d", "mnist-5k",
                                       "--labels", "0", "--seeds", "0", "--set",
                                       "n_estimators=10", "--set", "bandwidth=8.0",
                                       "--log-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "overrides: bandwidth=8.0 (kde only), n_estimators=10 (iforest only)" in result.output
    [iforest] = tmp_path.glob("iforest/*/*/results.json")
    [kde] = tmp_path.glob("kde/*/*/results.json")
    iforest_hps, kde_hps = (json.loads(path.read_text())["hps"] for path in (iforest, kde))
    assert iforest_hps["n_estimators"] == 10 and "bandwidth" not in iforest_hps
    assert kde_hps["bandwidth"] == 8.0 and "n_estimators" not in kde_hps


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_code_line_names_the_commit_of_a_checkout_and_its_changes(tmp_path):
    """No commit outside a checkout or for untracked files; the commit of a clean checkout; with
    edits, the commit and a digest of the diff, the same while the edits are, another for
    other edits."""
    package = tmp_path / "checkout" / "anomaly_toolbox"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")

    def git(*args):
        return subprocess.run(["git", "-C", str(package.parent), *args], capture_output=True,
                              text=True, check=True).stdout.strip()

    assert describe_code(package) == f"anomaly-toolbox {__version__}"  # not a checkout
    git("init", "-q")
    assert describe_code(package) == f"anomaly-toolbox {__version__}"  # not tracked
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    commit = git("rev-parse", "--short", "HEAD")
    assert describe_code(package) == f"anomaly-toolbox {__version__}, git commit {commit}"
    (package / "__init__.py").write_text("x = 1\n")
    edited = describe_code(package)
    assert re.fullmatch(rf".*, git commit {commit} with uncommitted changes \(diff [0-9a-f]{{8}}\)",
                        edited)
    assert describe_code(package) == edited
    (package / "__init__.py").write_text("x = 2\n")
    assert describe_code(package) != edited


BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def benchmark_script(name):
    """The module of ``benchmarks/<name>.py``."""
    path = BENCHMARKS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_contamination_script_reports_a_cell_another_process_writes_in_one_line(tmp_path,
                                                                                monkeypatch):
    """Two contamination processes on one --log-dir may reach the same cell: the second ends with
    exit 2 and the lock's message (who writes it, what to do), not a traceback."""
    script = benchmark_script("contamination")

    def locked(config):
        raise script.RunLocked(f"another process is writing {config.log_dir}/cell; wait for it "
                               "to finish or use another --log-dir")

    monkeypatch.setattr(script, "run_experiment", locked)
    result = CliRunner().invoke(script.main, ["--methods", "ocsvm", "--log-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "another process is writing" in result.output and "Traceback" not in result.output


def test_kept_runs_rebuild_the_report_without_training(tmp_path):
    """benchmarks/keep_runs.py copies only each completed run's results.json (no models, no
    checkpoints, no running run); a benchmark given a copy of that folder as --log-dir reads the
    cell back instead of training it and prints the same report; an empty folder is refused."""
    args = ["benchmark", "-e", "iforest", "-d", "mnist-5k", "--labels", "0", "--seeds", "0"]
    first = CliRunner().invoke(main, [*args, "--log-dir", str(tmp_path / "logs")])
    assert first.exit_code == 0, first.output
    running = tmp_path / "logs" / "iforest" / "data" / "unfinished"
    running.mkdir(parents=True)
    (running / "results.json").write_text(json.dumps({"experiment": "iforest",
                                                      "status": "running"}))
    script = benchmark_script("keep_runs")
    kept = CliRunner().invoke(script.main, [str(tmp_path / "logs"), str(tmp_path / "kept")])
    assert kept.exit_code == 0, kept.output
    assert "kept iforest, class 0, seed 0" in kept.output
    assert [path.name for path in (tmp_path / "kept").rglob("*") if path.is_file()] == [
        "results.json"]
    shutil.copytree(tmp_path / "kept", tmp_path / "elsewhere")
    again = CliRunner().invoke(main, [*args, "--log-dir", str(tmp_path / "elsewhere")])
    assert again.exit_code == 0, again.output
    assert again.output.count("already completed; showing its results") == 1
    table = again.output.split("Test AUROC:")[1].split("Test AUPRC:")[0]
    assert table == first.output.split("Test AUROC:")[1].split("Test AUPRC:")[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = CliRunner().invoke(script.main, [str(empty), str(tmp_path / "none")])
    assert refused.exit_code == 2 and "holds no completed run" in refused.output
    misspelt = CliRunner().invoke(script.main, [str(tmp_path / "logs"), str(tmp_path / "none"),
                                                "--methods", "iforst"])
    assert misspelt.exit_code == 2 and "Did you mean 'iforest'?" in misspelt.output


@pytest.mark.slow
def test_contamination_script_prints_one_table_per_selection_rule(tmp_path):
    """benchmarks/contamination.py trains a cell per contamination level and prints one table
    per selection rule (here OC-SVM's labelled validation and its fixed-default 'last'), each
    with the four levels' AUROCs in [0, 1], and marks the method's own rule with '*'; a cell
    trained by an earlier run with --levels is reused, not trained again."""
    script = benchmark_script("contamination")
    log_dir = str(tmp_path / "logs")
    first = CliRunner().invoke(script.main, ["--methods", "ocsvm", "--levels", "0.02",
                                             "--log-dir", log_dir])
    assert first.exit_code == 0, first.output
    assert "| 2% |" in first.output and "| 0% |" not in first.output
    result = CliRunner().invoke(script.main, ["--methods", "ocsvm", "--log-dir", log_dir])
    assert result.exit_code == 0, result.output
    assert result.output.count("already completed") == 1  # the 2% cell is reused
    tables = result.output.split("Weights chosen by: ")[1:]
    assert [table.splitlines()[0] for table in tables] == ["validation", "last"]
    rows = [next(line for line in table.splitlines() if line.startswith("| ocsvm"))
            for table in tables]
    assert rows[0].startswith("| ocsvm * |") and rows[1].startswith("| ocsvm |")
    for row in rows:
        aurocs = [float(cell.split(" +/- ")[0]) for cell in row.strip(" |").split(" | ")[1:]]
        assert len(aurocs) == 4 and all(0.0 <= auroc <= 1.0 for auroc in aurocs)


@pytest.mark.slow
def test_selected_vs_last_script_compares_the_selected_model_with_the_last_checkpoint(tmp_path):
    """benchmarks/selected_vs_last.py on a finished 2-epoch EGBAD run: one row for the model
    validation selected and one for the last checkpoint (epoch 2), with finite residuals and
    AUROCs in [0, 1], and with --code-norms positive mean code norms and their AUROC; a run of a
    method without reconstructions is refused by name, and --code-norms for a method without an
    encoder and generator too."""
    script = benchmark_script("selected_vs_last")
    run_dir, _ = only_run(tmp_path, "egbad", {**TINY, "epochs": 2}, "--anomalous-label", 1,
                          "--keep-checkpoints")
    result = CliRunner().invoke(script.main, [str(run_dir)])
    assert result.exit_code == 0, result.output
    rows = [line.split(" | ") for line in result.output.splitlines() if "| egbad class 1 |" in line]
    assert [row[1].split(" (")[0] for row in rows] == ["selected", "last checkpoint"]
    assert "epoch 2" in rows[1][1]
    for row in rows:
        normal, anomalous, residual_auroc = float(row[2]), float(row[3]), float(row[4])
        assert normal > 0 and anomalous > 0 and 0.0 <= residual_auroc <= 1.0

    with_norms = CliRunner().invoke(script.main, [str(run_dir), "--code-norms"])
    assert with_norms.exit_code == 0, with_norms.output
    assert "| code norm, normal | code norm, anomalous | AUROC of -norm |" in with_norms.output
    rows = [line.strip(" |").split(" | ") for line in with_norms.output.splitlines()
            if "| egbad class 1 |" in line]
    assert len(rows) == 2
    for row in rows:
        normal_norm, anomalous_norm, norm_auroc = (float(cell) for cell in row[6:])
        assert normal_norm > 0 and anomalous_norm > 0 and 0.0 <= norm_auroc <= 1.0

    (tmp_path / "ae").mkdir()
    ae_dir, _ = only_run(tmp_path / "ae", "ae", {"epochs": 1, "jit_compile": False},
                         "--anomalous-label", 1)
    no_codes = CliRunner().invoke(script.main, [str(ae_dir), "--code-norms"])
    assert no_codes.exit_code == 2 and "ae has no encoder E and generator G" in no_codes.output
    no_checkpoints = CliRunner().invoke(script.main, [str(ae_dir)])
    assert no_checkpoints.exit_code == 2 and "train it with --keep-checkpoints" in \
        no_checkpoints.output

    (tmp_path / "ocsvm").mkdir()
    ocsvm_dir, _ = only_run(tmp_path / "ocsvm", "ocsvm", {}, "--anomalous-label", 1)
    refused = CliRunner().invoke(script.main, [str(ocsvm_dir)])
    assert refused.exit_code == 2 and "ocsvm runs have no reconstruction" in refused.output


def test_validation_curves_script_tables_every_check_and_the_newest_value_after_a_resume(
        tmp_path):
    """benchmarks/validation_curves.py reads validation scalars (not images) from a run's event
    files, up to a partial last record; of an epoch written twice (a resumed run trains it
    again) the newer file's value counts; the best column names the latest of equal values and
    marks the tie; --epochs picks columns, and a metric the run did not log, epochs that are not
    numbers, no epochs or no metrics, or a folder without validation scalars are refused with
    what was wrong."""
    script = benchmark_script("validation_curves")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for stamp, values in ((1000, {1: 0.5, 2: 0.6}), (2000, {2: 0.7, 3: 0.7})):
        writer_dir = tmp_path / str(stamp)
        with tf.summary.create_file_writer(str(writer_dir)).as_default():
            for epoch, value in values.items():
                tf.summary.scalar("validation/auroc", value, step=epoch)
                tf.summary.scalar("validation/ln_auroc", 1.0 - value, step=epoch)
                tf.summary.image("validation/input_vs_reconstruction", tf.zeros([1, 4, 4, 1]),
                                 step=epoch)
                tf.summary.scalar("train/loss", 3.0, step=epoch)
        [written] = writer_dir.glob("events.out.tfevents.*")
        written.rename(run_dir / f"events.out.tfevents.{stamp}.host.1.0.v2")
    with open(run_dir / "events.out.tfevents.2000.host.1.0.v2", "ab") as newest:
        newest.write(b"\x30\x00\x00\x00\x00\x00\x00\x00partial")

    curves = script.validation_curves(run_dir)
    assert sorted(curves) == ["auroc", "ln_auroc"]
    assert curves["auroc"] == pytest.approx({1: 0.5, 2: 0.7, 3: 0.7})
    assert curves["ln_auroc"] == pytest.approx({1: 0.5, 2: 0.3, 3: 0.3})
    result = CliRunner().invoke(script.main, [str(run_dir), "--epochs", "1,3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "| run | metric | epoch 1 | epoch 3 | best (epoch) |"
    assert lines[2] == "| run | auroc | 0.500 | 0.700 | 0.700 (3, tie with 2) |"
    assert lines[3] == "| run | ln_auroc | 0.500 | 0.300 | 0.500 (1) |"

    unknown = CliRunner().invoke(script.main, [str(run_dir), "--metrics", "lo_auroc"])
    assert unknown.exit_code == 2 and "logged no lo_auroc; it has auroc, ln_auroc" in unknown.output
    not_epochs = CliRunner().invoke(script.main, [str(run_dir), "--epochs", "1,last"])
    assert not_epochs.exit_code == 2 and "--epochs takes comma-separated integers" in \
        not_epochs.output
    no_epochs = CliRunner().invoke(script.main, [str(run_dir), "--epochs", ","])
    assert no_epochs.exit_code == 2 and "--epochs is empty" in no_epochs.output
    no_metrics = CliRunner().invoke(script.main, [str(run_dir), "--metrics", " , "])
    assert no_metrics.exit_code == 2 and "--metrics is empty" in no_metrics.output
    empty = CliRunner().invoke(script.main, [str(tmp_path / "1000")])
    assert empty.exit_code == 2 and "has no validation scalars" in empty.output


def test_benchmark_scripts_refuse_bad_lists_before_any_work(tmp_path):
    """benchmarks/contamination.py and benchmarks/throughput.py check every comma-separated
    option before training or timing anything: an unknown method later in the list, a seed or
    batch size that is not an integer, a contamination level that is no share in [0, 1), a
    batch size of 0, an unknown mode or precision each end with exit 2 and what was wrong, and
    nothing is written to the log folder; a label outside the dataset's classes is one line
    too, not a traceback."""
    contamination = benchmark_script("contamination")
    log_dir = tmp_path / "logs"
    for args, message in ((["--methods", "egbad,egbda"], "unknown experiment 'egbda'. Did you "
                                                          "mean 'egbad'?"),
                          (["--seeds", "1,x"], "--seeds takes comma-separated integers"),
                          (["--dataset", "mnsit"], "unknown dataset 'mnsit'"),
                          (["--levels", "0,x"], "--levels takes comma-separated shares"),
                          (["--levels", "0,1"], "--levels takes shares in [0, 1)"),
                          (["--levels", ","], "--levels takes shares in [0, 1)")):
        result = CliRunner().invoke(contamination.main, [*args, "--log-dir", str(log_dir)])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not log_dir.exists()
    result = CliRunner().invoke(contamination.main, ["--methods", "ocsvm", "--normal-label", "12",
                                                     "--log-dir", str(log_dir)])
    assert result.exit_code == 2, result.output
    assert "label 12 is outside the dataset's classes 0..9" in result.output

    throughput = benchmark_script("throughput")
    for args, message in ((["--methods", "egbad,ocsvm"], "unknown 'ocsvm'; choose from egbad"),
                          (["--batch-sizes", "64,a"], "--batch-sizes takes comma-separated"),
                          (["--batch-sizes", "0"], "batch sizes must be > 0"),
                          (["--modes", "XLA,jit"], "unknown 'jit'; choose from eager"),
                          (["--precisions", "float16"], "unknown 'float16'")):
        result = CliRunner().invoke(throughput.main, args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Machine:" not in result.output


def test_selection_rules_script_tables_each_rule_what_labels_bought_and_rank_agreement(
        tmp_path):
    """benchmarks/selection_rules.py: per run, each rule's test AUROC and epoch, the labels' gain
    over the best label-free rule, Spearman's rho of the validation and synthetic checks; per
    method, the averages and the better label-free rule; a folder without such runs is refused."""
    script = benchmark_script("selection_rules")
    for label, (validation, synthetic, last) in enumerate(((0.9, 0.7, 0.6), (0.8, 0.75, 0.7))):
        run_dir = tmp_path / "egbad" / f"data{label}" / "run"
        run_dir.mkdir(parents=True)
        with tf.summary.create_file_writer(str(run_dir)).as_default():
            for epoch, value in enumerate((0.5, 0.6, 0.7, 0.8), start=1):
                tf.summary.scalar("validation/auroc", value, step=epoch)
                tf.summary.scalar("synthetic/auroc", value - 0.1 * (label == 1) * epoch ** 2,
                                  step=epoch)
        (run_dir / "results.json").write_text(json.dumps({
            "experiment": "egbad", "label": label, "seed": 42, "status": "completed",
            "selection_rule": "validation",
            "test_by_selection": {"validation": {"auroc": validation},
                                  "synthetic": {"auroc": synthetic}, "last": {"auroc": last}},
            "selection_checks": {"validation": {"epoch": 2}, "synthetic": {"epoch": 3},
                                 "last": {"epoch": 4}}}))
    result = CliRunner().invoke(script.main, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "| egbad | 0 | 42 | validation | 0.900 (2) | 0.700 (3) | 0.600 (4) | +0.200 | +1.000 |" \
        in lines
    assert "| egbad | 1 | 42 | validation | 0.800 (2) | 0.750 (3) | 0.700 (4) | +0.050 | -1.000 |" \
        in lines
    assert "| egbad | 2 | 0.8500 | 0.7250 | 0.6500 | +0.1250 | +0.000 | synthetic |" in lines
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = CliRunner().invoke(script.main, [str(empty)])
    assert refused.exit_code == 2 and "holds no completed run" in refused.output


def test_each_paper_number_stands_under_our_row_of_the_rule_that_paper_used():
    """MEMGAN's paper reports its last model, AMA's paper a validation-chosen one: with runs that
    report every rule, the paper rows follow ours of that rule, the reported table holds ours
    only, and the sources say each paper's rule."""
    runs = [{**run(method, label, 42, 0.9), "dataset": "mnist-5k", "selection_rule": "validation",
             "test": {"auroc": 0.9, "auprc": 0.9},
             "test_by_selection": {rule: {"auroc": value, "auprc": value}
                                   for rule, value in (("validation", 0.9), ("synthetic", 0.8),
                                                       ("last", 0.7))}}
            for method in ("memgan", "deepsvdd") for label in (0, 1)]
    config = BenchmarkConfig(methods=["memgan", "deepsvdd"], dataset="mnist-5k",
                             protocol="normal", labels=[0, 1])
    report = benchmark_report(runs, config, [0, 1], "bundled")
    reported = report.split("Test AUROC:")[1].split("Test AUROC by selection rule")[0]
    assert "| class | memgan | deepsvdd |" in reported and "paper" not in reported
    rows = [line for line in report.split("Test AUROC by selection rule")[1].split(
        "Test AUPRC")[0].splitlines() if line.startswith("| ")]
    assert rows[0] == "| method | model chosen by | 0 | 1 | average |"
    assert rows[1:5] == ["| memgan | validation | 0.900 | 0.900 | 0.900 |",
                         "| memgan | synthetic | 0.800 | 0.800 | 0.800 |",
                         "| memgan | last | 0.700 | 0.700 | 0.700 |",
                         "| memgan | paper[1], last | 0.993 | 0.999 | 0.965 |"]
    assert rows[5:7] == ["| deepsvdd | validation | 0.900 | 0.900 | 0.900 |",
                         "| deepsvdd | paper[2], validation | - | - | 0.921 |"]
    assert "| deepsvdd | paper[1], last | - | - | 0.948 |" in rows
    assert "- Reported models chosen by: memgan: validation; deepsvdd: validation." in report
    assert "table 1; its model chosen by: last (the weights at the end of a fixed budget" in report


def test_flop_counts_match_the_formulas_of_a_small_step():
    """benchmarks/flops.py counts 2 x multiply-adds of a conv, both its gradients and a matmul
    from the step graph's static shapes."""
    flops = benchmark_script("flops")
    kernel = tf.Variable(tf.ones((3, 3, 2, 4)))
    weights = tf.Variable(tf.ones((4 * 6 * 6, 5)))

    def step(images):
        with tf.GradientTape() as tape:
            features = tf.nn.conv2d(images, kernel, strides=1, padding="VALID")  # [8, 6, 6, 4]
            loss = tf.reduce_sum(tf.reshape(features, (8, -1)) @ weights)
        return loss, tape.gradient(loss, [kernel, weights])

    graph = tf.function(step).get_concrete_function(tf.zeros((8, 8, 8, 2))).graph
    conv = 2 * 8 * 6 * 6 * 4 * 3 * 3 * 2
    matmul = 2 * 8 * 5 * 144
    # forward conv + filter gradient (the input gradient is built but pruned: nothing reads
    # it); matmul (the loss is returned) + its weight gradient + its input gradient (which the
    # filter gradient reads)
    assert flops.graph_flops(graph) == 2 * conv + 3 * matmul


#: Anchors whose paper prints an average its own class values do not give (checked by hand
#: against the paper's text): MEMGAN's table 1 row for itself, its table 2 column for ALAD.
PAPERS_OWN_AVERAGE_SLIPS = {("memgan", "mnist", 0.9633), ("alad", "cifar10", 0.582)}


def test_every_anchor_with_ten_classes_averages_to_its_published_average():
    """A typo in a transcribed per-class number shows as a mean off the paper's average."""
    complete = [a for a in ANCHORS if len(a.per_class) == 10 and a.average is not None]
    assert {a.method for a in complete} >= {"memgan", "ama", "alad", "skipganomaly"}
    for anchor in complete:
        mean = np.mean(list(anchor.per_class.values()))
        if (anchor.method, anchor.dataset, round(mean, 4)) in PAPERS_OWN_AVERAGE_SLIPS:
            continue
        assert mean == pytest.approx(anchor.average, abs=0.0015), (anchor.method, anchor.source)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(path.name for path in BENCHMARKS.glob("*.py")))
def test_benchmark_scripts_start_without_tensorflow_start_up_noise(script):
    """Each benchmark script's console starts with its own lines: no absl pre-initialisation
    warning, oneDNN note or CUDA probing (``--help`` imports everything the script does)."""
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    for noise in ("absl::InitializeLog", "oneDNN", "cuda", "I0000"):
        assert noise not in result.stdout + result.stderr, result.stderr[:2000]
