"""Pixel-level results on MVTec AD-layout folders that ship ground-truth masks: the masks read and
kept aligned with the test images through the splits, pixel AUROC and PRO (per-region overlap)
on small tensors, and a run that reports them, draws maps with the masks' outlines, and a
``score --save-maps`` that outlines them too."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.datasets import load_raw, one_class_splits
from anomaly_toolbox.evaluation import pixel_metrics
from tests.conftest import TINY, digit_images, invoke, write_grid, write_png

SQUARE = 12  # side of the pasted defect on 40-px images


def write_squares(root, bundled, with_masks=True):
    """train/good and test/good: 1s; test/square: 1s with a bright square pasted at a place
    that varies by image, and (``with_masks``) its mask in ground_truth/square/."""
    ones = digit_images(bundled, 1, 70)
    for i, image in enumerate(ones[:50]):
        write_png(root / "train" / "good" / f"{i:03d}.png", image)
    for i, image in enumerate(ones[50:60]):
        write_png(root / "test" / "good" / f"{i:03d}.png", image)
    for i, image in enumerate(ones[60:70]):
        top, left = 2 + 2 * i, 26 - 2 * i
        defect, mask = image.copy(), np.zeros((40, 40, 1), np.uint8)
        defect[top:top + SQUARE, left:left + SQUARE] = 255
        mask[top:top + SQUARE, left:left + SQUARE] = 255
        write_png(root / "test" / "square" / f"{i:03d}.png", defect)
        if with_masks:
            write_png(root / "ground_truth" / "square" / f"{i:03d}_mask.png", mask)
    (root / "ground_truth" / "square").mkdir(parents=True, exist_ok=True)
    return root


def test_masks_are_read_and_follow_their_images_through_the_splits(tmp_path, bundled):
    raw = load_raw("folder", write_squares(tmp_path / "toy", bundled))
    assert raw.test_masks.shape == (20, 64, 64) and "ground-truth masks" in raw.source
    assert not raw.test_masks[raw.y_test == 0].any()
    covered = raw.test_masks[raw.y_test == 1].sum(axis=(1, 2))
    assert np.all(np.abs(covered - (SQUARE * 64 / 40) ** 2) < 60)
    splits = one_class_splits(raw, "normal", 0, seed=3)
    test = splits.test
    assert test.masks.shape == (len(test), 64, 64) and len(test) < 20  # validation took some
    for image, mask, label in zip(test.x, test.masks, test.y):
        assert mask.any() == bool(label)
        if label:  # the mask sits on the image's own square, after the shuffle
            assert image[..., 0][mask].mean() > 200 and image[..., 0][~mask].mean() < 100
    assert one_class_splits(raw, "normal", 1, seed=3).test.masks is None
    assert one_class_splits(raw, "anomalous", 1, seed=3).test.masks is None


def test_a_defect_image_without_a_mask_turns_pixel_results_off_and_says_which(tmp_path,
                                                                                bundled, caplog):
    root = write_squares(tmp_path / "toy", bundled)
    (root / "ground_truth" / "square" / "004_mask.png").unlink()
    with caplog.at_level(logging.WARNING):
        raw = load_raw("folder", root)
    assert raw.test_masks is None
    assert "Pixel-level results are off" in caplog.text and "004.png" in caplog.text


def test_pixel_auroc_and_pro_on_small_tensors():
    rng = np.random.default_rng(0)
    masks = np.zeros((4, 16, 16), bool)
    masks[1, 2:6, 2:6] = True
    masks[2, 10:12, 10:14] = True
    exact = masks + 0.1 * rng.random(masks.shape)
    assert pixel_metrics(exact, masks) == {"pixel_auroc": 1.0, "pro": 1.0, "regions": 2}
    inverted = pixel_metrics(-exact, masks)
    assert inverted["pixel_auroc"] == 0.0 and inverted["pro"] == 0.0
    # PRO weighs each region the same: a small region found and a large one missed score
    # about half, while pixel AUROC, dominated by the large region's pixels, stays near chance.
    big = np.zeros((2, 64, 64), bool)
    big[0, :8, :8] = True
    big[1, 30:60, 30:60] = True
    maps = 0.01 * rng.random(big.shape)
    maps[0, :8, :8] += 1.0
    found_small = pixel_metrics(maps, big)
    assert 0.5 <= found_small["pro"] < 0.65 and found_small["pixel_auroc"] < 0.6
    assert pixel_metrics(maps, np.zeros_like(big)) == {}


def _lime_pixels(png_path):
    picture = tf.io.decode_png(tf.io.read_file(str(png_path))).numpy().astype(int)
    return int(np.sum((picture[..., 1] > 180) & (picture[..., 0] < 120) & (picture[..., 2] < 120)))


@pytest.mark.slow
def test_a_run_reports_pixel_results_and_maps_with_outlines_and_score_outlines_them(tmp_path,
                                                                                     bundled):
    root = write_squares(tmp_path / "toy", bundled)
    grid = write_grid(tmp_path / "grid.json", {**TINY, "filters": 8, "epochs": 100, "batch_size": 16})
    result = invoke("-e", "ae", "-d", "folder", "--data-dir", root, "--hps-path", grid,
                    "--log-dir", tmp_path / "logs", "-q")
    assert result.exit_code == 0, result.output
    [path] = (tmp_path / "logs").glob("ae/*/*/results.json")
    pixel = json.loads(path.read_text())["test_pixel"]
    assert pixel["regions"] >= 8 and pixel["size"] == 32
    assert pixel["pixel_auroc"] > 0.9 and pixel["pro"] > 0.5, pixel
    assert f"pixel AUROC {pixel['pixel_auroc']:.4f}" in result.output
    assert _lime_pixels(path.parent / "maps.png") > 50
    table = (path.parent.parent / "results.md").read_text()
    assert "test pixel auroc | test pro" in table and f"{pixel['pro']:.4f}" in table

    maps = tmp_path / "maps"
    scored = invoke("score", "--model", path.parent, root / "test" / "square",
                    root / "test" / "good", "--save-maps", maps)
    assert scored.exit_code == 0, scored.output
    assert "10 with their ground-truth mask outlined" in scored.output
    pictures = sorted(maps.glob("*.png"))
    outlined = [picture for picture in pictures if _lime_pixels(picture) > 20]
    assert len(pictures) == 20 and len(outlined) == 10


@pytest.mark.parametrize("experiment", ["iforest"])
def test_methods_without_maps_say_pixel_results_are_not_available(tmp_path, bundled, experiment):
    root = write_squares(tmp_path / "toy", bundled)
    result = invoke("-e", experiment, "-d", "folder", "--data-dir", root,
                    "--log-dir", tmp_path / "logs", "-q")
    assert result.exit_code == 0, result.output
    [path] = (tmp_path / "logs").glob(f"{experiment}/*/*/results.json")
    assert "no anomaly map" in json.loads(path.read_text())["test_pixel"]["unavailable"]
    assert "Pixel-level: not available" in result.output
