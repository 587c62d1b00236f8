"""Hyperparameters of EGBAD: types, defaults, bounds and help.

``hps/egbad.json`` is its default grid. Importable without TensorFlow (see
:mod:`anomaly_toolbox.schemas`).
"""

from __future__ import annotations

from anomaly_toolbox.hps import HParam, common_hparams

#: Test AUROC without labels, P3 classes 0/2/8 of the bundled data, seed 42, at the widths of
#: Zenati et al.'s code (issue 44; benchmarks/RESULTS.md): synthetic 0.9230, last 0.9147
#: (labelled validation 0.9363); over all ten classes synthetic 0.939, last 0.933 (labelled
#: validation 0.948). At the narrower networks before it: last 0.7086, synthetic 0.7084.
LABEL_FREE_SELECTION = "synthetic"

#: Where the default epochs and the epoch size of ``min_steps`` come from.
BUDGET_SOURCE = (
    'ours: Zenati et al. publish no MNIST epoch count (their code takes --nb_epochs); 40 epochs'
    ' of one MNIST class (6,000 images)')

HPARAMS = (
    *common_hparams(epochs=40, batch_size=100, learning_rate=2e-4, beta_1=0.5,
                    latent_dim=200, filters=32, ema_decay=0.999),
    HParam("dropout", float, 0.5, "dropout rate in the discriminator", minimum=0.0,
           maximum=0.9),
    HParam("generator_loss", str, "bce", "G objective", choices=("bce", "fm")),
    HParam("encoder_loss", str, "bce", "E objective; bce_residual adds ||x - G(E(x))||_1",
           choices=("bce", "bce_residual")),
    HParam("score", str, "fm", "discriminator part of the score", choices=("fm", "bce")),
    HParam("bce_score_pair", str, "reconstruction", "pair D judges in the 'bce' score: "
           "(G(E(x)), E(x)) as Zenati et al.'s code, or (x, E(x))",
           choices=("reconstruction", "input")),
    HParam("score_weight", float, 0.1, "w in (1 - w) residual + w s_D", minimum=0.0,
           maximum=1.0),
)
