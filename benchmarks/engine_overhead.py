"""What the engine's loop costs per train step, beside the step itself.

For each method, a fresh trainer is fitted on one normal class of the bundled data (P3, class 1:
360 training images, so Deep SVDD's batch of 200 gives one-step epochs) for ``--epochs`` epochs,
checked every 30 epochs as a budget stretched by ``min_steps`` is (Deep SVDD's default: 150
published epochs, 4,500 steps), console lines dropped; then its compiled train step alone is called the same number
of times on the same batches. The table shows the loop's seconds per step that are neither the
step nor a check (validation scoring): progress, loss syncs, TensorBoard scalars and flushes,
checkpoint copies, console lines.

Run: python benchmarks/engine_overhead.py [--methods deepsvdd,ae] [--epochs 300]
     [--steps-per-execution 1,8]
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import click  # noqa: E402
import tensorflow as tf  # noqa: E402

from anomaly_toolbox.cli import int_list, name_list  # noqa: E402
from anomaly_toolbox.datasets import load_raw, one_class_splits  # noqa: E402
from anomaly_toolbox.datasets.pipeline import PreparedData, train_batches  # noqa: E402
from anomaly_toolbox.experiments.benchmark import describe_machine  # noqa: E402
from anomaly_toolbox.hps import defaults  # noqa: E402
from anomaly_toolbox.registry import trainer_class  # noqa: E402


def fit_seconds(method: str, data_splits, epochs: int, steps_per_execution: int,
                log_dir: Path) -> tuple[float, dict[str, float], int, object]:
    """Wall seconds of ``fit`` for ``epochs`` exact epochs, its stopwatch and its steps."""
    cls = trainer_class(method)
    hps = {**defaults(cls.schema()), "epochs": max(1, epochs // 30), "min_steps": epochs,
           "jit_compile": False, "steps_per_execution": steps_per_execution}
    if "pretrain" in hps:
        hps["pretrain"] = False
    trainer = cls(hps, sample_shape=(28, 28, 1), seed=42)
    data = PreparedData.from_splits(data_splits, trainer.image_size)
    writer = tf.summary.create_file_writer(str(log_dir))
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.fit(data, log_dir, writer, progress_bar=False)
    wall = time.perf_counter() - started
    return wall, dict(trainer.stopwatch.seconds), int(trainer.step.numpy()), (trainer, data)


def bare_step_seconds(trainer, data, steps: int) -> float:
    """Seconds of ``steps`` calls of the compiled train step alone (traced already)."""
    hps = trainer.hps
    batches = []
    epoch = 0
    while len(batches) < steps:
        batches += list(train_batches(data.train_samples, hps["batch_size"], trainer.seed, epoch))
        epoch += 1
    started = time.perf_counter()
    for index, images in enumerate(batches[:steps]):
        losses = trainer.compiled_train_step(images, tf.constant([42, index], tf.int64))
        [float(value) for value in losses.values()]
    return time.perf_counter() - started


@click.command()
@click.option("--methods", default="deepsvdd,ae", show_default=True)
@click.option("--epochs", default=300, show_default=True,
              help="Epochs trained (min_steps; one step each for Deep SVDD).")
@click.option("--steps-per-execution", "executions", default="1", show_default=True,
              help="Comma-separated values of the hps key steps_per_execution to compare.")
def main(methods: str, epochs: int, executions: str) -> None:
    splits = one_class_splits(load_raw("mnist-5k"), "normal", 1, seed=42)
    print(describe_machine())
    print(f"\nCommand: python benchmarks/engine_overhead.py --methods {methods} --epochs {epochs} "
          f"--steps-per-execution {executions}\n")
    print("| method | steps per execution | steps | fit s | checks s | bare steps s "
          "| loop overhead per step |")
    print("|---|---|---|---|---|---|---|")
    for method in name_list("method", methods, ["deepsvdd", "ae", "egbad", "ganomaly", "cbigan",
                                                "anogan", "memgan", "ama", "jointgan"]):
        for per_execution in int_list("--steps-per-execution", executions):
            with tempfile.TemporaryDirectory() as log_dir:
                wall, parts, steps, (trainer, data) = fit_seconds(
                    method, splits, epochs, per_execution, Path(log_dir))
            checks = parts.get("validation", 0.0)
            traced = parts.get("tracing_and_compilation", 0.0)
            bare = bare_step_seconds(trainer, data, steps)
            overhead = (wall - checks - traced - bare) / steps
            print(f"| {method} | {per_execution} | {steps} | {wall:.1f} | {checks:.1f} | "
                  f"{bare:.1f} | {overhead * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
