"""``anomaly-box score``: a trained model's scores and verdicts for image files or CSV rows,
with an optional CSV of them and PNG anomaly maps."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

import anomaly_toolbox.cli.common as common
from anomaly_toolbox.cli.common import (CONTEXT, PATH, TRUST_MODEL, BadInput, bad_input_as_exit_2,
                                        check_output_dir, check_output_file, main)

if TYPE_CHECKING:
    import numpy as np


@main.command(context_settings=CONTEXT)
@click.option("--model", "model_path", required=True, type=PATH, help=common.MODEL_HELP)
@click.argument("images", nargs=-1, required=True, type=PATH)
@TRUST_MODEL
@click.option("--threshold", type=float, help="Call scores >= this anomalous (default: the "
                                              "threshold chosen on validation at training).")
@click.option("--fpr", type=float, help="Instead, the threshold with this false-positive rate "
                                        "on the normal validation images, in (0, 1).")
@click.option("--csv", "csv_path", type=PATH, help="Also write a CSV here.")
@click.option("--save-maps", type=PATH,
              help="Write a PNG per image here: input, reconstruction and the error map "
                   "over the input on one colour scale for all images (the validation "
                   "anomalies' 99th percentile), with score and verdict (reconstructing "
                   "methods); images of an MVTec AD layout get their ground_truth/ mask "
                   "outlined.")
def score(model_path: Path, images: tuple[Path, ...], trust_model: bool, threshold: float | None,
          fpr: float | None, csv_path: Path | None, save_maps: Path | None) -> None:
    """Score image files (or folders of them), or the rows of CSV files for a model trained on
    a table (--dataset csv), with a trained model.

    Prints per image or row: the anomaly score, the score normalised to [0, 1] by the
    validation minimum and maximum, and whether it is anomalous under the threshold.

    Example: anomaly-box score --model logs/egbad/.../0d6965c683 digits/ --csv scores.csv
    """
    if threshold is not None and fpr is not None:
        raise BadInput("give either --threshold or --fpr, not both")
    if threshold is not None and not math.isfinite(threshold):
        raise BadInput(f"--threshold must be a finite number, got {threshold}")
    if fpr is not None and not 0.0 < fpr < 1.0:
        raise BadInput(f"--fpr must be in (0, 1), got {fpr}")
    if csv_path is not None:
        check_output_file("--csv", csv_path)
    if save_maps is not None:
        check_output_dir("--save-maps", save_maps)
    common.start_tensorflow()
    from anomaly_toolbox.detector import load

    for path in images:
        if not path.exists():
            raise BadInput(f"{path} is neither an image file (or CSV of rows) nor a folder")
    with bad_input_as_exit_2():
        model_path = common.model_run(model_path)
        model = load(model_path, trusted=trust_model)
        if threshold is not None or fpr is not None:
            model.set_threshold(threshold=threshold, fpr=fpr)
        if model.table is not None:
            read, x = _table_rows(images, model.table)
        elif len(model.metadata["sample_shape"]) != 3:
            raise BadInput("this model was trained on kdd99 features, encoded by its loader "
                           "without a saved encoder; score encoded features with the Python "
                           "API (anomaly_toolbox.load(...).decision_function(array)), or train on "
                           "the table with --dataset csv to score raw rows here")
        else:
            read, x = _images(images, tuple(model.metadata["sample_shape"]))
        _check_outputs_spare_inputs(csv_path, save_maps, images, model_path, model.model_dir)
    scores = model.decision_function(x)
    normalised = model.normalise(scores)
    flags = scores >= model.threshold
    rows = [(str(path), float(s), float(n), bool(f))
            for path, s, n, f in zip(read, scores, normalised, flags)]
    kind = "row" if model.table is not None else "image"
    width = max(len(row[0]) for row in rows)
    click.echo(f"{kind:{width}s}  {'score':>12s}  {'normalised':>10s}  is_anomaly")
    for path, value, norm, flag in rows:
        click.echo(f"{path:{width}s}  {value:12.6g}  {norm:10.4f}  {flag}")
    click.echo(f"threshold {model.threshold:.6g} ({model.metadata['threshold_rule']}); "
               f"{int(flags.sum())} of {len(rows)} anomalous")
    if csv_path is not None:
        _write_scores_csv(csv_path, kind, rows)
    if save_maps is not None and not model.reconstructs:
        click.echo(f"No maps written: {model.experiment} does not reconstruct its inputs, so "
                   f"it has no anomaly maps (the scores above are complete); --save-maps works "
                   f"with the reconstructing methods on images")
    elif save_maps is not None:
        _save_maps(model, x, read, scores, save_maps)


def _check_outputs_spare_inputs(csv_path: Path | None, maps: Path | None,
                                given_paths: tuple[Path, ...], model_path: Path,
                                model_dir: Path) -> None:
    """Refuse a ``--csv`` file or ``--save-maps`` folder that is one of the given files (or in
    a given folder's files) or lies in the model (its run directory or model folder)."""
    def real(path: Path) -> Path:
        return Path(os.path.realpath(path))  # never raises, even on a looping link

    inputs = set()
    for given in given_paths:
        files = given.rglob("*") if given.is_dir() else [given]
        inputs |= {real(file) for file in files}
    protected = [real(model_dir), real(model_path)]
    for option, path in (("--csv", csv_path), ("--save-maps", maps)):
        if path is None:
            continue
        target = real(path)
        if target in inputs:
            raise BadInput(f"{option} {path} is one of the files being scored; writing there "
                           f"would destroy it. Choose another {option}")
        folders = protected + ([real(given) for given in given_paths if given.is_dir()]
                               if option == "--save-maps" else [])
        inside = next((folder for folder in folders
                       if target == folder or folder in target.parents), None)
        if inside is not None:
            raise BadInput(f"{option} {path} is inside {inside}, which is read here (the model "
                           f"or the images); writing there could destroy it. Choose a path "
                           f"outside it")


def _images(paths: tuple[Path, ...], shape: tuple[int, ...]) -> tuple[list[str], np.ndarray]:
    """Image files (folders searched) read for a model of ``shape``: their names and pixels."""
    from anomaly_toolbox.datasets.folder import IMAGE_SUFFIXES, read_images_for_model

    files = []
    for path in paths:
        named = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       ) if path.is_dir() else [path]
        files += [p for p in named if p.is_file()]
        for skipped in (p for p in named if not p.is_file()):
            click.echo(f"skipped (not a readable file: a broken or looping link, or a folder): "
                       f"{skipped}", err=True)
    if not files:
        raise BadInput(f"no image files ({', '.join(IMAGE_SUFFIXES)}) among the given paths")
    x, read, skipped = read_images_for_model(files, shape)
    for path in skipped:
        click.echo(f"skipped (not a readable image): {path}", err=True)
    if not read:
        raise BadInput("none of the given files could be read as an image")
    return [str(path) for path in read], x


