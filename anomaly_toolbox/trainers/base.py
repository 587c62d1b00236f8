"""The trainer base: everything that is the same for every method.

A method subclasses :class:`Trainer` and supplies only its networks, optimizers, train step, anomaly
score and reconstruction. The base owns the epoch loop (progress bar, TensorBoard scalars and image
strips), per-epoch checks on the labelled validation split and on the synthetic set, the best
model of each selection rule (``best_<rule>/``, ``.keras``), checkpoints that let an interrupted
run resume, the XLA switch, and the final test evaluation with a threshold chosen on validation
data (from its normal scores alone when a label-free rule chose the model).
"""

from __future__ import annotations

import abc
import contextlib
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.scalar import metadata as scalar_plugin

from anomaly_toolbox.datasets.pipeline import PreparedData, eval_batches, train_batches
from anomaly_toolbox.evaluation import ranking_metrics, test_metrics
from anomaly_toolbox.experiments import registered_name
from anomaly_toolbox.hps import HParam, Schema, check_batch_fits, schema_of
from anomaly_toolbox.timing import Stopwatch, eta_text
from anomaly_toolbox.trainers.checkpoints import EpochCheckpoints

IMAGES_IN_STRIP = 8
SCORING_BATCH_SIZE = 256
CHECKPOINT_DIR, MODEL_DIR = "checkpoints", "model"
#: Selection rules that rank the checks of a run (``last`` needs no check), each on its own set:
#: the labelled validation split, or the synthetic set made from its normal images.
CHECKED_RULES = ("validation", "synthetic")


def resolve_selection(requested: str, data: PreparedData, label_free: str) -> str:
    """The rule that chooses a run's final weights: ``requested`` (an hps ``selection`` value),
    with 'auto' read as 'validation' when validation holds labelled anomalies, else
    ``label_free`` (and 'last' when there are too few normal validation images for a synthetic
    set). ``ValueError`` when the requested rule cannot work on this data."""
    if requested == "auto":
        if data.has_validation_anomalies:
            return "validation"
        return "last" if label_free == "synthetic" and data.synthetic is None else label_free
    if requested == "validation" and not data.has_validation_anomalies:
        raise ValueError("selection 'validation' needs labelled anomalies in the validation "
                         "split and this one has none; use selection 'synthetic' or 'last' "
                         "(or 'auto')")
    if requested == "synthetic" and data.synthetic is None:
        raise ValueError("selection 'synthetic' needs at least two normal validation samples "
                         "to build its set from; raise --val-share or use selection 'last'")
    return requested


def adam(learning_rate: float | keras.optimizers.schedules.LearningRateSchedule, beta_1: float,
         beta_2: float = 0.999) -> keras.optimizers.Adam:
    """Adam with PyTorch's epsilon (1e-8), as the reference implementations use; the rate may
    be a schedule."""
    return keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=1e-8)


def published_epoch(epoch: tf.Variable, epoch_scale: tf.Variable) -> tf.Tensor:
    """The 0-based epoch of the published schedule that trained epoch ``epoch`` falls in
    (``epoch_scale``: published epochs per trained epoch, see :attr:`Trainer.epoch_scale`)."""
    return tf.floor(tf.cast(epoch, tf.float32) * epoch_scale)


class EpochMilestones(keras.optimizers.schedules.LearningRateSchedule):
    """lr = initial * rate ** (milestones reached): PyTorch's MultiStepLR counted in published
    epochs, so that when ``min_steps`` stretches a run on a small dataset the drops keep their
    share of training. A milestone m is reached from 0-based published epoch m on."""

    def __init__(self, initial: float, milestones: tuple[int, ...], rate: float,
                 epoch: tf.Variable, epoch_scale: tf.Variable) -> None:
        self.initial, self.milestones, self.rate = initial, milestones, rate
        self.epoch, self.epoch_scale = epoch, epoch_scale

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        reached = tf.reduce_sum(tf.cast(
            published_epoch(self.epoch, self.epoch_scale) >= tf.constant(
                self.milestones, tf.float32, shape=[len(self.milestones)]), tf.float32))
        return self.initial * tf.pow(self.rate, reached)


def other_metric(metric: str) -> str:
    """The other ranking metric: AUPRC for AUROC and the reverse."""
    return "auprc" if metric == "auroc" else "auroc"


@contextlib.contextmanager
def moving_statistics_kept(*models: keras.Model) -> Iterator[None]:
    """Calls of ``models`` inside this context leave their BatchNorm moving statistics as they were.

    In training mode such calls still normalise with their own batch statistics; only what is
    kept for inference stays untouched (e.g. decodes of synthetic codes that real inputs never
    resemble). Works eagerly and inside ``tf.function``, where reads and assigns of a variable
    run in program order.
    """
    variables = [variable for model in models for variable in model.non_trainable_variables]
    saved = [tf.convert_to_tensor(variable) for variable in variables]
    yield
    for variable, value in zip(variables, saved):
        variable.assign(value)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def step_scalar_writer() -> Callable[[list[dict[str, float]], int], None]:
    """A function that writes ``train/<name>`` scalars of consecutive steps to the default
    summary writer, one compiled call for a whole epoch instead of an eager op per value.

    Call it as ``write(history, first_step)`` with ``history[i]`` the losses of step
    ``first_step + i``. Make one per summary writer: the compiled graph keeps the writer that
    was the default when it was first called.
    """
    scalar_metadata = scalar_plugin.create_summary_metadata(display_name=None, description=None)

    @tf.function
    def write_columns(names: tuple[str, ...], values: tf.Tensor, steps: tf.Tensor) -> None:
        for column, name in enumerate(names):
            for index in tf.range(tf.shape(values)[0]):
                # tf.summary.write keeps the tag as given (scalar() would prefix the loop's
                # name scope); the metadata is what tf.summary.scalar attaches.
                tf.summary.write(f"train/{name}", values[index, column], step=steps[index],
                                 metadata=scalar_metadata)

    def write(history: list[dict[str, float]], first_step: int) -> None:
        if history:
            names = tuple(history[0])
            values = tf.constant([[losses[name] for name in names] for losses in history],
                                 tf.float32)
            write_columns(names, values,
                          tf.range(first_step, first_step + len(history), dtype=tf.int64))

    return write


