"""Per-check scalars of a run, read back from its TensorBoard event files (for the benchmark
scripts that table a run's checks: ``benchmarks/validation_curves.py``,
``benchmarks/selection_rules.py``)."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

#: The scalar the engine writes at each check's train step with the epoch it followed:
#: TensorBoard has one step axis (train steps), and this maps a check's step to its epoch.
EPOCH_TAG = "epoch"


def written_at(path: Path) -> tuple[int, str]:
    """Sort key of an event file: the creation time TensorBoard puts in its name
    (``events.out.tfevents.<seconds>.<host>...``), then the name."""
    stamp = path.name.split(".")[3]
    return (int(stamp) if stamp.isdigit() else 0, path.name)


def check_curves(run_dir: Path, prefix: str = "validation/") -> dict[str, dict[int, float]]:
    """``{metric: {epoch: value}}`` of every scalar ``<prefix><metric>`` in the run's event files
    (``validation/``: the labelled validation split; ``synthetic/``: the synthetic set). A check
    logged at a train step is keyed by the epoch that :data:`EPOCH_TAG` records for that step
    (runs written before checks moved to the step axis logged them at their epoch). Files are
    read oldest first, so a value written again after a resume wins; a file that ends in a
    partial record (a run writing it now, or killed mid-write) is read up to it."""
    by_step: dict[str, dict[int, float]] = {}
    epochs: dict[int, int] = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*"), key=written_at):
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    if not value.HasField("tensor") or value.tensor.tensor_shape.dim:
                        continue
                    if value.tag == EPOCH_TAG:
                        epochs[event.step] = int(tf.make_ndarray(value.tensor))
                    elif value.tag.startswith(prefix):
                        by_step.setdefault(value.tag[len(prefix):], {})[event.step] = float(
                            tf.make_ndarray(value.tensor))
        except tf.errors.DataLossError:
            continue
    return {metric: {epochs.get(step, step): value for step, value in values.items()}
            for metric, values in by_step.items()}
