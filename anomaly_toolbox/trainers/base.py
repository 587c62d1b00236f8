"""The method base: what a network method is to the training engine.

A method subclasses :class:`Trainer` and supplies only its networks, optimizers, train step,
anomaly score and reconstruction (and, where it needs them, engine callbacks). The base keeps the
method contract and the step mechanics: networks in mixed precision, optimizers built before the
compiled steps, batches split across replicas, the weight EMA, the XLA switch, networks saved and
loaded. The epoch loop, checks, best models, checkpoints and final evaluation are the engine's
(:mod:`anomaly_toolbox.training`).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from anomaly_toolbox.datasets.pipeline import PreparedData
from anomaly_toolbox.hps import CPU_JIT_OFF_REASON, LABEL_FREE_SELECTION, HParam, Schema, schema_of
from anomaly_toolbox.registry import registered_name
from anomaly_toolbox.timing import Stopwatch
from anomaly_toolbox.trainers.helpers import adam
from anomaly_toolbox.training.callbacks import Callback
from anomaly_toolbox.training.engine import RANDOM_STATES, Engine

SCORING_BATCH_SIZE = 256


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
    the one they are registered under (:mod:`anomaly_toolbox.registry`).
    """

    hparams: ClassVar[tuple[HParam, ...]]
    #: Whether :meth:`build_networks` has dense networks for tabular samples ``[B, F]``.
    supports_tabular: ClassVar[bool] = False
    #: Why the method cannot train under a multi-replica strategy (empty: it can).
    distribution_off_reason: ClassVar[str] = ""
    #: Why XLA stays off by default without a GPU (empty: on everywhere); a method states its
    #: own in its schema module (:data:`anomaly_toolbox.hps.CPU_JIT_OFF_REASON` has the evidence).
    cpu_jit_off_reason: ClassVar[str] = CPU_JIT_OFF_REASON
    #: The rule ``selection`` 'auto' uses when validation has no labelled anomalies: the
    #: label-free rule that measured best for the method (benchmarks/RESULTS.md, "Numbers
    #: without labels"), from its schema module.
    label_free_selection: ClassVar[str] = LABEL_FREE_SELECTION

    def __init__(self, hps: dict[str, Any], sample_shape: tuple[int, ...], seed: int) -> None:
        """``sample_shape``: one raw sample's shape, ``(H, W, C)`` for images (resized to
        ``image_size``) or ``(F,)`` for tabular data (only where ``supports_tabular``). XLA is
        on when the hps key ``jit_compile`` is true (callers resolve its "auto", None)."""
        self.hps = hps
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
        #: The rule that chooses the final weights, resolved by the engine from the data.
        self.selection_rule = hps.get("selection", "validation")
        self.stopwatch = Stopwatch()
        self._xla_or_graph_step = tf.function(self._train_step_and_average,
                                              jit_compile=jit_compile)
        self.compiled_train_step = tf.function(self._draw_noise_and_step)
        self.compiled_steps = tf.function(self._steps, reduce_retracing=True)
        self.compiled_score = self.traced_for_any_batch(self.score, jit_compile)
        self.compiled_reconstruct = self.traced_for_any_batch(self.reconstruct)
        self._compiled_variants: dict[str, Callable[[tf.Tensor], tf.Tensor]] | None = None
        #: What trains, checks, selects and evaluates this method.
        self.engine = Engine(self)

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

    # --------------------------------------------------------------- helpers for methods
    def traced_for_any_batch(self, function: Callable[[tf.Tensor], tf.Tensor],
                             jit_compile: bool = False) -> Callable[[tf.Tensor], tf.Tensor]:
        """``function`` of a float32 batch ``[B, *input_shape]`` as a ``tf.function`` traced once
        for every ``B`` (a last, smaller batch would otherwise trace it a second time)."""
        batch = tf.TensorSpec([None, *self.input_shape], tf.float32)
        return tf.function(function, input_signature=[batch], jit_compile=jit_compile)

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

    def step_seed(self) -> tf.Tensor:
        """The stateless seed ``[2]`` of the next train step: ``(seed, step)``."""
        return tf.stack([tf.constant(self.seed, tf.int64), self.step.read_value()])

    def _steps(self, batches: tf.Tensor, epochs: tf.Tensor) -> dict[str, tf.Tensor]:
        """Train steps on ``batches`` ``[K, B, ...]`` in turn, the k-th in 0-based epoch
        ``epochs[k]`` and seeded ``(seed, step)`` as a lone step is; returns every loss per step
        ``[K]`` (float32). Steps stay in order: each reads the weights the previous one wrote."""
        def step(index: tf.Tensor) -> dict[str, tf.Tensor]:
            self.epoch.assign(epochs[index])
            seed = self.step_seed()
            with tf.control_dependencies([seed]):
                losses = self._draw_noise_and_step(batches[index], seed)
            with tf.control_dependencies(list(losses.values())):
                self.step.assign_add(1)
            return {name: tf.cast(value, tf.float32) for name, value in losses.items()}

        first = step(tf.constant(0))
        history = {name: tf.TensorArray(tf.float32, size=tf.shape(batches)[0]).write(0, value)
                   for name, value in first.items()}
        for index in tf.range(1, tf.shape(batches)[0]):
            losses = step(index)
            history = {name: history[name].write(index, losses[name]) for name in history}
        return {name: values.stack() for name, values in history.items()}

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

    # ------------------------------------------------------------- what the engine reads
    def callbacks(self) -> list[Callback]:
        """The method's hooks into the engine (:mod:`anomaly_toolbox.training.callbacks`);
        none by default."""
        return []

    def checkpointed(self) -> dict[str, Any]:
        """What a run's checkpoint keeps of the method, by checkpoint name: the counters, the
        networks (and their weight averages), the optimizers, and the networks' random states
        when they have any (see :meth:`random_states`)."""
        states = self.random_states()
        return {"epoch": self.epoch, "step": self.step,
                **{f"network_{name}": net for name, net in self.networks.items()},
                **{f"scoring_{name}": net for name, net in self.scoring_networks.items()
                   if net is not self.networks[name]},
                **{f"optimizer_{name}": opt for name, opt in self.optimizers.items()},
                **({RANDOM_STATES: states} if states else {})}

    def random_states(self) -> list[keras.Variable]:
        """The training networks' variables that are not weights: the states of Keras's seed
        generators (dropout layers'), which advance at every training call, so that a resumed
        run draws the dropout masks an uninterrupted one would."""
        states = []
        for net in self.networks.values():
            weights = {id(weight) for weight in net.weights}
            states += [variable for variable in net.variables if id(variable) not in weights]
        return states

    #: Whether :meth:`score` takes at most :meth:`scoring_batch_size` samples per call (a
    #: method whose scoring state is sized to one batch).
    scoring_batch_is_a_limit: ClassVar[bool] = False

    def scoring_batch_size(self) -> int:
        """Images per scoring call: at least :data:`SCORING_BATCH_SIZE`, as scoring is inference
        only and fewer, larger calls cost less Python and dispatch time per image."""
        return max(self.hps["batch_size"], SCORING_BATCH_SIZE)

    def check_subset(self) -> int | None:
        """How many samples of each set a per-epoch check scores (None: all of them)."""
        return None

    def selection_note(self) -> str | None:
        """How model selection deviates from scoring the whole validation split, if it does."""
        return None

    def score_variants(self) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
        """Other scores ``[B]`` the method reports beside :meth:`score`, by name; their test
        metrics appear as ``<name>_<metric>`` (none by default)."""
        return {}

    def compiled_variants(self) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
        """:meth:`score_variants` as ``tf.function`` s, traced once per run."""
        if self._compiled_variants is None:
            self._compiled_variants = {name: self.traced_for_any_batch(variant)
                                       for name, variant in self.score_variants().items()}
        return self._compiled_variants

    # ------------------------------------------------------------------- models on disk
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

    # ------------------------------------- the MethodTrainer contract, run by the engine
    def fit(self, data: PreparedData, run_dir: Path, writer: tf.summary.SummaryWriter,
            progress_bar: bool = True) -> None:
        """Train (see :meth:`Engine.fit <anomaly_toolbox.training.engine.Engine.fit>`)."""
        self.engine.fit(data, run_dir, writer, progress_bar)

    def select_final_model(self, run_dir: Path, data: PreparedData) -> str:
        return self.engine.final.select(run_dir, data)

    def final_scores(self, cached: tf.data.Dataset) -> np.ndarray:
        return self.engine.final.scores(cached)

    def evaluate(self, data: PreparedData,
                 validation_scores: np.ndarray | None = None) -> dict[str, Any]:
        return self.engine.final.evaluate(data, validation_scores)

    def by_selection(self, run_dir: Path, data: PreparedData,
                     chosen_test: dict[str, float]) -> dict[str, dict[str, Any]]:
        return self.engine.final.by_selection(run_dir, data, chosen_test)

    def training_summary(self) -> dict[str, Any]:
        """Epochs and steps trained, the epochs the budget asked for (``epochs`` or more) and
        the best check of each checked rule, for results files."""
        return {"epochs_trained": int(self.epoch.numpy()), "steps_trained": int(self.step.numpy()),
                "replicas": self.replicas, "epochs_planned": self.epochs_planned,
                **self.engine.checks.summary()}


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
