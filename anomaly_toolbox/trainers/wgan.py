"""Wasserstein-GAN helpers shared by the WGAN-GP methods."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import tensorflow as tf

if TYPE_CHECKING:
    from anomaly_toolbox.trainers.base import Trainer


def gradient_penalty(critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor,
                     epsilon: tf.Tensor) -> tf.Tensor:
    """E[(||grad_x_hat D(x_hat)||_2 - 1)^2] with x_hat = eps real + (1 - eps) fake (Gulrajani 2017).

    Args:
        critic: maps inputs ``[B, ...]`` to scores ``[B, 1]`` or ``[B]``.
        real, fake: ``[B, ...]``; the norm runs over every non-batch axis (all stacked channels).
        epsilon: ``[>= B]`` mixing weights in [0, 1]; the first B are used.
    """
    eps = tf.reshape(epsilon[:tf.shape(real)[0]], [-1] + [1] * (len(real.shape) - 1))
    mixed = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        scores = tf.reduce_sum(critic(mixed))
    gradients = tf.reshape(tape.gradient(scores, mixed), [tf.shape(real)[0], -1])
    return tf.reduce_mean(tf.square(tf.norm(gradients, axis=1) - 1.0))


def train_critic(trainer: Trainer, objective: Callable[[int], tuple[tf.Tensor, tf.Tensor]],
                 pairs: Callable[[int], Sequence[tuple[tf.Tensor, tf.Tensor]]],
                 mix: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``hps['n_critic']`` updates of ``trainer.networks['critic']``.

    Update k takes ``objective(k)``, a ``(value, regulariser)`` pair: the critic maximises the
    value and pays the regulariser (a term of its own loss only, such as the progressive GAN's
    drift penalty; 0.0 for none). It minimises -value + regulariser + gp_weight * mean_j
    GP(real_j, fake_j) over the ``(real, fake)`` critic inputs of ``pairs(k)``, with row k of
    ``mix`` ``[n_critic, B]``: the penalty covers every kind of input the objective trains the
    critic on. A method that gives every update the step's one batch ignores k; one that gives
    each its own batch slices by it. With gp_weight 0 no penalty is computed (a critic made
    Lipschitz otherwise, e.g. by spectral normalisation). Returns the last ``(value, penalty,
    loss)``.
    """
    critic = trainer.networks["critic"]
    weight = trainer.hps["gp_weight"]
    for index in range(trainer.hps["n_critic"]):
        with tf.GradientTape() as tape:
            value, regulariser = objective(index)
            penalty = tf.constant(0.0)
            if weight > 0:
                inputs = pairs(index)
                penalty = tf.add_n([gradient_penalty(lambda x: critic(x, training=True)[0], real,
                                                     fake, mix[index])
                                    for real, fake in inputs]) / len(inputs)
            loss = -value + regulariser + weight * penalty
        trainer.apply_gradients(tape, {"critic": loss})
    return value, penalty, loss
