import math

import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.registry import trainer_class
from anomaly_toolbox.hps import defaults
from anomaly_toolbox.trainers.jointgan import (consistency_loss, drift_penalty,
                                               latent_norm_score, min_max_normalise)
from tests.conftest import eager_step, images_of, make_trainer


def test_smaller_latent_norm_is_more_anomalous():
    codes = tf.constant([[0.1, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [3.0, 0.0, -4.0, 0.0]])
    scores = latent_norm_score(codes).numpy()
    np.testing.assert_allclose(scores, [-0.05, -1.0, -2.5], rtol=1e-6)
    assert scores[0] > scores[1] > scores[2]


def test_consistency_is_each_samples_l1_norm_averaged_over_the_batch():
    """Eq. 1's E_z ||G(z) - G(E(G(z)))||_1: a sum over a sample's pixels, not a mean (which
    weighs the term 1/1024 of the paper's at 32x32)."""
    reference = tf.zeros([2, 4, 4, 1])
    reconstruction = tf.concat([tf.fill([1, 4, 4, 1], 0.5), tf.fill([1, 4, 4, 1], -0.25)], 0)
    assert float(consistency_loss(reference, reconstruction)) == pytest.approx(
        (16 * 0.5 + 16 * 0.25) / 2)
    codes = tf.constant([[1.0, -2.0, 0.0], [0.0, 0.0, 3.0]])
    assert float(consistency_loss(codes, tf.zeros_like(codes))) == pytest.approx(3.0)


def test_the_critic_follows_pgans_schedule_one_update_with_the_drift_penalty(bundled):
    """Berg et al. train pGAN's WGAN-GP: one critic update per G/E update, and the critic pays
    0.001 E[D(x)^2]. The step's critic loss is -W + 10 GP + drift_weight E[D(x)^2]."""
    assert float(drift_penalty(tf.constant([[1.0], [-3.0]]))) == pytest.approx(5.0)
    default = defaults(trainer_class("jointgan").schema())
    assert (default["n_critic"], default["drift_weight"]) == (1, 0.001)
    trainer = make_trainer("jointgan", n_critic=1, drift_weight=20.0)
    x = images_of(bundled, 1, trainer, 16)
    real_scores = trainer.networks["critic"](x, training=True)[0]
    losses = eager_step(trainer, x, step=1)
    expected = (-losses["w_distance"] + 10.0 * losses["gradient_penalty"]
                + 20.0 * drift_penalty(real_scores))
    assert float(losses["critic_loss"]) == pytest.approx(float(expected), rel=1e-4)
    assert float(20.0 * drift_penalty(real_scores)) > 1e-3 * abs(float(expected))  # visible


def test_min_max_normalisation_is_per_image():
    images = tf.stack([tf.linspace(-1.0, 1.0, 16), tf.linspace(2.0, 3.0, 16)])
    images = tf.reshape(images, [2, 4, 4, 1])
    normalised = min_max_normalise(images).numpy()
    for image in normalised:
        assert image.min() == pytest.approx(0.0) and image.max() == pytest.approx(1.0)
    np.testing.assert_allclose(normalised[0], normalised[1], atol=1e-6)


def test_score_is_lambda_mix_of_normalised_residual_and_latent_norm(bundled):
    trainer = make_trainer("jointgan", score_lambda=0.3)
    x = images_of(bundled, 2, trainer, 8)
    parts = trainer.score_parts(x).numpy()
    np.testing.assert_allclose(trainer.score(x).numpy(), 0.3 * parts[:, 0] + 0.7 * parts[:, 1],
                               rtol=1e-5)
    assert np.all(parts[:, 0] >= 0) and np.all(parts[:, 0] <= math.sqrt(32 * 32) / (32 * 32))
    assert np.all(parts[:, 1] <= 0)


@pytest.mark.slow
@pytest.mark.parametrize("encoder_loss, kept", [("image", 0.8), ("latent", 0.9)])
def test_joint_training_lowers_the_consistency_loss(bundled, encoder_loss, kept):
    """Both consistency losses fall; recovering a unit-length z from G(z) (latent) is slower to
    learn than matching images, so it has to shed 10% in the same steps, the image loss 20%."""
    trainer = make_trainer("jointgan", n_critic=2, encoder_loss=encoder_loss, filters=8,
                           latent_dim=16, learning_rate=5e-4)
    x = images_of(bundled, 1, trainer, 320)
    consistency = []
    for step in range(150):
        losses = trainer.compiled_train_step(x[32 * (step % 10):32 * (step % 10 + 1)],
                                              tf.constant([0, step], tf.int64))
        consistency.append(float(losses["consistency"]))
    assert np.mean(consistency[-10:]) < kept * np.mean(consistency[:10])


def test_generator_decodes_unit_length_codes_so_only_direction_matters():
    """The paper's generator scales z to unit length first: G(c z) = G(z) for any c > 0."""
    generator = make_trainer("jointgan").networks["generator"]
    z = tf.random.stateless_normal([6, 8], [2, 3])
    reference = generator(z, training=False).numpy()
    for scale in (0.01, 3.0, 40.0):
        np.testing.assert_allclose(generator(scale * z, training=False).numpy(), reference,
                                   atol=1e-5)


def test_default_latent_size_is_the_papers():
    trainer_defaults = defaults(trainer_class("jointgan").schema())
    assert trainer_defaults["latent_dim"] == 512


def test_encoder_codes_do_not_depend_on_batch_statistics(bundled):
    """The encoder learns on generated images only; without BatchNorm, real images at test time
    are encoded exactly as in training mode (no statistics carried over from G(z))."""
    trainer = make_trainer("jointgan")
    x = images_of(bundled, 3, trainer, 16)
    encoder = trainer.networks["encoder"]
    np.testing.assert_allclose(encoder(x, training=True).numpy(),
                               encoder(x, training=False).numpy(), atol=1e-6)
    np.testing.assert_allclose(encoder(x[:4], training=True).numpy(),
                               encoder(x, training=True).numpy()[:4], atol=1e-6)
