"""Using a trained model: the Python API, model files, thresholds, the score command, maps."""

import csv
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from anomaly_toolbox import OCSVM, Autoencoder, GANomaly, load
from anomaly_toolbox.cli import main
from anomaly_toolbox.detector import ModelError, threshold_for_fpr
from anomaly_toolbox.hps import HpsError, defaults
from anomaly_toolbox.registry import trainer_class
from tests.conftest import TINY, summary_values

NETWORK_TINY = {k: v for k, v in TINY.items() if k != "jit_compile"}


def digits(raw, digit, count, part="train"):
    x, y = (raw.x_train, raw.y_train) if part == "train" else (raw.x_test, raw.y_test)
    return x[y == digit][:count]


@pytest.fixture(scope="module")
def fitted(bundled, tmp_path_factory):
    """GANomaly trained on 1s with 7s in validation, and a mix of test 1s and 7s."""
    x_val = np.concatenate([digits(bundled, 1, 40, "test"), digits(bundled, 7, 40, "test")])
    y_val = np.r_[np.zeros(40), np.ones(40)].astype(int)
    model = GANomaly(**{**NETWORK_TINY, "epochs": 2}, seed=0,
                     log_dir=tmp_path_factory.mktemp("api"))
    model.fit(digits(bundled, 1, 300), x_val, y_val)
    mixed = np.concatenate([digits(bundled, 1, 20, "test")[-20:], digits(bundled, 7, 20)])
    return model, mixed


def test_save_then_load_gives_identical_scores_and_threshold(fitted, tmp_path):
    model, x = fitted
    saved = model.save(tmp_path / "model")
    again = load(saved)
    assert type(again).__name__ == "GANomaly" and again.threshold == model.threshold
    np.testing.assert_array_equal(again.decision_function(x), model.decision_function(x))
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    normalised = again.normalised_scores(x)
    assert normalised.min() >= 0.0 and normalised.max() <= 1.0


def test_predictions_follow_the_validation_threshold(fitted):
    model, x = fitted
    scores = model.decision_function(x)
    assert scores.shape == (40,) and model.metadata["threshold_rule"] == "max F1 on validation"
    np.testing.assert_array_equal(model.predict(x), (scores >= model.threshold).astype(int))


@pytest.mark.parametrize("fpr", [0.05, 0.1, 0.25])
def test_fpr_threshold_gives_that_rate_on_normal_validation_scores(fitted, fpr):
    model, _ = fitted
    model.set_threshold(fpr=fpr)
    normals = np.array(model.metadata["validation_normal_scores"])
    assert np.mean(normals >= model.threshold) == pytest.approx(
        np.floor(fpr * len(normals)) / len(normals))
    assert "false-positive rate" in model.metadata["threshold_rule"]


def test_fpr_threshold_counts_exactly_and_rejects_bad_rates():
    scores = np.arange(100.0)
    assert np.sum(scores >= threshold_for_fpr(scores, 0.1)) == 10
    assert np.sum(scores >= threshold_for_fpr(scores, 0.001)) == 0
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ModelError, match="in \\(0, 1\\)"):
            threshold_for_fpr(scores, bad)


def test_wrong_shapes_and_types_give_clear_errors(fitted):
    model, x = fitted
    with pytest.raises(ModelError, match=r"trained on images of shape \(28, 28, 1\); got "
                                         r"\(32, 32, 1\)"):
        model.decision_function(np.zeros((2, 32, 32, 1), np.uint8))
    with pytest.raises(ModelError, match=r"got \(28, 28, 3\)"):
        model.decision_function(np.zeros((2, 28, 28, 3), np.uint8))
    with pytest.raises(ModelError, match=r"float images must hold values in \[0, 1\]"):
        model.decision_function(x.astype(np.float32))
    with pytest.raises(ModelError, match="must be uint8 with values 0-255 .* or floats"):
        model.decision_function(x.astype(np.int32))
    with pytest.raises(ModelError, match="not fitted"):
        GANomaly().predict(x)
    with pytest.raises(HpsError, match="did you mean 'epochs'"):
        GANomaly(epoch=3)


