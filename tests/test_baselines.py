"""The classic baselines: conv autoencoder, Deep SVDD and the scikit-learn detectors."""


import numpy as np
import pytest
import tensorflow as tf
from sklearn.neighbors import KernelDensity

from anomaly_toolbox.datasets import one_class_splits
from anomaly_toolbox.datasets.pipeline import PreparedData
from anomaly_toolbox.registry import trainer_class
from anomaly_toolbox.hps import HpsError, defaults, parse_grid
from anomaly_toolbox.trainers.shallow import DETECTOR_FILE, flat_images
from tests.conftest import NETWORK_METHODS, SEED, eager_step, images_of, make_trainer


def test_mixed_precision_computes_in_bfloat16_and_keeps_float32_outputs(bundled):
    trainer = make_trainer("ganomaly", mixed_precision=True)
    conv = trainer.networks["encoder_in"].get_layer("encoder_in_conv0")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    x = images_of(bundled, 1, trainer, 32)
    losses = eager_step(trainer, x)
    assert all(v.dtype == tf.float32 and np.isfinite(float(v)) for v in losses.values())
    scores = trainer.score(x)
    assert scores.dtype == tf.float32 and np.all(np.isfinite(scores.numpy()))


@pytest.mark.slow
@pytest.mark.parametrize("experiment", NETWORK_METHODS)
def test_every_network_method_trains_and_scores_in_mixed_precision(bundled, experiment):
    trainer = make_trainer(experiment, mixed_precision=True)
    x = images_of(bundled, 1, trainer, 32)
    losses = trainer.compiled_train_step(x, SEED)
    assert all(v.dtype == tf.float32 and np.isfinite(float(v)) for v in losses.values())
    scores = trainer.compiled_score(x)
    assert scores.dtype == tf.float32 and np.all(np.isfinite(scores.numpy()))


@pytest.fixture(scope="module")
def digit_one_normal(bundled):
    """P3 with digit 1 normal: every flattened-pixel baseline separates it well."""
    splits = one_class_splits(bundled, "normal", 1, seed=0)
    return PreparedData.from_splits(splits, 28)


@pytest.mark.parametrize("experiment", ["ocsvm", "iforest", "kde"])
def test_shallow_baselines_detect_other_digits_and_save_what_they_chose(
        tmp_path, digit_one_normal, experiment):
    cls = trainer_class(experiment)
    trainer = cls(defaults(cls.schema()), sample_shape=(28, 28, 1), seed=0)
    trainer.fit(digit_one_normal, tmp_path, tf.summary.create_noop_writer(), progress_bar=False)
    chosen = trainer.select_final_model(tmp_path, digit_one_normal)
    test = trainer.evaluate(digit_one_normal)["test"]
    assert test["auroc"] > 0.9, test
    assert chosen and trainer.training_summary()["validation_best"]["auroc"] > 0.9
    restored = restored_detector(cls, trainer, tmp_path)
    images = flat_images(digit_one_normal.test)[:50]
    np.testing.assert_allclose(cls.score(restored, images), cls.score(trainer.detector, images))


def restored_detector(cls, trainer, run_dir):
    """The detector a fresh trainer loads from ``run_dir/model`` (skops, never a pickle)."""
    assert (run_dir / "model" / DETECTOR_FILE).is_file()
    assert not (run_dir / "model" / "detector.pkl").exists()
    fresh = cls(trainer.hps, sample_shape=(28, 28, 1), seed=0)
    fresh.load_model(run_dir / "model")
    return fresh.detector


