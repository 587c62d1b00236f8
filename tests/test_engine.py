"""The training engine apart from any one method: the loop's TensorBoard scalars, several steps
per compiled call, the callbacks' order, and checks that select."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.curves import check_curves
from anomaly_toolbox.datasets import one_class_splits
from anomaly_toolbox.datasets.pipeline import PreparedData
from anomaly_toolbox.training.callbacks import Callback
from anomaly_toolbox.training.engine import restore_newest_readable
from tests.conftest import make_trainer


def _step_scalars(run_dir, prefix="train/"):
    steps = {}
    for path in run_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag.startswith(prefix):
                    steps.setdefault(value.tag, []).append(event.step)
    return steps


def test_every_steps_losses_reach_its_own_runs_tensorboard_once(bundled, tmp_path):
    """Losses are written per epoch in one compiled call: each run's event file still has every
    loss at every step exactly once, and a second run in the same process writes to its own."""
    splits = one_class_splits(bundled, "normal", 1, seed=0)
    for run in ("first", "second"):
        trainer = make_trainer("ae", epochs=2)
        data = PreparedData.from_splits(splits, trainer.image_size)
        writer = tf.summary.create_file_writer(str(tmp_path / run))
        trainer.fit(data, tmp_path / run, writer, progress_bar=False)
        writer.close()
        steps = _step_scalars(tmp_path / run)
        expected = list(range(2 * (data.train_size // trainer.hps["batch_size"])))
        assert steps and all(sorted(found) == expected for found in steps.values()), steps


def test_checks_share_the_losses_step_axis_and_map_back_to_their_epochs(bundled, tmp_path):
    """TensorBoard has one x axis: a check's scalars and images sit at the train step after
    the epoch it checked (not at the epoch number beside step numbers), and the benchmark
    scripts' reader still keys them by epoch."""
    trainer = make_trainer("ae", epochs=3)
    data = _fit(trainer, bundled, tmp_path)
    per_epoch = data.train_size // trainer.hps["batch_size"]
    checks = _step_scalars(tmp_path, "validation/")
    assert set(checks) >= {"validation/auroc", "validation/auprc",
                           "validation/input_vs_reconstruction"}
    for tag, steps in checks.items():
        assert sorted(steps) == [per_epoch, 2 * per_epoch, 3 * per_epoch], (tag, steps)
    assert max(max(steps) for steps in _step_scalars(tmp_path).values()) == 3 * per_epoch - 1
    curves = check_curves(tmp_path, "validation/")
    assert sorted(curves["auroc"]) == [1, 2, 3]


def _fit(trainer, bundled, run_dir):
    data = PreparedData.from_splits(one_class_splits(bundled, "normal", 1, seed=0),
                                    trainer.image_size)
    writer = tf.summary.create_file_writer(str(run_dir))
    trainer.fit(data, run_dir, writer, progress_bar=False)
    writer.close()
    return data


@pytest.mark.parametrize("experiment, epochs, per_execution", [
    ("ae", 2, 4),          # several steps of one epoch per call
    ("deepsvdd", 6, 4),    # one-step epochs: a call spans epochs, up to the next check
])
def test_several_steps_per_execution_train_exactly_as_one_step_per_call(
        bundled, tmp_path, experiment, epochs, per_execution):
    """steps_per_execution changes how steps are dispatched, never what they compute: the same
    seed gives the same weights, steps, epochs and checks (Deep SVDD's epoch-based learning-rate
    milestone at epoch 3 included)."""
    tf.config.experimental.enable_op_determinism()
    runs = {}
    for per_call in (1, per_execution):
        extra = ({"batch_size": 200, "pretrain": False, "lr_milestone": 3}
                 if experiment == "deepsvdd" else {})
        trainer = make_trainer(experiment, epochs=epochs, steps_per_execution=per_call, **extra)
        _fit(trainer, bundled, tmp_path / str(per_call))
        runs[per_call] = trainer
    one, several = runs[1], runs[per_execution]
    assert int(several.step.numpy()) == int(one.step.numpy()) > per_execution
    assert int(several.epoch.numpy()) == int(one.epoch.numpy()) == epochs
    for name, net in one.networks.items():
        for a, b in zip(net.get_weights(), several.networks[name].get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert several.training_summary() == one.training_summary()
    assert sorted(_step_scalars(tmp_path / "1")) == sorted(_step_scalars(
        tmp_path / str(per_execution)))


def test_a_diverging_loss_inside_an_execution_names_its_step(bundled, tmp_path):
    from anomaly_toolbox.training.engine import TrainingDiverged

    trainer = make_trainer("ae", epochs=1, steps_per_execution=3, learning_rate=1e30)
    with pytest.raises(TrainingDiverged, match=r"at step \d+ \(epoch 1\).*learning_rate"):
        _fit(trainer, bundled, tmp_path)


class Recorder(Callback):
    """Notes every hook the engine calls, in order."""

    def __init__(self, selectable_from: int) -> None:
        self.calls: list[str] = []
        self.selectable_from = selectable_from

    def on_train_begin(self, data):
        self.calls.append("train_begin")

    def on_check_begin(self, data):
        self.calls.append("check_begin")

    def selectable(self, epoch, planned_epochs):
        self.calls.append(f"selectable {epoch}/{planned_epochs}")
        return epoch >= self.selectable_from

    def on_check_end(self, epoch, step):
        self.calls.append(f"check_end {epoch}")

    def on_weights_chosen(self, data, model_dir):
        self.calls.append(f"chosen {'saved' if model_dir else 'in memory'}")


def test_callbacks_are_called_in_the_runs_order_and_gate_selection(bundled, tmp_path,
                                                                     monkeypatch):
    recorder = Recorder(selectable_from=3)
    trainer = make_trainer("ae", epochs=3)
    monkeypatch.setattr(trainer.engine.callbacks, "callbacks", [recorder])
    data = _fit(trainer, bundled, tmp_path)
    assert recorder.calls[0] == "train_begin"
    assert recorder.calls.count("check_begin") == 3
    assert "selectable 1/3" in recorder.calls and "check_end 3" in recorder.calls
    assert "selectable 3/3" not in recorder.calls  # the last check is always selectable
    assert int(trainer.engine.checks.epoch["validation"].numpy()) == 3
    trainer.select_final_model(tmp_path, data)
    assert recorder.calls[-1] == "chosen saved"


def test_a_resumed_run_does_not_run_on_train_begin_again(bundled, tmp_path, monkeypatch):
    trainer = make_trainer("ae", epochs=1)
    _fit(trainer, bundled, tmp_path)
    resumed, recorder = make_trainer("ae", epochs=2), Recorder(selectable_from=0)
    monkeypatch.setattr(resumed.engine.callbacks, "callbacks", [recorder])
    _fit(resumed, bundled, tmp_path)
    assert "train_begin" not in recorder.calls and int(resumed.epoch.numpy()) == 2


def test_piped_runs_print_throttled_step_lines_with_the_run_estimate(tmp_path, monkeypatch):
    """Not a terminal (CliRunner's output): no Keras bar, but lines naming the epoch, the step
    and the whole run's estimate during each epoch (here on every step: no throttle)."""
    from anomaly_toolbox.training import progress
    from tests.conftest import TINY, invoke, write_grid

    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    grid = write_grid(tmp_path / "grid.json", {**TINY, "epochs": 2})
    result = invoke("-e", "ae", "-d", "mnist-5k", "--hps-path", grid, "--log-dir",
                    tmp_path / "logs")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if ": step " in line]
    assert lines and all(line.startswith(("epoch 1/2: step ", "epoch 2/2: step "))
                         for line in lines)
    assert "left)" in lines[-1] and "=====" not in result.output  # no Keras bar in a file


