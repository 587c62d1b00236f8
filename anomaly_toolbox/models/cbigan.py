"""Networks of the BiGAN with consistency losses (the consistency-BiGAN paper, see
``trainers/cbigan.py``): encoder E and generator G with
BatchNorm in every hidden conv, and a joint discriminator D(x, z) of two kinds, both with
spectral normalisation and BatchNorm on every convolution as the paper states:

* ``projection``: D(x, z) = f_1(GSP(phi(x))) + <f_z(GSP(phi(x))), z>, phi a conv pyramid, GSP
  global sum pooling over the spatial axes. Spectral normalisation also covers f_1 and f_z, as in
  Miyato & Koyama's projection discriminator: without it the logit grows without bound, the
  adversarial gradient swamps the consistency terms and the reconstructions stop improving;
* ``concat``: EGBAD's discriminator (x and z paths concatenated), its convolutions spectrally
  normalised.

Both return ``(logit [B, 1], features [B, F])``; for ``projection`` the features are GSP(phi(x)).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from anomaly_toolbox.models.bigan import build_joint_discriminator
from anomaly_toolbox.models.dcgan import build_decoder, build_encoder, conv_pyramid, pyramid_steps
from anomaly_toolbox.schemas.cbigan import DISCRIMINATORS


def build_projection_discriminator(image_shape: tuple[int, int, int], latent_dim: int,
                                   filters: int, name: str = "discriminator") -> keras.Model:
    """``(x [B, S, S, C], z [B, latent_dim])`` -> ``(logit [B, 1], GSP(phi(x)) [B, F])``."""
    images = keras.Input(image_shape, name="images")
    code = keras.Input((latent_dim,), name="code")
    phi = conv_pyramid(images, filters, pyramid_steps(image_shape[0]), f"{name}_phi",
                       "spectral_batch")
    pooled = layers.Activation("linear", name=f"{name}_features")(ops.sum(phi, axis=(1, 2)))
    unconditional = layers.SpectralNormalization(layers.Dense(1), name=f"{name}_f1")(pooled)
    projection = layers.SpectralNormalization(layers.Dense(latent_dim), name=f"{name}_fz")(pooled)
    logit = layers.Add(name=f"{name}_logit")(
        [unconditional, ops.sum(projection * code, axis=1, keepdims=True)])
    return keras.Model([images, code], [logit, pooled], name=name)


def build_cbigan(image_shape: tuple[int, int, int], latent_dim: int, filters: int,
                 discriminator: str) -> dict[str, keras.Model]:
    """Networks keyed ``encoder``, ``generator``, ``discriminator``."""
    if discriminator not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator '{discriminator}'; use one of {DISCRIMINATORS}")
    if discriminator == "projection":
        critic = build_projection_discriminator(image_shape, latent_dim, filters)
    else:
        critic = build_joint_discriminator(image_shape, latent_dim, filters, dropout=0.0,
                                           normalisation="spectral_batch")
    return {
        "encoder": build_encoder(image_shape, latent_dim, filters, "encoder", "batch"),
        "generator": build_decoder(image_shape, latent_dim, filters, "generator"),
        "discriminator": critic,
    }
