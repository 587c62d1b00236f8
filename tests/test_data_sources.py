"""Loaders beyond MNIST: tfds datasets offline, KDD99 from a raw file, image folders and MVTec.
Every dataset here is a small fake written to disk; nothing touches the network.
"""

import logging
import re
import time

import numpy as np
import pytest

from anomaly_toolbox.datasets import DatasetUnavailable, load_raw, one_class_splits, sources
from anomaly_toolbox.datasets import kdd99
from tests.conftest import digit_images, kdd_rows, write_kdd, write_mvtec, write_png

@pytest.mark.parametrize("name", ["fashion_mnist", "cifar10"])
def test_tfds_datasets_offline_say_how_to_prepare_them_without_hanging(tmp_path, monkeypatch, name):
    monkeypatch.setattr(sources, "network_reachable", lambda *a, **k: False)
    started = time.perf_counter()
    with pytest.raises(DatasetUnavailable, match=f"'{name}' is not prepared.*--data-dir"):
        load_raw(name, tmp_path)
    assert time.perf_counter() - started < 30


def test_kdd99_one_hot_encodes_text_columns_and_scales_to_unit_range(tmp_path):
    raw = load_raw("kdd99", write_kdd(tmp_path, kdd_rows(200)))
    assert raw.x_train.shape == (100, 38 + 3 + 3 + 2) and raw.x_test.shape == (100, 46)
    assert raw.x_train.dtype == np.float32 and raw.num_classes == 2
    assert raw.x_train.min() == 0.0 and raw.x_train.max() == 1.0
    assert 0.0 <= raw.x_test.min() and raw.x_test.max() <= 1.0
    labels = np.r_[raw.y_train, raw.y_test]
    assert (labels == 0).sum() == 50  # every fourth record is normal traffic: class 0
    one_hot = raw.x_train[:, 1:4]
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1.0)
    assert "200 records, 46 features" in raw.source


def test_kdd99_reads_gzip_and_names_a_malformed_line(tmp_path):
    import gzip

    rows = kdd_rows(40)
    with gzip.open(tmp_path / "kddcup.data_10_percent.gz", "wt") as file:
        file.write("\n".join(",".join(row) for row in rows))
    assert load_raw("kdd99", tmp_path).x_train.shape[0] == 20
    rows[6] = rows[6][:30]
    broken = write_kdd(tmp_path / "broken", rows)
    with pytest.raises(ValueError, match="line 7: expected 41 features"):
        load_raw("kdd99", broken)


def test_kdd99_offline_without_a_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(kdd99, "network_reachable", lambda *a, **k: False)
    with pytest.raises(DatasetUnavailable, match="kddcup.data_10_percent.*--data-dir"):
        load_raw("kdd99", tmp_path)


def test_mvtec_layout_skips_unreadable_files_and_logs_their_names(tmp_path, bundled, caplog):
    root = write_mvtec(tmp_path / "toy", bundled)
    with caplog.at_level(logging.WARNING):
        raw = load_raw("folder", root)
    assert raw.x_train.shape == (60, 64, 64, 1) and raw.y_train.sum() == 0
    assert raw.x_test.shape == (20, 64, 64, 1) and raw.y_test.sum() == 10
    assert "Skipped 1 file(s)" in caplog.text and "broken.png" in caplog.text
    assert "1 unreadable file(s) skipped" in raw.source and "grayscale" in raw.source


def test_one_colour_image_makes_the_whole_folder_rgb(tmp_path, bundled):
    raw = load_raw("folder", write_mvtec(tmp_path / "toy", bundled, rgb_one=True))
    assert raw.x_train.shape[-1] == 3 and raw.x_test.shape == (21, 64, 64, 3)
    grey = raw.x_train[0]
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])


def test_normal_and_abnormal_folders_get_a_fixed_test_part(tmp_path, bundled):
    for i, image in enumerate(digit_images(bundled, 1, 50)):
        write_png(tmp_path / "normal" / f"{i}.png", image)
    for i, image in enumerate(digit_images(bundled, 7, 8)):
        write_png(tmp_path / "abnormal" / f"{i}.png", image)
    first, again = load_raw("folder", tmp_path), load_raw("folder", tmp_path)
    assert len(first.y_train) == 40 and first.y_train.sum() == 0
    assert len(first.y_test) == 18 and first.y_test.sum() == 8
    np.testing.assert_array_equal(first.x_test, again.x_test)


def test_folder_errors_say_which_layout_is_expected(tmp_path):
    with pytest.raises(ValueError, match="pass --data-dir"):
        load_raw("folder", None)
    with pytest.raises(ValueError, match="neither the MVTec AD layout"):
        load_raw("folder", tmp_path)
    (tmp_path / "bottle" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="categories found there: bottle"):
        load_raw("mvtec", tmp_path, "cable")


