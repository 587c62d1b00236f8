"""EGBAD (Zenati et al., 2018): its training cases and the pair its BCE score judges."""

import numpy as np
import pytest

from anomaly_toolbox.trainers.losses import bce_with_logits
from tests.conftest import SEED, images_of, make_trainer


@pytest.mark.parametrize("overrides", [
    {"generator_loss": "fm", "encoder_loss": "bce_residual", "score": "bce"},
    {"generator_loss": "bce", "encoder_loss": "bce_residual", "score": "fm"},
])
def test_egbad_training_cases_and_scores(bundled, overrides):
    trainer = make_trainer("egbad", **overrides)
    x = images_of(bundled, 3, trainer, 32)
    losses = trainer.compiled_train_step(x, SEED)
    assert float(losses["e_residual"]) > 0
    assert float(losses["e_loss"]) > float(losses["e_residual"])
    assert np.all(np.isfinite(trainer.compiled_score(x).numpy()))


@pytest.mark.parametrize("pair", ["reconstruction", "input"])
def test_egbad_bce_score_judges_the_chosen_pair(bundled, pair):
    """'reconstruction': BCE(D(G(E(x)), E(x)), 1) as Zenati et al.'s code; 'input':
    BCE(D(x, E(x)), 1) as eq. 9 of the consistency-BiGAN paper."""
    trainer = make_trainer("egbad", score="bce", bce_score_pair=pair, score_weight=1.0)
    x = images_of(bundled, 4, trainer, 8)
    codes, reconstruction = trainer.encode_decode(x)
    judged = reconstruction if pair == "reconstruction" else x
    logit = trainer.networks["discriminator"]([judged, codes], training=False)[0]
    np.testing.assert_allclose(trainer.score(x).numpy(), bce_with_logits(1.0, logit).numpy(),
                               rtol=1e-5)
