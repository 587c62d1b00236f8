"""Results a user can trust: runs identified by what they trained on, one writer per run,
grids chosen on validation, and every way a run can end recorded in its results."""

import errno
import gc
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from anomaly_toolbox import Autoencoder, load
from anomaly_toolbox.cli import main
from anomaly_toolbox.experiments import runner
from anomaly_toolbox.results import chosen_run, read_results
from anomaly_toolbox.training.engine import Engine
from anomaly_toolbox.training.selection import BestChecks
from tests.conftest import TINY, write_grid

AE = {**TINY, "filters": 2}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def train(tmp_path, grid, *args, experiment="ae", dataset="mnist-5k", log_dir="logs"):
    hps = write_grid(tmp_path / "grid.json", grid)
    return invoke("-e", experiment, "-d", dataset, "--hps-path", hps, "--log-dir",
                  tmp_path / log_dir, "-q", *args)


def results_files(log_dir):
    return sorted(log_dir.glob("*/*/*/results.json"))


def write_image_folder(root, bundled, normal_digit, anomalous_digit):
    """normal/ and abnormal/ folders of 28x28 PNG digits."""
    for folder, digit, count in (("normal", normal_digit, 60), ("abnormal", anomalous_digit, 20)):
        (root / folder).mkdir(parents=True)
        for index, image in enumerate(bundled.x_train[bundled.y_train == digit][:count]):
            tf.io.write_file(str(root / folder / f"{index:03d}.png"), tf.io.encode_png(image))
    return root


def hparams_records(run_dir):
    """Every HParams plugin record of a run's event files."""
    records = []
    for path in run_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    records.append(plugin_data_pb2.HParamsPluginData.FromString(
                        value.metadata.plugin_data.content))
    return records


