"""Selection rules (hps key ``selection``): the synthetic set is built from normal validation
images only and drawn once per split and seed; label-free rules read no label and no real
anomaly; every rule's model is reported; a grid's choice names one run everywhere."""

import re
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from anomaly_toolbox.cli import main
from anomaly_toolbox.datasets import one_class_splits
from anomaly_toolbox.datasets.pipeline import PreparedData
from anomaly_toolbox.datasets.splits import Split
from anomaly_toolbox.datasets.synthetic import (IMAGE_CORRUPTIONS, MAX_SOURCES, corrupt,
                                                split_digest, synthetic_split)
from anomaly_toolbox.evaluation import choose_threshold
from anomaly_toolbox.results import chosen_run, read_results
from anomaly_toolbox.training.engine import Engine
from anomaly_toolbox.training.selection import resolve_selection
from tests.conftest import TINY, make_trainer, write_grid

AE = {**TINY, "filters": 2}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def train(tmp_path, grid, *args, log_dir="logs"):
    hps = write_grid(tmp_path / "grid.json", grid)
    return invoke("-e", "ae", "-d", "mnist-5k", "--hps-path", hps, "--log-dir", tmp_path / log_dir,
                  "-q", *args)


def results_of(log_dir):
    return [read_results(path) for path in sorted(log_dir.glob("*/*/*/results.json"))]


# ----------------------------------------------------------------------------- the synthetic set
def test_the_synthetic_set_is_made_from_the_normals_it_is_given_once_per_seed(bundled):
    normals = bundled.x_train[bundled.y_train == 4][:60]
    split = synthetic_split(normals, seed=3)
    assert split_digest(split) == split_digest(synthetic_split(normals.copy(), seed=3))
    assert split_digest(split) != split_digest(synthetic_split(normals, seed=4))
    kept, anomalies = split.x[split.y == 0], split.x[split.y == 1]
    assert len(kept) == 30 and len(anomalies) == 30 * len(IMAGE_CORRUPTIONS)
    given = {image.tobytes() for image in normals}
    assert all(image.tobytes() in given for image in kept)
    assert not any(image.tobytes() in given for image in anomalies)
    assert split.x.dtype == np.uint8 and split.x.shape[1:] == normals.shape[1:]
    assert 0 < split.y[:20].sum() < 20  # shuffled: any prefix (a check's subset) holds both


def test_the_synthetic_set_is_capped_and_needs_two_normals(bundled):
    normals = bundled.x_train[bundled.y_train == 1][:400]
    assert synthetic_split(normals, seed=0).y.sum() == MAX_SOURCES * len(IMAGE_CORRUPTIONS)
    assert synthetic_split(normals[:1], seed=0) is None


@pytest.mark.parametrize("kind", IMAGE_CORRUPTIONS)
def test_every_corruption_changes_a_digit_and_keeps_its_shape(bundled, kind):
    image, donor = bundled.x_train[bundled.y_train == 0][:2]
    changed = corrupt(kind, image, donor, np.random.default_rng(0))
    assert changed.shape == image.shape and changed.dtype == np.uint8
    assert np.abs(changed.astype(int) - image).sum() > 0


def test_table_anomalies_keep_every_columns_values_and_break_the_rows():
    rng = np.random.default_rng(0)
    rows = np.stack([rng.normal(size=40), rng.normal(size=40)], axis=1).astype(np.float32)
    rows[:, 1] = 2 * rows[:, 0]  # a dependency between columns that normal rows keep
    split = synthetic_split(rows, seed=0)
    anomalies = split.x[split.y == 1]
    assert len(anomalies) == 20 * len(IMAGE_CORRUPTIONS)
    assert set(np.round(anomalies[:, 0], 5)) <= set(np.round(rows[:, 0], 5))
    assert np.mean(np.isclose(anomalies[:, 1], 2 * anomalies[:, 0])) < 0.2


def test_prepared_data_draws_the_set_from_validation_normals_only(bundled):
    splits = one_class_splits(bundled, "normal", 2, seed=0)
    data = PreparedData.from_splits(splits, 32, seed=0)
    validation = splits.validation
    assert data.synthetic_description["normals"] == (validation.y == 0).sum() // 2
    other_anomalies = Split(np.where(validation.y[:, None, None, None] == 1, 255 - validation.x,
                                     validation.x), validation.y)
    swapped = PreparedData.from_splits(replace(splits, validation=other_anomalies), 32, seed=0)
    assert swapped.synthetic_description == data.synthetic_description
    assert PreparedData.from_splits(splits, 32, seed=1).synthetic_description["digest"] != \
        data.synthetic_description["digest"]


