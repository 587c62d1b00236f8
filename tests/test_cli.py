import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.registry import EXPERIMENTS, trainer_class
from anomaly_toolbox.results import read_results
from anomaly_toolbox.schemas import cpu_jit_off_reason, label_free_selection, method_schema
from anomaly_toolbox.trainers.base import Trainer
from anomaly_toolbox.training.engine import Engine
from tests.conftest import TINY, invoke, only_run, run_dirs, summary_values, train_tiny


def plugin_names(run_dir):
    return {value.metadata.plugin_data.plugin_name for value in summary_values(run_dir)}


def test_egbad_end_to_end_writes_models_checkpoints_results_and_hparams(tmp_path):
    grid = {**TINY, "epochs": 2}
    run_dir, results = only_run(tmp_path, "egbad", grid, "--anomalous-label", 1)
    assert results["status"] == "completed" and results["epochs_trained"] == 2
    assert results["data_source"].startswith("mnist-5k")
    assert results["protocol"] == "anomalous" and results["label"] == 1
    for metric in ("auroc", "auprc", "f1", "precision", "recall", "threshold"):
        assert math.isfinite(results["test"][metric])
    assert 0.0 <= results["test"]["auroc"] <= 1.0
    assert results["splits"]["test_size"] == 900 + 450
    assert not (run_dir / "checkpoints").exists()  # a completed run keeps model/ only
    for picture in ("roc.png", "pr.png", "scores.png"):
        height, width, _ = tf.io.decode_png(tf.io.read_file(str(run_dir / picture))).shape
        assert width >= 500 and height >= 400, picture
    assert not list(run_dir.glob("best_*")) and (run_dir / "model" / "metadata.json").is_file()
    assert {"hparams", "scalars", "images"} <= plugin_names(run_dir)
    assert "| test auroc |" in (run_dir.parent / "results.md").read_text()
    encoder = keras.models.load_model(run_dir / "model" / "encoder.keras", compile=False)
    assert encoder.output_shape == (None, TINY["latent_dim"])
    again = train_tiny(tmp_path, "egbad", grid, "--anomalous-label", 1)
    assert again.exit_code == 0 and "already completed" in again.output
    shown = f'"auroc": {round(results["test"]["auroc"], 4)}'
    assert shown in again.output and "Test auroc by selection rule: " in again.output


@pytest.mark.slow
def test_anogan_end_to_end_says_how_validation_was_cheapened(tmp_path):
    _, results = only_run(tmp_path, "anogan", {**TINY, "search_steps": 20,
                                               "validation_search_steps": 5,
                                               "validation_subset": 64}, "--normal-label", 1)
    assert results["status"] == "completed" and math.isfinite(results["test"]["auroc"])
    assert ("first 64 validation (and synthetic) images with 5 search steps"
            in results["selection_note"])
    assert "20 steps" in results["selection_note"]


@pytest.mark.slow
def test_memgan_end_to_end_logs_decoded_memory_and_saves_the_memory(tmp_path):
    run_dir, results = only_run(tmp_path, "memgan", {**TINY, "memory_units": 12},
                                "--normal-label", 3)
    assert results["status"] == "completed"
    assert "memory/decoded_units" in {value.tag for value in summary_values(run_dir)}
    memory = keras.models.load_model(run_dir / "model" / "memory.keras", compile=False)
    assert memory.get_layer("memory_units").memory.shape == (12, TINY["latent_dim"])


@pytest.mark.slow
def test_ama_end_to_end_reports_a_and_r_scores_and_stores_the_gaussian(tmp_path):
    run_dir, results = only_run(tmp_path, "ama", {**TINY, "n_critic": 1,
                                                  "negative_start_epoch": 1}, "--normal-label", 5)
    test = results["test"]
    assert math.isfinite(test["auroc"]) and math.isfinite(test["r_score_auroc"])
    gaussian = json.loads((run_dir / "model" / "gaussian.json").read_text())
    assert gaussian["std"] > 0


