import math

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from anomaly_toolbox import AMA, load
from anomaly_toolbox.cli import main
from anomaly_toolbox.datasets.pipeline import to_model_range
from anomaly_toolbox.results import read_results
from anomaly_toolbox.trainers import wgan
from anomaly_toolbox.trainers.ama import negative_log_gaussian, pair
from anomaly_toolbox.trainers.wgan import gradient_penalty
from anomaly_toolbox.training.engine import Engine
from anomaly_toolbox.training.selection import BestChecks
from tests.conftest import TINY, images_of, make_trainer, write_grid


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_gap():
    w = tf.constant([[0.5, -2.0], [1.0, 0.25]])
    real = tf.random.stateless_normal([6, 2, 2], [0, 1])
    fake = tf.random.stateless_normal([6, 2, 2], [0, 2])
    penalty = gradient_penalty(lambda x: tf.reduce_sum(x * w, axis=[1, 2]), real, fake,
                               tf.linspace(0.0, 1.0, 6))
    expected = (math.sqrt(0.25 + 4.0 + 1.0 + 0.0625) - 1.0) ** 2
    assert float(penalty) == pytest.approx(expected, rel=1e-6)


def test_gradient_penalty_of_a_quadratic_critic_matches_the_direct_formula():
    real = tf.random.stateless_normal([5, 3, 3, 2], [1, 1])
    fake = tf.random.stateless_normal([5, 3, 3, 2], [1, 2])
    eps = tf.constant([0.0, 0.2, 0.5, 0.7, 1.0])
    penalty = gradient_penalty(lambda x: tf.reduce_sum(x ** 2, axis=[1, 2, 3]), real, fake, eps)
    mixed = eps.numpy()[:, None, None, None] * real.numpy() + (
        1 - eps.numpy()[:, None, None, None]) * fake.numpy()
    norms = np.linalg.norm((2 * mixed).reshape(5, -1), axis=1)
    assert float(penalty) == pytest.approx(np.mean((norms - 1) ** 2), rel=1e-5)


@pytest.mark.parametrize("direction, low, high", [("outward", 0.0, 3.0), ("inward", -3.0, 0.0)])
def test_atypical_samples_have_the_requested_norms(direction, low, high):
    trainer = make_trainer("ama", negative_direction=direction, negative_delta=3.0)
    noise = trainer.sample_noise(500, tf.constant([4, 2], tf.int64))
    offsets = np.linalg.norm(noise["z_negative"].numpy(), axis=1) - math.sqrt(8)
    assert np.all(offsets >= low - 1e-5) and np.all(offsets <= high + 1e-5)
    assert offsets.max() - offsets.min() > 2.0


@pytest.mark.parametrize("direction, low, high", [("outward", 2.0, 1000.0), ("inward", 0.0, 0.5)])
def test_scaled_negatives_scale_each_images_own_code_as_the_released_code(bundled, direction,
                                                                           low, high):
    trainer = make_trainer("ama", negative_codes="scaled", negative_direction=direction)
    x = images_of(bundled, 3, trainer, 40)
    noise = trainer.sample_noise(40, tf.constant([4, 2], tf.int64))
    z_neg = trainer.negative_codes(x, noise).numpy()
    codes = trainer.networks["encoder"](x[:len(z_neg)], training=False).numpy()
    assert len(z_neg) == 4
    ratios = np.linalg.norm(z_neg, axis=1) / np.linalg.norm(codes, axis=1)
    assert np.all(ratios >= low - 1e-5) and np.all(ratios <= high + 1e-5)
    cosines = np.sum(z_neg * codes, axis=1) / np.linalg.norm(z_neg, axis=1) / np.linalg.norm(
        codes, axis=1)
    np.testing.assert_allclose(cosines, 1.0, rtol=1e-5)
    annulus = make_trainer("ama", negative_direction=direction)
    np.testing.assert_array_equal(annulus.negative_codes(x, noise), noise["z_negative"])


def test_negatives_start_at_the_requested_epoch():
    trainer = make_trainer("ama", negative_start_epoch=3)
    seed = tf.constant([0, 0], tf.int64)
    flags = []
    for epoch in range(4):
        trainer.epoch.assign(epoch)
        flags.append(float(trainer.sample_noise(4, seed)["negatives_on"]))
    assert flags == [0.0, 0.0, 1.0, 1.0]


