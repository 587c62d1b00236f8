"""`anomaly-box export`: the exported scorer, loaded with plain TensorFlow, scores as `score`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.registry import trainer_class
from tests.conftest import TINY, invoke, table_rows, train_on_table, write_grid, write_table

#: Runs in a fresh interpreter that never imports anomaly_toolbox: prints the exported scores of
#: argv[3:] (PNG files, or one CSV file of rows) as JSON, read with TensorFlow or ONNX Runtime.
PLAIN_TENSORFLOW = """
import csv, json, sys
import numpy as np
import tensorflow as tf

kind, path, files = sys.argv[1], sys.argv[2], sys.argv[3:]
if files[0].endswith(".csv"):
    with open(files[0]) as f:
        rows = list(csv.reader(f))
    columns = json.load(open(sys.argv[2].rsplit("/", 1)[0] + f"/anomaly_toolbox_export_{kind}.json"))[
        "input"]["columns"]
    inputs = np.array([[row[rows[0].index(c)] for c in columns] for row in rows[1:]])
else:
    inputs = np.stack([tf.io.decode_png(tf.io.read_file(f)).numpy() for f in files])
if kind == "saved_model":
    scorer = tf.saved_model.load(path)
    scores = scorer.score(tf.constant(inputs))["score"].numpy()
elif kind == "onnx":
    import onnxruntime
    session = onnxruntime.InferenceSession(path)
    scores = session.run(["score"], {session.get_inputs()[0].name: inputs})[0]
else:
    runner = tf.lite.Interpreter(model_path=path).get_signature_runner()
    scores = runner(**{next(iter(runner.get_input_details())): inputs})["score"]