@pytest.mark.slow
def test_jointgan_on_contaminated_data_reports_every_score_part(tmp_path):
    run_dir, results = only_run(tmp_path, "jointgan", {**TINY, "n_critic": 1},
                                "--normal-label", 8, "--contamination", 0.05)
    splits = results["splits"]
    assert splits["train_anomalies"] / splits["train_size"] == pytest.approx(0.05, abs=0.5 / 360)
    assert results["contamination"] == 0.05 and run_dir.parent.name.endswith("-c0.05-s42")
    for key in ("auroc", "ln_auroc", "lo_auroc", "ln_f1", "lo_f1"):
        assert math.isfinite(results["test"][key])
    validation = results["validation"]
    assert set(validation) == {"auroc", "auprc", "ln_auroc", "ln_auprc", "lo_auroc", "lo_auprc"}
    assert all(0.0 <= value <= 1.0 for value in validation.values())
    logged = {value.tag: float(tf.make_ndarray(value.tensor)) for value in summary_values(run_dir)
              if value.metadata.plugin_data.plugin_name == "scalars"}
    for key in ("ln_auroc", "lo_auroc"):  # each check logs every part; one epoch: one check
        assert logged[f"validation/{key}"] == pytest.approx(validation[key], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("discriminator", ["projection", "concat"])
def test_cbigan_end_to_end_with_each_discriminator(tmp_path, discriminator):
    run_dir, results = only_run(tmp_path, "cbigan", {**TINY, "discriminator": discriminator},
                                "--anomalous-label", 2)
    assert results["status"] == "completed" and math.isfinite(results["test"]["auroc"])
    loaded = keras.models.load_model(run_dir / "model" / "discriminator.keras", compile=False)
    assert len(loaded.outputs) == 2


@pytest.mark.slow
def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(tmp_path, monkeypatch):
    """Ctrl-C after the third epoch's train steps: epoch 2's state, held in memory and not yet
    written (checkpoints are written at most every 30 s after the first), is written on the way
    out, and the resumed run ends exactly where an uninterrupted one does (EGBAD: its dropout
    masks continue from the checkpoint's random states)."""
    grid = {**TINY, "epochs": 3}
    reference = train_tiny(tmp_path, "egbad", grid, "--normal-label", 7, log_dir="reference")
    assert reference.exit_code == 0, reference.output

    original = Engine._train_epochs

    def interrupt_after_third_epoch_steps(self, data, epoch, *rest):
        original(self, data, epoch, *rest)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Engine, "_train_epochs", interrupt_after_third_epoch_steps)
    interrupted = train_tiny(tmp_path, "egbad", grid, "--normal-label", 7)
    assert interrupted.exit_code != 0
    [run_dir] = run_dirs(tmp_path / "logs")
    assert read_results(run_dir / "results.json")["status"] == "interrupted"

    monkeypatch.setattr(Engine, "_train_epochs", original)
    resumed = train_tiny(tmp_path, "egbad", grid, "--normal-label", 7)
    assert resumed.exit_code == 0, resumed.output
    assert "Resuming from" in resumed.output and "epoch 2 of 3 done" in resumed.output
    results = read_results(run_dir / "results.json")
    expected = read_results(run_dirs(tmp_path / "reference")[0] / "results.json")
    assert results["status"] == "completed"
    assert results["steps_trained"] == expected["steps_trained"] == 3 * (360 // 32)
    assert results["test"]["auroc"] == pytest.approx(expected["test"]["auroc"], abs=1e-6)
    last = results["test_by_selection"]["last"]
    expected_last = expected["test_by_selection"]["last"]
    assert last["threshold"] == pytest.approx(expected_last["threshold"], rel=1e-6)
    assert last["auroc"] == pytest.approx(expected_last["auroc"], abs=1e-6)


@pytest.mark.slow
def test_ganomaly_grid_search_runs_every_combination(tmp_path):
    result = train_tiny(tmp_path, "ganomaly", {**TINY, "contextual_weight": [50.0, 10.0]},
                        "--tuning", "--normal-label", 0)
    assert result.exit_code == 0, result.output
    dirs = run_dirs(tmp_path / "logs")
    assert len(dirs) == 2
    weights = {read_results(d / "results.json")["hps"]["contextual_weight"] for d in dirs}
    assert weights == {50.0, 10.0}
    assert all("hparams" in plugin_names(d) for d in dirs)
    table = (dirs[0].parent / "results.md").read_text()
    assert "contextual_weight" in table and table.count("| completed |") == 2


def test_a_diverged_run_is_marked_failed(tmp_path, monkeypatch):
    from anomaly_toolbox.trainers.egbad import EGBADTrainer

    monkeypatch.setattr(EGBADTrainer, "train_step",
                        lambda self, images, noise: {"d_loss": tf.constant(np.nan)})
    result = train_tiny(tmp_path, "egbad", TINY, "--set", "score=bce")
    assert result.exit_code == 1 and "1 run(s) failed" in result.output
    [run_dir] = run_dirs(tmp_path / "logs")
    results = read_results(run_dir / "results.json")
    assert results["status"] == "failed" and "loss 'd_loss' became nan at step 0" in results["error"]
    assert results["hps_given"] == sorted({*TINY, "score"})
    assert "hps key 'learning_rate' (0.0002)" in results["error"]


@pytest.mark.parametrize("args, message", [
    (["-e", "egbd"], "unknown experiment 'egbd'. Did you mean 'egbad'?"),
    (["-e", "egbad", "-d", "mnsit"], "unknown dataset 'mnsit'. Did you mean 'mnist'?"),
    (["-d", "mnist"], "--experiment is required"),
    (["-e", "egbad", "--anomalous-label", 1, "--normal-label", 2], "not both"),
    (["-e", "egbad", "--contamination", 1.5], "--contamination must be in [0, 1)"),
    (["-e", "egbad", "--val-share", 0], "--val-share must be in (0, 1)"),
    (["-e", "egbad", "--data-dir", "/no/such/dir"], "is not a directory"),
    (["-e", "egbad", "-d", "mnist-5k", "--anomalous-label", 12], "outside the dataset's classes"),
    (["-e", "egbad", "--hps-path", "/no/such.json"], "hyperparameter file not found"),
])
def test_bad_input_gives_one_clear_message_and_exit_code_2(tmp_path, args, message):
    result = invoke(*args, "--log-dir", tmp_path)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_inconsistent_hps_fail_before_a_run_directory_is_written(tmp_path):
    result = train_tiny(tmp_path, "anogan", {**TINY, "search_boundary_1": 300,
                                             "search_boundary_2": 200})
    assert result.exit_code == 2 and "search_boundary_1 (300) must be smaller" in result.output
    assert run_dirs(tmp_path / "logs") == []
    assert not [p for p in (tmp_path / "logs").glob("*/*/*") if p.is_dir()]


def test_malformed_hps_file_is_named_in_the_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"epochs": {"type": "Discrete", "values": [1]},, }')
    result = invoke("-e", "ganomaly", "-d", "mnist-5k", "--hps-path", bad, "--log-dir", tmp_path)
    assert result.exit_code == 2 and "bad.json: malformed JSON at line 1" in result.output


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_the_trainers_take_their_hps_from_their_schema_modules(experiment):
    """What ``--list`` and the override checks read without TensorFlow is what trains."""
    cls = trainer_class(experiment)
    assert cls.schema() == method_schema(experiment)
    if issubclass(cls, Trainer):  # the scikit-learn baselines have neither
        assert cls.label_free_selection == label_free_selection(experiment)
        assert cls.cpu_jit_off_reason == cpu_jit_off_reason(experiment)


