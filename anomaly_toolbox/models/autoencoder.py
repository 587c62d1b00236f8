"""Convolutional autoencoder baseline: the DCGAN encoder (BatchNorm after every conv) and decoder."""

from __future__ import annotations

import keras

from anomaly_toolbox.models.dcgan import build_decoder, build_encoder


def build_autoencoder(image_shape: tuple[int, int, int], latent_dim: int,
                      filters: int) -> dict[str, keras.Model]:
    """``encoder``: image ``[B, S, S, C]`` -> code ``[B, latent_dim]``; ``decoder``: code -> image."""
    return {"encoder": build_encoder(image_shape, latent_dim, filters, normalisation="batch"),
            "decoder": build_decoder(image_shape, latent_dim, filters)}
