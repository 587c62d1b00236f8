"""Losses and per-sample distances that several methods share. Every function maps batches to
a per-sample ``[B]`` tensor or a scalar, as its docstring says."""

from __future__ import annotations

import tensorflow as tf


def bce_with_logits(target: float, logits: tf.Tensor) -> tf.Tensor:
    """Per-sample binary cross-entropy of logits ``[B, 1]`` against a constant target -> ``[B]``."""
    labels = tf.fill(tf.shape(logits), tf.cast(target, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits), axis=-1)


def discriminator_bce(logit_real: tf.Tensor, logit_fake: tf.Tensor) -> tf.Tensor:
    """The standard GAN discriminator loss, mean of BCE(D(real), 1) + BCE(D(fake), 0) -> scalar."""
    return tf.reduce_mean(bce_with_logits(1.0, logit_real) + bce_with_logits(0.0, logit_fake))


def per_sample_l1(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``||a - b||_1`` over all but the batch axis -> ``[B]``."""
    return tf.reduce_sum(tf.abs(tf.reshape(a - b, [tf.shape(a)[0], -1])), axis=1)


def per_sample_squared_error(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Mean of (a - b)^2 over all but the batch axis -> ``[B]``."""
    return tf.reduce_mean(tf.square(tf.reshape(a - b, [tf.shape(a)[0], -1])), axis=1)


def residual_and_feature_score(images: tf.Tensor, reconstruction: tf.Tensor,
                               features_real: tf.Tensor, features_rec: tf.Tensor,
                               weight: float) -> tf.Tensor:
    """(1 - w) ||x - x_hat||_1 + w ||f(x) - f(x_hat)||_1 -> ``[B]``: the residual plus the
    discriminator's feature distance (Schlegl et al. 2017; Zenati et al. 2018)."""
    return ((1.0 - weight) * per_sample_l1(images, reconstruction) +
            weight * per_sample_l1(features_real, features_rec))
