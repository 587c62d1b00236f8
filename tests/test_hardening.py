"""Untrusted model directories, paths that escape, outputs that would destroy inputs, machine
faults and inputs that used to pass without a word (issue 41). Every refusal: exit 2, one line
naming the problem and the fix, no traceback, nothing written outside the named directories,
no input overwritten."""

import errno
import json
import os
import pickle
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skops import io as skops_io

import anomaly_toolbox
from anomaly_toolbox.cli.score import _spreadsheet_safe
from anomaly_toolbox.datasets import load_raw
from anomaly_toolbox.datasets.table import TableEncoder
from anomaly_toolbox.faults import describe_fault
from anomaly_toolbox.locks import run_lock
from anomaly_toolbox.model_files import ModelError, threshold_for_fpr
from anomaly_toolbox.results import safe_name, write_text_atomically
from tests.conftest import HEADER, TINY, table_rows, write_grid, write_png, write_table
from tests.test_bad_input import assert_bad_input, edit_metadata, invoke, model_copy

MARKER = "code-ran.txt"


class Payload:
    """A pickle that, when loaded, writes a marker file (what an attacker's code would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_pickle(run, payload):
    """Replace a baseline's stored detector with an older model's pickle ``payload``."""
    (run / "model" / "detector.skops").unlink()
    (run / "model" / "detector.pkl").write_bytes(pickle.dumps(payload))


# ----------------------------------------------------------------------- untrusted models
def test_a_pickle_in_a_model_directory_never_runs_by_default(ae_and_iforest_runs, tmp_path):
    run, image = model_copy(ae_and_iforest_runs, tmp_path, "iforest")
    marker = tmp_path / MARKER
    plant_pickle(run, Payload(marker))
    for result in (invoke("score", "--model", run, image),
                   invoke("export", "--model", run, "--output", tmp_path / "export")):
        assert_bad_input(result, "is a pickle, which runs whatever code it holds")
        assert "--trust-model" in result.output
    with pytest.raises(ModelError, match="trusted=True"):
        anomaly_toolbox.load(run)
    assert not marker.exists() and not (tmp_path / "export").exists()


def test_a_trusted_old_pickle_loads_and_is_saved_again_without_it(ae_and_iforest_runs, tmp_path):
    run, image = model_copy(ae_and_iforest_runs, tmp_path, "iforest")
    detector = anomaly_toolbox.load(run).trainer.detector
    expected = anomaly_toolbox.load(run).decision_function(np.zeros((2, 28, 28, 1), np.uint8))
    plant_pickle(run, detector)
    result = invoke("score", "--model", run, image, "--trust-model")
    assert result.exit_code == 0, result.output
    model = anomaly_toolbox.load(run, trusted=True)
    model.save(tmp_path / "resaved")
    assert not (tmp_path / "resaved" / "detector.pkl").exists()
    again = anomaly_toolbox.load(tmp_path / "resaved")  # no trust needed any more
    np.testing.assert_allclose(again.decision_function(np.zeros((2, 28, 28, 1), np.uint8)), expected)


def test_a_skops_file_with_foreign_types_or_detector_is_refused(ae_and_iforest_runs, tmp_path):
    run, image = model_copy(ae_and_iforest_runs, tmp_path, "iforest")
    stored = run / "model" / "detector.skops"
    stored.write_bytes(skops_io.dumps({"detector": np.sum}))
    assert_bad_input(invoke("score", "--model", run, image), "holds object types that no iforest")
    from sklearn.svm import OneClassSVM

    stored.write_bytes(skops_io.dumps(OneClassSVM().fit(np.random.rand(20, 784))))
    assert_bad_input(invoke("score", "--model", run, image),
                     "holds a OneClassSVM, not the IsolationForest of a iforest model")


def test_a_tree_with_node_indices_out_of_bounds_is_refused(ae_and_iforest_runs, tmp_path):
    run, image = model_copy(ae_and_iforest_runs, tmp_path, "iforest")
    detector = anomaly_toolbox.load(run).trainer.detector
    tree = detector.estimators_[0].tree_
    state = tree.__getstate__()
    state["nodes"] = state["nodes"].copy()
    state["nodes"]["left_child"][0] = 10**6
    tree.__setstate__(state)
    (run / "model" / "detector.skops").write_bytes(skops_io.dumps(detector))
    assert_bad_input(invoke("score", "--model", run, image), "node indices out of bounds")


def test_a_lambda_layer_in_a_network_file_never_runs(ae_and_iforest_runs, tmp_path, monkeypatch):
    run, image = model_copy(ae_and_iforest_runs, tmp_path)
    marker = tmp_path / MARKER
    inputs = keras.Input((8,))
    monkeypatch.setenv("ANOMALY_TOOLBOX_MARKER", str(marker))
    outputs = keras.layers.Lambda(
        lambda x: x + len(open(__import__("os").environ["ANOMALY_TOOLBOX_MARKER"], "w").name) * 0
    )(inputs)
    keras.Model(inputs, outputs).save(run / "model" / "decoder.keras")
    marker.unlink()  # building the model called the function once, here
    assert_bad_input(invoke("score", "--model", run, image), "do not load into the model")
    assert not marker.exists()


# ------------------------------------------------------------------ paths that escape
def test_a_category_that_is_a_path_is_refused(tmp_path):
    (tmp_path / "outside" / "train" / "good").mkdir(parents=True)
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(ValueError, match="is not a folder name"):
        load_raw("mvtec", data, "../outside")
    result = invoke("-e", "ae", "-d", "mvtec", "--data-dir", data, "--category", "../../outside",
                    "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "is not a folder name")
    assert not (tmp_path / "logs").exists() and sorted(os.listdir(tmp_path)) == ["data",
                                                                                 "outside"]


def test_names_from_users_and_files_stay_one_file_name():
    assert safe_name("mvtec-../../outside") == "mvtec-.._.._outside"
    long = safe_name("x" * 300)
    assert len(long) == 80 and long != safe_name("x" * 301)
    assert "/" not in safe_name("a/b\\c") and not safe_name("..").startswith(".")


def test_a_link_planted_where_the_temporary_file_goes_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "scores.csv"
    (tmp_path / "scores.csv.partial").symlink_to(victim)
    write_text_atomically(out, "new")
    assert out.read_text() == "new" and victim.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "scores.csv.partial",
                                                         "victim.txt"]


def test_score_csv_cells_never_start_a_formula(ae_and_iforest_runs, tmp_path, bundled, monkeypatch):
    run, _ = model_copy(ae_and_iforest_runs, tmp_path)
    names = [f"{name}.png" for name in ("=HYPERLINK(1)", "+1", "-2", "@SUM(1)", "plain")]
    for name in names:
        write_png(tmp_path / name, bundled.x_test[0])
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "scores.csv"
    assert invoke("score", "--model", run, "--csv", out, "--", *names).exit_code == 0
    cells = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert cells == ["'" + name for name in names[:4]] + ["plain.png"]
    assert _spreadsheet_safe("=1+1") == "'=1+1" and _spreadsheet_safe("a=b") == "a=b"


# ------------------------------------------------------------- outputs that destroy inputs
@pytest.mark.parametrize("target", ["image", "metadata", "maps-in-model", "maps-in-inputs"])
def test_outputs_onto_inputs_or_into_the_model_are_refused(ae_and_iforest_runs, tmp_path, target):
    run, image = model_copy(ae_and_iforest_runs, tmp_path)
    images = tmp_path / "images"
    shutil.copytree(image.parent, images, ignore=shutil.ignore_patterns("logs", "*.json"))
    scored = images / image.name
    before = {path: path.read_bytes() for path in [scored, run / "model" / "metadata.json"]}
    option, path = {"image": ("--csv", scored),
                    "metadata": ("--csv", run / "model" / "metadata.json"),
                    "maps-in-model": ("--save-maps", run / "model" / "maps"),
                    "maps-in-inputs": ("--save-maps", images / "maps")}[target]
    result = invoke("score", "--model", run, images, option, path)
    assert_bad_input(result, f"{option} {path}")
    assert "is_anomaly" not in result.output
    assert all(path.read_bytes() == data for path, data in before.items())


def test_map_names_from_long_file_names_fit_the_file_system(ae_and_iforest_runs, tmp_path, bundled):
    run, _ = model_copy(ae_and_iforest_runs, tmp_path)
    image = tmp_path / "in" / f"{'a' * 240}.png"
    write_png(image, bundled.x_test[0])
    result = invoke("score", "--model", run, image, "--save-maps", tmp_path / "maps")
    assert result.exit_code == 0, result.output
    [picture] = (tmp_path / "maps").iterdir()
    assert len(picture.name) < 100 and picture.name.startswith("00000-aaaa")


# ------------------------------------------------------------------------ machine faults
def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "somewhere")


def test_a_full_disk_at_run_start_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("anomaly_toolbox.experiments.runner.write_json_atomically", full_disk)
    result = invoke("-e", "ae", "-d", "mnist-5k", "--epochs", 1, "--set", "filters=2",
                    "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "the disk is full (somewhere): free some space")


def no_space_for_checkpoints(self, last):
    raise tf.errors.UnknownError(None, None, "ckpt-1.index: No space left on device")


def no_permission_for_summaries(*args, **kwargs):
    raise tf.errors.PermissionDeniedError(None, None, "logs/run: Permission denied")


@pytest.mark.parametrize("target, fault, message", [
    ("anomaly_toolbox.training.checkpoints.EpochCheckpoints.epoch_finished",
     no_space_for_checkpoints, "the disk is full: free some space"),
    ("anomaly_toolbox.experiments.runner.tf.summary.create_file_writer",
     no_permission_for_summaries, "permission denied: make it readable/writable"),
], ids=["full-disk-while-training", "run-directory-without-permission"])
def test_tensorflow_storage_faults_during_a_run_are_one_line(tmp_path, monkeypatch, target,
                                                             fault, message):
    monkeypatch.setattr(target, fault)
    result = invoke("-e", "ae", "-d", "mnist-5k", "--epochs", 1, "--set", "filters=2",
                    "--log-dir", tmp_path / "logs", "-q")
    assert_bad_input(result, message)
    [results] = (tmp_path / "logs").rglob("results.json")
    assert json.loads(results.read_text())["status"] == "failed"


@pytest.mark.parametrize("where", ["csv", "maps", "export"])
def test_a_full_disk_while_scoring_or_exporting_is_one_line(ae_and_iforest_runs, tmp_path,
                                                             monkeypatch, where):
    run, image = model_copy(ae_and_iforest_runs, tmp_path)
    if where == "csv":
        monkeypatch.setattr("anomaly_toolbox.results.write_bytes_atomically", full_disk)
        result = invoke("score", "--model", run, image, "--csv", tmp_path / "s.csv")
    elif where == "maps":
        monkeypatch.setattr("tensorflow.io.write_file", full_disk)
        result = invoke("score", "--model", run, image, "--save-maps", tmp_path / "maps")
    else:
        monkeypatch.setattr("anomaly_toolbox.export.export", full_disk)
        result = invoke("export", "--model", run, "--output", tmp_path / "export")
    assert_bad_input(result, "the disk is full (somewhere)")


def test_memory_that_runs_out_names_the_tensor(tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(
            None, None, "OOM when allocating tensor with shape[200000,3200000] and type float")

    monkeypatch.setattr("anomaly_toolbox.trainers.base.Trainer._build_networks_in_precision",
                        out_of_memory)
    result = invoke("-e", "ae", "-d", "mnist-5k", "--epochs", 1, "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "out of memory (one tensor of shape [200000, 3200000] alone needs "
                             "2,384.2 GiB): lower filters, latent_dim or batch_size")
    assert describe_fault(MemoryError()).startswith("out of memory: lower")
    assert describe_fault(ValueError("x")) is None


@pytest.mark.parametrize("setting, message", [
    ("latent_dim=1000000000", "must be <= 65536"), ("filters=200000", "must be <= 4096"),
    ("epochs=1000000000", "must be <= 100000"), (f"epochs={2**70}", "must be <= 100000")])
def test_sizes_and_budgets_beyond_any_machine_are_refused(tmp_path, setting, message):
    assert_bad_input(invoke("-e", "ganomaly", "--set", setting, "--log-dir", tmp_path / "logs"),
                     message, tmp_path / "logs")


DEEP = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_json_is_one_line(ae_and_iforest_runs, tmp_path):
    assert_bad_input(invoke("-e", "ae", "--set", f"filters={DEEP}", "--log-dir", tmp_path),
                     "nested too deeply")
    grid = tmp_path / "grid.json"
    grid.write_text('{"filters": ' + DEEP + "}")
    assert_bad_input(invoke("-e", "ae", "--hps-path", grid, "--log-dir", tmp_path / "logs"),
                     "nested too deeply")
    run, image = model_copy(ae_and_iforest_runs, tmp_path)
    (run / "model" / "metadata.json").write_text(DEEP)
    assert_bad_input(invoke("score", "--model", run, image), "nested too deeply")


def test_an_hps_path_that_is_a_device_is_refused(tmp_path):
    assert_bad_input(invoke("-e", "ae", "--hps-path", "/dev/zero", "--log-dir", tmp_path),
                     "/dev/zero is not a regular file")


@pytest.mark.parametrize("edit, message", [
    ({"threshold_rule": None}, "field 'threshold_rule' should be"),
    ({"validation_normal_scores": [0.1, float("nan")]}, "a non-empty list of finite numbers"),
    ({"experiment": "egbad", "hps": {"filters": 2}},
     "names method 'egbad', but its hps are not egbad's"),
])
def test_metadata_missing_fields_or_of_another_method(ae_and_iforest_runs, tmp_path, edit, message):
    run, image = model_copy(ae_and_iforest_runs, tmp_path)
    if "experiment" in edit:
        metadata = json.loads((run / "model" / "metadata.json").read_text())
        metadata["experiment"] = "iforest"
        (run / "model" / "metadata.json").write_text(json.dumps(metadata))
        message = "names method 'iforest', but its hps are not iforest's"
    else:
        edit_metadata(run, **edit)
    assert_bad_input(invoke("score", "--model", run, image, "--fpr", 0.1), message)


def test_nan_normal_scores_give_no_false_positive_threshold():
    with pytest.raises(ModelError, match="NaN or infinite"):
        threshold_for_fpr(np.array([0.1, np.nan, 0.3]), 0.1)


# ---------------------------------------------------------- accepted without a word before
def test_a_huge_grid_needs_yes(tmp_path):
    grid = write_grid(tmp_path / "grid.json", {**TINY, "learning_rate": [1e-3 * (i + 1)
                                                                         for i in range(11)],
                                               "beta_1": [0.1 * i for i in range(10)]})
    result = invoke("-e", "ae", "--hps-path", grid, "--tuning", "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "makes 110 runs with --tuning; give --yes", tmp_path / "logs")


def test_duplicate_keys_in_json_are_refused(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text('{"epochs": {"values": [1]}, "epochs": {"values": [2]}}')
    assert_bad_input(invoke("-e", "ae", "--hps-path", grid, "--log-dir", tmp_path / "logs"),
                     "key 'epochs' appears twice")


@pytest.mark.parametrize("args, message", [
    (["-m", "ae,ae"], "ae given twice"), (["-m", "ae", "--labels", "1,1"], "1 given twice"),
    (["-m", "ae", "--seeds", "4,4"], "4 given twice")])
def test_benchmark_repeats_are_refused(tmp_path, args, message):
    assert_bad_input(invoke("benchmark", *args, "-d", "mnist-5k", "--log-dir",
                            tmp_path / "logs"), message, tmp_path / "logs")


@pytest.mark.parametrize("args", [
    ["-e", "ae", "--log-dir", ""], ["score", "--model", "run", "x.png", "--save-maps", ""],
    ["export", "--model", "run", "--output", ""]])
def test_empty_paths_are_refused(tmp_path, args):
    assert_bad_input(invoke(*args), "is empty; give a path")


@pytest.mark.parametrize("args, message", [
    (["-e", "ae", "-d", "mnist-5k", "--data-dir", "."], "--data-dir does not apply to mnist-5k"),
    (["-e", "ae", "-d", "mnist-5k", "--ray", "auto"], "--ray spreads the runs of a grid"),
    (["-e", "ama", "-d", "mnist-5k", "--distribute", "mirrored"],
     "ama does not train with --distribute"),
    (["-e", "ocsvm", "-d", "mnist-5k", "--distribute", "mirrored"],
     "ocsvm does not train with --distribute"),
])
def test_options_that_do_not_apply_are_refused(tmp_path, args, message):
    assert_bad_input(invoke(*args, "--log-dir", tmp_path / "logs"), message, tmp_path / "logs")


def test_a_looping_link_among_images_is_named(ae_and_iforest_runs, tmp_path, bundled):
    run, _ = model_copy(ae_and_iforest_runs, tmp_path)
    images = tmp_path / "images"
    write_png(images / "a.png", bundled.x_test[0])
    (images / "loop.png").symlink_to(images / "loop.png")
    result = invoke("score", "--model", run, images)
    assert result.exit_code == 0, result.output
    assert f"skipped (not a readable file: a broken or looping link, or a folder): " \
           f"{images / 'loop.png'}" in result.output


def test_a_column_spanning_the_float64_range_keeps_its_order():
    rows = np.array([[1e308], [-1e308], [0.0], [5e307]], dtype=object)
    features = TableEncoder.fit(rows).transform(rows).ravel()
    np.testing.assert_allclose(features, [1.0, 0.0, 0.5, 0.75])


def test_an_image_method_on_a_small_table_says_images_only(tmp_path):
    table = write_table(tmp_path / "pay.csv", table_rows(60))
    result = invoke("-e", "anogan", "-d", "csv", "--data-dir", table, "--label-column", "label",
                    "--normal-value", "ok", "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "anogan works on images only", tmp_path / "logs")
    assert HEADER[-1] == "label"


# --------------------------------------------------------------------- exit codes, locks
@pytest.mark.parametrize("where", ["start-up", "score"])
def test_a_stop_outside_training_exits_130(ae_and_iforest_runs, tmp_path, monkeypatch, where):
    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # what the SIGTERM handler raises

    run, image = model_copy(ae_and_iforest_runs, tmp_path)
    target = ("anomaly_toolbox.cli.common.start_tensorflow" if where == "start-up"
              else "anomaly_toolbox.detector.Detector.decision_function")
    monkeypatch.setattr(target, stopped)
    result = invoke("score", "--model", run, image)
    assert result.exit_code == 130 and "Interrupted." in result.output
    assert "Aborted!" not in result.output


def test_a_lock_naming_a_reused_pid_is_taken_over(tmp_path):
    lock = tmp_path / ".lock"
    lock.write_text(f"{os.uname().nodename} 1\n")  # PID 1 lives, but holds no lock
    with run_lock(tmp_path):
        assert lock.read_text().split()[1] == str(os.getpid())
    assert not lock.exists()


def test_saving_a_model_onto_its_own_directory_rewrites_its_metadata(ae_and_iforest_runs, tmp_path):
    run, _ = model_copy(ae_and_iforest_runs, tmp_path)
    model = anomaly_toolbox.load(run)
    model.set_threshold(threshold=0.5)
    assert model.save(run / "model") == run / "model"
    assert anomaly_toolbox.load(run).threshold == 0.5


def test_a_grayscale_gif_scores_with_a_grayscale_model(ae_and_iforest_runs, tmp_path, bundled):
    run, _ = model_copy(ae_and_iforest_runs, tmp_path)
    gif = tmp_path / "digit.gif"
    Image.fromarray(bundled.x_test[0][..., 0]).convert("RGB").save(gif)
    result = invoke("score", "--model", run, gif)
    assert result.exit_code == 0, result.output
    colour = tmp_path / "colour.gif"
    picture = np.zeros((28, 28, 3), np.uint8)
    picture[..., 0] = 255
    Image.fromarray(picture).save(colour)
    assert_bad_input(invoke("score", "--model", run, colour), "is a colour image")


def test_a_data_folder_without_permission_is_one_line(tmp_path, monkeypatch):
    def denied(directory):
        raise PermissionError(errno.EACCES, "Permission denied", str(directory))

    (tmp_path / "data" / "normal").mkdir(parents=True)
    (tmp_path / "data" / "abnormal").mkdir()
    monkeypatch.setattr("anomaly_toolbox.datasets.folder.image_files", denied)
    result = invoke("-e", "ae", "-d", "folder", "--data-dir", tmp_path / "data", "--log-dir",
                    tmp_path / "logs")
    assert_bad_input(result, f"permission denied ({tmp_path / 'data' / 'normal'}): make it "
                             f"readable/writable", tmp_path / "logs")
