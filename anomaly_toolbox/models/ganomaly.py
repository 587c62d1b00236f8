"""GANomaly networks (Akcay et al. 2018): G = encoder GE -> decoder GD -> a second encoder E, and a
DCGAN discriminator D. The two encoders are separate networks with their own weights."""

from __future__ import annotations

import keras

from anomaly_toolbox.models.dcgan import build_decoder, build_discriminator, build_encoder
from anomaly_toolbox.models.dense import (build_dense_decoder, build_dense_discriminator,
                                          build_dense_encoder)


def build_ganomaly(image_shape: tuple[int, int, int], latent_dim: int,
                   filters: int) -> dict[str, keras.Model]:
    """Networks keyed ``encoder_in`` (GE), ``decoder`` (GD), ``encoder_out`` (E), ``discriminator``."""
    return {
        "encoder_in": build_encoder(image_shape, latent_dim, filters, "encoder_in"),
        "decoder": build_decoder(image_shape, latent_dim, filters, "decoder"),
        "encoder_out": build_encoder(image_shape, latent_dim, filters, "encoder_out"),
        "discriminator": build_discriminator(image_shape, filters, "discriminator"),
    }


def build_dense_ganomaly(features: int, latent_dim: int, width: int) -> dict[str, keras.Model]:
    """GANomaly for tabular samples ``[B, F]`` from the dense blocks, same keys (no dropout in D,
    as in the image version)."""
    return {
        "encoder_in": build_dense_encoder(features, latent_dim, width, "encoder_in"),
        "decoder": build_dense_decoder(features, latent_dim, width, "decoder"),
        "encoder_out": build_dense_encoder(features, latent_dim, width, "encoder_out"),
        "discriminator": build_dense_discriminator(features, width, 0.0, "discriminator"),
    }
