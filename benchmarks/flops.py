"""How close each method's train step comes to this CPU's limit: the step's floating-point
operations, counted from the static shapes of its graph's convolutions (forward and both
gradients) and matrix products (elementwise ops, a few percent, are left out, so the rate is a
slight underestimate), its measured time (default hps, random MNIST-sized images, plain graph as
runs use on a CPU), their ratio, and beside it the rate of a 2048x2048 float32 matmul on the
same machine. The header names the CPU, its instruction sets and oneDNN's state.

Run: python benchmarks/flops.py [--methods egbad,ganomaly] [--steps 20]
"""

from __future__ import annotations

import time

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import click  # noqa: E402
import tensorflow as tf  # noqa: E402
import math  # noqa: E402

from anomaly_toolbox.registry import EXPERIMENTS, trainer_class  # noqa: E402
from anomaly_toolbox.experiments.benchmark import describe_machine  # noqa: E402
from anomaly_toolbox.hps import defaults  # noqa: E402
from anomaly_toolbox.trainers.base import Trainer  # noqa: E402

NETWORK_METHODS = [name for name in EXPERIMENTS if issubclass(trainer_class(name), Trainer)]


def matmul_gflops(size: int = 2048, repeats: int = 20) -> float:
    """GFLOP/s of a ``size`` x ``size`` float32 matmul (2 size^3 operations each)."""
    a = tf.random.stateless_normal((size, size), seed=(1, 2))
    multiply = tf.function(lambda x: tf.linalg.matmul(x, x))
    multiply(a).numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        result = multiply(a)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def _size(shape: tf.TensorShape) -> int:
    return math.prod(int(d) for d in shape)


def op_flops(op: tf.Operation) -> int:
    """Multiply-adds x 2 of one convolution or matrix product with static shapes, else 0."""
    if op.type == "Conv2D":  # output [N, Ho, Wo, Co], filter [kh, kw, Ci, Co]
        kh, kw, ci, _ = op.inputs[1].shape
        return 2 * _size(op.outputs[0].shape) * kh * kw * ci
    if op.type in ("Conv2DBackpropInput", "Conv2DBackpropFilter"):  # out_backprop [N,Ho,Wo,Co]
        kh, kw, ci, _ = (op.inputs[1].shape if op.type == "Conv2DBackpropInput"
                         else op.outputs[0].shape)
        return 2 * _size(op.inputs[2].shape) * kh * kw * ci
    if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = op.inputs[0].shape
        transposed = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
        return 2 * _size(op.outputs[0].shape) * int(a[-2] if transposed else a[-1])
    return 0


def live_ops(graph: tf.Graph) -> list[tf.Operation]:
    """The ops that TensorFlow runs: those that the outputs or the side effects (variable
    updates, the graph's control outputs) depend on. A gradient that no one reads, such as a
    convolution's gradient with respect to its input images, is pruned before running."""
    roots = [tensor.op for tensor in getattr(graph, "outputs", [])]
    roots += list(getattr(graph, "control_outputs", []))
    roots += [op for op in graph.get_operations()
              if op.type.startswith(("Assign", "ResourceApply", "ResourceScatter"))]
    seen: dict[str, tf.Operation] = {}
    pending = list(roots)
    while pending:
        op = pending.pop()
        if op.name in seen:
            continue
        seen[op.name] = op
        pending += [tensor.op for tensor in op.inputs] + list(op.control_inputs)
    return list(seen.values())


def graph_flops(graph: tf.Graph) -> int:
    """:func:`op_flops` summed over the :func:`live_ops` of ``graph`` and of the functions it
    calls (once per call; of a conditional's two branches the larger, so a step with one counts
    its costlier path)."""
    total = 0
    functions = getattr(graph, "_functions", {})

    def called(name: str) -> int:
        function = functions.get(name)
        return graph_flops(function.graph) if hasattr(function, "graph") else 0

    for op in live_ops(graph):
        total += op_flops(op)
        if op.type in ("StatefulPartitionedCall", "PartitionedCall"):
            total += called(op.get_attr("f").name)
        elif op.type in ("If", "StatelessIf"):
            total += max(called(op.get_attr(branch).name)
                         for branch in ("then_branch", "else_branch"))
        elif op.type in ("While", "StatelessWhile"):
            raise ValueError(f"the step has a {op.type} op, whose trip count is not static")
    return total


def step_flops_and_seconds(method: str, steps: int) -> tuple[int, float, int]:
    """``(floating-point operations of one train step, mean seconds per step, batch size)``."""
    cls = trainer_class(method)
    hps = {**defaults(cls.schema()), "jit_compile": False}
    trainer = cls(hps, sample_shape=(28, 28, 1), seed=0)
    side = trainer.image_size
    images = tf.random.stateless_uniform((hps["batch_size"], side, side, 1), (3, 4), -1.0, 1.0)
    noise = trainer.sample_noise(hps["batch_size"], tf.constant([1, 0], tf.int64))
    graph = tf.function(trainer._train_step_and_average).get_concrete_function(images,
                                                                               noise).graph
    flops = graph_flops(graph)
    seed = tf.constant([1, 0], tf.int64)
    for _ in range(3):  # tracing and warm-up
        [value.numpy() for value in trainer.compiled_train_step(images, seed).values()]
    started = time.perf_counter()
    for _ in range(steps):
        [value.numpy() for value in trainer.compiled_train_step(images, seed).values()]
    return flops, (time.perf_counter() - started) / steps, hps["batch_size"]


@click.command()
@click.option("--methods", default=",".join(NETWORK_METHODS), show_default=True)
@click.option("--steps", default=20, show_default=True, help="Timed steps per method.")
def main(methods: str, steps: int) -> None:
    chosen = [name.strip() for name in methods.split(",") if name.strip()]
    for method in chosen:
        if method not in NETWORK_METHODS:
            raise click.BadParameter(f"'{method}' is not a network method; choose from "
                                     f"{', '.join(NETWORK_METHODS)}", param_hint="--methods")
    tf.config.experimental.enable_op_determinism()  # as runs on a CPU
    peak = matmul_gflops()
    print(f"Machine: {describe_machine()}\nStep: default hps, plain graph (XLA off), op "
          f"determinism on; {steps} timed steps after 3 warm-up steps\n"
          f"2048x2048 float32 matmul: {peak:.0f} GFLOP/s\n")
    print("| method | batch | GFLOP per step | ms per step | GFLOP/s | share of matmul rate |")
    print("|---|---|---|---|---|---|")
    for method in chosen:
        flops, seconds, batch = step_flops_and_seconds(method, steps)
        rate = flops / seconds / 1e9
        print(f"| {method} | {batch} | {flops / 1e9:.2f} | {seconds * 1e3:.0f} | {rate:.0f} | "
              f"{rate / peak:.0%} |", flush=True)


if __name__ == "__main__":
    main()
