"""Per-check scalars of a run, read back from its TensorBoard event files (for the benchmark
scripts that table a run's checks: ``benchmarks/validation_curves.py``,
``benchmarks/selection_rules.py``)."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf


def written_at(path: Path) -> tuple[int, str]:
    """Sort key of an event file: the creation time TensorBoard puts in its name
    (``events.out.tfevents.<seconds>.<host>...``), then the name."""
    stamp = path.name.split(".")[3]
    return (int(stamp) if stamp.isdigit() else 0, path.name)


def check_curves(run_dir: Path, prefix: str = "validation/") -> dict[str, dict[int, float]]:
    """``{metric: {epoch: value}}`` of every scalar ``<prefix><metric>`` in the run's event files
    (``validation/``: the labelled validation split; ``synthetic/``: the synthetic set). Files
    are read oldest first, so a value written again after a resume wins; a file that ends in a
    partial record (a run writing it now, or killed mid-write) is read up to it."""
    curves: dict[str, dict[int, float]] = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*"), key=written_at):
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    if value.tag.startswith(prefix) and value.HasField("tensor") \
                            and not value.tensor.tensor_shape.dim:
                        curves.setdefault(value.tag[len(prefix):], {})[event.step] = float(
                            tf.make_ndarray(value.tensor))
        except tf.errors.DataLossError:
            continue
    return curves