def test_terminal_runs_head_each_bar_with_its_epochs_and_the_run_estimate(capsys):
    from anomaly_toolbox.training.progress import RunProgress

    shown = RunProgress("bar", epochs=10, steps_per_epoch=4, first_epoch=2)
    shown.bar(2, 1)
    shown.bar(3, 3)
    quiet = RunProgress("none", epochs=10, steps_per_epoch=4, first_epoch=0)
    quiet.bar(0, 1)
    quiet.trained(3)
    out = capsys.readouterr().out
    assert out.startswith("epoch 3/10 (") and "\nepoch 4-6/10 (" in out
    assert out.count("epoch") == 2


@pytest.mark.parametrize("experiment", ["ganomaly", "ama"])
def test_scoring_traces_once_for_every_batch_size(experiment):
    """A split's last batch is smaller than the others: score, reconstruct and every score
    variant are traced once for both sizes, not a second time for the last batch."""
    trainer = make_trainer(experiment)
    compiled = {"score": trainer.compiled_score, "reconstruct": trainer.compiled_reconstruct,
                **trainer.compiled_variants()}
    for batch in (8, 3):
        images = tf.random.uniform((batch, *trainer.input_shape), -1.0, 1.0, seed=batch)
        for name, function in compiled.items():
            assert function(images).shape[0] == batch, name
    assert {name: function.experimental_get_tracing_count()
            for name, function in compiled.items()} == dict.fromkeys(compiled, 1)


def test_a_resumed_run_draws_the_dropout_masks_an_uninterrupted_one_would(tmp_path, capsys):
    """EGBAD's discriminator has dropout: Keras's seed generators are part of the checkpoint, so
    a fresh trainer restored after two steps takes the third step exactly as the first trainer
    does; a checkpoint from before they were saved still restores, and says so."""
    images = tf.random.uniform((16, 28, 28, 1), -1.0, 1.0, seed=1)
    seeds = [tf.constant([0, step], tf.int64) for step in range(3)]
    first = make_trainer("egbad", dropout=0.5)
    assert first.random_states()
    for seed in seeds[:2]:
        first.compiled_train_step(images, seed)
    saved = first.engine.checkpoint().save(str(tmp_path / "run"))
    after_two = [weight.numpy() for weight in first.networks["generator"].weights]
    old_layout = first.engine.checkpoint(random_states=False).save(str(tmp_path / "old"))
    first.compiled_train_step(images, seeds[2])

    resumed = make_trainer("egbad", dropout=0.5)
    assert restore_newest_readable(resumed.engine.checkpoint(), [saved]) == saved
    resumed.compiled_train_step(images, seeds[2])
    for expected, got in zip(first.networks["discriminator"].weights,
                             resumed.networks["discriminator"].weights, strict=True):
        np.testing.assert_array_equal(expected.numpy(), got.numpy())

    older = make_trainer("egbad", dropout=0.5)
    assert restore_newest_readable(older.engine.checkpoint(), [old_layout],
                                   older.engine.checkpoint(random_states=False)) == old_layout
    assert "predates saved dropout states" in capsys.readouterr().out
    for expected, got in zip(after_two, older.networks["generator"].weights, strict=True):
        np.testing.assert_array_equal(expected, got.numpy())
