"""Images per second of one train step and of scoring, per method, batch size, mode and precision.

Modes: eager (the step run op by op), tf.function (a graph), XLA (tf.function with jit_compile).
Precision: float32, or Keras 'mixed_bfloat16' (the hps key mixed_precision). Networks have each
method's default widths and random weights, fed random images: speed does not depend on weights.
Every cell runs ``--warmup`` steps first (tracing, compiling), then times ``--steps`` steps.
Scoring is timed with the compiled score function of the same mode (AnoGAN's score is its whole
latent search). A cell that fails prints its error instead of a number.

``--whole-run`` instead times whole processes: ``anomaly-box`` trains each method for one epoch
on the bundled data (mnist-5k, digit 2 anomalous) at its defaults, and the table shows wall seconds,
training images per second over the whole process, parameter counts and where the time went (the
``timings`` of its results.json).

Run: python benchmarks/throughput.py [--methods egbad,ganomaly] [--batch-sizes 64,256]
     python benchmarks/throughput.py --whole-run [--methods egbad,ganomaly]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import click  # noqa: E402
import tensorflow as tf  # noqa: E402

from anomaly_toolbox.cli import int_list  # noqa: E402
from anomaly_toolbox.registry import EXPERIMENTS, baselines, trainer_class  # noqa: E402
from anomaly_toolbox.experiments.benchmark import describe_machine  # noqa: E402
from anomaly_toolbox.hps import defaults  # noqa: E402
from anomaly_toolbox.trainers.base import Trainer  # noqa: E402

MODES = ("eager", "tf.function", "XLA")
PRECISIONS = ("float32", "mixed_bfloat16")
NETWORK_METHODS = [name for name in EXPERIMENTS if name not in baselines()] + ["ae", "deepsvdd"]


def timed_rate(call: Callable[[], object], batch_size: int, warmup: int, steps: int) -> float:
    """Images per second of ``call`` (one batch each), after ``warmup`` untimed calls."""
    def run_and_sync() -> None:
        result = call()
        tf.nest.map_structure(lambda t: t.numpy(), result)

    for _ in range(warmup):
        run_and_sync()
    started = time.perf_counter()
    for _ in range(steps):
        run_and_sync()
    return batch_size * steps / (time.perf_counter() - started)


def make_trainer(method: str, batch_size: int, mixed: bool, jit_compile: bool) -> Trainer:
    cls = trainer_class(method)
    hps = {**defaults(cls.schema()), "batch_size": batch_size, "mixed_precision": mixed,
           "jit_compile": jit_compile}
    return cls({**hps, "jit_compile": jit_compile}, sample_shape=(28, 28, 1), seed=0)


def measure(method: str, batch_size: int, mixed: bool, mode: str, warmup: int,
            steps: int) -> tuple[str, str]:
    """``(train images/s, score images/s)`` of one cell, as table text."""
    try:
        trainer = make_trainer(method, batch_size, mixed, jit_compile=mode == "XLA")
        size = trainer.image_size
        images = tf.random.stateless_uniform([batch_size, size, size, 1], [0, 1], -1.0, 1.0)
        seed = tf.constant([0, 1], tf.int64)
        if mode == "eager":
            def train_step() -> object:
                return trainer._train_step_and_average(
                    images, trainer.sample_noise(batch_size, seed))
            score = trainer.score
        else:
            def train_step() -> object:
                return trainer.compiled_train_step(images, seed)
            score = trainer.compiled_score
        train_rate = timed_rate(train_step, batch_size, warmup, steps)
        score_rate = timed_rate(lambda: score(images), batch_size, warmup, steps)
        return f"{train_rate:.0f}", f"{score_rate:.0f}"
    except Exception as error:  # noqa: BLE001 - a failing cell is reported, the table goes on
        message = f"error: {type(error).__name__}"
        return message, message


def whole_run_row(method: str, jit: str, hps: dict) -> str:
    """One table row: ``anomaly-box`` for one epoch of mnist-5k (digit 2 anomalous) in a fresh
    process with ``hps`` over the method's defaults, timed from the outside, with its own
    breakdown of the wall time."""
    with tempfile.TemporaryDirectory() as directory:
        grid = Path(directory) / "grid.json"
        grid.write_text(json.dumps({key: {"values": [value]}
                                    for key, value in {"epochs": 1, **hps}.items()}))
        command = [sys.executable, "-m", "anomaly_toolbox", "-e", method, "-d", "mnist-5k",
                   "--anomalous-label", "2", "--hps-path", str(grid), "--log-dir",
                   str(Path(directory) / "logs"), "-q", *([jit] if jit else [])]
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if finished.returncode != 0:
            return f"| {method} | {jit or 'default'} | error: exit {finished.returncode} |"
        [path] = Path(directory).glob("logs/*/*/*/results.json")
        results = json.loads(path.read_text())
    timings, trainer = results["timings"], make_trainer(method, results["hps"]["batch_size"],
                                                        False, bool(results["hps"]["jit_compile"]))
    parameters = sum(net.count_params() for net in trainer.networks.values())
    images = results["steps_trained"] * results["hps"]["batch_size"]
    parts = ", ".join(f"{part.removesuffix('_seconds')} {timings[part]:.1f}"
                      for part in ("startup_seconds", "tracing_and_compilation_seconds",
                                   "train_steps_seconds", "validation_seconds",
                                   "checkpoints_and_saves_seconds", "tensorboard_seconds",
                                   "final_scoring_seconds", "other_seconds"))
    return (f"| {method} | {'XLA' if results['hps']['jit_compile'] else 'tf.function'} | "
            f"{wall:.1f} | {images / wall:.0f} | {images / timings['train_steps_seconds']:.0f} | "
            f"{timings['train_steps_share']:.0%} | {parameters / 1e6:.2f}M | {parts} |")


def names(option: str, text: str, known: Sequence[str]) -> list[str]:
    """``text`` as comma-separated names, each one of ``known``; others are refused, naming
    ``option`` and the choices."""
    chosen = [name.strip() for name in text.split(",")]
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(map(repr, unknown))}; choose from "
                                 f"{', '.join(known)}", param_hint=option)
    return chosen


@click.command()
@click.option("--methods", default=",".join(NETWORK_METHODS), show_default=True)
@click.option("--batch-sizes", default="64,256", show_default=True)
@click.option("--modes", default=",".join(MODES), show_default=True)
@click.option("--precisions", default=",".join(PRECISIONS), show_default=True)
@click.option("--warmup", default=2, show_default=True, help="Untimed steps (compilation).")
@click.option("--steps", default=10, show_default=True, help="Timed steps per cell.")
@click.option("--whole-run", is_flag=True, help="Time whole anomaly-box processes instead.")
@click.option("--jit", type=click.Choice(["", "--jit", "--no-jit"]), default="",
              help="With --whole-run: force XLA on or off (default: each method's default).")
@click.option("--hps", "hps_json", default="{}", show_default=True,
              help='With --whole-run: hps over the defaults, as JSON ({"batch_size": 32}).')
def main(methods: str, batch_sizes: str, modes: str, precisions: str, warmup: int,
         steps: int, whole_run: bool, jit: str, hps_json: str) -> None:
    method_list = names("--methods", methods, NETWORK_METHODS)
    batch_size_list = int_list("--batch-sizes", batch_sizes)
    if min(batch_size_list) <= 0:
        raise click.BadParameter(f"batch sizes must be > 0, got {batch_sizes}",
                                 param_hint="--batch-sizes")
    mode_list = names("--modes", modes, MODES)
    precision_list = names("--precisions", precisions, PRECISIONS)
    print(f"Machine: {describe_machine()}")
    if whole_run:
        try:
            hps = json.loads(hps_json)
        except json.JSONDecodeError as error:
            raise click.BadParameter(f"not JSON ({error}); e.g. '{{\"batch_size\": 32}}'",
                                     param_hint="--hps") from None
        if not isinstance(hps, dict):
            raise click.BadParameter("give a JSON object of hps keys", param_hint="--hps")
        print("Whole process: `anomaly-box -e METHOD -d mnist-5k --anomalous-label 2` for one "
              f"epoch at the method's defaults with {json.dumps(hps)}; wall seconds from "
              "outside; images/s = images trained / wall seconds (whole process) and / "
              "train-step seconds.\n")
        print("| method | mode | wall s | img/s (process) | img/s (train steps) | in train steps "
              "| parameters | seconds by part |")
        print("|---|---|---|---|---|---|---|---|")
        for method in method_list:
            print(whole_run_row(method, jit, hps), flush=True)
        return
    print(f"Images per second (higher is better); {steps} timed steps after {warmup} warm-up "
          f"steps; random weights and images, each method's default widths.\n")
    print("| method | batch | precision | mode | train step img/s | score img/s |")
    print("|---|---|---|---|---|---|")
    for method in method_list:
        for batch_size in batch_size_list:
            for precision in precision_list:
                for mode in mode_list:
                    train, score = measure(method, batch_size, precision != "float32", mode,
                                           warmup, steps)
                    print(f"| {method} | {batch_size} | {precision} | {mode} | {train} | "
                          f"{score} |", flush=True)


if __name__ == "__main__":
    main()
