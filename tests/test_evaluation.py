import numpy as np

from anomaly_toolbox.evaluation import choose_threshold, ranking_metrics, threshold_metrics


def test_ranking_metrics_for_perfect_and_reversed_scores():
    labels = np.array([0, 0, 0, 1, 1])
    assert ranking_metrics(labels, np.array([0.1, 0.2, 0.3, 0.8, 0.9])) == {"auroc": 1.0,
                                                                             "auprc": 1.0}
    assert ranking_metrics(labels, -np.array([0.1, 0.2, 0.3, 0.8, 0.9]))["auroc"] == 0.0
    assert ranking_metrics(np.zeros(3), np.arange(3.0)) == {}


def test_threshold_maximises_validation_f1_and_applies_to_test():
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.9])
    threshold = choose_threshold(labels, scores)
    assert threshold == 0.5
    metrics = threshold_metrics(labels, scores, threshold)
    assert metrics["recall"] == 1.0 and metrics["precision"] == 0.75
    assert abs(metrics["f1"] - 2 * 0.75 / 1.75) < 1e-12


def test_normal_only_validation_gives_a_five_percent_false_positive_threshold():
    scores = np.arange(100.0)
    threshold = choose_threshold(np.zeros(100, dtype=int), scores)
    assert np.mean(scores >= threshold) <= 0.05 + 1e-9


def test_times_read_as_a_clock_and_the_estimate_scales_with_the_units_left(monkeypatch):
    from anomaly_toolbox import timing

    assert [timing.clock_text(s) for s in (0, 59.6, 61, 3599, 3600, 7322)] == [
        "0:00", "1:00", "1:01", "59:59", "1:00:00", "2:02:02"]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: 100.0)
    assert timing.eta_text(40.0, done=2, left=3) == "1:00 elapsed, about 1:30 left"
    assert timing.eta_text(40.0, done=2, left=0) == "1:00 elapsed"


def test_run_pictures_are_written_for_two_classes_and_skipped_for_one(tmp_path):
    import tensorflow as tf

    from anomaly_toolbox.pictures import PICTURES, write_run_pictures

    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(80), np.ones(20)].astype(int)
    scores = np.r_[rng.normal(0, 1, 80), rng.normal(2, 1, 20)]
    written = write_run_pictures(tmp_path, labels, scores, 1.0, {"auroc": 0.9, "auprc": 0.7},
                                 "a run")
    assert [path.name for path in written] == list(PICTURES)
    for path in written:
        assert tf.io.decode_png(tf.io.read_file(str(path))).shape[1] >= 500
    (tmp_path / "one").mkdir()
    assert write_run_pictures(tmp_path / "one", np.zeros(5, int), np.arange(5.0), 1.0,
                              {"auroc": 0.5, "auprc": 0.0}, "no anomalies") == []


def test_benchmark_figure_has_a_bar_per_method_and_class_and_paper_markers(tmp_path):
    import tensorflow as tf

    from anomaly_toolbox.pictures import write_benchmark_figure

    runs = [{"experiment": method, "label": label, "status": "completed",
             "test": {"auroc": 0.6 + 0.1 * label + (0.05 if method == "b" else 0.0)}}
            for method in ("a", "b") for label in (0, 1, 2)]
    path = write_benchmark_figure(tmp_path / "figure.png", runs, ["a", "b"], [0, 1, 2],
                                  {"a": [("Someone et al.", {0: 0.9, 2: 0.95})]}, "title")
    assert path == tmp_path / "figure.png" and tf.io.decode_png(tf.io.read_file(
        str(path))).shape[1] >= 600
    failed = [{**run, "status": "failed"} for run in runs]
    assert write_benchmark_figure(tmp_path / "none.png", failed, ["a", "b"], [0, 1, 2], {},
                                  "t") is None and not (tmp_path / "none.png").exists()
