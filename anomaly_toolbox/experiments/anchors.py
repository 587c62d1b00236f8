"""Published numbers that benchmark tables print beside ours ("anchors").

An anchor is one paper's result for one method on one dataset under one protocol: per class where
the paper gives them, else the average alone. Values are fractions (percentages divided by 100).
Dataset names match by family, so ``mnist-5k`` (the bundled subset) shows the full-MNIST anchors
and the report says that the data differ.

Each anchor names the rule that chose the paper's model (``selection``), so that the benchmark
sets it beside our number under the same rule:

* Yang et al. (MEMGAN) train 7 epochs (CIFAR-10: 10) and report that model: ``last``. Their
  baseline rows are Ruff et al.'s (Deep one-class classification, ICML 2018): OC-SVM's gamma
  chosen on a small labelled hold-out (``validation``); KDE's bandwidth by cross-validated
  likelihood, Isolation Forest, the DCAE, AnoGAN and Deep SVDD at fixed budgets (``last``).
* Somepalli et al. (AMA), table 1-2: every method "has access to a small number of anomalies
  during validation to choose the best model" (``validation``).
* Berg et al. train a fixed number of epochs (``last``).
* Di Mattia et al. (the survey) "select the best model during the training phase" following
  GANomaly's code, which ranks on the test split (``validation``, at best).
* The consistency-BiGAN paper does not say (None).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MEMGAN_PAPER = ("Yang et al., Memory-augmented generative adversarial networks for anomaly "
                "detection, arXiv 2020, table 1")
AMA_PAPER = ("Somepalli et al., Unsupervised anomaly detection with adversarial mirrored "
             "autoencoders, UAI 2021, table 2")
BERG_PAPER = ("Berg, Ahlberg and Felsberg, Unsupervised adversarial learning of anomaly "
              "detection in the wild, ECAI 2020, table 2 (0% contamination)")
SURVEY_PAPER = ("Di Mattia, Galeone, De Simoni and Ghelfi, A survey on GANs for anomaly "
                "detection, arXiv 2019, table 3")
CBIGAN_PAPER = "the consistency-BiGAN paper (projection discriminator), table 1"


@dataclass(frozen=True)
class Anchor:
    """``method``'s published ``metric`` on ``dataset`` (a family: mnist, cifar10, kdd99, mvtec;
    ``category`` for datasets that have them) under ``protocol``; ``per_class`` by class label,
    ``average`` over all classes (None where the paper gives only some)."""

    method: str
    dataset: str
    protocol: str
    metric: str
    average: float | None
    source: str
    per_class: dict[int, float] = field(default_factory=dict)
    category: str | None = None
    #: The rule that chose the paper's model: 'validation', 'last', or None (not stated).
    selection: str | None = None


def _per_class(values: list[float], scale: float = 1.0) -> dict[int, float]:
    return {label: round(value * scale, 4) for label, value in enumerate(values)}


ANCHORS: tuple[Anchor, ...] = (
    # The paper prints MEMGAN's MNIST average as 96.5; its ten classes average 96.33.
    Anchor("memgan", "mnist", "normal", "auroc", 0.965, MEMGAN_PAPER, _per_class(
        [99.3, 99.9, 94.5, 95.7, 96.1, 93.6, 98.6, 96.2, 93.5, 95.9], 0.01), selection="last"),
    Anchor("ocsvm", "mnist", "normal", "auroc", 0.913, MEMGAN_PAPER, selection="validation"),
    Anchor("kde", "mnist", "normal", "auroc", 0.870, MEMGAN_PAPER, selection="last"),
    Anchor("iforest", "mnist", "normal", "auroc", 0.923, MEMGAN_PAPER, selection="last"),
    Anchor("ae", "mnist", "normal", "auroc", 0.897, MEMGAN_PAPER + " (DCAE)", selection="last"),
    Anchor("anogan", "mnist", "normal", "auroc", 0.914, MEMGAN_PAPER, selection="last"),
    Anchor("deepsvdd", "mnist", "normal", "auroc", 0.948, MEMGAN_PAPER, selection="last"),
    Anchor("ama", "mnist", "normal", "auroc", 0.938, AMA_PAPER, _per_class(
        [0.986, 0.998, 0.882, 0.891, 0.894, 0.938, 0.981, 0.983, 0.876, 0.948]),
        selection="validation"),
    Anchor("anogan", "mnist", "normal", "auroc", 0.731, AMA_PAPER, selection="validation"),
    Anchor("deepsvdd", "mnist", "normal", "auroc", 0.921, AMA_PAPER, selection="validation"),
    Anchor("memgan", "cifar10", "normal", "auroc", 0.648, MEMGAN_PAPER, _per_class(
        [73.0, 52.5, 62.1, 55.7, 73.9, 64.7, 72.8, 52.5, 74.1, 65.6], 0.01), selection="last"),
    Anchor("ama", "cifar10", "normal", "auroc", 0.669, AMA_PAPER, selection="validation"),
    Anchor("jointgan", "cifar10", "normal", "auroc", None, BERG_PAPER, {1: 0.72},
           selection="last"),
    Anchor("fanogan", "cifar10", "normal", "auroc", None, BERG_PAPER + ", their f-AnoGAN row",
           {1: 0.45}, selection="last"),
    Anchor("alad", "mnist", "normal", "auroc", 0.828, AMA_PAPER, _per_class(
        [0.962, 0.915, 0.794, 0.821, 0.702, 0.79, 0.843, 0.865, 0.771, 0.821]),
        selection="validation"),
    Anchor("alad", "cifar10", "normal", "auroc", 0.601, AMA_PAPER, _per_class(
        [0.679, 0.397, 0.685, 0.652, 0.696, 0.550, 0.704, 0.463, 0.787, 0.391]),
        selection="validation"),
    # MEMGAN's table 2 prints ALAD's average as 59.3; its ten classes average 58.2.
    Anchor("alad", "cifar10", "normal", "auroc", 0.593, MEMGAN_PAPER.replace("table 1",
                                                                            "table 2"),
           _per_class([64.7, 38.7, 67.0, 59.2, 72.7, 52.8, 69.5, 44.8, 73.4, 39.2], 0.01),
           selection="last"),
    Anchor("skipganomaly", "mnist", "normal", "auroc", 0.531, AMA_PAPER, _per_class(
        [0.297, 0.877, 0.393, 0.486, 0.618, 0.540, 0.455, 0.633, 0.426, 0.584]),
        selection="validation"),
    Anchor("skipganomaly", "cifar10", "normal", "auroc", 0.597, AMA_PAPER, _per_class(
        [0.655, 0.406, 0.663, 0.598, 0.739, 0.617, 0.638, 0.519, 0.746, 0.387]),
        selection="validation"),
    Anchor("egbad", "kdd99", "normal", "top_precision", 0.941, SURVEY_PAPER,
           selection="validation"),
    Anchor("egbad", "kdd99", "normal", "top_recall", 0.956, SURVEY_PAPER,
           selection="validation"),
    Anchor("egbad", "kdd99", "normal", "top_f1", 0.949, SURVEY_PAPER, selection="validation"),
    Anchor("ganomaly", "kdd99", "normal", "top_precision", 0.830, SURVEY_PAPER,
           selection="validation"),
    Anchor("ganomaly", "kdd99", "normal", "top_recall", 0.841, SURVEY_PAPER,
           selection="validation"),
    Anchor("ganomaly", "kdd99", "normal", "top_f1", 0.836, SURVEY_PAPER, selection="validation"),
    Anchor("cbigan", "mvtec", "normal", "auroc", 0.84, CBIGAN_PAPER, category="metal_nut"),
    Anchor("egbad", "mvtec", "normal", "auroc", 0.78, CBIGAN_PAPER, category="metal_nut"),
)

#: Dataset name -> what the papers trained and tested on.
FAMILY_DATA = {"mnist": "MNIST (70,000 images)", "mnist-5k": "MNIST (70,000 images)", "cifar10": "CIFAR-10",
               "kdd99": "KDDCUP99 10%", "mvtec": "MVTec AD"}

#: Dataset name -> the family its anchors are filed under.
FAMILIES = {"mnist": "mnist", "mnist-5k": "mnist", "cifar10": "cifar10", "kdd99": "kdd99",
            "mvtec": "mvtec"}


def anchors_for(method: str, dataset: str, protocol: str, metric: str,
                category: str | None = None) -> list[Anchor]:
    """The published numbers for one table column, in :data:`ANCHORS` order."""
    family = FAMILIES.get(dataset)
    return [anchor for anchor in ANCHORS
            if (anchor.method, anchor.dataset, anchor.protocol, anchor.metric)
            == (method, family, protocol, metric) and anchor.category in (None, category)]
