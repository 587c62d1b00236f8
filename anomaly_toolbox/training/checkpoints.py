"""Epoch checkpoints that cost a memory copy per epoch and a disk write every half minute.

Writing EGBAD's networks and optimizer moments (~50 MB) takes ~0.15 s on a 2-core CPU and its
three best-model ``.keras`` files ~0.2 s, together ~10% of an epoch of the bundled MNIST subset.
:class:`EpochCheckpoints` copies the state to memory at every epoch's end (~0.03 s) and writes it
when the first epoch ends, when ``interval_seconds`` have passed since the last write, when
training ends, and when training stops on an error or an interruption (Ctrl-C, SIGTERM, a
diverged loss); the trainer's best models are held and written with it. A resume therefore
starts from the last finished epoch exactly as with a write per epoch; only a process killed
outright (SIGKILL, out of memory, power loss) can lose up to ``interval_seconds`` of training.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

#: Seconds between checkpoint writes while training runs.
CHECKPOINT_INTERVAL_SECONDS = 30.0


class EpochCheckpoints:
    """A ``tf.train.CheckpointManager`` whose epoch-end saves are held in memory between writes.

    Call :meth:`epoch_finished` after every epoch and :meth:`write_held` when training stops early.
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, directory: Path,
                 interval_seconds: float = CHECKPOINT_INTERVAL_SECONDS,
                 max_to_keep: int = 2, before_write: Callable[[], None] | None = None) -> None:
        """``before_write``: called before each write, to write what belongs with the checkpoint
        (the trainer's best models held since the last one)."""
        self.before_write = before_write
        self.manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep)
        self.checkpoint = checkpoint
        self.interval_seconds = interval_seconds
        self._held: list[np.ndarray] | None = None
        self._last_write: float | None = None

    @property
    def saved(self) -> list[str]:
        """Paths of the checkpoints on disk, oldest first."""
        return self.manager.checkpoints

    def _variables(self) -> list[tf.Variable | keras.Variable]:
        """Every variable the checkpoint saves: Keras ones (networks, optimizer moments) and
        TensorFlow ones (epoch and step counters, best metrics)."""
        return [trackable for trackable in tf.train.TrackableView(self.checkpoint).descendants()
                if isinstance(trackable, (tf.Variable, keras.Variable))]

    def epoch_finished(self, last: bool) -> None:
        """Write the state now (first epoch, last epoch, interval passed) or hold a copy of it."""
        now = time.monotonic()
        if last or self._last_write is None or now - self._last_write >= self.interval_seconds:
            self._write()
        else:
            self._held = [variable.numpy() for variable in self._variables()]

    def write_held(self) -> None:
        """Write the held epoch-end state, if any, restoring it into the variables first (they may
        be part-way through the next epoch)."""
        if self._held is None:
            return
        for variable, value in zip(self._variables(), self._held, strict=True):
            variable.assign(value)
        self._write()

    def _write(self) -> None:
        if self.before_write is not None:
            self.before_write()
        self.manager.save()
        self._held = None
        self._last_write = time.monotonic()