#: A run whose first epoch predicts more than this many hours says so.
LONG_RUN_HOURS = 24.0


def _warn_if_long(started: float, epochs_left: int) -> None:
    """After the first epoch: say so when the rest of the run will take over
    :data:`LONG_RUN_HOURS` at this pace (a typo in --epochs, or a budget for a faster machine)."""
    hours = (time.perf_counter() - started) * epochs_left / 3600
    if hours > LONG_RUN_HOURS:
        print(f"Note: at this pace the remaining {epochs_left:,} epochs take about "
              f"{hours:,.0f} hours. Ctrl-C stops the run (the same command resumes it); "
              f"--epochs N sets a smaller budget.")


def _save_keras_atomically(model: keras.Model, path: Path) -> None:
    partial = path.with_name(path.stem + ".partial.keras")
    model.save(partial)
    os.replace(partial, path)


class ImageSides:
    """The image side a method's inputs are resized to, by channel count."""

    #: Side for one-channel images (the method's paper's size for MNIST).
    image_size: ClassVar[int]
    #: Side for three-channel images: 32, CIFAR-10's own, at which every paper here that reports
    #: RGB results ran (Zenati et al. also ran AnoGAN there); MVTec images are shrunk to it too.
    rgb_image_size: ClassVar[int] = 32

    @classmethod
    def side_for(cls, sample_shape: tuple[int, ...]) -> int:
        """The image side for samples of ``sample_shape``: ``rgb_image_size`` for three
        channels, else ``image_size``."""
        if len(sample_shape) == 3 and sample_shape[-1] == 3:
            return cls.rgb_image_size
        return cls.image_size


