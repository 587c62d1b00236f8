"""Bad input of every kind ends with one line naming the problem and the fix, exit code 2, no
traceback, and nothing half-written: no run directory appears in the log dir."""

import gzip
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from anomaly_toolbox.cli import main
from tests.conftest import TINY, write_grid, write_png

MISSING = "/no/such/path"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_bad_input(result, message, log_dir=None):
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no uncaught exception
    assert "Traceback" not in result.output
    assert message in result.output, result.output
    if log_dir is not None:
        assert not log_dir.exists() or not list(log_dir.rglob("*")), "bad input left files"


def kdd_line(label="normal."):
    return ",".join(["0", "tcp", "http", "SF", *["1"] * 37, label])


# ---------------------------------------------------------------- train: command-line values
TRAIN_OPTIONS = [
    (["-e", "egbd"], "unknown experiment 'egbd'. Did you mean 'egbad'?"),
    (["-e", "egbad", "-d", "mnsit"], "unknown dataset 'mnsit'. Did you mean 'mnist'?"),
    (["-d", "mnist"], "--experiment is required"),
    (["-e", "egbad", "--anomalous-label", 1, "--normal-label", 2], "not both"),
    (["-e", "egbad", "--contamination", 1.5], "--contamination must be in [0, 1)"),
    (["-e", "egbad", "--contamination", -0.1], "--contamination must be in [0, 1)"),
    (["-e", "egbad", "--contamination", "nan"], "--contamination must be in [0, 1)"),
    (["-e", "egbad", "--val-share", 0], "--val-share must be in (0, 1)"),
    (["-e", "egbad", "--val-share", 1], "--val-share must be in (0, 1)"),
    (["-e", "egbad", "--data-dir", MISSING], "is not a directory"),
    (["-e", "egbad", "--seed", -1], "Invalid value for '--seed'"),
    (["-e", "egbad", "--seed", 2**40], "Invalid value for '--seed'"),
    (["-e", "egbad", "--seed", "abc"], "Invalid value for '--seed'"),
    (["-e", "egbad", "-d", "mnist-5k", "--anomalous-label", 12], "outside the dataset's classes"),
    (["-e", "egbad", "-d", "mnist-5k", "--normal-label", -1], "outside the dataset's classes"),
    (["-e", "egbad", "-d", "mnist-5k", "--category", "bottle"], "--category applies to"),
    (["-e", "egbad", "-d", "mvtec"], "needs --category"),
    (["-e", "egbad", "-d", "folder"], "pass --data-dir"),
    (["-e", "egbad", "-d", "mnist-5k", "--normal-label", 1, "--contamination", 0.95],
     "lower --contamination"),
    (["-e", "egbad", "--hps-path", MISSING], "hyperparameter file not found"),
    (["-e", "egbad", "--hps-path", "egbad_kdd"],
     "egbad_kdd: hyperparameter file not found. Did you mean 'egbad_kdd99'? Give a path, or the "
     "name of a shipped grid: ae, "),
    (["-e", "egbad", "--no-such-option"], "No such option '--no-such-option'"),
    (["-e", "egbad", "--set", "lerning_rate=1e-4"],
     "--set lerning_rate: 'lerning_rate' is not an hps key of egbad. Did you mean "
     "'learning_rate'?"),
    (["-e", "egbad", "--set", "learning_rate"], "--set takes KEY=VALUE"),
    (["-e", "egbad", "--set", "learning_rate=fast"],
     "--set learning_rate: expects float, got 'fast'"),
    (["-e", "egbad", "--set", "score=xyz"], "--set score: value 'xyz' is not one of"),
    (["-e", "egbad", "--epochs", 0], "--epochs: must be > 0, got 0"),
    (["-e", "egbad", "--batch-size", 64, "--set", "batch_size=32"],
     "--set batch_size: 'batch_size' is set twice"),
    (["-e", "ocsvm", "--epochs", 3], "--epochs: 'epochs' is not an hps key of ocsvm"),
    (["trian", "-e", "egbad"], "unknown command 'trian'. Did you mean 'train'?"),
    (["benchmrk"], "unknown command 'benchmrk'. Did you mean 'benchmark'?"),
    (["scroe"], "unknown command 'scroe'. Did you mean 'score'?"),
]


