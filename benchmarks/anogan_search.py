"""Images scored per second by AnoGAN's batched latent search.

Batch size 1 is the per-image search of Di Mattia et al.'s toolbox ("A Survey on GANs for
Anomaly Detection", arXiv 2019); larger batches optimise many z at once
in one compiled loop. Untrained networks at the default width: the search costs the same whatever
the weights. Run: python benchmarks/anogan_search.py [--jit/--no-jit] [--images N]
"""

from __future__ import annotations

import time

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import click  # noqa: E402
import tensorflow as tf  # noqa: E402

from anomaly_toolbox.hps import defaults  # noqa: E402
from anomaly_toolbox.runtime import resolve_jit  # noqa: E402
from anomaly_toolbox.trainers.anogan import AnoGANTrainer  # noqa: E402


def images_per_second(batch_size: int, steps: int, images: int, jit_compile: bool) -> float:
    hps = {**defaults(AnoGANTrainer.schema()), "batch_size": batch_size,
           "jit_compile": jit_compile}
    trainer = AnoGANTrainer({**hps, "jit_compile": jit_compile}, sample_shape=(28, 28, 1), seed=0)
    batch = tf.random.stateless_uniform([batch_size, 28, 28, 1], [0, 1], -1.0, 1.0)
    trainer.scores_with_steps(batch, steps)  # compile
    batches = max(1, images // batch_size)
    started = time.perf_counter()
    for _ in range(batches):
        trainer.scores_with_steps(batch, steps)
    return batches * batch_size / (time.perf_counter() - started)


@click.command()
@click.option("--jit/--no-jit", "jit_compile", default=None, help="Default: on with a GPU.")
@click.option("--images", default=256, show_default=True, help="Images timed per setting.")
def main(jit_compile: bool | None, images: int) -> None:
    jit_compile = resolve_jit(jit_compile, AnoGANTrainer)
    devices = tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("CPU")
    print(f"Device: {', '.join(d.name for d in devices)}; XLA: {jit_compile}; "
          f"{images} images per setting (at least one batch)\n")
    print("| batch size | search steps | images / s | speed-up over batch 1 |")
    print("|---|---|---|---|")
    for steps in (100, 500):
        baseline = None
        for batch_size in (1, 64, 256):
            rate = images_per_second(batch_size, steps, images, jit_compile)
            baseline = baseline or rate
            print(f"| {batch_size} | {steps} | {rate:.1f} | {rate / baseline:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
