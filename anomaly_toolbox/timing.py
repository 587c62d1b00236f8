"""Where a run's wall time goes: named parts measured with ``time.perf_counter``.

``PROCESS_START`` is taken when the package is first imported, which the ``anomaly-box`` entry
point does before anything else, so "startup" includes importing TensorFlow and loading data.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator

PROCESS_START = time.perf_counter()
_process_start_claimed = False

#: The parts of a network run, in the order they happen (reported as ``<part>_seconds``).
PARTS = ("startup", "tracing_and_compilation", "train_steps", "validation",
         "checkpoints_and_saves", "tensorboard", "final_scoring")


def run_clock_start() -> float:
    """When a run's clock starts: the process start for the first run of the process (its
    startup includes the imports), now for every later one."""
    global _process_start_claimed
    if _process_start_claimed:
        return time.perf_counter()
    _process_start_claimed = True
    return PROCESS_START


class Stopwatch:
    """Seconds spent per named part; ``with stopwatch.measure("part"):`` adds to it."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def measure(self, part: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] += time.perf_counter() - started

    def report(self, wall_seconds: float) -> dict[str, float]:
        """Every part in seconds, ``other_seconds`` (what no part covers), the wall time and the
        share of it spent in train steps."""
        parts = {f"{part}_seconds": round(self.seconds.get(part, 0.0), 3) for part in PARTS}
        covered = sum(self.seconds.get(part, 0.0) for part in PARTS)
        return {**parts, "other_seconds": round(max(wall_seconds - covered, 0.0), 3),
                "wall_seconds": round(wall_seconds, 3),
                "train_steps_share": round(self.seconds.get("train_steps", 0.0)
                                           / max(wall_seconds, 1e-9), 4)}


def clock_text(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_text(started: float, done: int, left: int) -> str:
    """Time since ``started`` (a ``perf_counter`` value) and, from the mean time of the ``done``
    units so far, the estimate for the ``left`` ones."""
    elapsed = time.perf_counter() - started
    if left <= 0 or done <= 0:
        return f"{clock_text(elapsed)} elapsed"
    return f"{clock_text(elapsed)} elapsed, about {clock_text(elapsed / done * left)} left"
