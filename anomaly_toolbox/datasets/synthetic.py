"""Synthetic anomalies for label-free model selection (``selection`` 'synthetic').

The set is built from the normal validation samples only (never a real anomaly, never a
validation label beyond "these are the held-out normals"): they are split in two halves at
random; the first half stays normal, and every sample of the second half is corrupted once by
each member of a fixed family, so each source sample gives ``len(IMAGE_CORRUPTIONS)`` synthetic
anomalies. It is drawn once per split and seed, so every check of a run and every run of a grid
ranks its models on the same set.

Prior work: Fung et al., "Model selection of anomaly detectors in the absence of labeled
validation data" (SWSA), 2023, ranks detectors on synthetic anomalies made from normal
validation images; Goswami et al., ICLR 2023, compare label-free surrogate metrics and find
none reliable everywhere, which is why the toolbox measures the rule per method
(``benchmarks/RESULTS.md``) instead of trusting it.

Image corruptions, each on one patch of side ``PATCH_SHARE`` (a quarter to two fifths) of the
image side, placed in the central half of the image, where the papers' datasets keep their
objects (MNIST's digits are centred, so a corner patch would often change nothing):

* ``cutpaste``: a patch cut from another source image and pasted (CutPaste, Li et al. 2021);
* ``blur``: the patch box-blurred (a 5x5 mean at 28 px, scaled with the side);
* ``noise``: Gaussian noise of standard deviation 0.3 of the intensity range in the patch;
* ``erase``: the patch filled with the image's mean colour;
* ``shuffle``: the image's four quadrants in a random non-identity order.

Tables (``[N, F]`` encoded features): each column permuted across the source rows, repeated
``len(IMAGE_CORRUPTIONS)`` times, which keeps every column's distribution and breaks the
dependencies between columns.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.ndimage import uniform_filter

from anomaly_toolbox.datasets.splits import Split

IMAGE_CORRUPTIONS = ("cutpaste", "blur", "noise", "erase", "shuffle")
#: Patch side as a share of the image side, drawn uniformly from this range per image.
PATCH_SHARE = (0.25, 0.4)
#: Noise standard deviation as a share of the 0..255 range.
NOISE_SHARE = 0.3
#: Normals kept and source samples corrupted at most (a large validation split, e.g. full
#: MNIST under P1, would otherwise make every check score tens of thousands of images).
MAX_NORMALS, MAX_SOURCES = 500, 100
#: Mixed into the seed so the set's draws are independent of the splits' own.
_STREAM = 0x5EED


def _patch(rng: np.random.Generator, side: int) -> tuple[int, int, int]:
    """``(top, left, size)`` of a square patch inside the central half of a ``side`` image."""
    size = max(2, int(round(side * rng.uniform(*PATCH_SHARE))))
    low, high = max(0, side // 4 - size // 2), min(side - size, 3 * side // 4 - size // 2)
    top, left = rng.integers(low, max(low, high) + 1, size=2)
    return int(top), int(left), size


def corrupt(kind: str, image: np.ndarray, donor: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """One corruption of a uint8 image ``[H, W, C]`` (``donor``: another source image)."""
    out = image.astype(np.float32)
    side = min(image.shape[:2])
    top, left, size = _patch(rng, side)
    window = (slice(top, top + size), slice(left, left + size))
    if kind == "cutpaste":
        source_top, source_left, _ = _patch(rng, side)
        source_top, source_left = min(source_top, side - size), min(source_left, side - size)
        out[window] = donor[source_top:source_top + size, source_left:source_left + size]
    elif kind == "blur":
        width = 2 * max(1, side // 14) + 1
        out[window] = uniform_filter(out, size=(width, width, 1), mode="nearest")[window]
    elif kind == "noise":
        out[window] += rng.normal(0.0, NOISE_SHARE * 255.0, out[window].shape)
    elif kind == "erase":
        out[window] = out.mean(axis=(0, 1))
    elif kind == "shuffle":
        half = side // 2
        quadrants = [out[r:r + half, c:c + half].copy() for r in (0, half) for c in (0, half)]
        shift = int(rng.integers(1, 4))
        for index, (r, c) in enumerate((r, c) for r in (0, half) for c in (0, half)):
            out[r:r + half, c:c + half] = quadrants[(index + shift) % 4]
    else:
        raise ValueError(f"unknown corruption '{kind}'; known: {', '.join(IMAGE_CORRUPTIONS)}")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def synthetic_split(normals: np.ndarray, seed: int) -> Split | None:
    """Half of ``normals`` (uint8 images ``[N, H, W, C]`` or table features ``[N, F]``, at most
    :data:`MAX_NORMALS`) as normals (label 0) and synthetic anomalies made from the other half
    (at most :data:`MAX_SOURCES` sources; label 1), in a shuffled order so that any prefix
    holds both; None when there are fewer than two normals to split."""
    if len(normals) < 2:
        return None
    rng = np.random.default_rng([seed, _STREAM])
    order = rng.permutation(len(normals))
    half = len(order) // 2
    kept = normals[order[:min(half, MAX_NORMALS)]]
    sources = normals[order[half:half + MAX_SOURCES]]
    if normals.ndim == 2:
        anomalies = np.concatenate([
            np.stack([rng.permutation(column) for column in sources.T], axis=1)
            for _ in IMAGE_CORRUPTIONS]).astype(normals.dtype)
    else:
        donors = np.roll(sources, 1, axis=0)
        anomalies = np.stack([corrupt(kind, image, donor, rng) for kind in IMAGE_CORRUPTIONS
                              for image, donor in zip(sources, donors)])
    x = np.concatenate([kept, anomalies])
    y = np.r_[np.zeros(len(kept), np.int64), np.ones(len(anomalies), np.int64)]
    mixed = rng.permutation(len(y))
    return Split(x[mixed], y[mixed])


def split_digest(split: Split) -> str:
    """A short hash of a split's samples and labels (to show that runs share a set)."""
    digest = hashlib.sha256(np.ascontiguousarray(split.x).tobytes())
    digest.update(np.ascontiguousarray(split.y).tobytes())
    return digest.hexdigest()[:12]
