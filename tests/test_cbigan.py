import keras
import numpy as np
import pytest
import tensorflow as tf
from tests.conftest import images_of, make_trainer



def test_projection_discriminator_equals_the_formula_by_hand(bundled):
    trainer = make_trainer("cbigan", discriminator="projection")
    discriminator = trainer.networks["discriminator"]
    x = images_of(bundled, 5, trainer, 4)
    z = tf.random.stateless_normal([4, trainer.hps["latent_dim"]], [5, 5])
    logit, pooled = (t.numpy() for t in discriminator([x, z], training=False))
    phi = tf.keras.Model(discriminator.inputs[0],
                         discriminator.get_layer("discriminator_phi_lrelu1").output)
    np.testing.assert_allclose(pooled, phi(x, training=False).numpy().sum(axis=(1, 2)),
                               rtol=1e-5, atol=1e-4)

    def head(name, features):
        return discriminator.get_layer(name)(tf.constant(features), training=False).numpy()

    expected = head("discriminator_f1", pooled) + np.sum(head("discriminator_fz", pooled) *
                                                         z.numpy(), axis=1, keepdims=True)
    np.testing.assert_allclose(logit, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("discriminator", ["projection", "concat"])
def test_both_consistency_terms_fall_with_training(bundled, discriminator):
    trainer = make_trainer("cbigan", discriminator=discriminator, filters=8, latent_dim=16)
    x = images_of(bundled, 1, trainer, 320)
    history = []
    for step in range(300):
        losses = trainer.compiled_train_step(x[32 * (step % 10):32 * (step % 10 + 1)],
                                              tf.constant([0, step], tf.int64))
        history.append((float(losses["image_consistency"]), float(losses["latent_consistency"])))
    first, last = np.mean(history[:10], axis=0), np.mean(history[-10:], axis=0)
    assert last[0] < 0.95 * first[0] and last[1] < 0.7 * first[1]


@pytest.mark.parametrize("kind", ["projection", "concat"])
def test_discriminator_normalises_every_conv_spectrally_and_by_batchnorm(kind):
    """The paper: BatchNorm on all convolutions, spectral normalisation on D's."""
    discriminator = make_trainer("cbigan", discriminator=kind).networks["discriminator"]
    wrapped = [layer for layer in discriminator.layers
               if isinstance(layer, keras.layers.SpectralNormalization)
               and isinstance(layer.layer, keras.layers.Conv2D)]
    bare = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Conv2D)]
    batch_norms = [layer for layer in discriminator.layers
                   if isinstance(layer, keras.layers.BatchNormalization)]
    assert wrapped and not bare and len(batch_norms) == len(wrapped)
