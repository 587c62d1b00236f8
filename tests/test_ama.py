import math

import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.trainers.wgan import gradient_penalty
from tests.test_trainers import images_of, make_trainer


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_gap():
    w = tf.constant([[0.5, -2.0], [1.0, 0.25]])
    real = tf.random.stateless_normal([6, 2, 2], [0, 1])
    fake = tf.random.stateless_normal([6, 2, 2], [0, 2])
    penalty = gradient_penalty(lambda x: tf.reduce_sum(x * w, axis=[1, 2]), real, fake,
                               tf.linspace(0.0, 1.0, 6))
    expected = (math.sqrt(0.25 + 4.0 + 1.0 + 0.0625) - 1.0) ** 2
    assert float(penalty) == pytest.approx(expected, rel=1e-6)


def test_gradient_penalty_of_a_quadratic_critic_matches_the_direct_formula():
    real = tf.random.stateless_normal([5, 3, 3, 2], [1, 1])
    fake = tf.random.stateless_normal([5, 3, 3, 2], [1, 2])
    eps = tf.constant([0.0, 0.2, 0.5, 0.7, 1.0])
    penalty = gradient_penalty(lambda x: tf.reduce_sum(x ** 2, axis=[1, 2, 3]), real, fake, eps)
    mixed = eps.numpy()[:, None, None, None] * real.numpy() + (
        1 - eps.numpy()[:, None, None, None]) * fake.numpy()
    norms = np.linalg.norm((2 * mixed).reshape(5, -1), axis=1)
    assert float(penalty) == pytest.approx(np.mean((norms - 1) ** 2), rel=1e-5)


@pytest.mark.parametrize("direction, low, high", [("outward", 0.0, 3.0), ("inward", -3.0, 0.0)])
def test_atypical_samples_have_the_requested_norms(direction, low, high):
    trainer = make_trainer("ama", negative_direction=direction, negative_delta=3.0)
    noise = trainer.sample_noise(500, tf.constant([4, 2], tf.int64))
    offsets = np.linalg.norm(noise["z_negative"].numpy(), axis=1) - math.sqrt(8)
    assert np.all(offsets >= low - 1e-5) and np.all(offsets <= high + 1e-5)
    assert offsets.max() - offsets.min() > 2.0


def test_negatives_start_at_the_requested_epoch():
    trainer = make_trainer("ama", negative_start_epoch=3)
    seed = tf.constant([0, 0], tf.int64)
    flags = []
    for epoch in range(4):
        trainer.epoch.assign(epoch)
        flags.append(float(trainer.sample_noise(4, seed)["negatives_on"]))
    assert flags == [0.0, 0.0, 1.0, 1.0]


def test_a_score_ranks_outlying_r_scores_as_more_anomalous():
    trainer = make_trainer("ama")
    trainer.gaussian.assign([10.0, 2.0])
    a = trainer.a_score(np.array([10.0, 11.0, 16.0, 3.0]))
    assert a[0] < a[1] < a[2] and a[0] < a[3]


@pytest.mark.parametrize("switched_off", ["lambda_inter", "lambda_neg", "lambda_reg"])
def test_each_component_can_be_switched_off(bundled, switched_off):
    trainer = make_trainer("ama", n_critic=1, negative_start_epoch=1, **{switched_off: 0.0})
    losses = trainer._compiled_train_step(images_of(bundled, 0, trainer, 32),
                                          tf.constant([0, 0], tf.int64))
    part = {"lambda_inter": "l_inter", "lambda_neg": "l_neg", "lambda_reg": "l_reg"}[switched_off]
    assert part not in losses
    assert all(np.isfinite(float(v)) for v in losses.values())
