"""Experiment registry: the names the CLI accepts, loaded lazily so ``--help`` stays fast."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anomaly_toolbox.trainers.base import Trainer
    from anomaly_toolbox.trainers.shallow import ShallowTrainer

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
            "AMA: adversarial mirrored autoencoder, spectrally normalised Wasserstein critic "
            "on image pairs, A-score (32x32)"),
    "jointgan": ("anomaly_toolbox.trainers.jointgan", "JointGANTrainer",
                 "Joint encoder + WGAN-GP for contaminated data, latent-norm score (32x32)"),
    "cbigan": ("anomaly_toolbox.trainers.cbigan", "CBiGANTrainer",
               "BiGAN with consistency losses and a projection discriminator (28x28)"),
    "ae": ("anomaly_toolbox.trainers.autoencoder", "AutoencoderTrainer",
           "baseline: convolutional autoencoder, squared reconstruction error (32x32)"),
    "deepsvdd": ("anomaly_toolbox.trainers.deepsvdd", "DeepSVDDTrainer",
                 "baseline: one-class Deep SVDD, distance to the hypersphere centre (28x28)"),
    "ocsvm": ("anomaly_toolbox.trainers.shallow", "OCSVMTrainer",
              "baseline: RBF one-class SVM on flattened pixels, gamma chosen on validation"),
    "iforest": ("anomaly_toolbox.trainers.shallow", "IsolationForestTrainer",
                "baseline: Isolation Forest on flattened pixels"),
    "kde": ("anomaly_toolbox.trainers.shallow", "KDETrainer",
            "baseline: Gaussian KDE on flattened pixels, bandwidth chosen on validation"),
}

#: Experiment name -> its class in the Python API (``anomaly_toolbox.EGBAD``, ...).
CLASS_NAMES = {"egbad": "EGBAD", "anogan": "AnoGAN", "ganomaly": "GANomaly", "memgan": "MEMGAN",
               "ama": "AMA", "jointgan": "JointGAN", "cbigan": "CBiGAN", "ae": "Autoencoder",
               "deepsvdd": "DeepSVDD", "ocsvm": "OCSVM", "iforest": "IsolationForest",
               "kde": "KDE"}

#: The classic baselines among :data:`EXPERIMENTS`; the rest are the GAN-based methods.
BASELINES = ("ae", "deepsvdd", "ocsvm", "iforest", "kde")


def trainer_class(name: str) -> type[Trainer] | type[ShallowTrainer]:
    """The trainer class of experiment ``name``; ``KeyError`` if unknown."""
    module, cls, _ = EXPERIMENTS[name]
    return getattr(importlib.import_module(module), cls)
