"""What a run shows while it trains, in a terminal and piped to a file."""

from __future__ import annotations

import time

import keras

from anomaly_toolbox.timing import eta_text

#: Seconds between progress lines when the output is not a terminal.
LINE_EVERY_S = 30.0


class RunProgress:
    """``mode`` 'bar' (a terminal): an "epoch k/N" header with the run's estimate above each
    Keras progress bar; 'lines' (piped to a file): a line at most every :data:`LINE_EVERY_S`
    seconds with the epoch, the step and the run's estimate; 'none' (quiet): nothing. The
    estimate counts steps since this process started training."""

    def __init__(self, mode: str, epochs: int, steps_per_epoch: int, first_epoch: int) -> None:
        self.mode, self.epochs, self.steps = mode, epochs, steps_per_epoch
        self.first_step = first_epoch * steps_per_epoch
        self.started = self.last_line = time.perf_counter()

    def _eta(self, global_step: int) -> str:
        return eta_text(self.started, global_step - self.first_step,
                        self.epochs * self.steps - global_step)

    def bar(self, first: int, count: int) -> keras.utils.Progbar:
        """The Keras bar of epochs ``first`` .. ``first + count - 1`` (0-based), after its header
        in a terminal; a silent one otherwise."""
        if self.mode == "bar":
            span = f"{first + 1}" if count == 1 else f"{first + 1}-{first + count}"
            print(f"epoch {span}/{self.epochs} ({self._eta(first * self.steps)})", flush=True)
        return keras.utils.Progbar(self.steps * count, verbose=1 if self.mode == "bar" else 0,
                                   unit_name="step")

    def trained(self, global_step: int) -> None:
        """Steps up to ``global_step`` (0-based count of steps done) are trained."""
        now = time.perf_counter()
        if self.mode != "lines" or now - self.last_line < LINE_EVERY_S:
            return
        self.last_line = now
        epoch, step = divmod(global_step, self.steps)
        if step == 0:  # an epoch's end: its own line follows
            return
        print(f"epoch {epoch + 1}/{self.epochs}: step {step}/{self.steps} "
              f"({self._eta(global_step)})", flush=True)
