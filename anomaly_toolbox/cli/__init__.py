"""The ``anomaly-box`` command line: ``train`` (the default command), ``benchmark``, ``score``,
``export``; one module per command, the group and shared options in :mod:`.common`.

``anomaly-box --experiment egbad`` is short for ``anomaly-box train --experiment egbad``. Heavy
imports (TensorFlow) happen only once the command line has been checked, so ``--help``,
``--list`` and bad input answer at once; TensorFlow's C++ start-up lines stay off the console.
Bad input ends with one message and exit code 2.
"""

from anomaly_toolbox.cli import benchmark, export, score, train  # noqa: F401 - registers them
from anomaly_toolbox.cli.common import BadInput, check_name, int_list, main, name_list

__all__ = ["BadInput", "check_name", "int_list", "main", "name_list"]