# ------------------------------------------------------------------------------ run identity
@pytest.mark.slow
def test_folders_with_the_same_name_and_other_content_never_share_a_run(tmp_path, bundled,
                                                                        monkeypatch):
    first = write_image_folder(tmp_path / "A" / "images", bundled, 1, 7)
    second = write_image_folder(tmp_path / "B" / "images", bundled, 3, 8)
    grid = {**AE, "batch_size": 16}
    done = train(tmp_path, grid, "-d", "folder", "--data-dir", first, dataset="folder")
    assert done.exit_code == 0, done.output

    original = Engine._train_epochs

    def interrupt(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(Engine, "_train_epochs", interrupt)
    stopped = train(tmp_path, {**grid, "epochs": 2}, "-d", "folder", "--data-dir", first,
                    dataset="folder")
    assert stopped.exit_code == 130
    monkeypatch.setattr(Engine, "_train_epochs", original)

    other = train(tmp_path, grid, "-d", "folder", "--data-dir", second, dataset="folder")
    assert other.exit_code == 0, other.output
    assert "already completed" not in other.output
    resumed_elsewhere = train(tmp_path, {**grid, "epochs": 2}, "-d", "folder", "--data-dir",
                              second, dataset="folder")
    assert "Resuming from" not in resumed_elsewhere.output
    runs = [read_results(path) for path in results_files(tmp_path / "logs")]
    assert len(runs) == 4
    digests = {run["fingerprint"]["data"]["digest"] for run in runs}
    locations = {run["fingerprint"]["data"]["location"] for run in runs}
    assert len(digests) == 2 and locations == {str(first.resolve()), str(second.resolve())}
    assert len({path.parent.parent for path in results_files(tmp_path / "logs")}) == 2


def test_the_same_data_and_settings_reuse_the_run_and_the_fingerprint_is_stored(tmp_path,
                                                                                monkeypatch):
    result = train(tmp_path, AE, "--normal-label", 3)
    again = train(tmp_path, AE, "--normal-label", 3)
    assert again.exit_code == 0 and "already completed" in again.output
    assert "trained by" not in again.output
    trained_by = read_results(results_files(tmp_path / "logs")[0])["code"]
    monkeypatch.setattr(runner, "describe_code", lambda: "anomaly-toolbox 9.9, git commit f00")
    edited = train(tmp_path, AE, "--normal-label", 3)
    assert "already completed" in edited.output
    assert f"trained by {trained_by}; running now: anomaly-toolbox 9.9, git commit f00" in (
        edited.output)
    monkeypatch.undo()
    [path] = results_files(tmp_path / "logs")
    results = read_results(path)
    metadata = json.loads((path.parent / "model" / "metadata.json").read_text())
    fingerprint = results["fingerprint"]
    assert metadata["fingerprint"] == fingerprint and path.parent.name == fingerprint["id"][:10]
    assert fingerprint["data"]["name"] == "mnist-5k" and fingerprint["val_share"] == 0.1
    assert fingerprint["hps"] == results["hps"] and fingerprint["seed"] == 42
    other_share = train(tmp_path, AE, "--normal-label", 3, "--val-share", 0.2)
    assert "already completed" not in other_share.output and result.exit_code == 0
    assert len(results_files(tmp_path / "logs")) == 2


@pytest.mark.slow
def test_a_run_of_another_toolbox_version_is_trained_again_not_reused(tmp_path, monkeypatch):
    import anomaly_toolbox

    first = train(tmp_path, AE, "--normal-label", 3)
    assert first.exit_code == 0, first.output
    [path] = results_files(tmp_path / "logs")
    installed = anomaly_toolbox.__version__
    assert read_results(path)["fingerprint"]["toolbox"] == installed
    monkeypatch.setattr(runner, "__version__", "99.0")  # what the run identity reads
    upgraded = train(tmp_path, AE, "--normal-label", 3)
    assert upgraded.exit_code == 0 and "already completed" not in upgraded.output
    versions = {read_results(p)["fingerprint"]["toolbox"] for p in results_files(tmp_path / "logs")}
    assert versions == {installed, "99.0"}


def test_the_offline_mnist_fallback_is_filed_as_what_it_loaded(tmp_path, monkeypatch):
    from anomaly_toolbox.datasets import DatasetUnavailable, sources

    def offline(name, data_dir):
        raise DatasetUnavailable("no network in this test")

    monkeypatch.setattr(sources, "load_tfds", offline)
    result = train(tmp_path, AE, "--normal-label", 3, dataset="mnist")
    assert result.exit_code == 0, result.output
    [path] = results_files(tmp_path / "logs")
    results = read_results(path)
    assert re.fullmatch(r"mnist-5k-[0-9a-f]{8}-normal3-v0\.1-c0-s42", path.parent.parent.name)
    assert results["dataset"] == "mnist-5k" and results["requested_dataset"] == "mnist"
    assert "FALLBACK" in results["data_source"]


# ------------------------------------------------------------------------------------ locks
@pytest.mark.slow
def test_a_second_process_on_the_same_run_is_refused_and_a_dead_ones_lock_taken_over(tmp_path):
    assert train(tmp_path, AE, "--normal-label", 3).exit_code == 0
    [path] = results_files(tmp_path / "logs")
    lock = path.parent / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from anomaly_toolbox.locks import run_lock\n"
        f"with run_lock(Path({str(path.parent)!r})):\n"
        "    print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = train(tmp_path, AE, "--normal-label", 3, "--restart")
        assert refused.exit_code == 2, refused.output
        assert f"another process (PID {holder.pid}: " in refused.output
        assert "is writing" in refused.output
        assert read_results(path)["status"] == "completed"  # untouched
    finally:
        holder.kill()  # SIGKILL: its lock file stays behind, naming it
        holder.wait()
    assert lock.exists()
    taken_over = train(tmp_path, AE, "--normal-label", 3, "--restart")  # its owner is dead now
    assert taken_over.exit_code == 0, taken_over.output
    assert read_results(path)["status"] == "completed" and not lock.exists()


# ---------------------------------------------------------------------------------- HParams
@pytest.mark.slow
def test_hparams_records_are_per_run_with_end_status_and_no_empty_sidebar_run(tmp_path):
    """Each run holds its HParams record (TensorBoard infers the dashboard's columns and
    domains from them, across every command that wrote into the log dir); the experiment
    directory holds no event file of its own, which would be an empty run in the sidebar."""
    for seed in (1, 2):
        assert train(tmp_path, {**AE, "learning_rate": [1e-3, 2e-3]}, "--tuning",
                     "--normal-label", 3, "--seed", seed).exit_code == 0
    paths = results_files(tmp_path / "logs")
    assert len(paths) == 4
    trial_ids, statuses, rates = set(), [], set()
    for path in paths:
        records = hparams_records(path.parent)
        [start] = [r.session_start_info for r in records if r.HasField("session_start_info")]
        [end] = [r.session_end_info for r in records if r.HasField("session_end_info")]
        trial_ids.add(start.group_name)
        statuses.append(end.status)
        rates.add(start.hparams["learning_rate"].number_value)
        assert start.group_name == f"ae/{path.parent.name}"  # short, and distinct below
    assert len(trial_ids) == 4 and statuses == [api_pb2.STATUS_SUCCESS] * 4
    assert rates == {1e-3, 2e-3}
    event_dirs = {path.parent for path in (tmp_path / "logs").rglob("events.out.tfevents.*")}
    assert event_dirs == {path.parent for path in paths}


# ------------------------------------------------------------------------------ Python API
@pytest.mark.slow
def test_detectors_sharing_a_log_dir_never_overwrite_each_other(tmp_path, bundled):
    ones = bundled.x_train[bundled.y_train == 1][:200]
    sevens = bundled.x_train[bundled.y_train == 7][:200]
    hps = {k: v for k, v in AE.items() if k != "jit_compile"}
    first = Autoencoder(**hps, log_dir=tmp_path).fit(ones)
    second = Autoencoder(**hps, log_dir=tmp_path).fit(sevens)
    assert first.model_dir != second.model_dir
    probe = bundled.x_test[:50]
    reloaded = load(first.save(tmp_path / "first"))
    np.testing.assert_array_equal(reloaded.decision_function(probe), first.decision_function(probe))
    assert reloaded.threshold == first.threshold != second.threshold


def test_fit_without_a_log_dir_leaves_no_temporary_directory(bundled):
    hps = {k: v for k, v in AE.items() if k != "jit_compile"}
    detector = Autoencoder(**hps).fit(bundled.x_train[bundled.y_train == 1][:100])
    first_root = detector.model_dir.parents[2]
    detector.fit(bundled.x_train[bundled.y_train == 1][:100])
    second_root = detector.model_dir.parents[2]
    assert not first_root.exists() and second_root.exists()
    del detector
    gc.collect()
    assert not second_root.exists()


# ----------------------------------------------------------------------- choice on validation
def test_best_epoch_ties_go_to_the_other_metric_then_the_later_epoch(tmp_path, monkeypatch):
    sequence = iter([{"auroc": 1.0, "auprc": 0.8}, {"auroc": 1.0, "auprc": 0.9},
                     {"auroc": 1.0, "auprc": 0.9}, {"auroc": 1.0, "auprc": 0.85}])
    saved = []
    monkeypatch.setattr(Engine, "validation_metrics", lambda self, data: next(sequence))
    record = BestChecks.record

    def recorded(self, rules, checks, epoch, networks):
        saved.append((epoch - 1, rules))
        record(self, rules, checks, epoch, networks)

    monkeypatch.setattr(BestChecks, "record", recorded)
    train(tmp_path, {**AE, "epochs": 4}, "--normal-label", 3)
    assert [(epoch, [rule for rule in improved if rule == "validation"])
            for epoch, improved in saved] == [(0, ["validation"]), (1, ["validation"]),
                                              (2, ["validation"]), (3, [])]


def test_a_best_model_held_in_memory_is_written_with_its_own_epochs_weights(tmp_path,
                                                                             monkeypatch):
    """Epoch 2 is best: its weights are held (checkpoints are written at most every 30 s after
    the first epoch) and written at the end, while training went on to epoch 4's weights."""
    sequence = iter([{"auroc": 0.5, "auprc": 0.5}, {"auroc": 0.9, "auprc": 0.9},
                     {"auroc": 0.6, "auprc": 0.6}, {"auroc": 0.7, "auprc": 0.7}])
    monkeypatch.setattr(Engine, "validation_metrics", lambda self, data: next(sequence))
    weights_after = {}
    original = Engine._train_epochs

    def record_weights(self, data, first, *rest):
        original(self, data, first, *rest)
        weights_after[first] = self.trainer.scoring_networks["decoder"].get_weights()

    monkeypatch.setattr(Engine, "_train_epochs", record_weights)
    assert train(tmp_path, {**AE, "epochs": 4}, "--normal-label", 3,
                 "--keep-checkpoints").exit_code == 0
    run_dir = results_files(tmp_path / "logs")[0].parent
    assert list((run_dir / "checkpoints").glob("ckpt-*.index"))  # kept past the run's end
    best = tf.keras.models.load_model(run_dir / "best_validation" / "decoder.keras",
                                      compile=False).get_weights()
    for saved, expected in zip(best, weights_after[1], strict=True):
        np.testing.assert_array_equal(saved, expected)
    assert not all(np.array_equal(a, b) for a, b in zip(best, weights_after[3], strict=True))


@pytest.mark.slow
def test_benchmark_with_a_grid_reports_the_configuration_chosen_on_validation(tmp_path):
    grid = write_grid(tmp_path / "grid.json", {**AE, "learning_rate": [1e-4, 3e-3]})
    result = invoke("benchmark", "-m", "ae", "-d", "mnist-5k", "--protocol", "normal",
                    "--labels", "3", "--hps-path", grid, "--tuning", "--log-dir",
                    tmp_path / "logs")
    assert result.exit_code == 0, result.output
    runs = [read_results(path) for path in results_files(tmp_path / "logs")]
    chosen = chosen_run(runs)
    assert f"| ae | 3 | 42 | {chosen['run']} |" in result.output
    assert f"learning_rate={chosen['hps']['learning_rate']}" in result.output
    assert f"| 3 | {chosen['test']['auroc']:.3f} |" in result.output


# ------------------------------------------------------------------------- how runs end
def test_a_grid_goes_on_past_a_bad_combination(tmp_path):
    result = train(tmp_path, {**AE, "batch_size": [10_000, 32]}, "--tuning", "--normal-label", 3)
    assert result.exit_code == 1 and "1 run(s) failed" in result.output
    runs = {r["hps"]["batch_size"]: r for r in map(read_results, results_files(tmp_path / "logs"))}
    assert runs[32]["status"] == "completed"
    assert runs[10_000]["status"] == "failed"
    assert "batch_size 10000 is larger than the 360 training samples" in runs[10_000]["error"]
    table = (results_files(tmp_path / "logs")[0].parent.parent / "results.md").read_text()
    assert "| failed |" in table and "| completed |" in table and "Traceback" not in result.output


def test_an_unexpected_error_marks_the_run_failed_with_its_reason(tmp_path, monkeypatch):
    from anomaly_toolbox.trainers.autoencoder import AutoencoderTrainer

    def broken(self, *args):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(AutoencoderTrainer, "select_final_model", broken)
    result = train(tmp_path, AE, "--normal-label", 3)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error.log" in result.output
    [path] = results_files(tmp_path / "logs")
    results = read_results(path)
    assert results["status"] == "failed"
    assert results["error"] == "RuntimeError: something inside broke"
    assert "Traceback" in (path.parent / "error.log").read_text()


def test_ctrl_c_during_final_testing_leaves_interrupted_and_says_how_to_resume(tmp_path,
                                                                              monkeypatch):
    from anomaly_toolbox.trainers.autoencoder import AutoencoderTrainer

    def interrupted(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(AutoencoderTrainer, "evaluate", interrupted)
    result = train(tmp_path, AE, "--normal-label", 3, "--restart")
    assert result.exit_code == 130 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if "Resume with" in line]
    assert line.startswith("Interrupted. Resume with: anomaly-box train -e ae -d mnist-5k")
    assert "--restart" not in line and "--normal-label 3" in line
    [path] = results_files(tmp_path / "logs")
    assert read_results(path)["status"] == "interrupted"


def test_a_full_disk_is_said_and_the_last_good_state_kept(tmp_path, monkeypatch):
    from anomaly_toolbox.trainers.autoencoder import AutoencoderTrainer

    def disk_full(self, directory):
        raise OSError(errno.ENOSPC, "No space left on device", str(directory))

    monkeypatch.setattr(AutoencoderTrainer, "save_networks", disk_full)
    result = train(tmp_path, {**AE, "epochs": 2}, "--normal-label", 3)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "the disk is full" in result.output and "run the same command again" in result.output
    [path] = results_files(tmp_path / "logs")
    assert read_results(path)["status"] == "failed"


@pytest.mark.slow
def test_a_truncated_checkpoint_falls_back_to_the_one_before(tmp_path, monkeypatch):
    original = Engine._train_epochs

    def stop_in_third_epoch(self, data, epoch, *rest):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, data, epoch, *rest)

    monkeypatch.setattr(Engine, "_train_epochs", stop_in_third_epoch)
    grid = {**AE, "epochs": 3}
    assert train(tmp_path, grid, "--normal-label", 3).exit_code == 130
    monkeypatch.setattr(Engine, "_train_epochs", original)
    [path] = results_files(tmp_path / "logs")
    checkpoints = path.parent / "checkpoints"
    for data_file in checkpoints.glob("ckpt-2.data-*"):
        data_file.write_bytes(data_file.read_bytes()[:100])
    resumed = train(tmp_path, grid, "--normal-label", 3, "--keep-checkpoints")
    assert resumed.exit_code == 0, resumed.output
    assert "ckpt-2 is unreadable" in resumed.output and "ckpt-1 (epoch 1 of 3 done)" in resumed.output
    assert read_results(path)["epochs_trained"] == 3

    for data_file in checkpoints.glob("ckpt-*.data-*"):
        data_file.write_bytes(b"")
    results = read_results(path)
    results["status"] = "interrupted"
    path.write_text(json.dumps(results))
    broken = train(tmp_path, grid, "--normal-label", 3)
    assert broken.exit_code == 1 and "Traceback" not in broken.output
    assert "no checkpoint of this run can be read" in broken.output
    assert "--restart" in read_results(path)["error"]


