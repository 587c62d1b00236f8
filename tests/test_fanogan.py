import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.datasets import one_class_splits
from anomaly_toolbox.datasets.pipeline import PreparedData
from anomaly_toolbox.hps import defaults
from anomaly_toolbox.registry import trainer_class
from tests.conftest import eager_step, images_of, make_trainer


def weights(trainer, name, trainable=True):
    network = trainer.networks[name]
    return [w.numpy().copy() for w in (network.trainable_weights if trainable
                                       else network.non_trainable_weights)]


def changed(before, after):
    return any(not np.allclose(a, b) for a, b in zip(before, after))


def test_defaults_are_berg_et_als_f_anogan_settings():
    """Batch 16 per critic update (x5 per step), z in R^128, WGAN-GP's Adam, izi_f's RMSProp."""
    hps = defaults(trainer_class("fanogan").schema())
    assert hps["batch_size"] // hps["n_critic"] == 16 and hps["latent_dim"] == 128
    assert (hps["learning_rate"], hps["beta_1"], hps["beta_2"], hps["gp_weight"]) == (
        1e-4, 0.0, 0.9, 10.0)
    assert (hps["encoder_learning_rate"], hps["kappa"]) == (5e-5, 1.0)


def test_score_is_the_izi_f_loss_image_mse_plus_kappa_feature_mse(bundled):
    trainer = make_trainer("fanogan", kappa=0.3)
    x = images_of(bundled, 2, trainer, 8)
    networks = trainer.networks
    reconstruction = networks["generator"](networks["encoder"](x, training=False),
                                           training=False)
    features = networks["critic"](x, training=False)[1].numpy()
    reconstructed = networks["critic"](reconstruction, training=False)[1].numpy()
    image_mse = np.mean(np.square(x.numpy() - reconstruction.numpy()).reshape(8, -1), axis=1)
    feature_mse = np.mean(np.square(features - reconstructed), axis=1)
    np.testing.assert_allclose(trainer.score(x).numpy(), image_mse + 0.3 * feature_mse,
                               rtol=1e-4)
    variants = trainer.score_variants()
    np.testing.assert_allclose(variants["image_residual"](x).numpy(), image_mse, rtol=1e-4)
    np.testing.assert_allclose(variants["feature_residual"](x).numpy(), feature_mse, rtol=1e-4)


def test_each_critic_update_takes_its_own_slice_of_the_batch():
    trainer = make_trainer("fanogan", n_critic=5, batch_size=80)
    images = tf.reshape(tf.range(80, dtype=tf.float32), [80, 1, 1, 1])
    batches = trainer.critic_batches(images)
    assert [int(b[0, 0, 0, 0]) for b in batches] == [0, 16, 32, 48, 64]
    assert all(b.shape[0] == 16 for b in batches)
    noise = trainer.sample_noise(80, tf.constant([1, 2], tf.int64))
    assert noise["z"].shape == (6, 16, 8) and noise["penalty_mix"].shape == (5, 16)
    assert not np.allclose(noise["z"][0], noise["z"][1])
    with pytest.raises(ValueError, match="batch_size 3 is smaller"):
        make_trainer("fanogan", n_critic=5, batch_size=3)


def test_the_gan_phase_trains_g_and_d_and_the_izi_f_phase_only_e(bundled):
    """f-AnoGAN's point: the encoder learns to invert a GAN that is already trained and stays
    frozen, its BatchNorm statistics included; the GAN never sees the encoder."""
    trainer = make_trainer("fanogan", n_critic=2)
    x = images_of(bundled, 1, trainer, 32)
    trainer.encoder_from_step.assign(1)
    before = {name: weights(trainer, name) for name in trainer.networks}
    losses = eager_step(trainer, x, 0)
    after = {name: weights(trainer, name) for name in trainer.networks}
    assert changed(before["critic"], after["critic"]) and changed(before["generator"],
                                                                 after["generator"])
    assert not changed(before["encoder"], after["encoder"])
    assert float(losses["encoder_loss"]) == 0.0 and float(losses["gradient_penalty"]) > 0.0
    trainer.step.assign(1)
    statistics = weights(trainer, "generator", trainable=False)
    losses = eager_step(trainer, x, 1)
    final = {name: weights(trainer, name) for name in trainer.networks}
    assert changed(after["encoder"], final["encoder"])
    assert not changed(after["critic"], final["critic"])
    assert not changed(after["generator"], final["generator"])
    assert not changed(statistics, weights(trainer, "generator", trainable=False))
    assert float(losses["critic_loss"]) == 0.0 and float(losses["encoder_loss"]) > 0.0


def test_the_encoder_phase_starts_at_its_share_of_the_planned_steps(bundled):
    trainer = make_trainer("fanogan", encoder_share=0.25, batch_size=30)
    data = PreparedData.from_splits(one_class_splits(bundled, "normal", 1, seed=0),
                                    trainer.image_size)
    trainer.epochs_planned = 8
    trainer.engine.callbacks.on_train_begin(data)
    steps = 8 * (data.train_size // 30)
    assert int(trainer.encoder_from_step.numpy()) == round(0.75 * steps)
    selectable = [trainer.engine.callbacks.selectable(epoch, 8) for epoch in range(1, 9)]
    assert selectable == [False] * 6 + [True] * 2
    assert "encoder_from_step" in trainer.checkpointed()


@pytest.mark.slow
def test_the_encoder_learns_to_invert_the_frozen_generator(bundled):
    """After 100 WGAN-GP steps, the izi_f phase trained on the frozen generator's own images
    (which it can reproduce exactly) sheds most of its loss: E learns G's inverse."""
    trainer = make_trainer("fanogan", n_critic=1, filters=8, latent_dim=16,
                           encoder_learning_rate=1e-3)
    x = images_of(bundled, 1, trainer, 320)
    trainer.encoder_from_step.assign(100)
    for step in range(100):
        trainer.compiled_train_step(x[32 * (step % 10):32 * (step % 10 + 1)],
                                    tf.constant([0, step], tf.int64))
        trainer.step.assign_add(1)
    generated = trainer.networks["generator"](tf.random.stateless_normal([320, 16], [7, 7]),
                                              training=False)
    losses = []
    for step in range(100, 300):
        result = trainer.compiled_train_step(generated[32 * (step % 10):32 * (step % 10 + 1)],
                                             tf.constant([0, step], tf.int64))
        trainer.step.assign_add(1)
        losses.append(float(result["encoder_loss"]))
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])
