"""Deployable scorers: one TensorFlow function from raw input to anomaly score.

``anomaly-box export`` writes a trained model as

* ``saved_model``: a TensorFlow SavedModel whose ``serving_default`` signature (and ``score``
  method) takes raw inputs and returns ``{"score": [N] float32, "is_anomaly": [N] bool}``;
* ``tflite``: the same function converted to TensorFlow Lite built-in ops. Scorers that need
  other TensorFlow ops (AnoGAN's latent search, the string parsing of table rows) are refused
  with the ops named: export them as ``saved_model``;
* ``onnx``: the same function converted by ``tf2onnx`` (the ``onnx`` extra:
  ``pip install "anomaly-toolbox[onnx]"``), for ONNX Runtime and other ONNX servers.

Raw inputs are what the user has, not what the networks see: uint8 images ``[N, H, W, C]`` of
the training images' shape (scaled to [-1, 1] and resized inside), or table rows as strings
``[N, C]`` in the encoder's column order (numbers scaled and text one-hot inside). Next to the
export, ``anomaly_toolbox_export_<format>.json`` (one per format, so exports in several formats
into one folder keep theirs) records the input, the output, the threshold and its rule, and the
preprocessing, so that a server needs nothing from this package.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf

from anomaly_toolbox.datasets.pipeline import to_model_range
from anomaly_toolbox.datasets.table import TableEncoder
from anomaly_toolbox.results import write_json_atomically

FORMATS = ("saved_model", "tflite", "onnx")
#: The input's first dimension in the ONNX model (tf2onnx would call it ``unk__<n>``).
ONNX_BATCH = "batch"
#: File (or directory) each format writes under the output directory.
TARGETS = {"saved_model": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
ONNX_OPSET = 17


def metadata_file(output: Path, fmt: str) -> Path:
    """The description of the ``fmt`` export written into ``output``."""
    return output / f"anomaly_toolbox_export_{fmt}.json"


class ExportError(ValueError):
    """The model cannot be exported in the asked format; the message says why and what to do."""


def table_encoding(table: TableEncoder) -> Callable[[tf.Tensor], tf.Tensor]:
    """The encoder as TensorFlow ops: string cells ``[N, C]`` -> float32 features ``[N, F]``
    (the same numbers as :meth:`TableEncoder.transform`)."""
    def encode(cells: tf.Tensor) -> tf.Tensor:
        parts = []
        for index, column in enumerate(table.columns):
            values = tf.strings.strip(cells[:, index])
            if column.kind == "numeric":
                span = column.high - column.low or 1.0
                numbers = tf.strings.to_number(values, tf.float64)
                parts.append(((numbers - column.low) / span)[:, None])
            else:
                categories = tf.constant(list(column.categories), tf.string)
                parts.append(tf.cast(tf.equal(values[:, None], categories[None, :]), tf.float64))
        return tf.cast(tf.concat(parts, axis=1), tf.float32)
    return encode


def _input(metadata: dict[str, Any], table: TableEncoder | None,
           image_size: int) -> tuple[tf.TensorSpec, Callable, dict[str, Any]]:
    """The raw input's spec, the preprocessing from it to the networks' input (images resized to
    ``image_size``), and both in words."""
    shape = metadata["sample_shape"]
    if table is not None:
        return (tf.TensorSpec([None, len(table.columns)], tf.string, name="rows"),
                table_encoding(table),
                {"input": {"name": "rows", "dtype": "string", "shape": [None, len(table.columns)],
                           "columns": table.names},
                 "preprocessing": "numeric columns (x - low) / (high - low), text columns "
                                  "one-hot over the training categories (see 'table')",
                 "table": table.to_dict()})
    if len(shape) == 1:
        return (tf.TensorSpec([None, *shape], tf.float32, name="features"), tf.identity,
                {"input": {"name": "features", "dtype": "float32", "shape": [None, *shape]},
                 "preprocessing": "none: features as the dataset's loader encoded them"})
    return (tf.TensorSpec([None, *shape], tf.uint8, name="images"),
            lambda images: to_model_range(images, image_size),
            {"input": {"name": "images", "dtype": "uint8", "shape": [None, *shape]},
             "preprocessing": f"x / 127.5 - 1, resized to {image_size}x{image_size} "
                              f"(bilinear, clipped to [-1, 1]) when the size differs"})


def scoring_function(detector: Any) -> tuple[tf.types.experimental.GenericFunction,
                                             dict[str, Any]]:
    """The end-to-end ``tf.function`` of a fitted detector and the export's metadata.

    Scores in chunks where a method's scoring batch is a limit (AnoGAN's latent search holds
    one batch); other methods score any batch in one call."""
    trainer, metadata = detector.trainer, detector.metadata
    spec, preprocess, described = _input(metadata, detector.table, trainer.image_size)
    threshold = float(metadata["threshold"])
    chunk = trainer.scoring_batch_size()

    def chunked(samples: tf.Tensor) -> tf.Tensor:
        count = tf.shape(samples)[0]
        chunks = (count + chunk - 1) // chunk
        parts = tf.TensorArray(tf.float32, size=chunks, infer_shape=False)
        for index in tf.range(chunks):
            parts = parts.write(index, trainer.score(samples[index * chunk:(index + 1) * chunk]))
        return tf.reshape(parts.concat(), [-1])

    scorer = chunked if trainer.scoring_batch_is_a_limit else trainer.score

    @tf.function(input_signature=[spec])
    def score(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        scores = tf.cast(scorer(preprocess(inputs)), tf.float32)
        return {"score": scores, "is_anomaly": scores >= threshold}

    exported = {
        "method": detector.experiment, **described,
        "output": {"score": "float32 [N], higher = more anomalous",
                   "is_anomaly": "bool [N], score >= threshold"},
        "threshold": threshold, "threshold_rule": metadata["threshold_rule"],
        "score_min": metadata["score_min"], "score_max": metadata["score_max"],
        "fingerprint": metadata.get("fingerprint"),
    }
    return score, exported


def export(detector: Any, output: Path, fmt: str) -> Path:
    """Write ``detector`` to ``output`` in format ``fmt`` (:data:`FORMATS`); returns the path of
    the SavedModel directory or the model file."""
    from anomaly_toolbox.trainers.shallow import ShallowTrainer

    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if isinstance(detector.trainer, ShallowTrainer):
        raise ExportError(f"{detector.experiment} is a scikit-learn model, not a TensorFlow "
                          f"network, so it has no TensorFlow export; use the model directory "
                          f"with anomaly_toolbox.load (or its skops file with skops.io)")
    score, exported = scoring_function(detector)
    concrete = score.get_concrete_function()
    module = tf.Module()
    module.networks = list(detector.trainer.scoring_networks.values())
    module.state = list(concrete.variables)
    module.score = score
    output.mkdir(parents=True, exist_ok=True)
    target = output / TARGETS[fmt]
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=output))
    try:
        if fmt == "onnx":
            written = staging / TARGETS[fmt]
            written.write_bytes(_onnx(score, concrete))
        else:
            written = staging / "saved_model"
            tf.saved_model.save(module, str(written),
                                signatures={"serving_default": concrete})
        if fmt == "tflite":
            (staging / TARGETS[fmt]).write_bytes(_tflite(written))
            written = staging / TARGETS[fmt]
        if target.is_dir():
            shutil.rmtree(target)
        written.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    exported["format"] = fmt
    write_json_atomically(metadata_file(output, fmt), exported)
    return target


def _tflite(saved_model: Path) -> bytes:
    """TensorFlow Lite flatbuffer of a SavedModel, built-in ops only, so that it runs on any
    TensorFlow Lite runtime (select TensorFlow ops need a runtime linked with them)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except Exception as error:  # noqa: BLE001 - the converter fails in many ways
        listed = re.search(r"TF Select ops: ([\w, ]+)", str(error))
        ops = listed.group(1).split(", ") if listed else sorted(
            set(re.findall(r"'tf\.(\w+)'", str(error))))
        reason = (f"it needs TensorFlow ops that TensorFlow Lite lacks: {', '.join(ops)}"
                  if ops else str(error).strip().splitlines()[0][:300])
        raise ExportError(f"TensorFlow Lite cannot convert this model ({reason}); export "
                          f"--format saved_model instead") from None


