"""Process-wide switches a run and the Python API share: XLA on or off, and op determinism."""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def resolve_jit(requested: bool | None, trainer_cls: Any) -> bool:
    """XLA on or off as asked, else the method's default (:meth:`Trainer.jit_by_default`)."""
    if requested is not None:
        return requested
    return trainer_cls.jit_by_default(bool(tf.config.list_physical_devices("GPU")))


def apply_determinism(requested: bool | None) -> bool:
    """Turn on TensorFlow op determinism when ``requested``, or by default when no GPU is
    visible, so that a seed gives identical results on the same CPU. On GPUs it is opt-in:
    it slows some kernels down, and ops without a deterministic GPU kernel then raise an error.
    Process-wide: once on, it stays on. Returns whether it is on."""
    enabled = not tf.config.list_physical_devices("GPU") if requested is None else requested
    if enabled:
        tf.config.experimental.enable_op_determinism()
    return enabled


#: Values of ``--distribute``.
STRATEGIES = ("mirrored",)


def distribution_strategy(name: str | None) -> tf.distribute.Strategy:
    """The strategy a run's trainer is built under: TensorFlow's default (one device) for None;
    for ``"mirrored"`` a ``MirroredStrategy`` over every visible GPU (the CPU without one; its
    logical devices in tests), each replica taking an equal slice of the global batch.

    Gradients are reduced on one device (``ReductionToOneDevice``): with the default collective
    all-reduce, the several optimizers of a GAN step (one per player) reduced in a different order
    on different replicas and the collectives mismatched."""
    if name is None:
        return tf.distribute.get_strategy()
    if name not in STRATEGIES:
        raise ValueError(f"unknown --distribute '{name}'; choose one of {', '.join(STRATEGIES)}")
    devices = ([device.name for device in tf.config.list_logical_devices("GPU")] or
               [device.name for device in tf.config.list_logical_devices("CPU")])
    return tf.distribute.MirroredStrategy(devices,
                                          cross_device_ops=tf.distribute.ReductionToOneDevice())

