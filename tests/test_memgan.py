import numpy as np
import pytest
import tensorflow as tf
from tests.conftest import eager_step, images_of, make_trainer



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
    losses = eager_step(trainer, x)
    for name in ("d_loss", "g_adv", "cyc", "proj", "mi", "g_loss", "m_loss"):
        value = float(losses[name])
        assert np.isfinite(value) and value >= 0.0, name
    assert np.isfinite(float(losses["e_loss"])) and float(losses["e_adv"]) <= 0.0  # log D <= 0
    assert not np.allclose(trainer.memory_layer.memory.numpy(), memory_before)
    assert any(not np.allclose(a, b.numpy()) for a, b in
               zip(encoder_before, trainer.networks["encoder"].trainable_weights))


@pytest.mark.slow
def test_projection_loss_falls_with_training(bundled, trainer):
    x = images_of(bundled, 1, trainer, 320)
    alpha = tf.nn.softmax(tf.random.stateless_normal([32, 10], [1, 2]), axis=-1)
    start = float(trainer.losses(x[:32], alpha)["proj"])
    for step in range(200):
        trainer.compiled_train_step(x[32 * (step % 10):32 * (step % 10 + 1)],
                                     tf.constant([0, step], tf.int64))
    assert float(trainer.losses(x[:32], alpha)["proj"]) < 0.5 * start


@pytest.mark.parametrize("form", ["log_d", "non_saturating"])
def test_encoder_adversarial_term_is_the_chosen_form(bundled, form):
    """Algorithm 1: E minimises log D(x, E(x)); the alternative: -log(1 - D(x, E(x)))."""
    trainer = make_trainer("memgan", memory_units=10, encoder_adversarial=form)
    x = images_of(bundled, 1, trainer, 16)
    alpha = tf.nn.softmax(tf.random.stateless_normal([16, 10], [1, 2]), axis=-1)
    codes = trainer.networks["encoder"](x, training=True)
    logit = trainer.networks["discriminator"]([x, codes], training=True)[0].numpy()
    probability = 1.0 / (1.0 + np.exp(-logit))
    expected = np.mean(np.log(probability) if form == "log_d" else -np.log(1.0 - probability))
    assert float(trainer.losses(x, alpha)["e_adv"]) == pytest.approx(expected, rel=1e-4)
