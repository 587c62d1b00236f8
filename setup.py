"""The grids in ``hps/`` ship inside the package as ``anomaly_toolbox.grids`` (``--hps-path NAME``
finds them after ``pip install``); the rest is in setup.cfg."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["anomaly_toolbox*"]), "anomaly_toolbox.grids"],
      package_dir={"anomaly_toolbox.grids": "hps"},
      package_data={"anomaly_toolbox.grids": ["*.json"]})
