import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.hps import defaults
from anomaly_toolbox.trainers.anogan import AnoGANTrainer
from tests.conftest import TINY, images_of, make_trainer


@pytest.fixture(scope="module")
def trained(bundled):
    trainer = make_trainer("anogan", filters=8, latent_dim=16)
    ones = images_of(bundled, 1, trainer, 64)
    for step in range(30):
        trainer.compiled_train_step(ones[:32], tf.constant([0, step], tf.int64))
        trainer.step.assign_add(1)
    return trainer, ones


@pytest.mark.parametrize("jit_compile", [False, True], ids=["tf.function", "xla"])
def test_search_lowers_the_loss_of_every_image_in_the_batch(bundled, jit_compile):
    trainer = make_trainer("anogan", jit_compile, filters=8, latent_dim=16)
    x = images_of(bundled, 4, trainer, 32)
    start, searched = trainer.scores_with_steps(x, 0), trainer.scores_with_steps(x, 60)
    assert start.shape == searched.shape == (32,)
    assert np.all(np.isfinite(searched)) and np.all(searched < start)


def test_search_state_is_fresh_for_every_batch(trained):
    trainer, ones = trained
    first = trainer.scores_with_steps(ones[:32], 40)
    trainer.scores_with_steps(ones[32:], 40)
    np.testing.assert_allclose(trainer.scores_with_steps(ones[:32], 40), first, rtol=1e-6)


def test_scores_do_not_depend_on_the_batch(trained):
    trainer, ones = trained
    full = trainer.scores_with_steps(ones[:32], 40)
    np.testing.assert_allclose(trainer.scores_with_steps(ones[5:8], 40), full[5:8], rtol=1e-5)


def test_stepped_learning_rate_follows_the_boundaries(trained):
    trainer, _ = trained
    schedule = trainer.search_schedule
    rates = [float(schedule(step)) for step in (0, 199, 201, 299, 301, 499)]
    np.testing.assert_allclose(rates, [0.01, 0.01, 0.001, 0.001, 0.0005, 0.0005])


def test_boundaries_out_of_order_are_rejected():
    hps = {**defaults(AnoGANTrainer.schema()), **TINY, "search_boundary_1": 300,
           "search_boundary_2": 200}
    with pytest.raises(ValueError, match="search_boundary_1 \\(300\\) must be smaller"):
        AnoGANTrainer(hps, sample_shape=(28, 28, 1), seed=0)