def test_a_score_is_the_negative_log_density_of_the_r_score(bundled):
    trainer = make_trainer("ama")
    x = images_of(bundled, 1, trainer, 8)
    trainer.gaussian.assign([10.0, 2.0])
    r = trainer.r_score(x).numpy()
    expected = 0.5 * ((r - 10.0) / 2.0) ** 2 + math.log(2.0) + 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(trainer.score(x).numpy(), expected, rtol=1e-5)


def test_a_score_ranks_outlying_r_scores_as_more_anomalous():
    a = negative_log_gaussian(tf.constant([10.0, 11.0, 16.0, 3.0]), 10.0, 2.0).numpy()
    assert a[0] < a[1] < a[2] and a[0] < a[3]


def _critic_input_gradient_norms(critic, inputs):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        logits = tf.reduce_sum(critic(inputs, training=True)[0])
    return tf.norm(tf.reshape(tape.gradient(logits, inputs), [inputs.shape[0], -1]), axis=1)


def test_critic_stays_lipschitz_on_negative_pairs_however_large_its_weights(bundled):
    """Scaling every kernel 100x (as unbounded training on the weight-5 negative term would)
    must not let the critic's slope on (x_neg, G(E(x_neg))) pairs grow: spectral normalisation
    rescales each layer. An unconstrained critic's slope grows 100x per layer."""
    trainer = make_trainer("ama", negative_start_epoch=1)
    noise = trainer.sample_noise(16, tf.constant([3, 1], tf.int64))
    x_neg = trainer.networks["generator"](noise["z_negative"], training=False)
    negatives = pair(x_neg, trainer.reconstruct(x_neg))
    critic = trainer.networks["critic"]
    for _ in range(3):
        _critic_input_gradient_norms(critic, negatives)
    before = _critic_input_gradient_norms(critic, negatives).numpy()
    for weight in critic.trainable_weights:
        if "kernel" in weight.path:
            weight.assign(weight * 100.0)
    after = _critic_input_gradient_norms(critic, negatives).numpy()
    assert np.all(before <= 4.0) and np.all(after <= 4.0), (before, after)


def test_gradient_penalty_covers_every_pair_type_the_critic_is_trained_on(bundled):
    trainer = make_trainer("ama", gp_weight=10.0, negative_start_epoch=1)
    x = images_of(bundled, 1, trainer, 16)
    seen = []
    real_penalty = wgan.gradient_penalty

    def recording_penalty(critic, real, fake, epsilon):
        seen.append(fake)
        return real_penalty(critic, real, fake, epsilon)

    wgan.gradient_penalty = recording_penalty
    try:
        trainer.train_step(x, trainer.sample_noise(16, tf.constant([0, 0], tf.int64)))
    finally:
        wgan.gradient_penalty = real_penalty
    assert len(seen) == 3


