"""Deep SVDD (Ruff et al., ICML 2018): its LeNet feature map, pretraining, centre, weight decay,
learning-rate milestone and contrast normalisation."""

import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.datasets import one_class_splits
from anomaly_toolbox.datasets.pipeline import PreparedData
from anomaly_toolbox.hps import with_defaults
from anomaly_toolbox.models.deepsvdd import build_pretraining_decoder
from anomaly_toolbox.registry import trainer_class
from tests.conftest import SEED, eager_step, images_of, make_trainer


@pytest.fixture(scope="module")
def digit_one_normal(bundled):
    return PreparedData.from_splits(one_class_splits(bundled, "normal", 1, seed=0), 28)


def test_deepsvdd_centre_is_the_mean_feature_pushed_away_from_zero(bundled):
    trainer = make_trainer("deepsvdd")
    splits = one_class_splits(bundled, "normal", 1, seed=0)
    data = PreparedData.from_splits(splits, trainer.image_size)
    trainer.place_centre(data)
    features = trainer.networks["feature_map"](
        tf.concat([x for x, _ in data.train.batch(512)], axis=0), training=False).numpy()
    mean = features.mean(axis=0)
    centre = trainer.networks["centre"].get_layer("centre").centre.numpy()
    far = np.abs(mean) >= 0.1
    np.testing.assert_allclose(centre[far], mean[far], rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(centre[~far]) == pytest.approx(0.1))
    assert np.all(np.sign(centre[~far]) == np.where(mean[~far] < 0, -1, 1))
    np.testing.assert_array_equal(
        trainer.scoring_networks["centre"].get_layer("centre").centre.numpy(), centre)


@pytest.mark.parametrize("sample_shape, convs, features, side", [
    ((28, 28, 1), [8, 4], 32, 28),          # the reference code's MNIST LeNet
    ((32, 32, 3), [32, 64, 128], 128, 32),  # its CIFAR-10 LeNet
], ids=["grayscale", "rgb"])
def test_deepsvdd_default_feature_map_is_the_reference_codes_lenet_for_its_images(
        sample_shape, convs, features, side):
    cls = trainer_class("deepsvdd")
    hps = with_defaults(cls.schema(), {"jit_compile": False})  # filters, latent_dim: auto
    trainer = cls(hps, sample_shape=sample_shape, seed=0)
    feature_map = trainer.networks["feature_map"]
    assert [feature_map.get_layer(f"conv{i}").filters for i in range(len(convs))] == convs
    assert not any(layer.name == f"conv{len(convs)}" for layer in feature_map.layers)
    assert feature_map.output_shape == (None, features) and trainer.image_size == side
    assert (hps["filters"], hps["latent_dim"]) == (convs[0], features)  # recorded as used
    decoder = build_pretraining_decoder(trainer.image_shape, features, convs[0])
    assert decoder.output_shape == (None, side, side, sample_shape[-1])
    assert sorted(layer.filters for layer in decoder.layers if hasattr(layer, "filters")) == \
        sorted([sample_shape[-1], *convs[:-1]])


def test_deepsvdd_pretraining_learns_to_reconstruct_and_moves_the_feature_map(bundled):
    trainer = make_trainer("deepsvdd", epochs=6, learning_rate=1e-3)
    data = PreparedData.from_splits(one_class_splits(bundled, "normal", 1, seed=0),
                                    trainer.image_size)
    feature_map = trainer.networks["feature_map"]
    before = [w.numpy().copy() for w in feature_map.trainable_weights]
    losses = trainer.pretrain(data)
    assert len(losses) == 6 * (data.train_size // 32)
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, feature_map.trainable_weights))


def test_deepsvdd_without_pretraining_starts_from_its_initial_weights(bundled):
    trainer = make_trainer("deepsvdd", pretrain=False)
    data = PreparedData.from_splits(one_class_splits(bundled, "normal", 1, seed=0),
                                    trainer.image_size)
    before = [w.numpy().copy() for w in trainer.networks["feature_map"].weights]
    trainer.place_centre(data)
    for b, w in zip(before, trainer.networks["feature_map"].weights):
        np.testing.assert_array_equal(b, w.numpy())


def test_deepsvdd_is_bias_free_and_training_pulls_features_to_the_centre(bundled):
    trainer = make_trainer("deepsvdd", filters=8)
    assert not [w.name for w in trainer.networks["feature_map"].weights if "bias" in w.name]
    trainer.networks["centre"].get_layer("centre").centre.assign(np.full(8, 0.5, np.float32))
    x = images_of(bundled, 1, trainer, 32)
    first = float(trainer.compiled_train_step(x, SEED)["distance_loss"])
    for _ in range(30):
        last = float(trainer.compiled_train_step(x, SEED)["distance_loss"])
    assert last < 0.5 * first


