"""Hooks into the engine's run of one method, as Keras ``fit`` takes callbacks.

A method that needs more than its train step and score registers a :class:`Callback` in
``Trainer.callbacks()``: Deep SVDD places its centre before training, AMA fits its A-score's
Gaussian to each check's weights and to the final model and lets only late checks be selected,
AnoGAN scores its per-epoch checks with a cheaper latent search, MEMGAN draws its memory units.
Every hook does nothing by default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Callback:
    """One method's hooks; override the ones it needs."""

    def on_train_begin(self, data: Any) -> None:
        """Before the first step of a fresh run (``data``: its ``PreparedData``); a resumed
        run restores what this set up from its checkpoint."""

    def on_check_begin(self, data: Any) -> None:
        """Before a per-epoch check scores the validation split and the synthetic set: refit
        scoring state that depends on the weights."""

    def selectable(self, epoch: int, planned_epochs: int) -> bool:
        """Whether the weights after trained epoch ``epoch`` (1-based) of ``planned_epochs``
        may become a rule's best check; the last check always may."""
        return True

    def on_check_end(self, epoch: int, step: int) -> None:
        """After the check of trained epoch ``epoch``, inside the run's TensorBoard writer:
        extra summaries, written at train step ``step`` (TensorBoard's one axis)."""

    def on_weights_chosen(self, data: Any, model_dir: Path | None) -> None:
        """After a rule's weights were loaded for final scoring: fit what scoring needs beyond
        the weights on training data, stored in ``model_dir`` when one is given."""

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        """Context of every per-epoch check: a method may score more cheaply there than its
        final model does."""
        yield


class CallbackList(Callback):
    """Several callbacks called in order as one."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = callbacks

    def on_train_begin(self, data: Any) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(data)

    def on_check_begin(self, data: Any) -> None:
        for callback in self.callbacks:
            callback.on_check_begin(data)

    def selectable(self, epoch: int, planned_epochs: int) -> bool:
        return all(callback.selectable(epoch, planned_epochs) for callback in self.callbacks)

    def on_check_end(self, epoch: int, step: int) -> None:
        for callback in self.callbacks:
            callback.on_check_end(epoch, step)

    def on_weights_chosen(self, data: Any, model_dir: Path | None) -> None:
        for callback in self.callbacks:
            callback.on_weights_chosen(data, model_dir)

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for callback in self.callbacks:
                stack.enter_context(callback.checking())
            yield