def _table_rows(paths: tuple[Path, ...], table) -> tuple[list[str], np.ndarray]:
    """Rows of CSV files (folders searched for ``*.csv``) with the columns ``table`` encodes:
    names ``FILE:ROW`` (ROW counts data rows from 1) and the raw cells."""
    import numpy as np

    from anomaly_toolbox.datasets.table import TableError, read_table

    files = []
    for path in paths:
        files += sorted(path.rglob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise BadInput("no .csv files among the given paths; this model scores table rows")
    names, parts = [], []
    for file in files:
        header, rows = read_table(file)
        parts.append(table.select(header, rows, str(file)))
        try:
            table.transform(parts[-1])
        except TableError as error:
            raise TableError(f"{file}: {error}") from None
        names += [f"{file}:{row}" for row in range(1, len(rows) + 1)]
    return names, np.concatenate(parts)


def _write_scores_csv(path: Path, kind: str, rows: list[tuple[str, float, float, bool]]) -> None:
    import csv
    import io

    from anomaly_toolbox.results import write_text_atomically

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([kind, "score", "normalised_score", "is_anomaly"])
    writer.writerows((_spreadsheet_safe(name), *values) for name, *values in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, buffer.getvalue())
    click.echo(f"CSV: {path}")


def _spreadsheet_safe(cell: str) -> str:
    """A text cell that a spreadsheet shows as text, never runs as a formula: one that begins
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (OWASP's
    advice against CSV injection)."""
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _save_maps(model, x, paths: list[str], scores, directory: Path) -> None:
    import tensorflow as tf

    from anomaly_toolbox.datasets.folder import mask_file, read_masks
    from anomaly_toolbox.results import safe_name
    from anomaly_toolbox.summaries import anomaly_map_pictures, error_scale

    inputs, reconstructions = model.model_inputs(x), model.reconstruct(x)
    scale = model.metadata.get("map_scale")
    if scale is None:
        scale = error_scale(inputs, reconstructions)
        click.echo(f"This model predates stored map scales: the maps share the 99th percentile "
                   f"of these images' pixel errors ({scale:.3g}) as their scale")
    directory.mkdir(parents=True, exist_ok=True)
    masks = [None if file is None else read_masks([file], inputs.shape[1:3])[0]
             for file in (mask_file(Path(path)) for path in paths)]
    pictures = anomaly_map_pictures(inputs, reconstructions, scores, model.threshold, scale,
                                    masks)
    for index, (path, picture) in enumerate(zip(paths, pictures)):
        tf.io.write_file(str(directory / f"{index:05d}-{safe_name(Path(path).stem)}.png"),
                         tf.io.encode_png(picture))
    outlined = sum(mask is not None for mask in masks)
    click.echo(f"Maps: {directory} ({len(paths)} PNGs: input, reconstruction, |x - x_hat| over "
               f"the input on one colour scale, 0 to {scale:.3g}; score and verdict"
               + (f"; {outlined} with their ground-truth mask outlined, from the MVTec AD "
                  f"layout's ground_truth/" if outlined else "") + ")")