def test_list_help_and_override_checks_answer_without_importing_tensorflow():
    probe = ("import sys; from click.testing import CliRunner; from anomaly_toolbox.cli import "
             "main; out = CliRunner().invoke(main, ['--list']).output + CliRunner().invoke("
             "main, ['--help']).output; assert 'min_steps' in out and 'benchmark' in out, out; "
             "bad = CliRunner().invoke(main, ['-e', 'egbad', '-d', 'mnist-5k', '--set', "
             "'learnin_rate=1']); assert bad.exit_code == 2 and \"did you mean 'learning_rate'\" "
             "in bad.output.lower(), bad.output; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', "
             "'keras')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_version_prints_the_package_version():
    from anomaly_toolbox import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.output == f"anomaly-box {__version__}\n"


def test_list_and_help_explain_experiments_datasets_and_keys():
    listing = invoke("--list")
    assert listing.exit_code == 0
    for word in ("egbad", "ganomaly", "mnist-5k", "generator_loss", "contextual_weight"):
        assert word in listing.output
    assert "--anomalous-label" in invoke("train", "--help").output
    overview = invoke("--help").output
    assert "benchmark" in overview and "train" in overview


@pytest.mark.slow
def test_the_console_shows_no_tensorflow_start_up_noise(tmp_path):
    """A CPU machine's run prints our lines only: no CUDA probing, absl or oneDNN notes, no
    TensorFlow INFO logs (such as the checkpoint writer's "Sharding callback duration"), and our
    warnings once each."""
    result = subprocess.run(
        [sys.executable, "-m", "anomaly_toolbox", "-e", "ae", "-d", "mnist", "--epochs", "2",
         "--set", "filters=2", "--log-dir", str(tmp_path), "-q"],
        capture_output=True, text=True, timeout=300, check=False)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-3000:]
    assert "epoch 2/2: validation" in console
    assert console.count("FALLING BACK TO THE BUNDLED SUBSET") == 1  # offline: said once
    for noise in ("cuInit", "cuda", "absl::InitializeLog", "oneDNN", "Sharding callback",
                  "I0000", "WARNING:absl"):
        assert noise not in console, console[:3000]



