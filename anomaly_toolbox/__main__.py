"""``python -m anomaly_toolbox`` is ``anomaly-box``."""

from anomaly_toolbox.cli import main

main()
