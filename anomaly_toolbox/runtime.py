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
