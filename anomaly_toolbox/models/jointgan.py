"""Networks of the jointly trained encoder + WGAN-GP (Berg, Ahlberg, Felsberg 2019): a DCGAN
generator that scales its input code to unit length (as the paper's progressive GAN does), an
encoder without BatchNorm (as ClusterGAN's, which the paper's encoder follows) and a Wasserstein
critic without BatchNorm."""

from __future__ import annotations

import keras

from anomaly_toolbox.models.dcgan import build_decoder, build_discriminator, build_encoder


def build_jointgan(image_shape: tuple[int, int, int], latent_dim: int,
                   filters: int) -> dict[str, keras.Model]:
    """Networks keyed ``generator``, ``encoder`` and ``critic``."""
    return {
        "generator": build_decoder(image_shape, latent_dim, filters, "generator", unit_code=True),
        "encoder": build_encoder(image_shape, latent_dim, filters, "encoder",
                                 normalisation="none"),
        "critic": build_discriminator(image_shape, filters, "critic", normalisation="none"),
    }
