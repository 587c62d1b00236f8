"""anomaly-toolbox: GAN-based anomaly detection methods in TensorFlow/Keras."""

__version__ = "0.1.0"