def test_pca_variance_projects_before_the_detector_and_saves_the_projection(
        tmp_path, digit_one_normal, capsys):
    """The PCA is fitted on the training images only; the model file holds projection +
    detector."""
    cls = trainer_class("iforest")
    trainer = cls({**defaults(cls.schema()), "pca_variance": 0.9}, sample_shape=(28, 28, 1),
                  seed=0)
    trainer.fit(digit_one_normal, tmp_path, tf.summary.create_noop_writer(), progress_bar=False)
    trainer.select_final_model(tmp_path, digit_one_normal)
    projection = trainer.detector.named_steps["pca"]
    train = flat_images(digit_one_normal.train)
    assert projection.n_samples_ == len(train) and projection.n_features_in_ == 784
    assert 1 < projection.n_components_ < 784
    assert projection.explained_variance_ratio_.sum() >= 0.9
    assert f"PCA keeps {projection.n_components_} of 784 dimensions (90%" in capsys.readouterr().out
    assert trainer.evaluate(digit_one_normal)["test"]["auroc"] > 0.9
    restored = restored_detector(cls, trainer, tmp_path)
    images = flat_images(digit_one_normal.test)[:50]
    np.testing.assert_allclose(cls.score(restored, images), cls.score(trainer.detector, images))
    for bad, message in ((-0.1, "must be >= 0.0"), (1.5, "must be <= 1.0")):
        with pytest.raises(HpsError, match=message):
            parse_grid({"pca_variance": {"type": "Discrete", "values": [bad]}}, cls.schema(),
                       "grid.json")


def test_unset_kernel_widths_are_chosen_on_validation(digit_one_normal, capsys):
    cls = trainer_class("ocsvm")
    trainer = cls(defaults(cls.schema()), sample_shape=(28, 28, 1), seed=0)
    trainer.fit(digit_one_normal, None, tf.summary.create_noop_writer(), progress_bar=False)
    tried = [line for line in capsys.readouterr().out.splitlines() if "gamma=" in line]
    aurocs = {line.split(":")[0].split()[1]: float(line.split("auroc ")[1].split(",")[0])
              for line in tried}
    assert len(aurocs) == 10
    assert trainer.chosen in aurocs
    assert trainer.validation_best["auroc"] == pytest.approx(max(aurocs.values()), abs=1e-4)
    assert aurocs[trainer.chosen] == pytest.approx(max(aurocs.values()), abs=1e-4)

    fixed = cls({**defaults(cls.schema()), "gamma": 0.01}, sample_shape=(28, 28, 1), seed=0)
    assert [setting for setting, _ in fixed.candidates(np.zeros((4, 3)))] == ["gamma=0.01"]


def test_label_free_width_rules_choose_one_setting_without_validation(digit_one_normal, capsys):
    """'scale' is scikit-learn's gamma; 'likelihood' is the grid bandwidth with the best
    cross-validated log-likelihood of the training images, whatever validation says."""
    ocsvm = trainer_class("ocsvm")
    trainer = ocsvm({**defaults(ocsvm.schema()), "width_rule": "scale"}, sample_shape=(28, 28, 1),
                    seed=0)
    train = flat_images(digit_one_normal.train)
    [(setting, detector)] = trainer.candidates(train)
    assert detector.gamma == pytest.approx(1.0 / (train.shape[1] * train.var()))

    kde = trainer_class("kde")
    trainer = kde({**defaults(kde.schema()), "width_rule": "likelihood"},
                  sample_shape=(28, 28, 1), seed=0)
    [(setting, detector)] = trainer.candidates(train)
    grid = [setting for setting, _ in kde(defaults(kde.schema()), sample_shape=(28, 28, 1),
                                            seed=0).candidates(train)]
    assert setting in grid
    held_out = train[::5]
    fitted = [KernelDensity(bandwidth=float(g.split("=")[1])).fit(np.delete(train, np.s_[::5], 0))
              for g in grid]
    likelihoods = {g: model.score(held_out) for g, model in zip(grid, fitted, strict=True)}
    assert likelihoods[setting] >= np.median(list(likelihoods.values()))
    trainer.fit(digit_one_normal, None, tf.summary.create_noop_writer(), progress_bar=False)
    assert sum("bandwidth=" in line for line in capsys.readouterr().out.splitlines()) == 1
    assert trainer.evaluate(digit_one_normal)["test"]["auroc"] > 0.9
