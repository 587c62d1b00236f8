"""AMA networks (adversarial mirrored autoencoder): encoder E, decoder G and a Wasserstein critic
D that sees channel-stacked image pairs ``[B, S, S, 2C]``."""

from __future__ import annotations

import keras

from anomaly_toolbox.models.dcgan import build_decoder, build_discriminator, build_encoder


def build_ama(image_shape: tuple[int, int, int], latent_dim: int,
              filters: int) -> dict[str, keras.Model]:
    """Networks keyed ``encoder``, ``generator`` and ``critic``.

    The critic is spectrally normalised in every layer and has no BatchNorm, which keeps it
    1-Lipschitz on every pair it sees, as the paper's SN-GAN critic.
    """
    side, _, channels = image_shape
    return {
        "encoder": build_encoder(image_shape, latent_dim, filters, "encoder"),
        "generator": build_decoder(image_shape, latent_dim, filters, "generator"),
        "critic": build_discriminator((side, side, 2 * channels), filters, "critic",
                                      normalisation="spectral"),
    }