def test_sklearn_baselines_share_the_api(bundled, tmp_path):
    model = OCSVM(gamma=0.01).fit(digits(bundled, 1, 200))
    x = np.concatenate([digits(bundled, 1, 20, "test"), digits(bundled, 7, 20, "test")])
    scores = model.decision_function(x)
    assert scores[20:].mean() > scores[:20].mean()
    assert "95% quantile" in model.metadata["threshold_rule"]
    np.testing.assert_array_equal(load(model.save(tmp_path / "svm")).decision_function(x), scores)
    assert model.reconstruct(x) is None


def write_pngs(directory, images):
    directory.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        tf.io.write_file(str(directory / f"{i:02d}.png"), tf.io.encode_png(image))


def test_every_run_stores_metadata_and_score_summaries(ganomaly_run):
    metadata = load(ganomaly_run).metadata
    assert metadata["experiment"] == "ganomaly" and metadata["sample_shape"] == [28, 28, 1]
    assert metadata["image_size"] == 32 and metadata["hps"]["epochs"] == 2
    assert metadata["score_min"] < metadata["threshold"] <= metadata["score_max"]
    tags = {value.tag for value in summary_values(ganomaly_run)}
    assert {"validation/scores_normal", "validation/scores_anomalous", "validation/roc_curve",
            "validation/pr_curve"} <= tags


def test_score_command_on_a_folder_writes_csv_and_maps(ganomaly_run, bundled, tmp_path):
    write_pngs(tmp_path / "images", np.concatenate([digits(bundled, 1, 3, "test"),
                                                    digits(bundled, 7, 3, "test")]))
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    result = CliRunner().invoke(main, ["score", "--model", str(ganomaly_run),
                                       str(tmp_path / "images"), "--csv", str(tmp_path / "s.csv"),
                                       "--save-maps", str(tmp_path / "maps")])
    assert result.exit_code == 0, result.output
    assert "skipped (not a readable image)" in result.output and "broken.png" in result.output
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert [row["image"].rsplit("/", 1)[1] for row in rows] == [f"{i:02d}.png" for i in range(6)]
    model = load(ganomaly_run)
    for row in rows:
        assert (row["is_anomaly"] == "True") == (float(row["score"]) >= model.threshold)
        assert 0.0 <= float(row["normalised_score"]) <= 1.0
    maps = sorted((tmp_path / "maps").glob("*.png"))
    assert len(maps) == 6
    picture = tf.io.decode_png(tf.io.read_file(str(maps[0]))).numpy()
    assert picture.shape[2] == 3 and picture.shape[1] > 2 * picture.shape[0]
    assert model.metadata["map_scale"] > 0
    assert f"one colour scale, 0 to {model.metadata['map_scale']:.3g}" in result.output

    override = CliRunner().invoke(main, ["score", "--model", str(ganomaly_run),
                                         str(tmp_path / "images"), "--fpr", "0.5"])
    assert override.exit_code == 0 and "false-positive rate 0.5" in override.output