class Trainer(ImageSides, abc.ABC):
    """Base of every method's trainer.

    Subclasses set ``image_size``, ``hparams`` (their full schema, usually
    ``common_hparams(...) + method keys``) and implement the abstract methods; their name is
    the one they are registered under (:mod:`anomaly_toolbox.experiments`).
    """

    hparams: ClassVar[tuple[HParam, ...]]
    #: Whether :meth:`build_networks` has dense networks for tabular samples ``[B, F]``.
    supports_tabular: ClassVar[bool] = False
    #: Why the method cannot train under a multi-replica strategy (empty: it can).
    distribution_off_reason: ClassVar[str] = ""
    #: Why XLA stays off by default without a GPU (empty: on everywhere). On both CPUs of our
    #: machine kind, with oneDNN on (TensorFlow's default on the Intel Xeon, the toolbox's on
    #: the AVX2-only AMD EPYC: :mod:`anomaly_toolbox.cpu`), XLA train steps were no faster than
    #: plain graphs: whole runs on the Xeon (benchmarks/RESULTS.md, "XLA on a CPU"); on the EPYC
    #: GANomaly 329 against 274 ms a step, EGBAD 65 against 57 ms (issue 42). Compiling adds
    #: 2-20 s per run on top. (Only against plain graphs without oneDNN was XLA faster there,
    #: 1.3-1.7x: a user who turns oneDNN off may want ``--jit``.)
    cpu_jit_off_reason: ClassVar[str] = ("XLA train steps measured no faster than plain graphs "
                                         "with oneDNN on two x86 CPUs (AVX-512 and AVX2-only), "
                                         "and compiling adds 2-20 s (benchmarks/RESULTS.md)")
    #: The rule ``selection`` 'auto' uses when validation has no labelled anomalies: the
    #: label-free rule that measured best for the method (benchmarks/RESULTS.md, "Numbers
    #: without labels").
    label_free_selection: ClassVar[str] = "synthetic"

    def __init__(self, hps: dict[str, Any], sample_shape: tuple[int, ...], seed: int) -> None:
        """``sample_shape``: one raw sample's shape, ``(H, W, C)`` for images (resized to
        ``image_size``) or ``(F,)`` for tabular data (only where ``supports_tabular``). XLA is
        on when the hps key ``jit_compile`` is true (callers resolve its "auto", None)."""
        self.hps = hps
        #: Each checked rule's best scoring weights found by :meth:`fit` in this process.
        self._rule_weights: dict[str, dict[str, list[np.ndarray]]] = {}
        jit_compile = bool(hps.get("jit_compile"))
        #: The tf.distribute strategy whose scope the trainer was built in (the default one
        #: outside any): its networks, optimizers and EMA live on all its replicas.
        self.strategy = tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        if self.replicas > 1 and self.distribution_off_reason:
            raise ValueError(f"{self.name} does not train with --distribute: "
                             f"{self.distribution_off_reason}")
        if self.replicas > 1 and hps["batch_size"] % self.replicas:
            raise ValueError(f"batch_size {hps['batch_size']} does not split evenly over "
                             f"{self.replicas} replicas; choose a multiple of {self.replicas}")
        self.tabular = len(sample_shape) == 1
        if self.tabular and not self.supports_tabular:
            raise ValueError(f"{self.name} works on images only and this dataset is tabular; "
                             f"use one of the methods with a dense variant (egbad, ganomaly) or "
                             f"a scikit-learn baseline (ocsvm, iforest, kde)")
        #: The side of this instance's images (see :meth:`side_for`).
        self.image_size = self.side_for(sample_shape)
        self.image_shape = (self.image_size, self.image_size, sample_shape[-1])
        #: What the networks take per sample: ``image_shape``, or ``(F,)`` for tabular data.
        self.input_shape = tuple(sample_shape) if self.tabular else self.image_shape
        self.seed = seed
        keras.utils.set_random_seed(seed)
        self.networks: dict[str, keras.Model] = self._build_networks_in_precision(
            hps["mixed_precision"])
        self.scoring_networks = self.networks
        if hps["ema_decay"] > 0:
            self.scoring_networks = {name: keras.models.clone_model(net)
                                     for name, net in self.networks.items()}
            for name, net in self.networks.items():
                self.scoring_networks[name].set_weights(net.get_weights())
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        #: Published epochs per trained epoch: ``epochs / planned_epochs`` (1 unless min_steps
        #: stretches training), for schedules stated in published epochs (AMA's).
        self.epoch_scale = tf.Variable(1.0, dtype=tf.float32, trainable=False, name="epoch_scale")
        self.epochs_planned = hps["epochs"]
        #: Whether scoring shows its progress (the command line's final scoring sets it).
        self.show_scoring_progress = False
        self.optimizers: dict[str, keras.optimizers.Optimizer] = {}
        self._updated_variables: dict[str, list[tf.Variable]] = {}
        for name, (optimizer, network_names) in self.build_optimizers().items():
            variables = [v for net in network_names for v in self.networks[net].trainable_variables]
            optimizer.build(variables)
            self.optimizers[name] = optimizer
            self._updated_variables[name] = variables
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        #: Per checked rule: the best ``selection_metric`` so far, the other ranking metric at
        #: that check (which breaks ties, see :meth:`_improves`) and the check's epoch.
        self.best = {rule: tf.Variable(-np.inf, dtype=tf.float64, trainable=False,
                                       name=f"best_{rule}") for rule in CHECKED_RULES}
        self.best_tiebreak = {rule: tf.Variable(-np.inf, dtype=tf.float64, trainable=False,
                                                name=f"best_{rule}_tiebreak")
                              for rule in CHECKED_RULES}
        self.best_epoch = {rule: tf.Variable(0, dtype=tf.int64, trainable=False,
                                             name=f"best_{rule}_epoch") for rule in CHECKED_RULES}
        #: The rule that chooses the final weights, resolved by :meth:`fit` from the data.
        self.selection_rule = hps.get("selection", "validation")
        #: The scoring weights training ended with, kept when another rule's are loaded.
        self._last_weights: dict[str, list[np.ndarray]] | None = None
        self.stopwatch = Stopwatch()
        #: Whether the train step has run once (its first call traces and compiles it).
        self._traced = False
        self._xla_or_graph_step = tf.function(self._train_step_and_average,
                                              jit_compile=jit_compile)
        self.compiled_train_step = tf.function(self._draw_noise_and_step)
        self.compiled_score = tf.function(self.score, jit_compile=jit_compile,
                                           reduce_retracing=True)
        self.compiled_reconstruct = tf.function(self.reconstruct, reduce_retracing=True)
        self._compiled_variants: dict[str, Callable[[tf.Tensor], tf.Tensor]] | None = None

    @classmethod
    def schema(cls) -> Schema:
        return schema_of(*cls.hparams)

    @property
    def name(self) -> str:
        return registered_name(type(self))

    @classmethod
    def jit_by_default(cls, gpu_visible: bool) -> bool:
        """XLA when the user does not say: on with a GPU; on a CPU only for a method without a
        :attr:`cpu_jit_off_reason`. Random draws happen outside the compiled step, so a seed
        reproduces a run on one machine with XLA on as well (tested for every method)."""
        return gpu_visible or not cls.cpu_jit_off_reason

    def _build_networks_in_precision(self, mixed: bool) -> dict[str, keras.Model]:
        """:meth:`build_networks`, under Keras' ``mixed_bfloat16`` policy when ``mixed``.

        Each mixed network gets a float32 cast on every output, so losses and scores stay float32
        whatever the method computes from them (Keras' advice for mixed-precision outputs).
        """
        if not mixed:
            return self.build_networks()
        previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
        try:
            networks = self.build_networks()
        finally:
            keras.mixed_precision.set_dtype_policy(previous)
        return {name: keras.Model(net.input, keras.tree.map_structure(
                    lambda output: keras.layers.Activation("linear", dtype="float32")(output),
                    net.output), name=net.name)
                for name, net in networks.items()}

    # ----------------------------------------------------------------- what a method provides
    @abc.abstractmethod
    def build_networks(self) -> dict[str, keras.Model]:
        """The method's networks by name (saved as ``<name>.keras``)."""

    @abc.abstractmethod
    def build_optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        """Optimizer name -> (optimizer, names of the networks whose weights it updates)."""

    def sample_noise(self, batch_size: int, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """Random inputs of one train step, drawn from the stateless ``seed`` ``[2]``.

        Drawn outside the XLA cluster on purpose: XLA lowers stateless RNG ops differently, so
        the same seed would give other numbers with ``jit_compile`` on. Default: no noise.
        """
        return {}

    @abc.abstractmethod
    def train_step(self, images: tf.Tensor, noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One update on a batch ``[B, S, S, C]`` with ``noise`` from :meth:`sample_noise`.

        Returns scalar losses by name.
        """

    @abc.abstractmethod
    def score(self, images: tf.Tensor) -> tf.Tensor:
        """Anomaly score per image ``[B]``, higher = more anomalous.

        Uses ``self.scoring_networks`` in inference mode (``training=False``).
        """

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor | None:
        """Reconstruction ``[B, S, S, C]`` by ``self.scoring_networks``, shown in TensorBoard
        next to its input; None for methods that do not reconstruct."""
        return None

    def before_training(self, data: PreparedData) -> None:
        """Set up what training needs from the data before the first step of a fresh run
        (nothing by default; a resumed run restores it from the checkpoint)."""

    # --------------------------------------------------------------- helpers for methods
    def adam_per_network(self, names: tuple[str, ...], beta_2: float = 0.999,
                         ) -> dict[str, tuple[keras.optimizers.Optimizer, tuple[str, ...]]]:
        """One Adam (hps learning_rate and beta_1) per network, named after it."""
        return {name: (adam(self.hps["learning_rate"], self.hps["beta_1"], beta_2), (name,))
                for name in names}

    def standard_normal_codes(self, batch_size: int, seed: tf.Tensor) -> tf.Tensor:
        """z ~ N(0, I) ``[batch_size, latent_dim]`` from a stateless seed."""
        return tf.random.stateless_normal([batch_size, self.hps["latent_dim"]], seed)

    def apply_gradients(self, tape: tf.GradientTape, losses: dict[str, tf.Tensor]) -> None:
        """Differentiate each optimizer's loss w.r.t. its own networks only, then update all.

        All gradients are taken before any weight changes (a simultaneous update).
        """
        updates = []
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        for name, loss in losses.items():
            variables = self._updated_variables[name]
            # Replicas' gradients are summed: each scales its batch mean to the global mean.
            gradients = tape.gradient(loss, variables) if replicas == 1 else [
                None if g is None else g / replicas for g in tape.gradient(loss, variables)]
            updates.append((self.optimizers[name], gradients, variables))
        for optimizer, gradients, variables in updates:
            optimizer.apply_gradients(zip(gradients, variables))

    def _draw_noise_and_step(self, images: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """One step on the global batch; under a multi-replica strategy each replica takes its
        slice of the batch and of the noise, and the losses are averaged over replicas."""
        noise = self.sample_noise(images.shape[0], seed)
        if self.replicas == 1:
            return self._xla_or_graph_step(images, noise)
        losses = self.strategy.run(self._replica_step, args=(images, noise))
        self._average_weights()  # once, across replicas, on the weights they now share
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                for name, value in losses.items()}

    def _replica_step(self, images: tf.Tensor,
                      noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """This replica's share of a global step: its slice of the batch, and of every noise
        tensor along its first axis of the batch's length (noise without one, drawn once per
        step, is the same on every replica)."""
        batch = images.shape[0]
        # The method's step itself: a nested (XLA) tf.function cannot hold the gradients'
        # all-reduce.
        return self.train_step(self._replica_share(images, batch),
                               {k: self._replica_share(v, batch) for k, v in noise.items()})

    def _replica_share(self, tensor: tf.Tensor, batch: int) -> tf.Tensor:
        """This replica's slice of ``tensor`` along its first axis of length ``batch`` (the
        whole tensor if it has none)."""
        if batch not in tensor.shape:
            return tensor
        share = batch // self.replicas
        start = tf.distribute.get_replica_context().replica_id_in_sync_group * share
        axis = list(tensor.shape).index(batch)
        return tf.gather(tensor, tf.range(start, start + share), axis=axis)

    def on_replicas(self, step: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor) -> tf.Tensor:
        """``step(images)`` on the global batch; under a multi-replica strategy each replica runs
        it on its slice (``step`` divides its gradients by :attr:`replicas`, as
        :meth:`apply_gradients` does) and the returned losses are averaged."""
        if self.replicas == 1:
            return step(images)
        losses = self.strategy.run(
            lambda batch: step(self._replica_share(batch, images.shape[0])), args=(images,))
        return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)

    def _train_step_and_average(self, images: tf.Tensor,
                                noise: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The method's step, then the weight EMA: w_ema <- d w_ema + (1 - d) w.

        d = min(ema_decay, (1 + n) / (10 + n)) at step n, as tf.train.ExponentialMovingAverage,
        so that early averages are not dominated by the initial weights.
        """
        losses = self.train_step(images, noise)
        self._average_weights()
        return losses

    def _average_weights(self) -> None:
        """The weight EMA update (nothing without ``ema_decay``)."""
        if self.scoring_networks is not self.networks:
            steps = tf.cast(self.step, tf.float32)
            decay = tf.minimum(self.hps["ema_decay"], (1.0 + steps) / (10.0 + steps))
            for name, net in self.networks.items():
                for average, weight in zip(self.scoring_networks[name].weights, net.weights):
                    average.assign(decay * average + (1.0 - decay) * weight)

    # ------------------------------------------------------------------------ the epoch loop
    def checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(
            epoch=self.epoch, step=self.step,
            **{f"best_{rule}": variable for rule, variable in self.best.items()},
            **{f"best_{rule}_tiebreak": variable for rule, variable in self.best_tiebreak.items()},
            **{f"best_{rule}_epoch": variable for rule, variable in self.best_epoch.items()},
            **{f"network_{name}": net for name, net in self.networks.items()},
            **{f"scoring_{name}": net for name, net in self.scoring_networks.items()
               if net is not self.networks[name]},
            **{f"optimizer_{name}": opt for name, opt in self.optimizers.items()})

    def score_dataset(self, cached: tf.data.Dataset,
                      scorer: Callable[[tf.Tensor], tf.Tensor] | None = None) -> np.ndarray:
        """``scorer`` (default: the compiled :meth:`score`) of every image of a cached split,
        in order, concatenated along the batch axis."""
        scorer = scorer or self.compiled_score
        batches = eval_batches(cached, self.scoring_batch_size())
        if not self.show_scoring_progress:
            return np.concatenate([scorer(x).numpy() for x, _ in batches])
        total, started, parts = int(cached.cardinality()), time.perf_counter(), []
        unit = "row" if self.tabular else "image"
        progress = keras.utils.Progbar(total, verbose=1 if sys.stdout.isatty() else 0,
                                       unit_name=unit)
        for x, _ in batches:
            parts.append(scorer(x).numpy())
            progress.add(len(parts[-1]))
        print(f"scored {total} {unit}s ({eta_text(started, 1, 0)})")
        return np.concatenate(parts)

    #: Whether :meth:`score` takes at most :meth:`scoring_batch_size` samples per call (a
    #: method whose scoring state is sized to one batch).
    scoring_batch_is_a_limit: ClassVar[bool] = False

    def scoring_batch_size(self) -> int:
        """Images per scoring call: at least :data:`SCORING_BATCH_SIZE`, as scoring is inference
        only and fewer, larger calls cost less Python and dispatch time per image."""
        return max(self.hps["batch_size"], SCORING_BATCH_SIZE)

    def fit(self, data: PreparedData, run_dir: Path, writer: tf.summary.SummaryWriter,
            progress_bar: bool = True) -> None:
        """Train for :meth:`planned_epochs` epochs, resuming from ``run_dir/checkpoints`` if
        present."""
        self.selection_rule = resolve_selection(self.hps["selection"], data,
                                                self.label_free_selection)
        self._last_weights = None
        checkpoint = self.checkpoint()
        self._held_best: dict[str, dict[str, list[np.ndarray]]] = {}
        self._rule_weights = {}
        checkpoints = EpochCheckpoints(checkpoint, run_dir / CHECKPOINT_DIR,
                                       before_write=lambda: self._write_held_best(run_dir))
        check_batch_fits(self.hps, data.train_size)
        steps = data.train_size // self.hps["batch_size"]
        self.epochs_planned = epochs = self.planned_epochs(steps)
        self.epoch_scale.assign(self.hps["epochs"] / epochs)
        if epochs > self.hps["epochs"]:
            print(f"Training {epochs} epochs, not {self.hps['epochs']}: min_steps "
                  f"{self.hps['min_steps']} at {steps} steps per epoch (give epochs alone to "
                  f"train exactly that many)")
        if checkpoints.saved:
            restored = self._restore_newest_readable(checkpoint, checkpoints.saved)
            print(f"Resuming from {restored} "
                  f"(epoch {int(self.epoch.numpy())} of {epochs} done)")
        else:
            self.before_training(data)
        strip = next(iter(eval_batches(data.validation, IMAGES_IN_STRIP)))[0]
        clock = self.stopwatch.measure
        self._write_step_scalars = step_scalar_writer()
        validate_every = math.ceil(epochs / self.hps["epochs"])
        started, first_epoch = time.perf_counter(), int(self.epoch.numpy())
        with writer.as_default():
            try:
                while int(self.epoch.numpy()) < epochs:
                    epoch = int(self.epoch.numpy())
                    self._train_epoch(data, epoch, steps, progress_bar and sys.stdout.isatty())
                    shown = "trained"
                    if (epoch + 1) % validate_every == 0 or epoch + 1 == epochs:
                        shown = "validation " + self._validate_and_hold_best(data, strip,
                                                                             epoch + 1)
                    self.epoch.assign_add(1)
                    with clock("checkpoints_and_saves"):
                        checkpoints.epoch_finished(last=int(self.epoch.numpy()) == epochs)
                    with clock("tensorboard"):
                        writer.flush()
                    print(f"epoch {epoch + 1}/{epochs}: {shown} ("
                          f"{eta_text(started, epoch + 1 - first_epoch, epochs - epoch - 1)})")
                    if epoch == first_epoch:
                        _warn_if_long(started, epochs - epoch - 1)
            except BaseException:
                with clock("checkpoints_and_saves"):
                    checkpoints.write_held()
                raise

    def _validate_and_hold_best(self, data: PreparedData, strip: tf.Tensor, epoch: int) -> str:
        """Validation and synthetic-set metrics and TensorBoard summaries after ``epoch``
        (1-based) epochs; the weights are held as the best model of every checked rule they
        improve, when :meth:`selectable_after` allows. Returns the metrics as text for the
        console."""
        clock = self.stopwatch.measure
        with clock("validation"):
            checks = {"validation": self.validation_metrics(data),
                      "synthetic": self.synthetic_metrics(data)}
            logged = {**checks["validation"], **self.variant_validation_metrics(data)}
        selectable = epoch == self.epochs_planned or self.selectable_after(epoch)
        improved = [rule for rule, metrics in checks.items()
                    if metrics and selectable and self._improves(rule, metrics)]
        for metric, value in logged.items():
            tf.summary.scalar(f"validation/{metric}", value, step=epoch)
        for metric, value in checks["synthetic"].items():
            tf.summary.scalar(f"synthetic/{metric}", value, step=epoch)
        metric = self.hps["selection_metric"]
        for rule in improved:
            self.best[rule].assign(checks[rule][metric])
            self.best_tiebreak[rule].assign(checks[rule][other_metric(metric)])
            self.best_epoch[rule].assign(epoch)
        with clock("checkpoints_and_saves"):
            self._hold_best(improved)
        with clock("tensorboard"):
            reconstruction = self.compiled_reconstruct(strip)
            if reconstruction is not None and not self.tabular:
                pairs = (tf.concat([strip, reconstruction], axis=2) + 1.0) / 2
                tf.summary.image("validation/input_vs_reconstruction", pairs, step=epoch,
                                 max_outputs=IMAGES_IN_STRIP)
            self.epoch_summaries(epoch)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in logged.items()) or "no anomalies"
        if checks["synthetic"]:
            shown += "; synthetic " + ", ".join(f"{k} {v:.4f}"
                                                for k, v in checks["synthetic"].items())
        return shown if selectable else f"{shown} (not yet selectable)"

    def selectable_after(self, epoch: int) -> bool:
        """Whether the weights after trained epoch ``epoch`` (1-based) may become the selected
        model; every check may by default, and the last one always may."""
        return True

    def planned_epochs(self, steps_per_epoch: int) -> int:
        """Epochs this run trains: ``max(epochs, ceil(min_steps / steps_per_epoch))``. A run
        stretched past ``epochs`` validates every ``ceil(planned / epochs)`` epochs (and after the
        last), about as often as the published schedule would."""
        return max(self.hps["epochs"], math.ceil(self.hps["min_steps"] / steps_per_epoch))

    @staticmethod
    def _restore_newest_readable(checkpoint: tf.train.Checkpoint, paths: list[str]) -> str:
        """Restore the newest checkpoint that reads back whole; an unreadable one (a truncated
        file after a crash or a full disk) falls back to the one before."""
        problems = []
        for path in reversed(paths):
            try:
                checkpoint.restore(path).assert_existing_objects_matched()
                return path
            except Exception as error:  # noqa: BLE001 - TF reports damage as many error types
                print(f"Checkpoint {path} is unreadable ({type(error).__name__}); trying the "
                      f"one before")
                problems.append(path)
        raise ValueError(f"no checkpoint of this run can be read ({', '.join(problems)}); run "
                         f"the same command with --restart to train it from scratch")

    def divergence_hint(self) -> str:
        """Which hps key most likely made the losses diverge, and what to do about it."""
        hint = (f"the likely cause is the hps key 'learning_rate' ({self.hps['learning_rate']:g}):"
                f" lower it, e.g. to {self.hps['learning_rate'] / 10:g}")
        if self.hps.get("mixed_precision"):
            hint += ", or set 'mixed_precision' to false"
        return hint

    def _train_epoch(self, data: PreparedData, epoch: int, steps: int, progress_bar: bool) -> None:
        """One epoch of train steps; each step's losses go to TensorBoard at the epoch's end
        (or when a loss diverges), in one compiled call rather than one eager op per value."""
        progress = keras.utils.Progbar(steps, verbose=1 if progress_bar else 0, unit_name="step")
        batches = train_batches(data.train_samples, self.hps["batch_size"], self.seed, epoch)
        first_step, history = int(self.step.numpy()), []
        try:
            for index, images in enumerate(batches):
                part = "train_steps" if self._traced else "tracing_and_compilation"
                with self.stopwatch.measure(part):
                    seed = tf.stack([tf.constant(self.seed, tf.int64), self.step.read_value()])
                    losses = {name: float(value)
                              for name, value in self.compiled_train_step(images, seed).items()}
                self._traced = True
                history.append(losses)
                for name, value in losses.items():
                    if not math.isfinite(value):
                        raise TrainingDiverged(
                            f"loss '{name}' became {value} at step {int(self.step.numpy())} (epoch "
                            f"{epoch + 1}); the last good checkpoint is kept. "
                            f"{self.divergence_hint()}.")
                self.step.assign_add(1)
                progress.update(index + 1, list(losses.items()))
        finally:
            with self.stopwatch.measure("tensorboard"):
                self._write_step_scalars(history, first_step)

    def _hold_best(self, improved: list[str]) -> None:
        """Keep in memory this epoch's scoring weights for every rule that improved; they are
        written to ``best_<rule>/`` with the next checkpoint (:meth:`_write_held_best`) and
        stay in memory for :meth:`use_rule`."""
        if improved:
            weights = {name: net.get_weights() for name, net in self.scoring_networks.items()}
            self._held_best.update(dict.fromkeys(improved, weights))
            self._rule_weights.update(dict.fromkeys(improved, weights))

    def _write_held_best(self, run_dir: Path) -> None:
        """Save each held set of weights to ``best_<rule>/`` once, as ``.keras`` files, and copy
        them for every other rule that holds the same set (a copy costs far less than a save);
        the networks keep their current weights."""
        if not self._held_best:
            return
        current = {name: net.get_weights() for name, net in self.scoring_networks.items()}
        written: dict[int, Path] = {}
        for rule, weights in self._held_best.items():
            target = run_dir / f"best_{rule}"
            if id(weights) not in written:
                for name, net in self.scoring_networks.items():
                    net.set_weights(weights[name])
                self.save_networks(target)
                written[id(weights)] = target
                continue
            target.mkdir(parents=True, exist_ok=True)
            for name in self.scoring_networks:
                partial = target / f"{name}.partial.keras"
                shutil.copyfile(written[id(weights)] / f"{name}.keras", partial)
                os.replace(partial, target / f"{name}.keras")
        for name, net in self.scoring_networks.items():
            net.set_weights(current[name])
        self._held_best = {}

    def _improves(self, rule: str, metrics: dict[str, float]) -> bool:
        """Whether this check beats ``rule``'s best so far on ``selection_metric``: a higher
        value, or the same value with the other ranking metric at least as high (so on a full
        tie, the later epoch wins: a small validation split often reaches 1.0 early, and later
        weights trained more)."""
        metric = self.hps["selection_metric"]
        candidate = (metrics[metric], metrics[other_metric(metric)])
        best = (self.best[rule].numpy(), self.best_tiebreak[rule].numpy())
        return candidate[0] > best[0] or (candidate[0] == best[0] and candidate[1] >= best[1])

    def check_subset(self) -> int | None:
        """How many samples of each set a per-epoch check scores (None: all of them)."""
        return None

    def _check_metrics(self, cached: tf.data.Dataset, labels: np.ndarray) -> dict[str, float]:
        """AUROC/AUPRC of the first :meth:`check_subset` samples of a cached set."""
        subset = self.check_subset()
        if subset is not None:
            cached, labels = cached.take(subset), labels[:subset]
        return ranking_metrics(labels, self.score_dataset(cached))

    def validation_metrics(self, data: PreparedData) -> dict[str, float]:
        """Per-epoch validation AUROC/AUPRC of the labelled validation split (empty without
        anomalies). Called before :meth:`synthetic_metrics` at every check, so a method can
        refit per-check scoring state here (AMA's Gaussian)."""
        return self._check_metrics(data.validation, data.validation_labels)

    def synthetic_metrics(self, data: PreparedData) -> dict[str, float]:
        """Per-epoch AUROC/AUPRC on the synthetic set (normal validation images against
        synthetic anomalies; no validation label, no real anomaly); empty without a set."""
        if data.synthetic is None:
            return {}
        return self._check_metrics(data.synthetic, data.synthetic_labels)

    def variant_validation_metrics(self, data: PreparedData) -> dict[str, float]:
        """Validation AUROC/AUPRC of each of :meth:`score_variants` as ``<name>_<metric>``,
        logged beside the selection metrics at every check (they do not select the model)."""
        return {f"{name}_{key}": value
                for name, scorer in self.compiled_variants().items()
                for key, value in ranking_metrics(
                    data.validation_labels, self.score_dataset(data.validation, scorer)).items()}

    def epoch_summaries(self, epoch: int) -> None:
        """Extra TensorBoard summaries a method writes after each epoch (none by default)."""

    def selection_note(self) -> str | None:
        """How model selection deviates from scoring the whole validation split, if it does."""
        return None

    # ------------------------------------------------------------------- models and testing
    def save_networks(self, directory: Path) -> None:
        """Save the scoring networks (EMA weights when enabled) as ``<name>.keras``."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, net in self.scoring_networks.items():
            _save_keras_atomically(net, directory / f"{name}.keras")

    def load_networks(self, directory: Path) -> None:
        """Load ``<name>.keras`` weights into the scoring networks."""
        for name, net in self.scoring_networks.items():
            net.load_weights(directory / f"{name}.keras")

    def load_model(self, model_dir: Path, trusted: bool = False) -> None:
        """Load a final model saved by :meth:`select_final_model` for scoring. Only the weights
        are read from the ``.keras`` files, never their configuration (no layer, Lambda or
        other, is rebuilt from a file), so nothing in them runs, ``trusted`` or not."""
        self.load_networks(model_dir)

    def available_rules(self, run_dir: Path) -> list[str]:
        """The selection rules this run can report: every checked rule that held a best check
        (saved under ``best_<rule>/``), and ``last``."""
        return [rule for rule in CHECKED_RULES if (run_dir / f"best_{rule}").is_dir()] + ["last"]

    def use_rule(self, rule: str, run_dir: Path) -> str:
        """Load the weights ``rule`` chooses into the scoring networks (``last``: the weights
        the training ended with, kept in memory the first time another rule is loaded; a best
        check held in memory since it was found, else read from ``best_<rule>/``, as after a
        resume: repeated Keras file loads in one process were seen to corrupt TensorFlow's
        AutoGraph conversions of later trainers); returns how they were chosen."""
        if self._last_weights is None:
            self._last_weights = {name: net.get_weights()
                                  for name, net in self.scoring_networks.items()}
        if rule == "last":
            for name, net in self.scoring_networks.items():
                net.set_weights(self._last_weights[name])
            return f"last: the weights after epoch {int(self.epoch.numpy())}"
        held = self._rule_weights.get(rule)
        if held is None:
            self.load_networks(run_dir / f"best_{rule}")
        else:
            for name, net in self.scoring_networks.items():
                net.set_weights(held[name])
        metric = self.hps["selection_metric"]
        return (f"{rule}: best {rule} {metric} ({self.best[rule].numpy():.4f}) after epoch "
                f"{int(self.best_epoch[rule].numpy())}")

    def rule_epoch(self, rule: str) -> int:
        """The epoch (1-based) whose weights ``rule`` chose."""
        return int((self.epoch if rule == "last" else self.best_epoch[rule]).numpy())

    def select_final_model(self, run_dir: Path, data: PreparedData) -> str:
        """Load the weights :attr:`selection_rule` chooses, let the method :meth:`calibrate` on
        them, and save them to ``model/``. Returns which weights were selected (and how)."""
        if self.selection_rule != "last" and not (run_dir / f"best_{self.selection_rule}").is_dir():
            raise ValueError(f"selection '{self.selection_rule}' found no check to choose from")
        chosen = self.use_rule(self.selection_rule, run_dir)
        self.save_networks(run_dir / MODEL_DIR)
        self.calibrate(data, run_dir / MODEL_DIR)
        return chosen

    def calibrate(self, data: PreparedData, model_dir: Path | None) -> None:
        """Fit what scoring needs beyond the weights on training data and store it in
        ``model_dir`` when one is given (nothing by default)."""

    def by_selection(self, run_dir: Path, data: PreparedData,
                     chosen_test: dict[str, float]) -> dict[str, dict[str, Any]]:
        """For every available rule: the epoch it chose, that model's validation and synthetic
        metrics, and its test metrics (``chosen_test`` for :attr:`selection_rule`, whose model
        comes last, so that it is the one loaded and calibrated at the end). Label-free rules
        get the label-free threshold. Rules that chose the same epoch chose the same weights:
        their splits are scored once (a short run's three rules often share its last epoch)."""
        report, shown = {}, self.show_scoring_progress
        self.show_scoring_progress = False
        scored: dict[int, dict[str, Any]] = {}
        for rule in sorted(self.available_rules(run_dir), key=lambda r: r == self.selection_rule):
            self.use_rule(rule, run_dir)
            self.calibrate(data, None)
            epoch = self.rule_epoch(rule)
            if epoch not in scored:
                validation_scores = self.final_scores(data.validation)
                scored[epoch] = {
                    "validation_scores": validation_scores,
                    "validation": ranking_metrics(data.validation_labels, validation_scores),
                    "synthetic": ({} if data.synthetic is None else ranking_metrics(
                        data.synthetic_labels, self.final_scores(data.synthetic)))}
            same = scored[epoch]
            if rule != self.selection_rule and "test_scores" not in same:
                same["test_scores"] = self.final_scores(data.test)
            report[rule] = {
                "epoch": epoch, "validation": same["validation"], "synthetic": same["synthetic"],
                "test": chosen_test if rule == self.selection_rule else test_metrics(
                    data, same["validation_scores"], same["test_scores"],
                    label_free=rule != "validation")}
        self.show_scoring_progress = shown
        return {rule: report[rule] for rule in self.available_rules(run_dir)}

    def training_summary(self) -> dict[str, Any]:
        """Epochs and steps trained, the epochs the budget asked for (``epochs`` or more, see
        :meth:`planned_epochs`) and the best check of each checked rule (``<rule>_best``: the
        selection metric and the other ranking metric at that check), for results files."""
        metric = self.hps["selection_metric"]
        return {"epochs_trained": int(self.epoch.numpy()), "steps_trained": int(self.step.numpy()),
                "replicas": self.replicas,
                "epochs_planned": self.epochs_planned,
                **{f"{rule}_best": {metric: float(self.best[rule].numpy()),
                                    other_metric(metric): float(self.best_tiebreak[rule].numpy())}
                   if self.best[rule].numpy() > float("-inf") else {}
                   for rule in CHECKED_RULES}}

    def full_scoring(self) -> contextlib.AbstractContextManager:
        """Context in which :meth:`score` runs at its final-model settings (a method that
        cheapens per-epoch validation undoes that here); nothing to change by default."""
        return contextlib.nullcontext()

    def final_scores(self, cached: tf.data.Dataset) -> np.ndarray:
        """Scores of every sample of a cached split at the final-model settings ``[N]``."""
        with self.full_scoring():
            return self.score_dataset(cached)

    def score_variants(self) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
        """Other scores ``[B]`` the method reports beside :meth:`score`, by name; their test
        metrics appear as ``<name>_<metric>`` (none by default)."""
        return {}

    def compiled_variants(self) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
        """:meth:`score_variants` as ``tf.function`` s, traced once per run."""
        if self._compiled_variants is None:
            self._compiled_variants = {name: tf.function(variant, reduce_retracing=True)
                                       for name, variant in self.score_variants().items()}
        return self._compiled_variants

    def evaluate(self, data: PreparedData,
                 validation_scores: np.ndarray | None = None) -> dict[str, dict[str, float]]:
        """``{"test": ..., "validation": ...}``. Test: AUROC, AUPRC, and precision/recall/F1 at
        the validation threshold, for the score and each of :meth:`score_variants`. Validation:
        each variant's AUROC and AUPRC as ``<name>_<metric>`` (the score's own are the run's
        selection metrics), so that a variant can be chosen without looking at the test split.

        ``validation_scores``: :meth:`final_scores` of the validation split when the caller has
        them already (scoring can be costly: AnoGAN searches the latent space per image).
        """
        if validation_scores is None:
            validation_scores = self.final_scores(data.validation)
        label_free = self.selection_rule != "validation"
        test = test_metrics(data, validation_scores, self.final_scores(data.test), label_free)
        validation: dict[str, float] = {}
        for name, scorer in self.compiled_variants().items():
            with self.full_scoring():
                variant_validation, variant_test = [self.score_dataset(split, scorer)
                                                    for split in (data.validation, data.test)]
            test.update({f"{name}_{key}": value for key, value in test_metrics(
                data, variant_validation, variant_test, label_free).items()})
            validation.update({f"{name}_{key}": value for key, value in ranking_metrics(
                data.validation_labels, variant_validation).items()})
        return {"test": test, "validation": validation}


class EncoderGeneratorTrainer(Trainer, abc.ABC):
    """A trainer whose scoring networks include an ``encoder`` E and a ``generator`` G, and which
    reconstructs as G(E(x)) (the BiGAN family, AMA, the joint model)."""

    def encode(self, images: tf.Tensor) -> tf.Tensor:
        """``E(x)`` by the scoring encoder."""
        return self.scoring_networks["encoder"](images, training=False)

    def encode_decode(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(E(x), G(E(x)))`` by the scoring networks."""
        codes = self.encode(images)
        return codes, self.scoring_networks["generator"](codes, training=False)

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:
        return self.encode_decode(images)[1]