def test_results_say_where_the_wall_time_went(tmp_path):
    from anomaly_toolbox.timing import PARTS

    assert train(tmp_path, {**AE, "epochs": 2}, "--normal-label", 3).exit_code == 0
    [path] = results_files(tmp_path / "logs")
    timings = read_results(path)["timings"]
    parts = [timings[f"{part}_seconds"] for part in PARTS]
    assert all(value >= 0 for value in parts) and timings["train_steps_seconds"] > 0
    assert timings["tracing_and_compilation_seconds"] > 0 and timings["validation_seconds"] > 0
    assert sum(parts) + timings["other_seconds"] == pytest.approx(timings["wall_seconds"],
                                                                  abs=0.01)
    assert timings["train_steps_share"] == pytest.approx(
        timings["train_steps_seconds"] / timings["wall_seconds"], abs=1e-3)


def test_min_steps_stretches_a_small_dataset_and_validates_about_once_per_published_epoch(
        tmp_path):
    """Class 3 of mnist-5k under P3 gives 11 steps of 32 images per epoch: min_steps 25 asks for
    3 epochs where epochs says 1, so validation runs once, after the last."""
    result = train(tmp_path, {**AE, "epochs": 1, "min_steps": 25}, "--normal-label", 3)
    assert result.exit_code == 0, result.output
    assert "Training 3 epochs, not 1: min_steps 25 at 11 steps per epoch" in result.output
    assert "epoch 3/3: validation" in result.output and "epoch 1/3: validation" not in result.output
    assert re.search(r"epoch 1/3: trained \(0:\d\d elapsed, about 0:\d\d left\)", result.output)
    assert re.search(r"epoch 3/3: validation auroc [0-9.]+, auprc [0-9.]+; synthetic auroc "
                     r"[0-9.]+, auprc [0-9.]+ \(0:\d\d elapsed\)\n", result.output)
    assert "\x1b[" not in result.output  # not a terminal: plain lines, no progress bar codes
    results = read_results(results_files(tmp_path / "logs")[0])
    assert (results["epochs_trained"], results["epochs_planned"]) == (3, 3)
    assert results["steps_trained"] == 33 and results["hps"]["min_steps"] == 25


