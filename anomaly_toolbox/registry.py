"""The registry of methods: each is registered once, by one :func:`register` line, and everything
else (the CLI's names, ``--list``, the Python API's classes, the tests' parameters) reads it.

This module is the ground floor of the package: it imports nothing of it. Trainer modules are
named as strings and imported on first use, so ``anomaly-box --help`` and ``--list`` stay free of
TensorFlow, and a trainer may ask the registry for its name without an import circle.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Experiment:
    """One method as the toolbox knows it.

    Attributes:
        name: the name on the command line (``--experiment``), in log paths and model files.
        trainer: ``"module:Class"`` of its trainer (imported on first use).
        api_name: its class in the Python API (``anomaly_toolbox.EGBAD``).
        description: one line for ``--list`` and ``--help``.
        baseline: a classic baseline rather than a GAN-based method.
        steps_to_learn: train steps after which a tiny model of it must score noise above
            normal digits (``tests/test_trainers.py``), with a margin (100 steps for the GANs)
            past the latest step from which tiny models of seeds 0-5 held it; None skips that
            test, for ``skip_learning``.
        learning_hps: hps of that test beyond the tiny widths.
        skip_learning: why the test cannot show learning for this method.
        schema: the module of its hyperparameters (``HPARAMS``; see
            :mod:`anomaly_toolbox.schemas`), importable without TensorFlow; default
            ``anomaly_toolbox.schemas.<name>``.
    """

    name: str
    trainer: str
    api_name: str
    description: str
    baseline: bool = False
    steps_to_learn: int | None = None
    learning_hps: dict[str, Any] = field(default_factory=dict)
    skip_learning: str = "no learning budget registered"
    schema: str = ""

    @property
    def schema_module(self) -> str:
        """The import path of its hyperparameters' module."""
        return self.schema or f"anomaly_toolbox.schemas.{self.name}"


#: Experiment name -> its registration, in the order of ``--list``.
EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry; ``ValueError`` if its name or API name is taken."""
    if experiment.name in EXPERIMENTS:
        raise ValueError(f"experiment '{experiment.name}' is registered already")
    if experiment.api_name in {known.api_name for known in EXPERIMENTS.values()}:
        raise ValueError(f"API class name '{experiment.api_name}' is registered already")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def trainer_class(name: str) -> type:
    """The trainer class of experiment ``name`` (a ``trainers.MethodTrainer``); ``KeyError`` if
    unknown."""
    module, cls = EXPERIMENTS[name].trainer.split(":")
    return getattr(importlib.import_module(module), cls)


def registered_name(trainer: type) -> str:
    """The experiment name ``trainer`` is registered under (its class name if none)."""
    path = f"{trainer.__module__}:{trainer.__qualname__}"
    return next((name for name, experiment in EXPERIMENTS.items()
                 if experiment.trainer == path), trainer.__name__)


def api_names() -> dict[str, str]:
    """Experiment name -> its Python API class name."""
    return {name: experiment.api_name for name, experiment in EXPERIMENTS.items()}


def baselines() -> list[str]:
    """The registered classic baselines; the other experiments are the GAN-based methods."""
    return [name for name, experiment in EXPERIMENTS.items() if experiment.baseline]


_TRAINERS = "anomaly_toolbox.trainers"
register(Experiment("egbad", f"{_TRAINERS}.egbad:EGBADTrainer", "EGBAD",
                    "EGBAD: BiGAN with an encoder, residual + discriminator score (28x28)",
                    steps_to_learn=500))
register(Experiment("anogan", f"{_TRAINERS}.anogan:AnoGANTrainer", "AnoGAN",
                    "AnoGAN: DCGAN scored by a batched, compiled latent search (28x28)",
                    steps_to_learn=700))
register(Experiment("ganomaly", f"{_TRAINERS}.ganomaly:GANomalyTrainer", "GANomaly",
                    "GANomaly: encoder-decoder-encoder GAN, latent distance score (32x32)",
                    steps_to_learn=120))
register(Experiment("memgan", f"{_TRAINERS}.memgan:MEMGANTrainer", "MEMGAN",
                    "MEMGAN: memory-augmented BiGAN, memory-projected reconstruction score "
                    "(32x32)", steps_to_learn=800))
register(Experiment("ama", f"{_TRAINERS}.ama:AMATrainer", "AMA",
                    "AMA: adversarial mirrored autoencoder, spectrally normalised Wasserstein "
                    "critic on image pairs, A-score (32x32)", steps_to_learn=500,
                    learning_hps={"n_critic": 2, "negative_start_epoch": 1}))
register(Experiment("jointgan", f"{_TRAINERS}.jointgan:JointGANTrainer", "JointGAN",
                    "Joint encoder + WGAN-GP for contaminated data, latent-norm score (32x32)",
                    skip_learning="its latent-norm term ranks noise first even untrained, so "
                                  "the learning test shows nothing"))
register(Experiment("cbigan", f"{_TRAINERS}.cbigan:CBiGANTrainer", "CBiGAN",
                    "BiGAN with consistency losses and a projection discriminator (28x28)",
                    steps_to_learn=500))
register(Experiment("fanogan", f"{_TRAINERS}.fanogan:FAnoGANTrainer", "FAnoGAN",
                    "f-AnoGAN: WGAN-GP, then an izi_f encoder; image + critic-feature residual "
                    "score in one pass (32x32)", steps_to_learn=800,
                    learning_hps={"epochs": 100, "n_critic": 1}))
register(Experiment("alad", f"{_TRAINERS}.alad:ALADTrainer", "ALAD",
                    "ALAD: BiGAN with image- and latent-cycle discriminators, D_xx feature "
                    "score (32x32)", steps_to_learn=500,
                    learning_hps={"spectral_norm": True}))
register(Experiment("skipganomaly", f"{_TRAINERS}.skipganomaly:SkipGANomalyTrainer",
                    "SkipGANomaly", "Skip-GANomaly: U-Net generator with skip connections, "
                    "reconstruction + discriminator-feature score (32x32)", steps_to_learn=300))
register(Experiment("ae", f"{_TRAINERS}.autoencoder:AutoencoderTrainer", "Autoencoder",
                    "baseline: convolutional autoencoder, squared reconstruction error (32x32)",
                    baseline=True, steps_to_learn=100))
register(Experiment("deepsvdd", f"{_TRAINERS}.deepsvdd:DeepSVDDTrainer", "DeepSVDD",
                    "baseline: one-class Deep SVDD, distance to the hypersphere centre (28x28)",
                    baseline=True, steps_to_learn=300))
register(Experiment("ocsvm", f"{_TRAINERS}.shallow:OCSVMTrainer", "OCSVM",
                    "baseline: RBF one-class SVM on flattened pixels, gamma chosen on "
                    "validation", baseline=True))
register(Experiment("iforest", f"{_TRAINERS}.shallow:IsolationForestTrainer", "IsolationForest",
                    "baseline: Isolation Forest on flattened pixels", baseline=True))
register(Experiment("kde", f"{_TRAINERS}.shallow:KDETrainer", "KDE",
                    "baseline: Gaussian KDE on flattened pixels, bandwidth chosen on validation",
                    baseline=True))
