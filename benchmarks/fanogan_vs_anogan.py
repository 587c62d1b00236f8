"""Images scored per second by f-AnoGAN's encoder and by AnoGAN's latent search, on one generator.

f-AnoGAN exists because AnoGAN scores an image by hundreds of gradient steps on z. Here both
score with the same networks: an f-AnoGAN trainer at its defaults (DCGAN generator and critic,
32x32, latent 128) scores by one pass of its encoder (plus G and two critic passes), and
AnoGAN's batched search (its defaults: Adam, 500 steps, scores at the last step) runs on that
trainer's generator and critic. Untrained weights: neither cost depends on them.
Run: python benchmarks/fanogan_vs_anogan.py [--batch-size 64] [--images 256] [--jit/--no-jit]
"""

from __future__ import annotations

import time

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import click  # noqa: E402
import tensorflow as tf  # noqa: E402

from anomaly_toolbox.cpu import describe_cpu  # noqa: E402
from anomaly_toolbox.hps import defaults  # noqa: E402
from anomaly_toolbox.runtime import resolve_jit  # noqa: E402
from anomaly_toolbox.trainers.anogan import AnoGANTrainer  # noqa: E402
from anomaly_toolbox.trainers.fanogan import FAnoGANTrainer  # noqa: E402

SHAPE = (32, 32, 1)


def images_per_second(score: callable, batch: tf.Tensor, images: int) -> float:
    score(batch)  # trace and compile
    batches = max(1, images // batch.shape[0])
    started = time.perf_counter()
    for _ in range(batches):
        score(batch).numpy()
    return batches * batch.shape[0] / (time.perf_counter() - started)


@click.command()
@click.option("--batch-size", default=64, show_default=True)
@click.option("--images", default=256, show_default=True, help="Images timed per method.")
@click.option("--jit/--no-jit", "jit_compile", default=None,
              help="Default: each method's own (on with a GPU).")
def main(batch_size: int, images: int, jit_compile: bool | None) -> None:
    jit = {cls: resolve_jit(jit_compile, cls) for cls in (FAnoGANTrainer, AnoGANTrainer)}
    fanogan = FAnoGANTrainer({**defaults(FAnoGANTrainer.schema()),
                              "jit_compile": jit[FAnoGANTrainer]}, sample_shape=SHAPE, seed=0)
    anogan_hps = {**defaults(AnoGANTrainer.schema()), "batch_size": batch_size,
                  "latent_dim": fanogan.hps["latent_dim"], "filters": fanogan.hps["filters"],
                  "jit_compile": jit[AnoGANTrainer]}
    anogan = AnoGANTrainer(anogan_hps, sample_shape=SHAPE, seed=0)
    anogan.scoring_networks = {"generator": fanogan.networks["generator"],
                               "discriminator": fanogan.networks["critic"]}
    batch = tf.random.stateless_uniform([batch_size, *SHAPE], [0, 1], -1.0, 1.0)
    rates = {"f-AnoGAN (encoder)": images_per_second(fanogan.compiled_score, batch, images),
             f"AnoGAN ({anogan_hps['search_steps']}-step search)": images_per_second(
                 anogan.compiled_score, batch, images)}
    print(f"CPU: {describe_cpu()}; XLA: f-AnoGAN {jit[FAnoGANTrainer]}, AnoGAN "
          f"{jit[AnoGANTrainer]}; batch {batch_size}; "
          f"one generator (DCGAN, filters {fanogan.hps['filters']}, latent "
          f"{fanogan.hps['latent_dim']}, 32x32)\n")
    print("| scoring | images/s |\n|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} |")
    fast, slow = rates.values()
    print(f"\nf-AnoGAN scores {fast / slow:.0f}x as many images per second.")


if __name__ == "__main__":
    main()
