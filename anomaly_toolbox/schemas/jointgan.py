"""Hyperparameters of the joint encoder + WGAN-GP: types, defaults, bounds and help.

``hps/jointgan.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import CIFAR10_CLASS_IMAGES, HParam, common_hparams

#: Test AUROC without labels, P3 classes 0, 2 and 8 of the bundled data at the code of issue 44
#: (summed consistency, pGAN's critic schedule, the CIFAR-10 budget; benchmarks/RESULTS.md,
#: "Issue 44, after the changes"): last 0.611, synthetic 0.579 (labelled validation 0.639);
#: over all ten classes ("Ten-class tables, continued a third time"): last 0.588, synthetic
#: 0.561 (labelled validation 0.664).
#: Before issue 44 synthetic measured best.
LABEL_FREE_SELECTION = "last"

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    "the paper, Berg et al. section 4.2: 32 epochs on one CIFAR-10 class (5,000 images; 4 of "
    "them at full resolution under progressive growing, which is not built here)")

HPARAMS = (
    *common_hparams(epochs=32, batch_size=64, learning_rate=1e-4, beta_1=0.0,
                    latent_dim=512, filters=64,
                    images_per_epoch=CIFAR10_CLASS_IMAGES),
    HParam("beta_2", float, 0.9, "Adam beta_2", minimum=0.0, maximum=0.9999),
    HParam("n_critic", int, 1, "critic updates per generator/encoder update (pGAN's 1; "
           "WGAN-GP's 5 share the step's batch)", positive=True),
    HParam("gp_weight", float, 10.0, "gradient-penalty weight", minimum=0.0),
    HParam("drift_weight", float, 0.001, "weight of pGAN's drift penalty E[D(x)^2] in the "
           "critic's loss", minimum=0.0),
    HParam("encoder_loss", str, "image", "consistency in image or latent space",
           choices=("image", "latent")),
    HParam("consistency_weight", float, 1.0, "weight of the consistency term", minimum=0.0),
    HParam("score_lambda", float, 0.05, "lambda in a = lambda Ln + (1 - lambda) Lo",
           minimum=0.0, maximum=1.0),
)