# ------------------------------------------------------------------------------------ the rules
def test_auto_reads_validation_with_labelled_anomalies_else_the_methods_label_free_rule(bundled):
    splits = one_class_splits(bundled, "normal", 2, seed=0)
    labelled = PreparedData.from_splits(splits, 28, seed=0)
    normals_only = replace(splits.validation, x=splits.validation.x[splits.validation.y == 0],
                           y=splits.validation.y[splits.validation.y == 0])
    unlabelled = PreparedData.from_splits(replace(splits, validation=normals_only), 28, seed=0)
    assert not unlabelled.has_validation_anomalies and unlabelled.synthetic is not None
    assert resolve_selection("auto", labelled, "synthetic") == "validation"
    assert resolve_selection("auto", unlabelled, "synthetic") == "synthetic"
    assert resolve_selection("auto", unlabelled, "last") == "last"
    assert resolve_selection("last", labelled, "synthetic") == "last"
    with pytest.raises(ValueError, match="selection 'validation' needs labelled anomalies"):
        resolve_selection("validation", unlabelled, "synthetic")


def test_a_label_free_threshold_reads_normal_validation_scores_only():
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 5.0, 6.0])
    label_free = choose_threshold(labels, scores, label_free=True)
    assert label_free == choose_threshold(labels, np.r_[scores[:4], -1.0, -2.0], label_free=True)
    assert choose_threshold(labels, scores, label_free=False) != label_free


def test_an_unknown_rule_is_refused_with_the_rules_named(tmp_path):
    result = invoke("-e", "ae", "-d", "mnist-5k", "--set", "selection=best", "--log-dir",
                    tmp_path / "logs")
    assert result.exit_code == 2, result.output
    assert "selection" in result.output and "synthetic" in result.output
    assert not (tmp_path / "logs").exists()


def test_the_api_without_anomalies_uses_the_methods_label_free_rule(bundled, tmp_path):
    from anomaly_toolbox import Autoencoder
    from anomaly_toolbox.trainers.autoencoder import AutoencoderTrainer

    settings = {k: v for k, v in AE.items() if k not in ("jit_compile", "epochs")}
    model = Autoencoder(**settings, epochs=2, seed=0, log_dir=tmp_path)
    model.fit(bundled.x_train[bundled.y_train == 1][:200])
    assert model.metadata["selection_rule"] == AutoencoderTrainer.label_free_selection
    with pytest.raises(Exception, match="selection 'validation' needs labelled anomalies"):
        Autoencoder(**settings, epochs=1, selection="validation", seed=0,
                    log_dir=tmp_path).fit(
            bundled.x_train[bundled.y_train == 1][:200])


def test_validation_and_last_choose_different_checkpoints_and_both_are_reported(tmp_path,
                                                                                 monkeypatch):
    sequence = iter([{"auroc": 0.9, "auprc": 0.9}, {"auroc": 0.5, "auprc": 0.5},
                     {"auroc": 0.6, "auprc": 0.6}])
    monkeypatch.setattr(Engine, "validation_metrics", lambda self, data: next(sequence))
    result = train(tmp_path, {**AE, "epochs": 3}, "--normal-label", 3)
    assert result.exit_code == 0, result.output
    (run,) = results_of(tmp_path / "logs")
    assert run["selection_rule"] == "validation"
    assert run["selection_checks"]["validation"]["epoch"] == 1
    assert run["selection_checks"]["last"]["epoch"] == 3
    assert run["test"] == run["test_by_selection"]["validation"]
    assert run["test_by_selection"]["last"] != run["test_by_selection"]["validation"]
    assert set(run["test_by_selection"]) == {"validation", "synthetic", "last"}
    by_rule = re.search(r"Test auroc by selection rule: validation ([0-9.]+) \(epoch 1, "
                        r"reported\) \| synthetic [0-9.]+ \(epoch \d\) \| last ([0-9.]+) "
                        r"\(epoch 3\)", result.output)
    assert by_rule, result.output
    assert float(by_rule[1]) == pytest.approx(run["test"]["auroc"], abs=1e-4)
    assert "what the labelled validation anomalies bought" in result.output


def _train_recording_checks(splits, run_dir, monkeypatch):
    """Three epochs of a tiny autoencoder on ``splits``; returns the trainer, its per-check
    validation and synthetic metrics, and every rule's report."""
    checks = {"validation": [], "synthetic": []}
    for rule in checks:
        original = getattr(Engine, f"{rule}_metrics")

        def recorded(self, data, original=original, rule=rule):
            checks[rule].append(original(self, data))
            return checks[rule][-1]

        monkeypatch.setattr(Engine, f"{rule}_metrics", recorded)
    trainer = make_trainer("ae", filters=2, epochs=3)
    data = PreparedData.from_splits(splits, trainer.image_size, seed=0)
    with tf.summary.create_file_writer(str(run_dir)).as_default() as writer:
        trainer.fit(data, run_dir, writer, progress_bar=False)
    trainer.select_final_model(run_dir, data)
    evaluated = trainer.evaluate(data)
    monkeypatch.undo()
    return trainer, checks, trainer.by_selection(run_dir, data, evaluated["test"])


