import numpy as np
import pytest
import tensorflow as tf

from tests.test_trainers import images_of, make_trainer


@pytest.fixture
def trainer():
    return make_trainer("memgan", memory_units=10)


def test_projection_lies_in_the_convex_hull_of_the_memory(trainer):
    memory = trainer.memory_layer
    codes = tf.random.stateless_normal([16, trainer.hps["latent_dim"]], [0, 1]) * 5.0
    alpha = memory.coefficients(codes).numpy()
    assert alpha.shape == (16, 10) and np.all(alpha >= 0)
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(memory(codes).numpy(), alpha @ memory.memory.numpy(), rtol=1e-5,
                               atol=1e-6)


def test_losses_are_finite_and_non_negative_and_every_part_learns(bundled, trainer):
    x = images_of(bundled, 1, trainer, 32)
    memory_before = trainer.memory_layer.memory.numpy().copy()
    encoder_before = [w.numpy().copy() for w in trainer.networks["encoder"].trainable_weights]
    losses = trainer._compiled_train_step(x, tf.constant([0, 0], tf.int64))
    for name in ("d_loss", "e_adv", "g_adv", "cyc", "proj", "mi", "e_loss", "g_loss", "m_loss"):
        value = float(losses[name])
        assert np.isfinite(value) and value >= 0.0, name
    assert not np.allclose(trainer.memory_layer.memory.numpy(), memory_before)
    assert any(not np.allclose(a, b.numpy()) for a, b in
               zip(encoder_before, trainer.networks["encoder"].trainable_weights))


def test_projection_loss_falls_with_training(bundled, trainer):
    x = images_of(bundled, 1, trainer, 320)
    alpha = tf.nn.softmax(tf.random.stateless_normal([32, 10], [1, 2]), axis=-1)
    start = float(trainer.losses(x[:32], alpha)["proj"])
    for step in range(200):
        trainer._compiled_train_step(x[32 * (step % 10):32 * (step % 10 + 1)],
                                     tf.constant([0, step], tf.int64))
    assert float(trainer.losses(x[:32], alpha)["proj"]) < 0.5 * start
