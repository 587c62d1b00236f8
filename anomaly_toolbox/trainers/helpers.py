"""Helpers for methods' networks and train steps: Adam with PyTorch's epsilon, learning-rate
milestones counted in published epochs, and BatchNorm statistics kept through extra calls."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import tensorflow as tf


def adam(learning_rate: float | keras.optimizers.schedules.LearningRateSchedule, beta_1: float,
         beta_2: float = 0.999) -> keras.optimizers.Adam:
    """Adam with PyTorch's epsilon (1e-8), as the reference implementations use; the rate may
    be a schedule."""
    return keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=1e-8)


def published_epoch(epoch: tf.Variable, epoch_scale: tf.Variable) -> tf.Tensor:
    """The 0-based epoch of the published schedule that trained epoch ``epoch`` falls in
    (``epoch_scale``: published epochs per trained epoch, see :attr:`Trainer.epoch_scale`)."""
    return tf.floor(tf.cast(epoch, tf.float32) * epoch_scale)


class EpochMilestones(keras.optimizers.schedules.LearningRateSchedule):
    """lr = initial * rate ** (milestones reached): PyTorch's MultiStepLR counted in published
    epochs, so that when ``min_steps`` stretches a run on a small dataset the drops keep their
    share of training. A milestone m is reached from 0-based published epoch m on."""

    def __init__(self, initial: float, milestones: tuple[int, ...], rate: float,
                 epoch: tf.Variable, epoch_scale: tf.Variable) -> None:
        self.initial, self.milestones, self.rate = initial, milestones, rate
        self.epoch, self.epoch_scale = epoch, epoch_scale

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        reached = tf.reduce_sum(tf.cast(
            published_epoch(self.epoch, self.epoch_scale) >= tf.constant(
                self.milestones, tf.float32, shape=[len(self.milestones)]), tf.float32))
        return self.initial * tf.pow(self.rate, reached)


@contextlib.contextmanager
def moving_statistics_kept(*models: keras.Model) -> Iterator[None]:
    """Calls of ``models`` inside this context leave their BatchNorm moving statistics as they were.

    In training mode such calls still normalise with their own batch statistics; only what is
    kept for inference stays untouched (e.g. decodes of synthetic codes that real inputs never
    resemble). Works eagerly and inside ``tf.function``, where reads and assigns of a variable
    run in program order.
    """
    variables = [variable for model in models for variable in model.non_trainable_variables]
    saved = [tf.convert_to_tensor(variable) for variable in variables]
    yield
    for variable, value in zip(variables, saved):
        variable.assign(value)
