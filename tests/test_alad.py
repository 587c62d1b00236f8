import keras
import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.hps import defaults
from anomaly_toolbox.models.alad import build_alad
from anomaly_toolbox.registry import trainer_class
from anomaly_toolbox.trainers.alad import discriminator_losses, generator_encoder_losses
from tests.conftest import eager_step, images_of, make_trainer


def bce(target, logit):
    probability = 1.0 / (1.0 + np.exp(-logit))
    return -(target * np.log(probability) + (1 - target) * np.log(1 - probability))


LOGITS = {"xz_real": [[0.5], [-1.0]], "xz_fake": [[2.0], [0.0]], "xx_real": [[1.5], [0.3]],
          "xx_fake": [[-0.7], [0.1]], "zz_real": [[0.2], [-0.4]], "zz_fake": [[1.1], [-2.0]]}


def test_each_discriminator_tells_its_real_pairs_from_its_fake_ones():
    losses = discriminator_losses({k: tf.constant(v) for k, v in LOGITS.items()})
    for kind in ("xz", "xx", "zz"):
        real, fake = np.array(LOGITS[f"{kind}_real"]), np.array(LOGITS[f"{kind}_fake"])
        assert float(losses[f"discriminator_{kind}"]) == pytest.approx(
            np.mean(bce(1, real) + bce(0, fake)), rel=1e-5)


@pytest.mark.parametrize("with_zz", [True, False])
def test_g_and_e_fool_d_xz_their_own_way_and_share_the_flipped_cycle_term(with_zz):
    g, e, cycle = generator_encoder_losses({k: tf.constant(v) for k, v in LOGITS.items()},
                                           with_zz)
    arrays = {k: np.array(v) for k, v in LOGITS.items()}
    expected_cycle = np.mean(bce(0, arrays["xx_real"]) + bce(1, arrays["xx_fake"]))
    if with_zz:
        expected_cycle += np.mean(bce(0, arrays["zz_real"]) + bce(1, arrays["zz_fake"]))
    assert float(cycle) == pytest.approx(expected_cycle, rel=1e-5)
    assert float(g) == pytest.approx(np.mean(bce(1, arrays["xz_fake"])) + expected_cycle,
                                     rel=1e-5)
    assert float(e) == pytest.approx(np.mean(bce(0, arrays["xz_real"])) + expected_cycle,
                                     rel=1e-5)


def test_defaults_and_widths_are_the_cifar10_codes():
    hps = defaults(trainer_class("alad").schema())
    assert (hps["batch_size"], hps["latent_dim"], hps["learning_rate"], hps["beta_1"],
            hps["ema_decay"], hps["dropout"], hps["filters"]) == (32, 100, 2e-4, 0.5, 0.999,
                                                                  0.2, 128)
    networks = build_alad((32, 32, 3), 100, 128, 0.2)

    def widths(network, kind):
        return [layer.layer.filters if kind == "conv" else layer.layer.units
                for layer in network.layers if isinstance(layer, keras.layers.SpectralNormalization)
                and isinstance(layer.layer, keras.layers.Conv2D if kind == "conv"
                               else keras.layers.Dense)]

    assert widths(networks["encoder"], "conv") == [128, 256, 512]
    assert widths(networks["discriminator_xz"], "conv") == [128, 256, 512]
    assert widths(networks["discriminator_xz"], "dense") == [512, 512, 1024]
    assert widths(networks["discriminator_xx"], "conv") == [64, 128]
    assert widths(networks["discriminator_zz"], "dense") == [64, 32]
    kernels = [layer.layer.kernel_size for layer in networks["discriminator_xx"].layers
               if isinstance(layer, keras.layers.SpectralNormalization)]
    assert kernels == [(5, 5), (5, 5)]
    assert networks["generator"].output.shape[1:] == (32, 32, 3)
    assert networks["discriminator_xz"].output[1].shape[-1] == 1024


def test_d_xx_sees_a_pair_stacked_on_channels_not_one_tall_image():
    d_xx = build_alad((32, 32, 1), 8, 4, 0.0, spectral=False)["discriminator_xx"]
    stacked = [layer for layer in d_xx.layers if isinstance(layer, keras.layers.Concatenate)]
    assert stacked[0].output.shape[1:] == (32, 32, 2)


def test_without_d_zz_its_weights_stay_and_the_others_move(bundled):
    trainer = make_trainer("alad", zz_discriminator=False)
    x = images_of(bundled, 1, trainer, 32)
    before = {name: [w.numpy().copy() for w in net.trainable_weights]
              for name, net in trainer.networks.items()}
    losses = eager_step(trainer, x, 0)
    for name, net in trainer.networks.items():
        moved = any(not np.allclose(a, b.numpy()) for a, b in zip(before[name],
                                                                  net.trainable_weights))
        assert moved == (name != "discriminator_zz"), name
    assert "d_zz_loss" not in losses and float(losses["cycle_loss"]) > 0


def test_batchnorm_statistics_move_in_the_g_and_e_pass_only_as_the_codes_update_ops(bundled):
    """After a step, E's moving statistics are those of E(x) then E(G(z)) in training mode
    with the G/E pass's codes: the discriminators' pass left them alone."""
    trainer = make_trainer("alad")
    x = images_of(bundled, 1, trainer, 32)
    z = trainer.sample_noise(32, tf.constant([0, 0], tf.int64))["z_generators"]
    encoder, generator = (keras.models.clone_model(trainer.networks[name])
                          for name in ("encoder", "generator"))
    encoder.set_weights(trainer.networks["encoder"].get_weights())
    generator.set_weights(trainer.networks["generator"].get_weights())
    encoder(x, training=True)
    encoder(generator(z, training=True), training=True)
    eager_step(trainer, x, 0)
    for expected, actual in zip(encoder.non_trainable_weights,
                                trainer.networks["encoder"].non_trainable_weights):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_the_fm_score_is_the_l1_distance_of_d_xx_features_and_variants_are_reported(bundled):
    trainer = make_trainer("alad", ema_decay=0.0)
    x = images_of(bundled, 2, trainer, 6)
    networks = trainer.networks
    reconstruction = networks["generator"](networks["encoder"](x, training=False),
                                           training=False)
    _, real = networks["discriminator_xx"]([x, x], training=False)
    logit, rec = networks["discriminator_xx"]([x, reconstruction], training=False)
    np.testing.assert_allclose(trainer.score(x).numpy(),
                               np.abs(real.numpy() - rec.numpy()).sum(axis=1), rtol=1e-4)
    variants = trainer.score_variants()
    assert set(variants) == {"l1", "l2", "ch"}
    residual = (x.numpy() - reconstruction.numpy()).reshape(6, -1)
    np.testing.assert_allclose(variants["l2"](x).numpy(), np.linalg.norm(residual, axis=1),
                               rtol=1e-4)
    np.testing.assert_allclose(variants["ch"](x).numpy(), bce(1, logit.numpy()[:, 0]),
                               rtol=1e-4)