def test_score_takes_an_experiment_directory_or_latest_and_says_which_run(tmp_path, bundled,
                                                                         monkeypatch):
    from tests.conftest import write_png

    result = train_tiny(tmp_path, "iforest", {"n_estimators": [5, 10]}, "--tuning",
                        "--normal-label", 1)
    assert result.exit_code == 0, result.output
    runs = run_dirs(tmp_path / "logs")
    experiment_dir = runs[0].parent
    image = tmp_path / "digit.png"
    write_png(image, bundled.x_test[0])
    chosen = invoke("score", "--model", experiment_dir, image)
    assert chosen.exit_code == 0, chosen.output
    [_] = [run for run in runs if f"Model: {run}, this experiment directory's chosen by"
               in chosen.output]
    assert "is_anomaly" in chosen.output
    newest = max(runs, key=lambda run: (run / "results.json").stat().st_mtime)
    latest = invoke("score", "--model", tmp_path / "logs" / "latest", image)
    assert latest.exit_code == 0 and f"Model: {newest} (the newest completed run" in latest.output
    monkeypatch.chdir(tmp_path)
    assert "Model: logs/" in invoke("score", "--model", "latest", image).output
    empty = invoke("score", "--model", tmp_path / "nothing" / "latest", image)
    assert empty.exit_code == 2 and "no completed run under" in empty.output


def test_the_cli_drops_tensorflows_retracing_notes_and_keeps_its_other_warnings(caplog):
    import logging

    from anomaly_toolbox.cli.common import start_tensorflow

    start_tensorflow()
    log = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        log.warning("5 out of the last 5 calls to <function f> triggered tf.function retracing.")
        log.warning("something else worth seeing")
    assert [r.getMessage() for r in caplog.records] == ["something else worth seeing"]
