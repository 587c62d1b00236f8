"""One-class anomaly-detection splits (label 1 = anomalous, 0 = normal).

Two protocols:

* ``anomalous`` (P1, as in Zenati et al., "Efficient GAN-Based Anomaly Detection", 2018, and
  Akcay et al., "GANomaly", ACCV 2018): class K is the anomaly, the other classes are normal.
  Train and test are pooled; 80% of the normal images are for training, the other 20% are test
  normals, and the anomalies go to the test split.
* ``normal`` (P3, as in Ruff et al., "Deep One-Class Classification", ICML 2018; Yang et al.,
  MEMGAN, arXiv 2020; Somepalli et al., "Adversarial Mirrored Autoencoder", UAI 2021): class K
  is normal. Training uses class K of the official train part; the test split is the whole
  official test part.

A validation split is carved from the training side: ``val_share`` of the training normals, plus
``val_share`` of the anomalies that the test split does not use (P1: of the anomaly class, which the
test split then lacks; P3: of the other classes of the official train part, which P3 never uses).
Validation drives model selection and thresholds; the test split is only ever scored at the end.

When the training part holds no anomalies at all (MVTec AD and other folder datasets), P3's
validation anomalies are ``val_share`` of the test part's anomalies, which the test split then
lacks: model selection needs labelled anomalies, and the test split must never provide them.

Ground-truth masks of a folder dataset (``RawData.test_masks``) follow the test images under P3
with class 0 (the normal images) normal, the only case where they mark the anomalies' pixels.

``contamination`` = gamma puts anomalies into the training split so that they are a share gamma of
it (Berg et al.), taken from the same pool as the validation anomalies and disjoint from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly_toolbox.datasets.sources import RawData

PROTOCOLS = ("anomalous", "normal")
P1_TRAIN_SHARE = 0.8


@dataclass(frozen=True)
class Split:
    """Images ``x`` (uint8 ``[N, H, W, C]``) with anomaly labels ``y`` (int64 ``[N]``, 1 = anomalous)
    and, for a test split of data with ground-truth masks, ``masks`` (bool ``[N, H, W]``)."""

    x: np.ndarray
    y: np.ndarray
    masks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def anomalies(self) -> int:
        return int(self.y.sum())


@dataclass(frozen=True)
class OneClassSplits:
    """Train, validation and test splits of one protocol, class label and contamination."""

    train: Split
    validation: Split
    test: Split
    protocol: str
    label: int
    contamination: float

    def describe(self) -> dict:
        """Sizes and anomaly counts of every split, for logs and results files."""
        return {
            "protocol": self.protocol,
            "label": self.label,
            "contamination": self.contamination,
            **{f"{name}_size": len(split) for name, split in self._named()},
            **{f"{name}_anomalies": split.anomalies for name, split in self._named()},
        }

    def _named(self) -> list[tuple[str, Split]]:
        return [("train", self.train), ("validation", self.validation), ("test", self.test)]


def contamination_count(normal_count: int, contamination: float) -> int:
    """Anomalies to add to ``normal_count`` normals so that they make up ``contamination`` of the total."""
    return int(round(contamination * normal_count / (1.0 - contamination)))


def _stack(parts: list[tuple[np.ndarray, int]], rng: np.random.Generator) -> Split:
    """Concatenate ``(images, anomaly label)`` parts into one shuffled split."""
    x = np.concatenate([images for images, _ in parts])
    y = np.concatenate([np.full(len(images), label, np.int64) for images, label in parts])
    order = rng.permutation(len(y))
    return Split(x[order], y[order])


def check_label(raw: RawData, label: int) -> None:
    """Raise ValueError if ``label`` is not one of the dataset's classes."""
    if not 0 <= label < raw.num_classes:
        raise ValueError(f"label {label} is outside the dataset's classes 0..{raw.num_classes - 1}")