assert not any(name.startswith("anomaly_toolbox") for name in sys.modules)
print(json.dumps([float(s) for s in scores]))
"""


def plain_tensorflow_scores(kind, path, files):
    done = subprocess.run([sys.executable, "-c", PLAIN_TENSORFLOW, kind, str(path),
                           *map(str, files)], capture_output=True, text=True, timeout=300,
                          cwd="/")
    assert done.returncode == 0, done.stderr[-3000:]
    return np.array(json.loads(done.stdout.strip().splitlines()[-1]))


def cli_scores(run_dir, inputs, tmp_path):
    result = invoke("score", "--model", run_dir, *inputs, "--csv", tmp_path / "scores.csv")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "scores.csv") as file:
        return np.array([float(row["score"]) for row in csv.DictReader(file)])


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, bundled, ganomaly_run):
    """The shared GANomaly run (28x28 digits, resized to 32 inside), and 6 test digits as PNG
    files."""
    root = tmp_path_factory.mktemp("export")
    files = []
    for index, image in enumerate(bundled.x_test[:6]):
        files.append(root / f"digit{index}.png")
        tf.io.write_file(str(files[-1]), tf.io.encode_png(image))
    return ganomaly_run, files


TARGETS = {"saved_model": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}


@pytest.mark.parametrize("kind", ["saved_model", pytest.param("tflite", marks=pytest.mark.slow),
                                  pytest.param("onnx", marks=pytest.mark.slow)])
def test_export_scores_raw_images_as_the_score_command_without_the_toolbox(image_run, tmp_path,
                                                                            kind):
    run_dir, files = image_run
    result = invoke("export", "--model", run_dir, "--format", kind, "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    target = tmp_path / "out" / TARGETS[kind]
    assert target.exists() and "Input: images, uint8 [None, 28, 28, 1]" in result.output
    exported = json.loads((tmp_path / "out" / f"anomaly_toolbox_export_{kind}.json").read_text())
    metadata = json.loads((run_dir / "model" / "metadata.json").read_text())
    assert exported["threshold"] == metadata["threshold"] and exported["format"] == kind
    assert [p.name for p in (tmp_path / "out").glob("anomaly_toolbox_export*.json")] == [
        f"anomaly_toolbox_export_{kind}.json"]
    assert "resized to 32x32" in exported["preprocessing"]
    expected = cli_scores(run_dir, files, tmp_path)
    np.testing.assert_allclose(plain_tensorflow_scores(kind, target, files), expected,
                               rtol=1e-4, atol=1e-5)
    if kind == "onnx":
        import onnx

        graph = onnx.load(str(target)).graph
        assert {value.type.tensor_type.shape.dim[0].dim_param
                for value in (*graph.input, *graph.output)} == {"batch"}
    if kind == "tflite":
        assert "ai_edge_litert" in result.output  # the runtime that replaces tf.lite.Interpreter


@pytest.mark.slow
def test_export_of_a_table_model_parses_raw_rows_and_other_formats_are_refused(tmp_path):
    """The SavedModel parses the CSV cells inside; TFLite and ONNX lack the string ops."""
    run_dir = train_on_table(tmp_path, table_rows(300), epochs=1)
    rows = write_table(tmp_path / "new.csv", table_rows(24, seed=3))
    result = invoke("export", "--model", run_dir)
    assert result.exit_code == 0, result.output
    target = run_dir / "export" / "saved_model"
    np.testing.assert_allclose(plain_tensorflow_scores("saved_model", target, [rows]),
                               cli_scores(run_dir, [rows], tmp_path), rtol=1e-4,
                               atol=1e-5)
    for kind, missing in [("tflite", "StringToNumber"), ("onnx", "StringStrip")]:
        result = invoke("export", "--model", run_dir, "--format", kind)
        assert result.exit_code == 2 and missing in result.output, result.output
        assert "export --format saved_model instead" in result.output
        assert not (run_dir / "export" / TARGETS[kind]).exists()


def test_scikit_learn_baselines_are_not_exported(tmp_path):
    grid = write_grid(tmp_path / "grid.json", {"max_train_samples": 200})
    result = invoke("-e", "kde", "-d", "mnist-5k", "--hps-path", grid, "--log-dir",
                    tmp_path / "logs", "-q")
    assert result.exit_code == 0, result.output
    [results] = (tmp_path / "logs").glob("*/*/*/results.json")
    run_dir = results.parent
    result = invoke("export", "--model", run_dir)
    assert result.exit_code == 2 and "scikit-learn model" in result.output
    assert not (run_dir / "export").exists()


@pytest.mark.slow
def test_anogan_export_scores_more_images_than_its_search_batch(tmp_path, bundled):
    from anomaly_toolbox import AnoGAN
    from anomaly_toolbox.export import export

    model = AnoGAN(filters=4, latent_dim=8, batch_size=16, epochs=1, search_steps=3,
                   jit_compile=False).fit(bundled.x_train[bundled.y_train == 1][:100])
    images = bundled.x_test[:40]  # 2.5 search batches
    target = export(model, tmp_path / "out", "saved_model")
    scorer = tf.saved_model.load(str(target))
    np.testing.assert_allclose(scorer.score(tf.constant(images))["score"].numpy(),
                               model.decision_function(images), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["fanogan", "alad", "skipganomaly"])
def test_the_comparison_rows_methods_train_save_load_score_and_export(tmp_path, bundled,
                                                                       experiment):
    """f-AnoGAN, ALAD and Skip-GANomaly (issue 45) from the command line: a tiny run's saved
    model scores PNG files through `score` as the run scored its test split, and the exported
    SavedModel, without the toolbox, scores them alike."""
    schema = trainer_class(experiment).schema()  # Skip-GANomaly's U-Net has no latent_dim
    grid = write_grid(tmp_path / "grid.json", {key: value for key, value in TINY.items()
                                               if key in schema})
    result = invoke("-e", experiment, "-d", "mnist-5k", "--normal-label", "1", "--hps-path",
                    grid, "--log-dir", tmp_path / "logs", "-q")
    assert result.exit_code == 0, result.output
    [results] = (tmp_path / "logs").glob("*/*/*/results.json")
    run_dir = results.parent
    assert np.isfinite(json.loads(results.read_text())["test"]["auroc"])
    files = []
    for index, image in enumerate(bundled.x_test[:4]):
        files.append(tmp_path / f"digit{index}.png")
        tf.io.write_file(str(files[-1]), tf.io.encode_png(image))
    expected = cli_scores(run_dir, files, tmp_path)
    assert np.all(np.isfinite(expected)) and len(set(expected.round(6))) == 4
    result = invoke("export", "--model", run_dir, "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(plain_tensorflow_scores("saved_model",
                                                       tmp_path / "out" / "saved_model", files),
                               expected, rtol=1e-4, atol=1e-5)
    if experiment == "skipganomaly":  # its U-Net's 1-2 pixel levels are matrix products
        for kind in ("tflite", "onnx"):
            result = invoke("export", "--model", run_dir, "--format", kind, "--output",
                            tmp_path / kind)
            assert result.exit_code == 0, result.output
            np.testing.assert_allclose(
                plain_tensorflow_scores(kind, tmp_path / kind / TARGETS[kind], files), expected,
                rtol=1e-4, atol=1e-5)
