"""The BiGAN adversarial core shared by EGBAD, MEMGAN and the consistency BiGAN."""

from __future__ import annotations

from typing import NamedTuple

import keras
import tensorflow as tf

from anomaly_toolbox.trainers.losses import bce_with_logits, discriminator_bce


class BiGANTerms(NamedTuple):
    """D's outputs on real pairs (x, E(x)) and fake pairs (G(z), z), and the BCE losses."""

    logit_real: tf.Tensor
    features_real: tf.Tensor
    logit_fake: tf.Tensor
    features_fake: tf.Tensor
    d_loss: tf.Tensor
    encoder_adversarial: tf.Tensor
    generator_adversarial: tf.Tensor


def bigan_terms(discriminator: keras.Model, images: tf.Tensor, encoded: tf.Tensor,
                generated: tf.Tensor, latents: tf.Tensor) -> BiGANTerms:
    """D: BCE(D(x, E(x)), 1) + BCE(D(G(z), z), 0); E: BCE(D(x, E(x)), 0); G: BCE(D(G(z), z), 1).

    Args:
        encoded: E(x) ``[B, d]``; generated: G(z) ``[B, S, S, C]``; latents: z ``[B, d]``.
    """
    logit_real, features_real = discriminator([images, encoded], training=True)
    logit_fake, features_fake = discriminator([generated, latents], training=True)
    return BiGANTerms(
        logit_real, features_real, logit_fake, features_fake,
        d_loss=discriminator_bce(logit_real, logit_fake),
        encoder_adversarial=tf.reduce_mean(bce_with_logits(0.0, logit_real)),
        generator_adversarial=tf.reduce_mean(bce_with_logits(1.0, logit_fake)))
