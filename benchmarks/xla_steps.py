"""Train-step images/s of whole epochs, XLA off and on, as a real run trains (default hps,
mnist-5k with digit 2 anomalous, batches drawn as the trainer draws them, losses read back
every step). One warm-up epoch (tracing, compiling), then ``--epochs`` timed epochs.

Run: python benchmarks/xla_steps.py [--methods egbad,ganomaly] [--no-deterministic]
"""

from __future__ import annotations

import time

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import click  # noqa: E402
import tensorflow as tf  # noqa: E402

from anomaly_toolbox.datasets import load_raw, one_class_splits  # noqa: E402
from anomaly_toolbox.datasets.pipeline import PreparedData, train_batches  # noqa: E402
from anomaly_toolbox.registry import EXPERIMENTS, trainer_class  # noqa: E402
from anomaly_toolbox.experiments.benchmark import describe_machine  # noqa: E402
from anomaly_toolbox.hps import defaults  # noqa: E402
from anomaly_toolbox.trainers.base import Trainer  # noqa: E402


def images_per_second(method: str, jit: bool, epochs: int) -> float:
    cls = trainer_class(method)
    hps = {**defaults(cls.schema()), "jit_compile": jit}
    trainer = cls({**hps, "jit_compile": jit}, sample_shape=(28, 28, 1), seed=42)
    splits = one_class_splits(load_raw("mnist-5k"), "anomalous", 2)
    data = PreparedData.from_splits(splits, trainer.image_size)
    trainer.engine.callbacks.on_train_begin(data)

    def epoch(index: int) -> int:
        steps = 0
        for images in train_batches(data.train_samples, hps["batch_size"], 42, index):
            losses = trainer.compiled_train_step(images, tf.constant([42, steps], tf.int64))
            [float(value) for value in losses.values()]
            steps += 1
        return steps

    epoch(0)
    started = time.perf_counter()
    steps = sum(epoch(index) for index in range(1, epochs + 1))
    return steps * hps["batch_size"] / (time.perf_counter() - started)


@click.command()
@click.option("--methods", default="egbad,ganomaly,cbigan", show_default=True)
@click.option("--epochs", default=3, show_default=True, help="Timed epochs per cell.")
@click.option("--deterministic/--no-deterministic", default=True, show_default=True,
              help="TensorFlow op determinism, as runs use by default on a CPU.")
def main(methods: str, epochs: int, deterministic: bool) -> None:
    for method in methods.split(","):
        if method not in EXPERIMENTS or not issubclass(trainer_class(method), Trainer):
            raise click.BadParameter(f"'{method}' is not a network method", param_hint="--methods")
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    print(f"Machine: {describe_machine()}; op determinism: {deterministic}\n")
    print("| method | tf.function img/s | XLA img/s | XLA / tf.function |")
    print("|---|---|---|---|")
    for method in methods.split(","):
        plain, xla = (images_per_second(method, jit, epochs) for jit in (False, True))
        print(f"| {method} | {plain:.0f} | {xla:.0f} | {xla / plain:.2f} |", flush=True)


if __name__ == "__main__":
    main()