def test_label_free_rules_read_no_validation_label_and_no_real_anomaly(bundled, tmp_path,
                                                                        monkeypatch):
    """Two runs whose validation anomalies differ (the digits, then their negatives, which
    score far apart): everything the synthetic and last rules chose and measured is identical,
    while the labelled validation metrics moved."""
    tf.config.experimental.enable_op_determinism()
    splits = one_class_splits(bundled, "normal", 3, seed=0)
    validation = splits.validation
    negated = Split(np.where(validation.y[:, None, None, None] == 1, 255 - validation.x,
                             validation.x), validation.y)
    runs = [_train_recording_checks(s, tmp_path / name, monkeypatch)
            for name, s in (("digits", splits), ("negated", replace(splits, validation=negated)))]
    (first, first_checks, first_report), (second, second_checks, second_report) = runs
    assert first_checks["validation"] != second_checks["validation"]
    assert len(first_checks["synthetic"]) == 3
    assert first_checks["synthetic"] == second_checks["synthetic"]
    for rule in ("synthetic", "last"):
        assert first_report[rule]["epoch"] == second_report[rule]["epoch"]
        assert first_report[rule]["synthetic"] == second_report[rule]["synthetic"]
        assert first_report[rule]["test"] == second_report[rule]["test"]
    assert first_report["validation"]["validation"] != second_report["validation"]["validation"]


def test_every_check_of_a_run_scores_the_same_synthetic_set(bundled, tmp_path, monkeypatch):
    scored = []
    original = Engine._metrics

    def spy(self, cached, labels, scorer=None):
        if labels is data.synthetic_labels:
            scored.append(np.concatenate([x.numpy() for x, _ in cached.batch(512)]))
        return original(self, cached, labels, scorer)

    monkeypatch.setattr(Engine, "_metrics", spy)
    trainer = make_trainer("ae", filters=2, epochs=3)
    data = PreparedData.from_splits(one_class_splits(bundled, "normal", 3, seed=0),
                                    trainer.image_size, seed=0)
    with tf.summary.create_file_writer(str(tmp_path)).as_default() as writer:
        trainer.fit(data, tmp_path, writer, progress_bar=False)
    assert len(scored) == 3
    for later in scored[1:]:
        np.testing.assert_array_equal(later, scored[0])
    assert len(scored[0]) == len(data.synthetic_labels) > 0


def test_the_runs_of_a_grid_share_one_synthetic_set_and_a_label_free_grid_ranks_on_it(tmp_path):
    result = train(tmp_path, {**AE, "learning_rate": [1e-4, 3e-3], "selection": "synthetic"},
                   "--tuning", "--normal-label", 3)
    assert result.exit_code == 0, result.output
    runs = results_of(tmp_path / "logs")
    assert len(runs) == 2 and len({run["synthetic_set"]["digest"] for run in runs}) == 1
    assert {run["selection_rule"] for run in runs} == {"synthetic"}
    best = max(runs, key=lambda r: (r["selection_checks"]["synthetic"]["synthetic"]["auroc"],
                                    r["selection_checks"]["synthetic"]["synthetic"]["auprc"]))
    assert chosen_run(runs)["run"] == best["run"]
    assert "chosen by synthetic (synthetic auroc " in result.output
    assert f": run {best['run']}; its test auroc {best['test']['auroc']:.4f}" in result.output


def test_a_grid_after_a_single_run_names_one_chosen_run_everywhere(tmp_path):
    """The issue's case: a one-run command, then a grid into the same log dir. The grid's run
    with the best validation AUROC (then AUPRC) is chosen; the console and results.md (best
    first, validation before test columns) choose among the grid's runs only and name it."""
    assert train(tmp_path, AE, "--normal-label", 3).exit_code == 0
    (single,) = results_of(tmp_path / "logs")
    result = train(tmp_path, {**AE, "learning_rate": [1e-4, 3e-3]}, "--tuning", "--normal-label", 3)
    assert result.exit_code == 0, result.output
    grid = [run for run in results_of(tmp_path / "logs") if run["run"] != single["run"]]
    assert len(grid) == 2
    best = max(grid, key=lambda r: (r["validation"]["auroc"], r["validation"]["auprc"]))
    assert chosen_run(grid)["run"] == best["run"]
    names = ", ".join(run["run"] for run in sorted(grid, key=lambda r: r["hps"]["learning_rate"]))
    assert (f"chosen by validation (validation auroc {best['validation']['auroc']:.4f}) among "
            f"2 runs ({names}): run {best['run']}; its test auroc {best['test']['auroc']:.4f}"
            in result.output)
    table = next((tmp_path / "logs").glob("*/*/results.md")).read_text()
    header = next(line for line in table.splitlines() if line.startswith("| run"))
    assert header.index("validation auroc") < header.index("test auroc")
    rows = [line for line in table.splitlines()
            if line.startswith("| ") and "---" not in line and not line.startswith("| run")]
    assert rows[0].startswith(f"| {best['run']} | ") and "**chosen**" in rows[0]
    assert " | yes | " in rows[0] and sum("**chosen**" in row for row in rows) == 1
    assert " | no | " in next(row for row in rows if row.startswith(f"| {single['run']} | "))
    assert f"run {best['run']}" in table