@pytest.mark.parametrize("args, message", TRAIN_OPTIONS)
def test_train_options(tmp_path, args, message):
    assert_bad_input(invoke(*args, "--log-dir", tmp_path / "logs"), message, tmp_path / "logs")


# ---------------------------------------------------------------------- train: hps files
HPS_FILES = [
    ('{"epochs": {"type": "Discrete", "values": [1]},, }', "malformed JSON at line 1"),
    ("", "malformed JSON at line 1"),
    ('[1, 2]', "the top level must be a JSON object"),
    ('{"epoch": {"values": [3]}}', "unknown hyperparameter; did you mean 'epochs'?"),
    ('{"epochs": {"values": ["three"]}}', "key 'epochs': expects int, got 'three'"),
    ('{"epochs": {"values": []}}', "'values' must be a non-empty list"),
    ('{"epochs": {"values": 3}}', "'values' must be a non-empty list"),
    ('{"epochs": 3}', "expected {\"type\": \"Discrete\", \"values\": [...]}"),
    ('{"epochs": {"type": "Uniform", "values": [3]}}', "type 'Uniform' is not supported"),
    ('{"epochs": {"values": [3], "step": 1}}', "unexpected field(s) ['step']"),
    ('{"batch_size": {"values": [0]}}', "key 'batch_size': must be > 0, got 0"),
    ('{"learning_rate": {"values": [-0.001]}}', "key 'learning_rate': must be > 0"),
    ('{"learning_rate": {"values": [NaN]}}', "key 'learning_rate': must be a finite number"),
    ('{"learning_rate": {"values": [Infinity]}}', "key 'learning_rate': must be a finite number"),
    ('{"beta_1": {"values": [-Infinity]}}', "key 'beta_1': must be a finite number"),
    ('{"filters": {"values": [true]}}', "key 'filters': expects int, got True"),
    ('{"selection_metric": {"values": ["f1"]}}', "is not one of ['auroc', 'auprc']"),
    ('{"ema_decay": {"values": [1.5]}}', "key 'ema_decay': must be <= 0.9999"),
]


@pytest.mark.parametrize("text, message", HPS_FILES)
def test_hps_files(tmp_path, text, message):
    grid = tmp_path / "grid.json"
    grid.write_text(text)
    result = invoke("-e", "ganomaly", "-d", "mnist-5k", "--hps-path", grid, "--log-dir",
                    tmp_path / "logs")
    assert_bad_input(result, message, tmp_path / "logs")
    assert "grid.json" in result.output