def one_class_splits(raw: RawData, protocol: str, label: int, contamination: float = 0.0,
                     val_share: float = 0.1, seed: int = 0) -> OneClassSplits:
    """Build the splits of ``protocol`` ('anomalous' = P1, 'normal' = P3) for class ``label``.

    Raises:
        ValueError: unknown protocol, label outside the dataset, a share outside its range, or
            more contamination than the dataset has anomalies for.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol '{protocol}'; choose one of {', '.join(PROTOCOLS)}")
    check_label(raw, label)
    if not 0.0 <= contamination < 1.0:
        raise ValueError(f"contamination must be in [0, 1), got {contamination}")
    if not 0.0 < val_share < 1.0:
        raise ValueError(f"validation share must be in (0, 1), got {val_share}")
    rng = np.random.default_rng(seed)

    def shuffled(images: np.ndarray) -> np.ndarray:
        return images[rng.permutation(len(images))]

    anomalies_from_test = False
    if protocol == "anomalous":
        pool_x = np.concatenate([raw.x_train, raw.x_test])
        pool_y = np.concatenate([raw.y_train, raw.y_test])
        normals = shuffled(pool_x[pool_y != label])
        spare_anomalies = shuffled(pool_x[pool_y == label])
        cut = int(round(P1_TRAIN_SHARE * len(normals)))
        train_normals, test_normals = normals[:cut], normals[cut:]
    else:
        train_normals = shuffled(raw.x_train[raw.y_train == label])
        spare_anomalies = shuffled(raw.x_train[raw.y_train != label])
        test_x, test_y = raw.x_test, (raw.y_test != label).astype(np.int64)
        test_masks = raw.test_masks if label == 0 else None  # masks mark defects, not class 0
        if len(spare_anomalies) == 0:
            is_normal = raw.y_test == label
            order = rng.permutation(int(np.sum(~is_normal)))
            test_anomalies = raw.x_test[~is_normal][order]
            taken = max(1, int(round(val_share * len(test_anomalies))))
            if len(test_anomalies) - taken < 1:
                raise ValueError(f"the test part has {len(test_anomalies)} anomalies; at least 2 "
                                 f"are needed (validation takes {taken})")
            spare_anomalies, anomalies_from_test = test_anomalies[:taken], True
            test_x = np.concatenate([raw.x_test[is_normal], test_anomalies[taken:]])
            test_y = np.r_[np.zeros(int(np.sum(is_normal)), np.int64),
                           np.ones(len(test_anomalies) - taken, np.int64)]
            if test_masks is not None:
                test_masks = np.concatenate([test_masks[is_normal],
                                             test_masks[~is_normal][order][taken:]])

    val_normal_count = max(1, int(round(val_share * len(train_normals))))
    val_normals, train_normals = train_normals[:val_normal_count], train_normals[val_normal_count:]
    val_anomaly_count = (len(spare_anomalies) if anomalies_from_test
                         else max(1, int(round(val_share * len(spare_anomalies)))))
    val_anomalies = spare_anomalies[:val_anomaly_count]
    contamination_anomaly_count = contamination_count(len(train_normals), contamination)
    available = len(spare_anomalies) - val_anomaly_count
    if protocol == "anomalous":
        available -= 1  # P1 keeps at least one anomaly for the test split
    if contamination_anomaly_count > available:
        raise ValueError(
            f"contamination {contamination} needs {contamination_anomaly_count} anomalies in "
            f"training but only {available} are available; lower --contamination")
    used = val_anomaly_count + contamination_anomaly_count
    train_anomalies = spare_anomalies[val_anomaly_count:used]

    if protocol == "anomalous":
        test = _stack([(test_normals, 0), (spare_anomalies[used:], 1)], rng)
    else:
        test = Split(test_x, test_y, test_masks)
    return OneClassSplits(
        train=_stack([(train_normals, 0), (train_anomalies, 1)], rng),
        validation=_stack([(val_normals, 0), (val_anomalies, 1)], rng),
        test=test,
        protocol=protocol,
        label=label,
        contamination=contamination,
    )
