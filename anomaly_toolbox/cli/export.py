"""``anomaly-box export``: a trained model as one function for plain TensorFlow, TFLite or ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import click

import anomaly_toolbox.cli.common as common
from anomaly_toolbox.cli.common import (CONTEXT, PATH, TRUST_MODEL, bad_input_as_exit_2,
                                        check_output_dir, main)
from anomaly_toolbox.quiet import stderr_captured


@main.command(context_settings=CONTEXT)
@click.option("--model", "model_path", required=True, type=PATH, help=common.MODEL_HELP)
@click.option("--format", "fmt", type=click.Choice(["saved_model", "tflite", "onnx"]),
              default="saved_model", show_default=True,
              help="saved_model: a TensorFlow SavedModel; tflite: TensorFlow Lite built-in ops; "
                   "onnx: ONNX via tf2onnx (pip install \"anomaly-toolbox[onnx]\").")
@click.option("--output", type=PATH,
              help="Directory to write (default: export/ beside the model's model/ folder).")
@TRUST_MODEL
def export(model_path: Path, fmt: str, output: Path | None, trust_model: bool) -> None:
    """Export a trained model as one function: raw uint8 images (or CSV rows as strings) in,
    anomaly scores and verdicts out, with the threshold and preprocessing in
    anomaly_toolbox_export_<format>.json beside it. Loads with plain TensorFlow.

    Example: anomaly-box export --model logs/egbad/.../0d6965c683 --format saved_model
    """
    if output is not None:
        check_output_dir("--output", output)
    common.start_tensorflow()
    from anomaly_toolbox.detector import load
    from anomaly_toolbox.export import export as export_model, metadata_file

    with bad_input_as_exit_2():
        model = load(common.model_run(model_path), trusted=trust_model)
        output = output or model.model_dir.parent / "export"
        check_output_dir("--output", output)
        with stderr_captured(replay_on_error=False):  # the converter's MLIR dump; the
            target = export_model(model, output, fmt)  # error message names the ops
    details = metadata_file(output, fmt)
    spec = json.loads(details.read_text(encoding="utf-8"))["input"]
    click.echo(f"Exported {model.experiment} as {fmt}: {target}\n"
               f"Input: {spec['name']}, {spec['dtype']} {spec['shape']}; output: score (float32) "
               f"and is_anomaly (score >= {model.threshold:.6g})\n"
               f"Details: {details}")
    if fmt == "saved_model":
        click.echo(f"Use: scorer = tf.saved_model.load('{target}'); "
                   f"scorer.score({spec['name']})['score']")
    elif fmt == "tflite":
        click.echo(f"Use (LiteRT, pip install ai-edge-litert; tf.lite.Interpreter is deprecated): "
                   f"ai_edge_litert.interpreter.Interpreter(model_path='{target}')"
                   f".get_signature_runner()({spec['name']}=...)['score']")
    else:
        click.echo(f"Use: onnxruntime.InferenceSession('{target}').run(['score'], "
                   f"{{'{spec['name']}': ...}})[0]")
