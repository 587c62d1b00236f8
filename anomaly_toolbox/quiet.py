"""TensorFlow's C++ start-up lines kept off the console, for the CLI and the Python API alike.

Importing TensorFlow and probing its devices prints lines no log level silences (CUDA probing on
a CPU machine, oneDNN notes, absl's pre-initialisation warning). This module imports nothing of
TensorFlow itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

_started_quietly = False


@contextlib.contextmanager
def stderr_captured(replay_on_error: bool) -> Iterator[None]:
    """File descriptor 2 (where C++ libraries log) goes to a temporary file meanwhile; it is
    written out if the block raises and ``replay_on_error``, else dropped."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            if replay_on_error:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def start_tensorflow_quietly() -> None:
    """Import TensorFlow and probe its devices with fd 2 captured (replayed if the import
    fails), once per process. Nothing is done once TensorFlow is imported already: its lines
    were printed, and its settings are the user's."""
    global _started_quietly
    if _started_quietly or "tensorflow" in sys.modules:
        return
    with stderr_captured(replay_on_error=True):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    _started_quietly = True


def start_library_quietly() -> None:
    """:func:`start_tensorflow_quietly` for the Python API, unless the user set
    ``TF_CPP_MIN_LOG_LEVEL``, which says how much of TensorFlow's C++ log they want."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        start_tensorflow_quietly()