def test_deepsvdd_learning_rate_drops_tenfold_from_the_milestone_in_published_epochs():
    trainer = make_trainer("deepsvdd", epochs=150, lr_milestone=50, learning_rate=1e-4)
    optimizer = trainer.optimizers["feature_map"]
    trainer.epoch_scale.assign(0.5)
    rates = {}
    for trained in (0, 99, 100, 299):
        trainer.epoch.assign(trained)
        rates[trained] = float(optimizer.learning_rate)
    assert rates[0] == rates[99] == pytest.approx(1e-4)
    assert rates[100] == rates[299] == pytest.approx(1e-5)
    unscheduled = make_trainer("deepsvdd", epochs=150, lr_milestone=0, learning_rate=1e-4)
    unscheduled.epoch.assign(149)
    assert float(unscheduled.optimizers["feature_map"].learning_rate) == pytest.approx(1e-4)


def test_deepsvdd_says_when_its_milestone_lies_past_the_run(digit_one_normal, capsys):
    for epochs, milestone, said in ((30, 50, True), (50, 50, True), (51, 50, False),
                                    (30, 0, False)):
        trainer = make_trainer("deepsvdd", epochs=epochs, lr_milestone=milestone, pretrain=False)
        trainer.place_centre(digit_one_normal)
        out = capsys.readouterr().out
        assert ("learning rate never drops" in out) == said, (epochs, milestone, out)
        if said:
            assert f"lr_milestone {milestone} is not below epochs {epochs}" in out


def test_deepsvdd_loss_adds_half_lambda_times_the_squared_weights_and_shrinks_them(bundled):
    x = images_of(bundled, 1, make_trainer("deepsvdd"), 32)

    def squared_weights(trainer):
        return sum(float(tf.reduce_sum(tf.square(w)))
                   for w in trainer.networks["feature_map"].trainable_weights)

    decayed, plain = (make_trainer("deepsvdd", weight_decay=lam) for lam in (1.0, 0.0))
    norm = squared_weights(decayed)
    logs = eager_step(decayed, x)
    assert float(logs["loss"]) == pytest.approx(float(logs["distance_loss"]) + 0.5 * norm,
                                                rel=1e-5)
    assert float(eager_step(plain, x)["loss"]) == pytest.approx(float(logs["distance_loss"]),
                                                                rel=1e-5)
    for step in range(1, 11):
        eager_step(decayed, x, step)
        eager_step(plain, x, step)
    assert squared_weights(decayed) < squared_weights(plain)


def test_contrast_normalisation_ignores_pixel_scale_and_maps_the_training_data_onto_0_1(bundled):
    from anomaly_toolbox.models.deepsvdd import ContrastNormalization

    layer = ContrastNormalization()
    x = images_of(bundled, 3, make_trainer("deepsvdd"), 40)
    np.testing.assert_allclose(layer.contrast(x), layer.contrast(0.5 * x + 0.5), atol=1e-5)
    v = layer.contrast(x).numpy()
    np.testing.assert_allclose(v.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.abs(v).mean(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    low, high = layer.adapt([x[:20], x[20:]])
    assert (low, high) == pytest.approx((v.min(), v.max()))
    mapped = layer(x).numpy()
    assert mapped.min() == pytest.approx(0.0, abs=1e-6)
    assert mapped.max() == pytest.approx(1.0, abs=1e-6)


def test_deepsvdd_with_contrast_norm_adapts_first_pretrains_on_it_and_keeps_it_when_saved(
        bundled, tmp_path):
    trainer = make_trainer("deepsvdd", contrast_norm=True, epochs=2)
    data = PreparedData.from_splits(one_class_splits(bundled, "normal", 1, seed=0),
                                    trainer.image_size)
    trainer.place_centre(data)
    contrast = trainer.networks["feature_map"].get_layer("contrast")
    train = tf.concat([x for x, _ in data.train.batch(512)], axis=0)
    assert float(tf.reduce_min(contrast(train))) == pytest.approx(0.0, abs=1e-6)
    assert float(tf.reduce_max(contrast(train))) == pytest.approx(1.0, abs=1e-6)
    trainer.save_networks(tmp_path)
    loaded = make_trainer("deepsvdd", contrast_norm=True, epochs=2)
    loaded.load_networks(tmp_path)
    assert float(loaded.networks["feature_map"].get_layer("contrast").high) == pytest.approx(
        float(contrast.high))
    np.testing.assert_allclose(loaded.score(train[:16]), trainer.score(train[:16]), rtol=1e-5)


def test_deepsvdd_pooling_matches_keras_and_compiles_with_xla_under_op_determinism(bundled):
    """Keras' MaxPooling2D gradient has no deterministic XLA kernel, even on CPU."""
    import keras

    from anomaly_toolbox.models.deepsvdd import MaxPool2x2

    x = tf.random.stateless_normal([2, 28, 28, 3], [0, 1])
    np.testing.assert_array_equal(np.asarray(MaxPool2x2()(x)),
                                  np.asarray(keras.layers.MaxPooling2D(2)(x)))
    tf.config.experimental.enable_op_determinism()
    trainer = make_trainer("deepsvdd", jit_compile=True)
    losses = trainer.compiled_train_step(images_of(bundled, 1, trainer, 32), SEED)
    assert np.isfinite(float(losses["distance_loss"]))
