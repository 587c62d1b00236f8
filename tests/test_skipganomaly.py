import keras
import numpy as np
import pytest

from anomaly_toolbox.hps import defaults
from anomaly_toolbox.models.skipganomaly import build_unet, unet_widths
from anomaly_toolbox.registry import trainer_class
from tests.conftest import eager_step, images_of, make_trainer


def test_the_unet_halves_to_one_pixel_and_every_level_skips_to_the_decoder():
    assert unet_widths(32, 64) == [64, 128, 256, 512, 512]
    with pytest.raises(ValueError, match="28 is not a power of 2"):
        unet_widths(28, 64)
    unet = build_unet((32, 32, 3), 64)
    downs = [layer for layer in unet.layers if isinstance(layer, keras.layers.Conv2D)
             and not isinstance(layer, keras.layers.Conv2DTranspose)]
    assert [layer.output.shape[1:] for layer in downs] == [
        (16, 16, 64), (8, 8, 128), (4, 4, 256), (2, 2, 512), (1, 1, 512)]
    skips = [layer.output.shape[1:] for layer in unet.layers
             if isinstance(layer, keras.layers.Concatenate)]
    assert skips == [(2, 2, 1024), (4, 4, 512), (8, 8, 256), (16, 16, 128)]
    assert unet.output.shape[1:] == (32, 32, 3)
    assert "latent_dim" not in trainer_class("skipganomaly").schema()


def test_defaults_are_the_papers():
    hps = defaults(trainer_class("skipganomaly").schema())
    assert (hps["adversarial_weight"], hps["contextual_weight"], hps["latent_weight"],
            hps["score_lambda"], hps["learning_rate"], hps["beta_1"], hps["batch_size"],
            hps["filters"]) == (1.0, 40.0, 1.0, 0.9, 2e-4, 0.5, 64, 64)


def test_the_step_reports_the_papers_generator_loss_term_by_term(bundled):
    trainer = make_trainer("skipganomaly", contextual_weight=40.0, latent_weight=3.0)
    x = images_of(bundled, 1, trainer, 16)
    reconstruction = trainer.networks["generator"](x, training=True)
    logit_real, real = trainer.networks["discriminator"](x, training=True)
    logit_fake, fake = trainer.networks["discriminator"](reconstruction, training=True)
    losses = eager_step(trainer, x, 0)
    adversarial = np.mean(np.log1p(np.exp(-logit_fake.numpy())))
    contextual = np.mean(np.abs(x.numpy() - reconstruction.numpy()))
    latent = np.mean(np.square(real.numpy() - fake.numpy()))
    assert float(losses["g_adversarial"]) == pytest.approx(adversarial, rel=1e-4)
    assert float(losses["g_contextual"]) == pytest.approx(contextual, rel=1e-4)
    assert float(losses["g_latent"]) == pytest.approx(latent, rel=1e-4)
    assert float(losses["g_loss"]) == pytest.approx(adversarial + 40 * contextual + 3 * latent,
                                                    rel=1e-4)
    d_loss = np.mean(np.log1p(np.exp(-logit_real.numpy())) + np.log1p(np.exp(logit_fake.numpy())))
    assert float(losses["d_loss"]) == pytest.approx(d_loss, rel=1e-4)


def test_the_latent_loss_trains_the_generator_only_not_the_discriminator(bundled):
    """The code also adds it to D's loss; the paper's D only tells x from x_hat."""
    after = {}
    for weight in (0.0, 100.0):
        trainer = make_trainer("skipganomaly", latent_weight=weight)
        x = images_of(bundled, 1, trainer, 16)
        eager_step(trainer, x, 0)
        after[weight] = {name: [w.numpy() for w in net.trainable_weights]
                         for name, net in trainer.networks.items()}
    for a, b in zip(after[0.0]["discriminator"], after[100.0]["discriminator"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(a, b) for a, b in zip(after[0.0]["generator"],
                                                     after[100.0]["generator"]))


def test_score_mixes_reconstruction_and_feature_errors(bundled):
    trainer = make_trainer("skipganomaly", score_lambda=0.7)
    x = images_of(bundled, 2, trainer, 6)
    reconstruction = trainer.networks["generator"](x, training=False).numpy()
    _, real = trainer.networks["discriminator"](x, training=False)
    _, fake = trainer.networks["discriminator"](reconstruction, training=False)
    r = np.mean(np.square(x.numpy() - reconstruction).reshape(6, -1), axis=1)
    latent = np.mean(np.square(real.numpy() - fake.numpy()), axis=1)
    np.testing.assert_allclose(trainer.score(x).numpy(), 0.7 * r + 0.3 * latent, rtol=1e-4)
    variants = trainer.score_variants()
    np.testing.assert_allclose(variants["reconstruction"](x).numpy(), r, rtol=1e-4)
    np.testing.assert_allclose(variants["latent"](x).numpy(), latent, rtol=1e-4)