def test_epochs_given_alone_train_exactly_that_many(tmp_path):
    result = train(tmp_path, {**AE, "epochs": 2}, "--normal-label", 3)
    assert result.exit_code == 0, result.output
    assert "Training" not in result.output and "epoch 2/2: validation" in result.output
    assert len(re.findall(r"scored \d+ images \(0:\d\d elapsed\)", result.output)) == 2
    results = read_results(results_files(tmp_path / "logs")[0])
    assert results["steps_trained"] == 22 and results["hps"]["min_steps"] == 0


def test_run_options_set_any_hps_key_over_the_grid_typed(tmp_path):
    result = train(tmp_path, AE, "--normal-label", 3, "--epochs", 2, "--batch-size", 30,
                   "--set", "learning_rate=3e-3", "--set", "selection_metric=auprc")
    assert result.exit_code == 0, result.output
    hps = read_results(results_files(tmp_path / "logs")[0])["hps"]
    assert (hps["epochs"], hps["batch_size"], hps["min_steps"]) == (2, 30, 0)
    assert hps["learning_rate"] == 3e-3 and isinstance(hps["learning_rate"], float)
    assert hps["selection_metric"] == "auprc" and hps["filters"] == AE["filters"]
    assert read_results(results_files(tmp_path / "logs")[0])["steps_trained"] == 2 * (360 // 30)
