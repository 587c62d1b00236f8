"""The convolutional autoencoder baseline: its score is the per-image squared reconstruction
error, and training lowers it on the normal class more than on others."""

import numpy as np

from tests.conftest import SEED, images_of, make_trainer


def test_score_is_the_mean_squared_reconstruction_error(bundled):
    trainer = make_trainer("ae")
    x = images_of(bundled, 2, trainer, 8)
    reconstruction = trainer.compiled_reconstruct(x).numpy()
    expected = np.mean(np.square(x.numpy() - reconstruction), axis=(1, 2, 3))
    np.testing.assert_allclose(trainer.compiled_score(x).numpy(), expected, rtol=1e-5)


def test_training_on_ones_lowers_their_error_below_sevens(bundled):
    trainer = make_trainer("ae", learning_rate=3e-3)
    ones, sevens = images_of(bundled, 1, trainer, 320), images_of(bundled, 7, trainer, 64)
    before = float(trainer.compiled_train_step(ones[:32], SEED)["reconstruction_loss"])
    for step in range(1, 60):
        losses = trainer.compiled_train_step(ones[32 * (step % 10):32 * (step % 10 + 1)], SEED)
    assert float(losses["reconstruction_loss"]) < before / 2
    assert trainer.compiled_score(sevens).numpy().mean() > trainer.compiled_score(
        ones[:64]).numpy().mean()
