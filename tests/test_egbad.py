"""EGBAD (Zenati et al., 2018): its training cases and the pair its BCE score judges."""

import numpy as np
import pytest

from anomaly_toolbox.trainers.losses import bce_with_logits
from tests.conftest import eager_step, images_of, make_trainer


@pytest.mark.parametrize("overrides", [
    {"generator_loss": "fm", "encoder_loss": "bce_residual", "score": "bce"},
    {"generator_loss": "bce", "encoder_loss": "bce_residual", "score": "fm"},
])
def test_egbad_training_cases_and_scores(bundled, overrides):
    trainer = make_trainer("egbad", **overrides)
    x = images_of(bundled, 3, trainer, 32)
    losses = eager_step(trainer, x)
    assert float(losses["e_residual"]) > 0
    assert float(losses["e_loss"]) > float(losses["e_residual"])
    assert np.all(np.isfinite(trainer.score(x).numpy()))


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


def test_networks_have_the_widths_of_zenati_et_al_mnist_code():
    """At the default ``filters`` 32: E 32/64/128 convolutions, G dense 1024 and 7x7x128 then a
    64-channel deconvolution, D convolutions 64/64, z path 512, joint layer 1024 with dropout
    after each of D's four hidden layers; LeakyReLU 0.1 and TF1 BatchNorm settings."""
    import keras

    from anomaly_toolbox.models.dcgan import LeakyReLUOfRelus
    from anomaly_toolbox.models.egbad import build_egbad

    nets = build_egbad((28, 28, 1), latent_dim=200, filters=32, dropout=0.5)

    def widths(net, kind):
        return [layer.filters if hasattr(layer, "filters") else layer.units
                for layer in net.layers if isinstance(layer, kind)]

    assert widths(nets["encoder"], keras.layers.Conv2D) == [32, 64, 128]
    assert widths(nets["encoder"], keras.layers.Dense) == [200]
    assert widths(nets["generator"], keras.layers.Dense) == [1024, 7 * 7 * 128]
    assert widths(nets["generator"], keras.layers.Conv2DTranspose) == [64, 1]
    discriminator = nets["discriminator"]
    assert widths(discriminator, keras.layers.Conv2D) == [64, 64]
    assert widths(discriminator, keras.layers.Dense) == [512, 1024, 1]
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in discriminator.layers) == 4
    assert discriminator.output[1].shape[-1] == 1024
    slopes = {layer.negative_slope for net in nets.values() for layer in net.layers
              if isinstance(layer, LeakyReLUOfRelus)}
    norms = {(layer.momentum, layer.epsilon) for net in nets.values() for layer in net.layers
             if isinstance(layer, keras.layers.BatchNormalization)}
    assert slopes == {0.1} and norms == {(0.99, 1e-3)}
    first, second = nets["encoder"].layers[1:3]
    assert isinstance(second, keras.layers.Conv2D)  # the first convolution has no activation
    assert first.activation is keras.activations.linear


def test_leaky_relu_of_relus_is_leaky_relu():
    import tensorflow as tf

    from anomaly_toolbox.models.dcgan import LeakyReLUOfRelus

    x = tf.constant([[-3.0, -0.5, 0.0, 0.25, 2.0]])
    np.testing.assert_allclose(LeakyReLUOfRelus(0.1)(x).numpy(),
                               tf.nn.leaky_relu(x, alpha=0.1).numpy(), rtol=1e-6)
