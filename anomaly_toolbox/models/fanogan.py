"""f-AnoGAN networks (Schlegl et al. 2019): a WGAN-GP generator G and critic D, and the izi_f
encoder E trained after them with G and D frozen. DCGAN pyramids stand in for the official
code's residual networks (the deviations are listed in ``trainers/fanogan.py``)."""

from __future__ import annotations

import keras

from anomaly_toolbox.models.dcgan import build_decoder, build_discriminator, build_encoder


def build_fanogan(image_shape: tuple[int, int, int], latent_dim: int,
                  filters: int) -> dict[str, keras.Model]:
    """Networks keyed ``generator``, ``critic`` (no BatchNorm: the gradient penalty is per
    sample; its flattened last conv features are f(x)) and ``encoder`` (BatchNorm, as the
    official encoder's)."""
    return {
        "generator": build_decoder(image_shape, latent_dim, filters, "generator"),
        "critic": build_discriminator(image_shape, filters, "critic", normalisation="none"),
        "encoder": build_encoder(image_shape, latent_dim, filters, "encoder"),
    }