def test_p3_without_training_anomalies_takes_validation_anomalies_from_the_test_part(
        tmp_path, bundled):
    raw = load_raw("folder", write_mvtec(tmp_path / "toy", bundled))
    splits = one_class_splits(raw, "normal", 0, val_share=0.2, seed=0)
    assert splits.validation.anomalies == 2 and splits.test.anomalies == 8
    assert len(splits.test) == 18 and splits.train.anomalies == 0
    validation = {image.tobytes() for image in splits.validation.x}
    assert not validation & {image.tobytes() for image in splits.test.x}


def cli(*args):
    from click.testing import CliRunner

    from anomaly_toolbox.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def train_on(tmp_path, experiment, dataset, data_dir, *args, **grid):
    from tests.conftest import TINY, write_grid

    hps = write_grid(tmp_path / "grid.json", {**TINY, **grid})
    result = cli("-e", experiment, "-d", dataset, "--data-dir", data_dir, "--hps-path", hps,
                 "--log-dir", tmp_path / "logs", "-q", *args)
    return result, sorted((tmp_path / "logs").glob("*/*/*/results.json"))


@pytest.mark.parametrize("experiment", ["egbad", "ganomaly"])
def test_dense_variants_train_on_kdd99_as_zenati_with_top_20_percent_metrics(tmp_path, experiment):
    import json

    data = write_kdd(tmp_path / "kdd", kdd_rows(800))
    result, [path] = train_on(tmp_path, experiment, "kdd99", data, epochs=3, batch_size=32)
    assert result.exit_code == 0, result.output
    results = json.loads(path.read_text())
    assert results["status"] == "completed" and results["protocol"] == "normal"
    assert results["label"] == 1 and "kdd99" in results["data_source"]
    assert re.fullmatch(r"kdd99-[0-9a-f]{8}-normal1-v0\.1-c0-s42", path.parent.parent.name)
    assert results["splits"]["train_anomalies"] == 0
    assert results["splits"]["test_size"] == 400  # the whole test half
    assert 0.15 < results["splits"]["test_anomalies"] / 400 < 0.35  # a quarter is normal traffic
    test = results["test"]
    assert np.isfinite(test["auroc"]) and {"top_precision", "top_recall", "top_f1"} <= set(test)


def test_image_only_methods_refuse_tabular_data_with_exit_code_2(tmp_path):
    result, paths = train_on(tmp_path, "memgan", "kdd99", write_kdd(tmp_path / "kdd",
                                                                     kdd_rows(200)))
    assert result.exit_code == 2 and "works on images only" in result.output
    assert "Traceback" not in result.output and paths == []


@pytest.mark.parametrize("rgb", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["grayscale", "rgb"])
def test_one_short_training_on_an_image_folder(tmp_path, bundled, rgb):
    import json

    root = write_mvtec(tmp_path / "toy", bundled, rgb_one=rgb)
    result, [path] = train_on(tmp_path, "ganomaly", "folder", root, epochs=2, batch_size=16)
    assert result.exit_code == 0, result.output
    results = json.loads(path.read_text())
    assert results["status"] == "completed" and results["protocol"] == "normal"
    assert re.fullmatch(r"folder-toy-[0-9a-f]{8}-normal0-v0\.1-c0-s42", path.parent.parent.name)
    assert results["splits"]["validation_anomalies"] >= 1
    assert results["splits"]["test_anomalies"] + results["splits"]["validation_anomalies"] == (
        11 if rgb else 10)


def test_mvtec_runs_one_category_and_requires_it(tmp_path, bundled):
    write_mvtec(tmp_path / "mvtec" / "bottle", bundled)
    missing = cli("-e", "ganomaly", "-d", "mvtec", "--data-dir", tmp_path / "mvtec")
    assert missing.exit_code == 2 and "needs --category" in missing.output
    result = cli("-e", "iforest", "-d", "mvtec", "--data-dir", tmp_path / "mvtec", "--category",
                 "bottle", "--log-dir", tmp_path / "logs")
    assert result.exit_code == 0, result.output
    [path] = (tmp_path / "logs").glob("*/*/*/results.json")
    assert re.fullmatch(r"mvtec-bottle-[0-9a-f]{8}-normal0-v0\.1-c0-s42", path.parent.parent.name)
    unknown = cli("-e", "ocsvm", "-d", "mvtec", "--data-dir", tmp_path / "mvtec", "--category",
                  "cable", "--log-dir", tmp_path / "logs")
    assert unknown.exit_code == 2 and "categories found there: bottle" in unknown.output


def test_unprepared_tfds_dataset_exits_2_naming_data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "network_reachable", lambda *a, **k: False)
    result = cli("-e", "ganomaly", "-d", "cifar10", "--data-dir", tmp_path, "--log-dir",
                 tmp_path / "logs")
    assert result.exit_code == 2 and "--data-dir" in result.output
    assert "Traceback" not in result.output