def _onnx(score: tf.types.experimental.GenericFunction,
          concrete: tf.types.experimental.ConcreteFunction) -> bytes:
    """ONNX model of the scoring function, converted by ``tf2onnx``."""
    try:
        import onnx
        import tf2onnx
    except ImportError:
        raise ExportError('ONNX export needs tf2onnx: pip install "anomaly-toolbox[onnx]"') \
            from None
    converter_log = logging.getLogger("tf2onnx")
    level = converter_log.level
    converter_log.setLevel(logging.CRITICAL)  # its optimizers log and skip what they cannot fold
    try:
        proto, _ = tf2onnx.convert.from_function(
            score, input_signature=concrete.structured_input_signature[0], opset=ONNX_OPSET)
        _name_batch_dimension(proto)
        onnx.checker.check_model(proto, full_check=True)
    except Exception as error:  # noqa: BLE001 - the converter fails in many ways
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(
            error).__name__
        raise ExportError(f"tf2onnx cannot convert this model to valid ONNX ({first}); export "
                          f"--format saved_model instead") from None
    finally:
        converter_log.setLevel(level)
    return proto.SerializeToString()


def _name_batch_dimension(proto: Any) -> None:
    """Call the first dimension of the input and of every output (one value per sample)
    :data:`ONNX_BATCH`, wherever the graph carries the names tf2onnx made up for them."""
    generated = set()
    for value in (*proto.graph.input, *proto.graph.output):
        first = value.type.tensor_type.shape.dim[0]
        if first.dim_param:
            generated.add(first.dim_param)
    for value in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in generated:
                dim.dim_param = ONNX_BATCH