def test_a_binary_hps_file_is_named(tmp_path):
    grid = tmp_path / "weights.bin"
    grid.write_bytes(bytes(range(256)) * 4)
    result = invoke("-e", "egbad", "--hps-path", grid, "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "weights.bin: not a text file", tmp_path / "logs")


def test_an_hps_path_that_is_a_directory(tmp_path):
    result = invoke("-e", "egbad", "--hps-path", tmp_path, "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "is not a regular file (a device, pipe or folder)")


# --------------------------------------------------------- train: settings that do not fit
def test_inconsistent_hps_of_one_method(tmp_path):
    grid = write_grid(tmp_path / "grid.json", {**TINY, "search_boundary_1": 300,
                                               "search_boundary_2": 200})
    result = invoke("-e", "anogan", "-d", "mnist-5k", "--hps-path", grid, "--log-dir",
                    tmp_path / "logs")
    assert_bad_input(result, "search_boundary_1 (300) must be smaller", tmp_path / "logs")


def test_a_batch_larger_than_the_training_split(tmp_path):
    grid = write_grid(tmp_path / "grid.json", {**TINY, "batch_size": 10_000})
    result = invoke("-e", "ae", "-d", "mnist-5k", "--normal-label", 3, "--hps-path", grid,
                    "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "batch_size 10000 is larger than the 360 training samples",
                     tmp_path / "logs")


# ------------------------------------------------------------------------ train: log dirs
def test_a_log_dir_that_is_a_file(tmp_path):
    (tmp_path / "logs").write_text("not a directory")
    result = invoke("-e", "egbad", "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "--log-dir")
    assert "is a file, not a directory" in result.output


def test_a_log_dir_below_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    result = invoke("-e", "egbad", "--log-dir", tmp_path / "file" / "logs")
    assert_bad_input(result, "cannot be created")


def test_an_unwritable_log_dir(tmp_path):
    result = invoke("-e", "egbad", "--log-dir", "/proc/anomaly-box-logs")
    assert_bad_input(result, "is not writable")


# ------------------------------------------------------------------------- train: data files
def kdd_dir(tmp_path, name, content):
    directory = tmp_path / "kdd"
    directory.mkdir()
    (directory / name).write_bytes(content)
    return directory


KDD_FILES = [
    ("kddcup.data_10_percent.gz", b"0,tcp,http,SF,plain text\n", "is not gzip-compressed"),
    ("kddcup.data_10_percent.gz", gzip.compress(("\n".join([kdd_line()] * 200)).encode())[:-30],
     "truncated or damaged gzip file"),
    ("kddcup.data_10_percent", bytes(range(256)) * 8, "is not a text file of comma-separated"),
    ("kddcup.data_10_percent", b"0,tcp,\xff\xfe,http\n", "is not a text file of comma-separated"),
    ("kddcup.data_10_percent", b"1,2,3\n", "line 1: expected 41 features and a label"),
    ("kddcup.data_10_percent", b"", "holds no records"),
    ("kddcup.data_10_percent",
     ",".join(["x", "tcp", "http", "SF", *["1"] * 37, "normal."]).encode() + b"\n",
     "KDD column 1 should be numeric"),
]


@pytest.mark.parametrize("name, content, message", KDD_FILES,
                         ids=["plain-text-gz", "truncated-gz", "binary", "not-utf8",
                              "short-rows", "empty", "text-in-numeric-column"])
def test_kdd99_files(tmp_path, name, content, message):
    data = kdd_dir(tmp_path, name, content)
    result = invoke("-e", "egbad", "-d", "kdd99", "--data-dir", data, "--log-dir",
                    tmp_path / "logs")
    assert_bad_input(result, message, tmp_path / "logs")
    assert name in result.output


def test_an_image_only_method_on_a_table(tmp_path):
    data = kdd_dir(tmp_path, "kddcup.data_10_percent",
                   "\n".join([kdd_line("normal.")] * 40 + [kdd_line("smurf.")] * 160).encode())
    result = invoke("-e", "anogan", "-d", "kdd99", "--data-dir", data, "--log-dir",
                    tmp_path / "logs")
    assert_bad_input(result, "works on images only", tmp_path / "logs")


@pytest.mark.parametrize("layout, message", [
    ({}, "neither the MVTec AD layout"),
    ({"train/good/a.png": b"not an image", "test/crack/b.png": b"nor this"},
     "no readable normal training images"),
    ({"train/good/a.png": None}, "has train/good/ but no test/ folder"),
    ({"train/good/a.png": None, "test/good/b.png": None}, "no readable anomalous test images"),
], ids=["no-layout", "unreadable", "no-test-folder", "no-anomalies"])
def test_image_folders(tmp_path, layout, message):
    root = tmp_path / "images"
    root.mkdir()
    for name, content in layout.items():
        path = root / name
        if content is None:
            write_png(path, np.zeros((28, 28, 1), np.uint8))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    result = invoke("-e", "ae", "-d", "folder", "--data-dir", root, "--log-dir",
                    tmp_path / "logs")
    assert_bad_input(result, message, tmp_path / "logs")


def test_an_unknown_mvtec_category(tmp_path):
    (tmp_path / "mvtec" / "bottle" / "train").mkdir(parents=True)
    result = invoke("-e", "ae", "-d", "mvtec", "--data-dir", tmp_path / "mvtec", "--category",
                    "botle", "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "categories found there: bottle")


# ------------------------------------------------------------------------------ benchmark
BENCHMARK_OPTIONS = [
    (["-m", "egbd"], "unknown experiment 'egbd'"),
    (["-m", "ae,egbd,"], "unknown experiment 'egbd'"),
    (["-m", " , "], "no experiment given; give comma-separated names like egbad,anogan"),
    (["-m", "ae", "--epochs", 0], "--epochs must be > 0"),
    (["-m", "ae", "--labels", "a,b"], "--labels takes comma-separated integers"),
    (["-m", "ae", "--seeds", ","], "--seeds is empty"),
    (["-m", "ae", "--seeds", "1,-2"], "--seeds: -2 is not in the range"),
    (["-m", "ae", "-d", "mnsit"], "unknown dataset 'mnsit'"),
    (["-m", "ae", "--protocol", "p9"], "Invalid value for '--protocol'"),
    (["-m", "ae,ocsvm", "--hps-path", "grid.json"], "with several methods write METHOD=FILE"),
    (["-m", "ae", "--hps-path", "egbad=grid.json"], "'egbad' is not among the benchmarked"),
    (["-m", "ae", "--hps-path", f"ae={MISSING}"], "hyperparameter file not found"),
    (["-m", "ae,ocsvm", "--set", "latent_dm=4"],
     "--set latent_dm: 'latent_dm' is not an hps key of ae or ocsvm. Did you mean 'latent_dim'?"),
    (["-m", "jointgan,ae", "--set", "score_lambda=2"], "--set score_lambda:"),
    (["-m", "ae", "--set", "epochs"], "--set takes KEY=VALUE"),
    (["-m", "ae", "--epochs", 2, "--set", "epochs=3"], "--epochs and --set epochs=... both set"),
]


@pytest.mark.parametrize("args, message", BENCHMARK_OPTIONS)
def test_benchmark_options(tmp_path, args, message):
    result = invoke("benchmark", "-d", "mnist-5k", *args, "--log-dir", tmp_path / "logs")
    assert_bad_input(result, message, tmp_path / "logs")


def test_benchmark_output_that_is_a_directory_is_refused_before_training(tmp_path):
    result = invoke("benchmark", "-m", "ae", "-d", "mnist-5k", "--output", tmp_path,
                    "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "--output")
    assert "is a directory" in result.output and not (tmp_path / "logs").exists()


def test_benchmark_log_dir_that_is_a_file(tmp_path):
    (tmp_path / "logs").write_text("")
    result = invoke("benchmark", "-m", "ae", "-d", "mnist-5k", "--log-dir", tmp_path / "logs")
    assert_bad_input(result, "is a file, not a directory")


# ---------------------------------------------------------------------------------- score
def model_copy(ae_and_iforest_runs, tmp_path, experiment="ae"):
    models, image = ae_and_iforest_runs
    copy = tmp_path / "run"
    shutil.copytree(models[experiment], copy)
    return copy, image


def edit_metadata(run, **changes):
    path = run / "model" / "metadata.json"
    metadata = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "hps":
            metadata["hps"].update(value)
        else:
            metadata[key] = value
    path.write_text(json.dumps(metadata))


SCORE_CASES = {
    "threshold-nan": (lambda run, image: ["--model", run, image, "--threshold", "nan"],
                      "--threshold must be a finite number"),
    "threshold-inf": (lambda run, image: ["--model", run, image, "--threshold", "inf"],
                      "--threshold must be a finite number"),
    "fpr-out-of-range": (lambda run, image: ["--model", run, image, "--fpr", 1.5],
                         "--fpr must be in (0, 1)"),
    "threshold-and-fpr": (lambda run, image: ["--model", run, image, "--threshold", 1, "--fpr",
                                              0.1], "either --threshold or --fpr"),
    "model-is-a-file": (lambda run, image: ["--model", image, image], "is a file; pass a run"),
    "model-missing": (lambda run, image: ["--model", MISSING, image], "does not exist"),
    "model-without-metadata": (lambda run, image: ["--model", image.parent, image],
                               "holds no metadata.json"),
    "csv-is-a-directory": (lambda run, image: ["--model", run, image, "--csv", run],
                           "--csv"),
    "maps-is-a-file": (lambda run, image: ["--model", run, image, "--save-maps", image],
                       "is a file, not a directory"),
    "image-missing": (lambda run, image: ["--model", run, MISSING], "neither an image file"),
    "no-images-in-folder": (lambda run, image: ["--model", run, run / "model"],
                            "no image files"),
}


@pytest.mark.parametrize("case", list(SCORE_CASES))
def test_score_options(ae_and_iforest_runs, tmp_path, case):
    run, image = model_copy(ae_and_iforest_runs, tmp_path)
    arguments, message = SCORE_CASES[case]
    assert_bad_input(invoke("score", *arguments(run, image)), message)


def test_score_unreadable_images_only(ae_and_iforest_runs, tmp_path):
    run, _ = model_copy(ae_and_iforest_runs, tmp_path)
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not a png")
    assert_bad_input(invoke("score", "--model", run, fake), "none of the given files could be read")


def test_score_maps_of_a_method_without_reconstruction_still_print_the_scores(
        ae_and_iforest_runs, tmp_path):
    run, image = model_copy(ae_and_iforest_runs, tmp_path, "iforest")
    result = invoke("score", "--model", run, image, "--save-maps", tmp_path / "maps")
    assert result.exit_code == 0, result.output
    assert "is_anomaly" in result.output and image.name in result.output
    assert "No maps written: iforest does not reconstruct its inputs" in result.output
    assert not (tmp_path / "maps").exists()


METADATA_EDITS = {
    "not-json": ("{truncated", "is not valid JSON"),
    "binary": (bytes(range(200)), "is not valid JSON"),
    "not-an-object": ("[1, 2]", "field '(top level)' should be a JSON object"),
    "unknown-method": ({"experiment": "egbd"}, "names an unknown method 'egbd'"),
    "shape-wrong-rank": ({"sample_shape": [28, 28]}, "field 'sample_shape' should be"),
    "shape-wrong-channels": ({"sample_shape": [28, 28, 3]}, "do not load into the model"),
    "shape-not-numbers": ({"sample_shape": ["a", 28, 1]}, "field 'sample_shape' should be"),
    "width-edited": ({"hps": {"filters": 64}}, "do not load into the model"),
    "bad-hps-value": ({"hps": {"batch_size": -4}}, "'batch_size': must be > 0"),
    "threshold-not-a-number": ({"threshold": "high"}, "field 'threshold' should be"),
    "no-normal-scores": ({"validation_normal_scores": []}, "validation_normal_scores"),
    "seed-missing": ({"seed": None}, "field 'seed' should be an integer"),
}


@pytest.mark.parametrize("case", list(METADATA_EDITS))
def test_edited_or_damaged_metadata(ae_and_iforest_runs, tmp_path, case):
    run, image = model_copy(ae_and_iforest_runs, tmp_path)
    edit, message = METADATA_EDITS[case]
    path = run / "model" / "metadata.json"
    if isinstance(edit, dict):
        edit_metadata(run, **edit)
    elif isinstance(edit, bytes):
        path.write_bytes(edit)
    else:
        path.write_text(edit)
    result = invoke("score", "--model", run, image)
    assert_bad_input(result, message)
    assert len(result.output.strip().splitlines()) <= 3  # one message, not a weight dump


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_damaged_network_files(ae_and_iforest_runs, tmp_path, damage):
    run, image = model_copy(ae_and_iforest_runs, tmp_path)
    network = run / "model" / "decoder.keras"
    assert network.is_file()
    if damage == "missing":
        network.unlink()
        message = "is missing"
    elif damage == "truncated":
        network.write_bytes(network.read_bytes()[:500])
        message = "do not load into the model"
    else:
        network.write_bytes(b"garbage" * 100)
        message = "do not load into the model"
    result = invoke("score", "--model", run, image)
    assert_bad_input(result, message)
    assert "--restart" in result.output

