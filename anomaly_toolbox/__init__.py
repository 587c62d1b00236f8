"""anomaly-toolbox: GAN-based anomaly detection methods in TensorFlow/Keras.

The scikit-learn-style classes (``EGBAD``, ``GANomaly``, ...) and ``load`` are imported on first
use, so that importing the package (and ``anomaly-box --help``) does not load TensorFlow. Importing
it first turns TensorFlow's oneDNN kernels on where TensorFlow would leave them off on a CPU that
has what they need (:mod:`anomaly_toolbox.cpu`; a ``TF_ENABLE_ONEDNN_OPTS`` you set stands).
"""

from __future__ import annotations

import importlib
from typing import Any

from anomaly_toolbox.cpu import enable_onednn_where_off

enable_onednn_where_off()

from anomaly_toolbox import timing  # noqa: E402,F401 - its clock starts with the package
from anomaly_toolbox.quiet import start_library_quietly  # noqa: E402
from anomaly_toolbox.registry import api_names  # noqa: E402
from anomaly_toolbox.version import __version__  # noqa: E402,F401


def __getattr__(name: str) -> Any:
    if name == "load" or name in api_names().values():
        start_library_quietly()
        detector = importlib.import_module("anomaly_toolbox.detector")
        return detector.load if name == "load" else detector.detector_class(name)
    raise AttributeError(f"module 'anomaly_toolbox' has no attribute '{name}'")


def __dir__() -> list[str]:
    """The module's names with the lazily imported API classes and ``load``."""
    return sorted({*globals(), "load", *api_names().values()})
