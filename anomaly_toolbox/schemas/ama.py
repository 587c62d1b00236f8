"""Hyperparameters of AMA: types, defaults, bounds and help.

``hps/ama.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import HParam, common_hparams

#: Test AUROC without labels, P3 classes 0/2/8 of the bundled data (benchmarks/RESULTS.md):
#: synthetic 0.9315, last 0.8243 (labelled validation 0.9322).
LABEL_FREE_SELECTION = "synthetic"

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    "AMA's paper: 100 epochs at batch 256 under P3 on MNIST (one class, about 6,000 images)")

HPARAMS = (
    *common_hparams(epochs=100, batch_size=256, learning_rate=3e-4, beta_1=0.0,
                    latent_dim=100, filters=64),
    HParam("encoder_beta_1", float, 0.5, "Adam beta_1 of the encoder (D and G: beta_1)",
           minimum=0.0, maximum=0.999),
    HParam("beta_2", float, 0.9, "Adam beta_2 of every optimizer", minimum=0.0,
           maximum=0.9999),
    HParam("lr_decay_every", int, 30, "epochs between learning-rate drops", positive=True),
    HParam("lr_decay_rate", float, 0.1, "factor of each learning-rate drop (1 = none)",
           positive=True, maximum=1.0),
    HParam("n_critic", int, 5, "critic updates per encoder/decoder update", positive=True),
    HParam("gp_weight", float, 0.0, "gradient-penalty weight on every pair type (0 = "
           "spectral normalisation alone, as the paper)", minimum=0.0),
    HParam("lambda_inter", float, 0.5, "simplex-interpolation weight (0 = off)", minimum=0.0),
    HParam("interpolation_codes", int, 3, "k, codes mixed per interpolation (E(x) and k - 1 "
           "others of the batch)", positive=True),
    HParam("lambda_neg", float, 5.0, "atypical-negative weight (0 = off)", minimum=0.0),
    HParam("negative_codes", str, "annulus", "atypical latents: on the annulus around sqrt(d) "
           "(the paper's text) or each image's own code scaled (the released code)",
           choices=("annulus", "scaled")),
    HParam("negative_direction", str, "outward", "atypical radius beyond or inside sqrt(d)",
           choices=("outward", "inward")),
    HParam("negative_delta", float, 5.0, "width of the atypical radius band", positive=True),
    HParam("negative_share", float, 0.1, "share s of each batch the negatives stand for "
           "(the authors' code replaces it by them): round(s x batch_size) negatives per "
           "step, their term weighted lambda_neg s / (1 - s)", positive=True, maximum=0.5),
    HParam("negative_start_epoch", int, 11, "first epoch (1-based) with negatives",
           positive=True),
    HParam("lambda_reg", float, 1.0, "latent-norm regulariser weight (0 = off)",
           minimum=0.0),
    HParam("select_after_epoch", int, 20, "model selection considers only weights "
           "trained past this epoch, once the negatives have had their effect (the "
           "released code's rule; 0 = every check)", minimum=0),
)
