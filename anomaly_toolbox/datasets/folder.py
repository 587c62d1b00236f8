"""The user's own images: an MVTec AD-style folder or ``normal/`` + ``abnormal/`` folders.

Layouts under ``--data-dir`` (class 0 = normal, class 1 = anomalous):

* MVTec AD: ``train/good/`` (training images, all normal), ``test/good/`` and ``test/<defect>/``
  (any other name is a defect). Where ``ground_truth/`` is present, each defect image's mask
  ``ground_truth/<defect>/<name>_mask.png`` (or ``<name>.png``; nonzero = defect) is read too,
  for pixel-level results (:func:`mask_file`); a defect image without one turns them off, with
  a warning naming it.
* ``normal/`` and ``abnormal/``: a fixed, seed-independent 20% of the normal images and every
  abnormal image form the test part; the other normal images the training part.

Images of any size and format that TensorFlow decodes (PNG, JPEG, BMP, GIF) are read, stored at
64x64 and resized again by each method. If any image is in colour, all become RGB; else grayscale.
Files that cannot be decoded are skipped: their count and names are logged, never a crash.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from anomaly_toolbox.datasets.sources import RawData

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
STORED_SIZE = 64
_SPLIT_SEED = 20180002
_TEST_SHARE_OF_NORMALS = 0.2
MVTEC_CATEGORIES = ("bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather",
                    "metal_nut", "pill", "screw", "tile", "toothbrush", "transistor", "wood",
                    "zipper")


def image_files(directory: Path) -> list[Path]:
    """Image files directly in ``directory``, sorted by name; names with an image suffix that
    are no readable file (a broken or looping link, a folder) are logged as skipped."""
    named = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    files = [p for p in named if p.is_file()]
    for path in sorted(set(named) - set(files)):
        log.warning("skipped (not a readable file: a broken or looping link, or a folder): %s",
                    path)
    return files


def _decode(path: Path, size: tuple[int, int]) -> tf.Tensor:
    """uint8 ``[height, width, 1 or 3]`` resized to ``size``; alpha is dropped. GIFs always
    decode as RGB: one whose three channels are equal is grayscale and keeps one channel."""
    image = tf.io.decode_image(tf.io.read_file(str(path)), expand_animations=False)
    if image.shape[-1] in (2, 4):
        image = image[..., :-1]
    if (path.suffix.lower() == ".gif" and image.shape[-1] == 3
            and bool(tf.reduce_all(image == image[..., :1]))):
        image = image[..., :1]
    resized = tf.image.resize(image, size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def read_images(paths: list[Path], size: tuple[int, int] = (STORED_SIZE, STORED_SIZE),
                ) -> tuple[list[tf.Tensor], list[Path]]:
    """Decoded images resized to ``size`` and the paths that could not be decoded."""
    images, skipped = [], []
    for path in paths:
        try:
            images.append(_decode(path, size))
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, OSError):
            skipped.append(path)
    return images, skipped


def read_images_for_model(paths: list[Path], sample_shape: tuple[int, int, int],
                          ) -> tuple[np.ndarray, list[Path], list[Path]]:
    """Images as a model trained on ``sample_shape`` samples expects them: resized to its height
    and width; grayscale files become RGB for an RGB model (as the folder loader does).

    Returns ``(images [N, H, W, C], the paths read, the paths skipped as unreadable)``.

    Raises:
        ValueError: a colour image for a grayscale model (naming the file).
    """
    height, width, channels = sample_shape
    images, skipped = read_images(paths, (height, width))
    unreadable = set(skipped)
    read = [path for path in paths if path not in unreadable]
    for path, image in zip(read, images):
        if image.shape[-1] == 3 and channels == 1:
            raise ValueError(f"{path} is a colour image but the model was trained on grayscale "
                             f"images; convert it to grayscale first")
    return _stack(images, channels == 3), read, skipped


def _stack(images: list[tf.Tensor], rgb: bool) -> np.ndarray:
    if not images:
        return np.zeros((0, STORED_SIZE, STORED_SIZE, 3 if rgb else 1), np.uint8)
    if rgb:
        images = [tf.image.grayscale_to_rgb(i) if i.shape[-1] == 1 else i for i in images]
    return np.stack([i.numpy() for i in images])


def _layout(root: Path) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """``(train groups, test groups)``: group name -> image files; 'good' is normal."""
    if (root / "train" / "good").is_dir():
        test_root = root / "test"
        if not test_root.is_dir():
            raise ValueError(f"{root} has train/good/ but no test/ folder; MVTec AD layout needs "
                             f"test/good/ and test/<defect>/ folders")
        return ({"good": image_files(root / "train" / "good")},
                {d.name: image_files(d) for d in sorted(test_root.iterdir()) if d.is_dir()})
    if (root / "normal").is_dir() and (root / "abnormal").is_dir():
        normals = image_files(root / "normal")
        order = np.random.default_rng(_SPLIT_SEED).permutation(len(normals))
        cut = int(round(_TEST_SHARE_OF_NORMALS * len(normals)))
        return ({"good": [normals[i] for i in order[cut:]]},
                {"good": [normals[i] for i in order[:cut]],
                 "abnormal": image_files(root / "abnormal")})
    raise ValueError(f"{root} has neither the MVTec AD layout (train/good/, test/good/, "
                     f"test/<defect>/) nor normal/ and abnormal/ folders")


def mask_file(image: Path) -> Path | None:
    """The ground-truth mask of an MVTec AD-layout test image ``<root>/test/<defect>/<name>.*``:
    ``<root>/ground_truth/<defect>/<name>_mask.png`` or ``<name>.png``, when present."""
    if image.parent.parent.name != "test":
        return None
    folder = image.parent.parent.parent / "ground_truth" / image.parent.name
    for name in (f"{image.stem}_mask", image.stem):
        for suffix in IMAGE_SUFFIXES:
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    return None


def read_masks(paths: list[Path], size: tuple[int, int]) -> np.ndarray:
    """bool ``[N, height, width]``: each mask file resized to ``size`` (area-averaged, then at
    least half covered = defect)."""
    masks = [tf.io.decode_image(tf.io.read_file(str(path)), channels=1,
                                expand_animations=False).numpy()[..., 0] > 0 for path in paths]
    return masks_at(np.stack(masks), size) if masks else np.zeros((0, *size), bool)


def masks_at(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """bool masks ``[N, H, W]`` resized to ``size``: area-averaged, then a pixel at least half
    covered is a defect."""
    covered = tf.image.resize(masks[..., None].astype(np.float32), size, method="area")
    return covered.numpy()[..., 0] >= 0.5


def _test_masks(root: Path, test_groups: dict[str, list[Path]],
                readable: dict[str, list[Path]]) -> np.ndarray | None:
    """The masks of the readable test images in group order (normal: all False), or None
    without ``ground_truth/`` or when a defect image has no mask (logged)."""
    if not (root / "ground_truth").is_dir() or not (root / "train" / "good").is_dir():
        return None
    masks = []
    for name in test_groups:
        paths = readable[name]
        if name == "good":
            masks.append(np.zeros((len(paths), STORED_SIZE, STORED_SIZE), bool))
            continue
        files = [mask_file(path) for path in paths]
        missing = [path for path, file in zip(paths, files) if file is None]
        if missing:
            log.warning("Pixel-level results are off: %d defect image(s) have no mask in "
                        "%s (first: %s)", len(missing), root / "ground_truth", missing[0])
            return None
        masks.append(read_masks(files, (STORED_SIZE, STORED_SIZE)))
    return np.concatenate(masks)


def load_folder(data_dir: str | Path | None, category: str | None = None) -> RawData:
    """Images of a folder dataset at ``data_dir`` (see the module docstring)."""
    if data_dir is None:
        raise ValueError("dataset 'folder' reads your images: pass --data-dir DIR with train/good "
                         "and test/<name> folders (MVTec AD layout) or normal/ and abnormal/")
    root = Path(data_dir)
    train_groups, test_groups = _layout(root)
    loaded, skipped, readable = {}, [], {}
    for part, groups in (("train", train_groups), ("test", test_groups)):
        for name, paths in groups.items():
            loaded[part, name], bad = read_images(paths)
            skipped += bad
            if part == "test":
                unreadable = set(bad)
                readable[name] = [path for path in paths if path not in unreadable]
    if skipped:
        log.warning("Skipped %d file(s) that could not be read as images: %s", len(skipped),
                    ", ".join(str(p) for p in skipped))
    rgb = any(image.shape[-1] == 3 for images in loaded.values() for image in images)
    parts = {}
    for part in ("train", "test"):
        names = [name for p, name in loaded if p == part]
        x = np.concatenate([_stack(loaded[part, name], rgb) for name in names])
        y = np.concatenate([np.full(len(loaded[part, name]), int(name != "good"), np.int64)
                            for name in names])
        parts[part] = (x, y)
    counts = {part: (len(y), int(y.sum())) for part, (_, y) in parts.items()}
    if counts["train"][0] - counts["train"][1] == 0:
        raise ValueError(f"{root}: no readable normal training images")
    if counts["test"][1] == 0:
        raise ValueError(f"{root}: no readable anomalous test images")
    masks = _test_masks(root, test_groups, readable)
    return RawData(
        x_train=parts["train"][0], y_train=parts["train"][1],
        x_test=parts["test"][0], y_test=parts["test"][1], num_classes=2,
        source=(f"folder {root}: {counts['train'][0]} training and {counts['test'][0]} test "
                f"images ({counts['test'][1]} anomalous), {'RGB' if rgb else 'grayscale'}"
                + (f", {len(skipped)} unreadable file(s) skipped" if skipped else "")
                + (", with ground-truth masks" if masks is not None else "")),
        location=str(root.resolve()), test_masks=masks)


def load_mvtec(data_dir: str | Path | None, category: str | None) -> RawData:
    """MVTec AD category ``category`` under ``data_dir`` (the folder layout of one category)."""
    if data_dir is None or category is None:
        raise ValueError("dataset 'mvtec' needs --data-dir (the unpacked MVTec AD folder) and "
                         f"--category (one of {', '.join(MVTEC_CATEGORIES)})")
    root = Path(data_dir) / category
    if not root.is_dir():
        present = sorted(d.name for d in Path(data_dir).iterdir() if (d / "train").is_dir())
        raise ValueError(f"category '{category}' is not under {data_dir}; categories found "
                         f"there: {', '.join(present) or 'none'}")
    return load_folder(root)
