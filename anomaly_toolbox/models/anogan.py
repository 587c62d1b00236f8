"""AnoGAN networks (Schlegl et al. 2017): a DCGAN generator and discriminator."""

from __future__ import annotations

import keras

from anomaly_toolbox.models.dcgan import build_decoder, build_discriminator


def build_anogan(image_shape: tuple[int, int, int], latent_dim: int,
                 filters: int) -> dict[str, keras.Model]:
    """Networks keyed ``generator`` (z ``[B, latent_dim]`` -> image) and ``discriminator``
    (image -> ``(logit [B, 1], features [B, F])``)."""
    return {
        "generator": build_decoder(image_shape, latent_dim, filters, "generator"),
        "discriminator": build_discriminator(image_shape, filters, "discriminator"),
    }
