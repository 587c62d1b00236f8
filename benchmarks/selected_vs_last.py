"""Finished runs of encoder-generator methods: the selected model against the last checkpoint.

For each run directory (the one holding ``results.json``), scores the test split with the model
that validation selected (``model/``) and with the weights of the newest checkpoint (the end of
training), and prints per model the mean per-image L1 residual ``||x - G(E(x))||_1`` of normal and
anomalous test images, the residual's test AUROC and the method's own score's test AUROC. It shows
whether a method's score got worse with training and why (anomalies reconstructed as well as
normal images, or better). With ``--code-norms`` (methods with an encoder E and generator G) it
adds the mean code norm ``||E(x)||_2 / sqrt(N_z)`` of normal and anomalous test images and the
AUROC of the negative norm (a small code is anomalous: the joint model's Lo). The runs must
keep their checkpoints (``anomaly-box ... --keep-checkpoints``). Run:
python benchmarks/selected_vs_last.py RUN_DIR [RUN_DIR ...] [--data-dir DIR] [--code-norms]
"""

from __future__ import annotations

import json
from pathlib import Path

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import click  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from anomaly_toolbox.datasets import load_raw  # noqa: E402
from anomaly_toolbox.datasets.pipeline import cached_dataset, eval_batches  # noqa: E402
from anomaly_toolbox.datasets.splits import one_class_splits  # noqa: E402
from anomaly_toolbox.registry import trainer_class  # noqa: E402
from anomaly_toolbox.model_files import trainer_reconstructs  # noqa: E402
from anomaly_toolbox.trainers.base import EncoderGeneratorTrainer, Trainer  # noqa: E402
from anomaly_toolbox.training.engine import CHECKPOINT_DIR  # noqa: E402
from anomaly_toolbox.training.evaluation import MODEL_DIR, score_dataset  # noqa: E402
from anomaly_toolbox.trainers.jointgan import latent_norm_score  # noqa: E402
from anomaly_toolbox.trainers.losses import per_sample_l1  # noqa: E402


def residuals(trainer: Trainer, cached: tf.data.Dataset) -> np.ndarray:
    """Per-image L1 residuals ``||x - G(E(x))||_1``, ``[N]``, in split order."""
    return np.concatenate([
        per_sample_l1(x, trainer.reconstruct(x)).numpy()
        for x, _ in eval_batches(cached, trainer.scoring_batch_size())])


def code_norms(trainer: EncoderGeneratorTrainer, cached: tf.data.Dataset) -> np.ndarray:
    """Per-image code norms ``||E(x)||_2 / sqrt(N_z)`` (the joint model's -Lo), ``[N]``, in split
    order."""
    return np.concatenate([
        -latent_norm_score(tf.reshape(trainer.encode(x), [tf.shape(x)[0], -1])).numpy()
        for x, _ in eval_batches(cached, trainer.scoring_batch_size())])


def row(run: str, model: str, trainer: Trainer, cached: tf.data.Dataset,
        labels: np.ndarray, with_code_norms: bool) -> str:
    """One table row: mean residual of normal and anomalous images and both test AUROCs, then,
    if asked, the mean code norm of each and the AUROC of the negative norm."""
    residual = residuals(trainer, cached)
    scores = score_dataset(trainer, cached)
    cells = [run, model, f"{residual[labels == 0].mean():.0f}",
             f"{residual[labels == 1].mean():.0f}", f"{roc_auc_score(labels, residual):.3f}",
             f"{roc_auc_score(labels, scores):.3f}"]
    if with_code_norms:
        norms = code_norms(trainer, cached)
        cells += [f"{norms[labels == 0].mean():.3f}", f"{norms[labels == 1].mean():.3f}",
                  f"{roc_auc_score(labels, -norms):.3f}"]
    return "| " + " | ".join(cells) + " |"


@click.command()
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data-dir", default=None, help="The runs' --data-dir, if they used one.")
@click.option("--code-norms", "with_code_norms", is_flag=True,
              help="Add the mean code norm of normal and anomalous images and its AUROC.")
def main(run_dirs: tuple[Path, ...], data_dir: str | None, with_code_norms: bool) -> None:
    columns = ["run", "model", "residual, normal", "residual, anomalous", "AUROC of residual",
               "AUROC of score"]
    if with_code_norms:
        columns += ["code norm, normal", "code norm, anomalous", "AUROC of -norm"]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for run_dir in run_dirs:
        results_file = run_dir / "results.json"
        if not results_file.is_file():
            raise click.BadParameter(f"{run_dir} has no results.json; give a finished run's "
                                     f"directory (the one holding model/ and checkpoints/)")
        results = json.loads(results_file.read_text())
        cls = trainer_class(results["experiment"])
        raw = load_raw(results["dataset"], data_dir)
        splits = one_class_splits(raw, results["protocol"], results["label"],
                                  results["contamination"], results["val_share"], results["seed"])
        trainer = cls(results["hps"], sample_shape=raw.x_train.shape[1:], seed=results["seed"])
        if not trainer_reconstructs(trainer):
            raise click.BadParameter(f"{run_dir}: {results['experiment']} runs have no "
                                     f"reconstruction G(E(x)) or no checkpoints; give a run of "
                                     f"an encoder-generator method (egbad, cbigan, memgan, ...)")
        if with_code_norms and not isinstance(trainer, EncoderGeneratorTrainer):
            raise click.BadParameter(f"{run_dir}: {results['experiment']} has no encoder E "
                                     f"and generator G to take code norms of; leave out "
                                     f"--code-norms for this run")
        if not (run_dir / CHECKPOINT_DIR).is_dir():
            raise click.BadParameter(f"{run_dir} kept no {CHECKPOINT_DIR}/ (a completed run "
                                     f"drops them); train it with --keep-checkpoints")
        cached = cached_dataset(splits.test, trainer.image_size)
        name = f"{results['experiment']} class {results['label']}"
        trainer.load_model(run_dir / MODEL_DIR)
        print(row(name, f"selected ({results['selected_model']})", trainer, cached,
                  splits.test.y, with_code_norms))
        newest = tf.train.latest_checkpoint(run_dir / CHECKPOINT_DIR)
        trainer.engine.checkpoint().restore(newest).expect_partial()
        print(row(name, f"last checkpoint (epoch {int(trainer.epoch.numpy())})", trainer,
                  cached, splits.test.y, with_code_norms))


if __name__ == "__main__":
    main()
