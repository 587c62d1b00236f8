"""Keras networks, one file per method; shared DCGAN blocks in dcgan.py."""