def test_interpolation_and_negative_decodes_leave_batchnorm_statistics_alone(bundled):
    """The encoder's and decoder's moving statistics after a step with interpolations and
    negatives (either kind) equal those after a step on real images only: test-time statistics
    come from x."""
    x = images_of(bundled, 1, make_trainer("ama"), 32)
    statistics = []
    for extra in (dict(lambda_inter=0.0, lambda_neg=0.0), dict(lambda_inter=0.5, lambda_neg=5.0),
                  dict(lambda_inter=0.5, lambda_neg=5.0, negative_codes="scaled")):
        trainer = make_trainer("ama", negative_start_epoch=1, **extra)
        trainer.train_step(x, trainer.sample_noise(32, tf.constant([5, 5], tf.int64)))
        statistics.append([v.numpy() for name in ("encoder", "generator")
                           for v in trainer.networks[name].non_trainable_weights])
    assert statistics[0]
    for plain, *with_extras in zip(*statistics):
        for with_extra in with_extras:
            np.testing.assert_allclose(with_extra, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("switched_off", ["lambda_inter", "lambda_neg", "lambda_reg"])
def test_each_component_can_be_switched_off(bundled, switched_off):
    trainer = make_trainer("ama", n_critic=1, negative_start_epoch=1, **{switched_off: 0.0})
    losses = trainer.compiled_train_step(images_of(bundled, 0, trainer, 32),
                                          tf.constant([0, 0], tf.int64))
    part = {"lambda_inter": "l_inter", "lambda_neg": "l_neg", "lambda_reg": "l_reg"}[switched_off]
    assert part not in losses
    assert all(np.isfinite(float(v)) for v in losses.values())


@pytest.mark.slow
def test_saved_model_scores_with_the_a_score_of_its_restored_gaussian(bundled, tmp_path):
    """fit -> save -> load: the loaded model scores -log N(R; mu, sigma) with the Gaussian
    fitted at training time, and so gives the fitted model's scores and threshold."""
    ones, sevens = bundled.x_test[bundled.y_test == 1], bundled.x_test[bundled.y_test == 7]
    x_val = np.concatenate([ones[:30], sevens[:30]])
    y_val = np.r_[np.zeros(30), np.ones(30)].astype(int)
    model = AMA(**{k: v for k, v in TINY.items() if k != "jit_compile"}, n_critic=1, seed=0,
                log_dir=tmp_path / "api")
    model.fit(bundled.x_train[bundled.y_train == 1][:128], x_val, y_val)
    again = load(model.save(tmp_path / "model"))
    mean, std = again.trainer.gaussian.numpy()
    assert (mean, std) == tuple(model.trainer.gaussian.numpy()) and (mean, std) != (0.0, 1.0)
    x = np.concatenate([ones[40:50], sevens[40:50]])
    scores = again.decision_function(x)
    np.testing.assert_allclose(scores, model.decision_function(x), rtol=1e-6)
    r = again.trainer.r_score(to_model_range(tf.constant(x), 32)).numpy()
    np.testing.assert_allclose(scores, negative_log_gaussian(r, mean, std).numpy(), rtol=1e-4)
    assert again.threshold == model.threshold


def test_stretched_runs_keep_the_schedules_share_of_training():
    """A run stretched from 100 to 400 epochs by min_steps drops the rate at trained epochs 120,
    240 and 360 and switches negatives on at trained epoch 41 (published 11)."""
    trainer = make_trainer("ama", epochs=100)
    trainer.epoch_scale.assign(100 / 400)
    rates = []
    for epoch in (0, 119, 120, 239, 240, 360):
        trainer.epoch.assign(epoch)
        rates.append(float(trainer.optimizers["critic"].learning_rate))
    np.testing.assert_allclose(rates, [3e-4, 3e-4, 3e-5, 3e-5, 3e-6, 3e-7], rtol=1e-5)
    switched = []
    for epoch in (39, 40):
        trainer.epoch.assign(epoch)
        switched.append(float(trainer.sample_noise(2, tf.constant([0, 0], tf.int64))
                              ["negatives_on"]))
    assert switched == [0.0, 1.0]


def test_negative_term_pairs_each_synthetic_anomaly_with_its_own_reconstruction(bundled):
    """L_neg = mean D(x_neg, x_neg) - D(x_neg, G(E(x_neg))), x_neg = G(z_neg) (eq. 4 of the
    paper, x drawn from the anomalies): never the normal x beside a negative decode. The
    critic runs in inference mode here, so spectral normalisation's power iteration holds."""
    trainer = make_trainer("ama", negative_start_epoch=1, lambda_inter=0.0)
    x = images_of(bundled, 1, trainer, 16)
    noise = trainer.sample_noise(16, tf.constant([2, 7], tf.int64))
    generator, encoder = trainer.networks["generator"], trainer.networks["encoder"]
    x_neg = generator(noise["z_negative"], training=False)
    decoded = trainer._decode(x, encoder(x, training=True), x_neg, noise)
    reference, reconstruction = decoded["negative"]
    np.testing.assert_array_equal(reference.numpy(), x_neg.numpy())
    expected = generator(encoder(x_neg, training=True), training=True)
    np.testing.assert_allclose(reconstruction.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    critic = trainer.networks["critic"]
    trainer.networks["critic"] = lambda inputs, training: critic(inputs, training=False)
    _, parts = trainer._objective(encoder(x, training=True), decoded, noise)
    l_neg = tf.reduce_mean(critic(pair(x_neg, x_neg), training=False)[0] -
                           critic(pair(x_neg, expected), training=False)[0])
    assert float(parts["l_neg"]) == pytest.approx(float(l_neg), rel=1e-4, abs=1e-5)
    assert float(parts["l_neg"]) != pytest.approx(float(parts["w_distance"]), rel=1e-3)


def test_each_interpolation_mixes_the_code_of_the_image_it_is_judged_against(bundled):
    """With k = 1 the simplex holds E(x) alone, so x_inter is x's own reconstruction."""
    trainer = make_trainer("ama", interpolation_codes=1, lambda_neg=0.0)
    x = images_of(bundled, 1, trainer, 16)
    noise = trainer.sample_noise(16, tf.constant([1, 1], tf.int64))
    decoded = trainer._decode(x, trainer.networks["encoder"](x, training=True), None, noise)
    np.testing.assert_allclose(decoded["interpolation"][1].numpy(),
                               decoded["reconstruction"][1].numpy(), rtol=1e-5, atol=1e-6)
    assert decoded["interpolation"][0] is x


@pytest.mark.slow
def test_model_selection_skips_the_checks_before_the_selection_epoch(tmp_path, monkeypatch):
    """Validation AUROC falls epoch by epoch; with selection after epoch 2 of 4 the third epoch's
    weights are selected, not the first's, and results say so."""
    sequence = iter({"auroc": value, "auprc": value} for value in (0.9, 0.8, 0.7, 0.6))
    held = []
    monkeypatch.setattr(Engine, "validation_metrics", lambda self, data: next(sequence))
    record = BestChecks.record

    def spy(self, rules, checks, epoch, networks):
        held.append((epoch, rules))
        record(self, rules, checks, epoch, networks)

    monkeypatch.setattr(BestChecks, "record", spy)
    grid = write_grid(tmp_path / "grid.json", {**TINY, "n_critic": 1, "epochs": 4,
                                               "select_after_epoch": 2})
    result = CliRunner().invoke(main, ["-e", "ama", "-d", "mnist-5k", "--normal-label", "3",
                                       "--hps-path", str(grid), "--log-dir",
                                       str(tmp_path / "logs")])
    assert result.exit_code == 0, result.output
    assert [(epoch, [rule for rule in improved if rule == "validation"])
            for epoch, improved in held] == [(1, []), (2, []), (3, ["validation"]), (4, [])]
    shown = {line.split(":")[0]: line for line in result.output.splitlines()
             if line.startswith("epoch ")}
    assert "(not yet selectable)" in shown["epoch 2/4"]
    assert "(not yet selectable)" not in shown["epoch 3/4"]
    results = read_results(next((tmp_path / "logs").glob("*/*/*/results.json")))
    assert results["validation_best"]["auroc"] == pytest.approx(0.7)
    assert results["selection_checks"]["validation"]["epoch"] == 3
    assert "after epoch 2 of 4" in results["selection_note"]


def test_selection_epoch_counts_published_epochs_in_stretched_runs():
    """A run stretched from 100 to 2,400 epochs selects from trained epoch 504 (published 21)."""
    hooks = make_trainer("ama", epochs=100).engine.callbacks
    assert [hooks.selectable(epoch, 2400) for epoch in (480, 503, 504)] == [False, False, True]
    assert make_trainer("ama", epochs=100, select_after_epoch=0).engine.callbacks.selectable(1, 100)


@pytest.mark.parametrize("share, count", [(0.1, 26), (0.5, 128)])
def test_negatives_stand_for_their_share_of_the_batch(bundled, share, count):
    """round(s B) negatives a step, their term weighted lambda_neg s / (1 - s), which is the
    authors' code's lambda_neg on negatives replacing a share s of one batch mean."""
    trainer = make_trainer("ama", negative_start_epoch=1, negative_share=share)
    noise = trainer.sample_noise(256, tf.constant([1, 3], tf.int64))
    assert noise["z_negative"].shape == (count, 8)
    x = images_of(bundled, 1, trainer, 256)
    encoder = trainer.networks["encoder"]
    x_neg = trainer.networks["generator"](noise["z_negative"], training=False)
    codes = encoder(x, training=True)
    objective, parts = trainer._objective(codes, trainer._decode(x, codes, x_neg, noise), noise)
    expected = parts["l_normal"] - 5.0 * share / (1 - share) * parts["l_neg"]
    assert float(objective) == pytest.approx(float(expected), rel=1e-5)


def test_selection_note_says_when_only_the_last_check_could_count():
    assert "took the last check" in make_trainer("ama", epochs=3).selection_note()
    assert "after epoch 20 of 100" in make_trainer("ama", epochs=100).selection_note()
    assert make_trainer("ama", select_after_epoch=0).selection_note() is None
