"""GANomaly (Akcay et al., ACCV 2018): its losses, its latent-distance score and its weight
average."""

import numpy as np
import pytest

from tests.conftest import eager_step, images_of, make_trainer


def test_generator_loss_is_the_weighted_sum_of_its_three_terms(bundled):
    """L_G = w_adv L_adv + w_con L_con + w_enc L_enc with the paper's weights (1, 50, 1)."""
    trainer = make_trainer("ganomaly")
    assert (trainer.hps["adversarial_weight"], trainer.hps["contextual_weight"],
            trainer.hps["encoder_weight"]) == (1.0, 50.0, 1.0)
    losses = {name: float(value) for name, value in eager_step(
        trainer, images_of(bundled, 3, trainer, 32)).items()}
    assert losses["g_loss"] == pytest.approx(
        losses["g_adversarial"] + 50 * losses["g_contextual"] + losses["g_encoder"], rel=1e-5)
    assert all(value > 0 for value in losses.values())


def test_score_is_the_distance_between_the_two_encodings(bundled):
    """A(x) = ||G_E(x) - E(G(x))||_2 per image, by the scoring networks."""
    trainer = make_trainer("ganomaly")
    x = images_of(bundled, 5, trainer, 8)
    networks = trainer.scoring_networks
    latent_in = networks["encoder_in"](x, training=False)
    latent_out = networks["encoder_out"](networks["decoder"](latent_in, training=False),
                                         training=False)
    expected = np.linalg.norm((latent_in - latent_out).numpy(), axis=1)
    np.testing.assert_allclose(trainer.score(x).numpy(), expected, rtol=1e-5)


def test_ema_scoring_weights_follow_the_warm_up_formula(bundled):
    trainer = make_trainer("ganomaly", ema_decay=0.999)
    x = images_of(bundled, 0, trainer, 32)
    initial = [w.numpy().copy() for w in trainer.networks["decoder"].weights]
    eager_step(trainer, x)
    trained = [w.numpy() for w in trainer.networks["decoder"].weights]
    averaged = [w.numpy() for w in trainer.scoring_networks["decoder"].weights]
    decay = min(0.999, 1.0 / 10.0)
    for start, now, average in zip(initial, trained, averaged):
        np.testing.assert_allclose(average, decay * start + (1 - decay) * now, rtol=1e-5,
                                   atol=1e-6)
    assert trainer.scoring_networks["decoder"] is not trainer.networks["decoder"]
