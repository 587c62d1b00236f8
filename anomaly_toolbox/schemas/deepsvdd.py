"""Hyperparameters of Deep SVDD: types, defaults, bounds and help.

``hps/deepsvdd.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import MAX_FILTERS, MAX_LATENT_DIM, HParam, common_hparams

#: Test AUROC without labels, P3 classes 0/2/8 of the bundled data (benchmarks/RESULTS.md):
#: synthetic 0.9179, last 0.9168.
LABEL_FREE_SELECTION = "synthetic"

#: The reference code's LeNets: (grayscale, RGB) values of the keys left at None ("auto").
LENET_WIDTHS = {"filters": (8, 32), "latent_dim": (32, 128)}

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    "Ruff et al.'s code: 150 epochs at batch 200 on one MNIST class (about 6,000 images)")

HPARAMS = (
    *(param for param in common_hparams(epochs=150, batch_size=200, learning_rate=1e-4,
                                        beta_1=0.9, latent_dim=32, filters=8)
      if param.name not in LENET_WIDTHS),
    HParam("latent_dim", int, None, "size of the features phi(x) (default: 32 on grayscale, "
           "the MNIST LeNet; 128 on RGB, the CIFAR-10 LeNet)", positive=True,
           maximum=MAX_LATENT_DIM),
    HParam("filters", int, None, "filters of the first conv stage (default: 8 on grayscale, "
           "halving per stage; 32 on RGB, doubling per stage)", positive=True,
           maximum=MAX_FILTERS),
    HParam("centre_eps", float, 0.1, "coordinates of c closer to 0 than this become +-eps",
           minimum=0.0),
    HParam("pretrain", bool, True, "pretrain the feature map as an autoencoder's encoder for "
           "as many steps as Deep SVDD trains"),
    HParam("lr_milestone", int, 50, "published epoch from which the learning rate of both "
           "phases is a tenth (0 = no drop)", minimum=0),
    HParam("weight_decay", float, 5e-7, "lambda of the weights' penalty lambda/2 ||W||^2 "
           "in Deep SVDD's loss", minimum=0.0),
    HParam("ae_weight_decay", float, 5e-4, "the same penalty's lambda in pretraining",
           minimum=0.0),
    HParam("contrast_norm", bool, False, "global contrast normalisation (L1) and min-max "
           "scaling fitted on the training split in front of the feature map, as the "
           "reference code"),
)
