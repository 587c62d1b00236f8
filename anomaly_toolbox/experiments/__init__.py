"""Experiment registry: the names the CLI accepts, loaded lazily so ``--help`` stays fast."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anomaly_toolbox.trainers.base import Trainer

#: Experiment name -> (module, trainer class, one-line description).
EXPERIMENTS: dict[str, tuple[str, str, str]] = {
    "egbad": ("anomaly_toolbox.trainers.egbad", "EGBADTrainer",
              "EGBAD: BiGAN with an encoder, residual + discriminator score (28x28)"),
    "anogan": ("anomaly_toolbox.trainers.anogan", "AnoGANTrainer",
               "AnoGAN: DCGAN scored by a batched, compiled latent search (28x28)"),
    "ganomaly": ("anomaly_toolbox.trainers.ganomaly", "GANomalyTrainer",
                 "GANomaly: encoder-decoder-encoder GAN, latent distance score (32x32)"),
    "memgan": ("anomaly_toolbox.trainers.memgan", "MEMGANTrainer",
               "MEMGAN: memory-augmented BiGAN, memory-projected reconstruction score (32x32)"),
    "ama": ("anomaly_toolbox.trainers.ama", "AMATrainer",
            "AMA: adversarial mirrored autoencoder, WGAN-GP critic on image pairs (32x32)"),
    "jointgan": ("anomaly_toolbox.trainers.jointgan", "JointGANTrainer",
                 "Joint encoder + WGAN-GP for contaminated data, latent-norm score (32x32)"),
    "cbigan": ("anomaly_toolbox.trainers.cbigan", "CBiGANTrainer",
               "BiGAN with consistency losses and a projection discriminator (28x28)"),
}


def trainer_class(name: str) -> type[Trainer]:
    """The trainer class of experiment ``name``; ``KeyError`` if unknown."""
    module, cls, _ = EXPERIMENTS[name]
    return getattr(importlib.import_module(module), cls)
