"""Does AMA's critic keep its main task once the atypical negatives switch on? A small AMA
(8 filters, 16 latent dimensions, 2 critic updates) trains on 368 bundled training images of
digit 1, 32 per step; every 50 steps the script prints a Markdown row: the critic's
reconstruction gap ``w_distance`` = mean D(x,x) - D(x,G(E(x))) (negative: the critic rates a
reconstruction above the mirror image, its task inverted), ``l_neg``, and the test-time A-score's
AUROC (the Gaussian fitted to the training R-scores, as training does) on 32 held-out 1s
against 100 training 7s and against 32 uniform-noise images.

Run it on any commit's code to compare them, e.g. with ``PYTHONPATH=<checkout of that commit>``.

Usage: python benchmarks/ama_negative_term.py [--steps 400] [--negatives-from 150]
(about 2 minutes on one CPU core)
"""

from __future__ import annotations

import argparse

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from anomaly_toolbox.datasets import load_raw  # noqa: E402
from anomaly_toolbox.datasets.pipeline import to_model_range  # noqa: E402
from anomaly_toolbox.evaluation import ranking_metrics  # noqa: E402
from anomaly_toolbox.hps import with_defaults  # noqa: E402
from anomaly_toolbox.trainers.ama import AMATrainer  # noqa: E402

BATCH = 32


def small_ama() -> AMATrainer:
    """An AMA trainer at probe widths whose negatives start at epoch 2 (the probe sets the epoch
    counter to 1 when they should start) and whose learning rate never drops."""
    given = {"filters": 8, "latent_dim": 16, "n_critic": 2, "batch_size": BATCH, "epochs": 1,
             "negative_start_epoch": 2, "lr_decay_rate": 1.0, "jit_compile": False}
    hps = with_defaults(AMATrainer.schema(), given)
    return AMATrainer(hps, sample_shape=(28, 28, 1), seed=0)


def count(text: str) -> int:
    """A whole number >= 0 for argparse."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def auroc(normal_scores: np.ndarray, anomaly_scores: np.ndarray) -> float:
    labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomaly_scores))]
    return ranking_metrics(labels, np.r_[normal_scores, anomaly_scores])["auroc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=count, default=400, help="train steps (a row every 50)")
    parser.add_argument("--negatives-from", type=count, default=150,
                        help="first step with atypical negatives (0: from the start)")
    args = parser.parse_args()
    data = load_raw("mnist-5k")
    trainer = small_ama()

    def images(digit: int, how_many: int) -> tf.Tensor:
        return to_model_range(tf.constant(data.x_train[data.y_train == digit][:how_many]),
                              trainer.image_size)

    ones, sevens = images(1, 400), images(7, 100)
    train, held_out = ones[:368], ones[368:]
    noise = tf.random.stateless_uniform(held_out.shape, [3, 4], -1.0, 1.0)
    print("| step | w_distance | l_neg | A-score AUROC, 7s | A-score AUROC, noise |")
    print("|---|---|---|---|---|")
    for step in range(args.steps):
        trainer.epoch.assign(0 if step < args.negatives_from else 1)
        batch = tf.gather(train, (np.arange(BATCH) + BATCH * step) % len(train))
        losses = trainer.compiled_train_step(batch, tf.constant([0, step], tf.int64))
        trainer.step.assign_add(1)
        if (step + 1) % 50 == 0:
            trainer.fit_gaussian_to(trainer.r_score(train).numpy())
            normal = trainer.score(held_out).numpy()
            print(f"| {step + 1} | {float(losses['w_distance']):.1f} | "
                  f"{float(losses['l_neg']):.1f} | "
                  f"{auroc(normal, trainer.score(sevens).numpy()):.3f} | "
                  f"{auroc(normal, trainer.score(noise).numpy()):.3f} |", flush=True)


if __name__ == "__main__":
    main()
