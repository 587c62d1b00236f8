"""The toolbox's version, in a module of its own so that every module can name it without
importing the package root."""

__version__ = "0.1.0"