def test_score_command_rejects_bad_input_with_exit_code_2(ganomaly_run, tmp_path):
    write_pngs(tmp_path / "rgb", [np.full((28, 28, 3), 90, np.uint8)])
    for args, message in [
        (["--model", str(tmp_path), str(tmp_path / "rgb")], "holds no metadata.json"),
        (["--model", str(ganomaly_run), str(tmp_path / "rgb")], "colour image"),
        (["--model", str(ganomaly_run), str(tmp_path / "none")], "neither an image file"),
        (["--model", str(ganomaly_run), str(tmp_path / "rgb"), "--fpr", "2"], "in (0, 1)"),
        (["--model", str(ganomaly_run), str(tmp_path / "rgb"), "--fpr", "0.1",
          "--threshold", "1"], "not both"),
    ]:
        result = CliRunner().invoke(main, ["score", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output


def test_float_images_in_0_1_and_single_images_score_like_uint8_batches(fitted):
    model, x = fitted
    scores = model.decision_function(x)
    np.testing.assert_allclose(model.decision_function(x.astype(np.float32) / 255.0), scores,
                               rtol=1e-6)
    np.testing.assert_allclose(model.decision_function(x[0]), scores[:1], rtol=1e-5)  # [28, 28, 1]
    np.testing.assert_allclose(model.decision_function(x[0, ..., 0]), scores[:1], rtol=1e-5)


def test_detectors_follow_scikit_learn_estimator_conventions():
    from sklearn.base import clone

    import anomaly_toolbox

    model = GANomaly(epochs=2, filters=4, seed=3)
    assert repr(model) == "GANomaly(seed=3, epochs=2, filters=4)"
    assert model.get_params() == {"seed": 3, "log_dir": None, "jit_compile": None,
                                  "deterministic": None, "val_share": 0.1, "epochs": 2,
                                  "filters": 4}
    copy = clone(model)
    assert type(copy) is GANomaly and copy is not model
    assert copy.get_params() == model.get_params()
    assert model.set_params(learning_rate=1e-3, seed=5) is model
    assert model.hps["learning_rate"] == 1e-3 and model.seed == 5
    with pytest.raises(HpsError, match="did you mean 'learning_rate'"):
        model.set_params(learning_rat=1.0)
    assert "learning_rat" not in model.get_params()  # a rejected change leaves nothing behind
    assert pickle.loads(pickle.dumps(model)).get_params() == model.get_params()
    assert {"EGBAD", "GANomaly", "OCSVM", "load"} <= set(dir(anomaly_toolbox))


def test_a_fitted_detector_refuses_pickling_and_names_save(fitted):
    model, _ = fitted
    with pytest.raises(TypeError, match=r"use model.save\(path\) and anomaly_toolbox.load"):
        pickle.dumps(model)


def test_fit_without_progress_bar_prints_nothing(bundled, capsys):
    Autoencoder(epochs=1, filters=2, latent_dim=4, batch_size=32).fit(digits(bundled, 1, 96))
    captured = capsys.readouterr()
    assert captured.out == ""


def test_anomaly_maps_share_one_colour_scale():
    """A small error looks cooler than a large one: maps are not scaled to their own maximum."""
    from anomaly_toolbox.summaries import anomaly_map_pictures

    inputs = np.zeros((2, 16, 16, 1), np.float32)
    reconstructions = inputs + np.array([0.1, 0.5], np.float32)[:, None, None, None]
    small, large = anomaly_map_pictures(inputs, reconstructions, np.array([1.0, 5.0]),
                                        threshold=3.0, scale=0.5)
    width = small.shape[1]
    overlay = np.s_[small.shape[0] // 4: 3 * small.shape[0] // 4, 2 * width // 3: 5 * width // 6]
    assert small.shape == large.shape
    assert large[overlay].astype(float).mean() > small[overlay].astype(float).mean() + 20
    same = anomaly_map_pictures(inputs[:1], reconstructions[:1], np.array([1.0]), 3.0, 0.1)[0]
    assert same[overlay].astype(float).mean() > small[overlay].astype(float).mean() + 20
    blank_rows = [row for row in range(small.shape[0]) if (small[row] > 250).all()]
    assert len(blank_rows) < small.shape[0] // 10  # no blank strip under the panels


def test_every_experiment_has_a_detector_class_under_its_registered_name():
    import inspect

    import anomaly_toolbox
    from anomaly_toolbox.detector import Detector, detector_for
    from anomaly_toolbox.registry import EXPERIMENTS, trainer_class

    from anomaly_toolbox import detector

    for experiment, registered in EXPERIMENTS.items():
        cls = detector_for(experiment)
        assert cls.__name__ == registered.api_name and issubclass(cls, Detector)
        assert getattr(anomaly_toolbox, cls.__name__) is cls
        assert getattr(detector, cls.__name__) is cls  # where pickle looks for it
        assert cls.__doc__.startswith(registered.description)
        schema = trainer_class(experiment).schema()
        parameters = inspect.signature(cls).parameters
        assert set(schema) | set(Detector.OWN_PARAMS) == set(parameters)
        assert all(parameters[key].default == param.default for key, param in schema.items()
                   if key != "jit_compile")
        assert all(f"    {key} (" in cls.__doc__ for key in schema)


@pytest.mark.parametrize("user_level, quiet", [
    (None, True), pytest.param("0", False, marks=pytest.mark.slow)])  # a process each: ~13 s
def test_the_library_keeps_tensorflows_start_up_lines_off_stderr_unless_asked(tmp_path,
                                                                              user_level, quiet):
    """Loading a model from Python prints none of TensorFlow's C++ start-up lines (oneDNN,
    CUDA probing); a TF_CPP_MIN_LOG_LEVEL the user set is theirs to keep."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
    probe = ("import anomaly_toolbox, numpy as np; model = anomaly_toolbox.IsolationForest("
             "n_estimators=5).fit(np.random.default_rng(0).integers(0, 255, (64, 28, 28), "
             "dtype=np.uint8)); print(model.decision_function(np.zeros((2, 28, 28), np.uint8)).shape)")
    finished = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              env=env, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip().endswith("(2,)")
    start_up = [line for line in finished.stderr.splitlines()
                if "oneDNN custom operations" in line or "cuda" in line.lower()]
    assert (start_up == []) == quiet, finished.stderr[-2000:]


def test_detectors_follow_pyod_conventions_and_scikit_learn_s_score_sign(bundled, tmp_path):
    """decision_function: higher = more anomalous; score_samples: its negation (scikit-learn);
    after fit, decision_scores_, threshold_ and labels_ for every sample given to fit;
    fit_predict returns those labels; set_threshold chains."""
    from anomaly_toolbox import IsolationForest

    x = np.concatenate([digits(bundled, 1, 150), digits(bundled, 7, 6)])
    model = IsolationForest(n_estimators=20, seed=0)
    labels = model.fit_predict(x)
    assert labels.shape == (len(x),) and set(np.unique(labels)) <= {0, 1}
    np.testing.assert_array_equal(model.decision_scores_, model.decision_function(x))
    np.testing.assert_array_equal(model.score_samples(x), -model.decision_function(x))
    assert model.threshold_ == model.threshold
    np.testing.assert_array_equal(labels, (model.decision_scores_ >= model.threshold_))
    sevens, ones = model.decision_function(x[-6:]), model.decision_function(x[:150])
    assert sevens.mean() > ones.mean()  # anomalies score higher
    assert model.set_threshold(fpr=0.2) is model
    loaded = load(model.save(tmp_path / "model"))
    with pytest.raises(ModelError, match="decision_scores_ exists after fit"):
        loaded.decision_scores_


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["ama", "jointgan", "egbad", "fanogan", "alad",
                                        "skipganomaly"])
def test_training_prints_no_graph_remapper_error(tmp_path, experiment):
    """The critics', EGBAD's and the U-Net's first LeakyReLU as two ReLUs: TensorFlow's remapper
    printed an error line ("remapper failed") on every run of these methods before."""
    grid = tmp_path / "grid.json"
    keys = defaults(trainer_class(experiment).schema())
    small = {"filters": 4, "latent_dim": 8, "batch_size": 32}
    grid.write_text(json.dumps({key: {"type": "Discrete", "values": [value]}
                                for key, value in small.items() if key in keys}))
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    finished = subprocess.run(
        [sys.executable, "-m", "anomaly_toolbox", "-e", experiment, "-d", "mnist", "--epochs",
         "1", "--hps-path", str(grid), "--log-dir", str(tmp_path / "logs"), "-q"],
        capture_output=True, text=True, env=env, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "Test:" in finished.stdout and "remapper" not in finished.stderr, finished.stderr
