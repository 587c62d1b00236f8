"""Classic baselines on flattened pixels (scikit-learn): OC-SVM, Isolation Forest and KDE.

They run in the same pipeline as the networks (same splits, images in [-1, 1] at 28x28, the same
validation threshold and test metrics) so that a results table shows whether a GAN beats them.
Their one sensitive hyperparameter (OC-SVM's gamma, KDE's bandwidth) is chosen on the labelled
validation split when the hps leave it unset (``width_rule`` 'validation'; Ruff et al., Deep
one-class classification, ICML 2018, chose OC-SVM's gamma on a labelled hold-out). The label-free
rules the papers' tables also used are ``width_rule`` 'scale' (OC-SVM: scikit-learn's 1 / (d
var(x))) and 'likelihood' (KDE: 5-fold cross-validated log-likelihood, Ruff et al.'s rule). The
test split is never used.

``pca_variance`` (0, off, by default) projects the flattened images onto the principal components
of the training images that keep that share of their variance before any detector sees them, as
Ruff et al.'s baselines could (``--pca``, 95%); the widths are then chosen in that space. On
mnist-5k P3 it lifts Isolation Forest from 0.868 to 0.935 AUROC (benchmarks/RESULTS.md).

Scores, higher = more anomalous: OC-SVM -decision_function; Isolation Forest -score_samples
(the average path length, negated); KDE -log density.

The chosen detector is stored in skops' format (``model/detector.skops``), which loads without
running code from the file. Two kinds of object in it index arrays without bounds checks when
used (the trees of Isolation Forest, the KD tree of KDE), so skops does not trust them by default:
here a tree's node indices are checked before use and KDE's tree is rebuilt from its data. Older
model directories hold a pickle (``detector.pkl``), which can run any code when loaded: it loads
only when the caller says the directory is trusted.
"""

from __future__ import annotations

import abc
import io
import pickle
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import Pipeline
from sklearn.svm import OneClassSVM
from sklearn.tree._tree import Tree

from anomaly_toolbox.datasets.pipeline import PreparedData, eval_batches
from anomaly_toolbox.evaluation import ranking_metrics, test_metrics
from anomaly_toolbox.hps import HParam, Schema, schema_of
from anomaly_toolbox.registry import registered_name
from anomaly_toolbox.schemas import iforest as iforest_schema
from anomaly_toolbox.schemas import kde as kde_schema
from anomaly_toolbox.schemas import ocsvm as ocsvm_schema
from anomaly_toolbox.results import write_bytes_atomically
from anomaly_toolbox.timing import Stopwatch
from anomaly_toolbox.trainers.base import ImageSides
from anomaly_toolbox.training.evaluation import MODEL_DIR

DETECTOR_FILE = "detector.skops"
#: Where models saved before the skops format kept the detector (a pickle).
PICKLED_DETECTOR_FILE = "detector.pkl"
#: Types that skops does not trust by default and that this module checks or rebuilds on load.
CHECKED_TYPES = ("sklearn.tree._tree.Tree", "sklearn.neighbors._kd_tree.KDTree",
                 "sklearn.metrics._dist_metrics.EuclideanDistance64")


def skops_io() -> ModuleType:
    """``skops.io``, imported on first use: importing it lists every scikit-learn type it
    trusts, which takes about 4 s, a cost that only saving or loading a detector should pay."""
    import skops.io

    return skops.io


class UntrustedModel(ValueError):
    """A model file that could run code, or holds objects a baseline never holds, was refused."""


def flat_images(cached: tf.data.Dataset) -> np.ndarray:
    """Every image of a cached split, flattened: ``[N, S * S * C]`` float32."""
    batches = [x.numpy().reshape(len(x), -1) for x, _ in eval_batches(cached, 1024)]
    return np.concatenate(batches)


class ShallowTrainer(ImageSides, abc.ABC):
    """A scikit-learn detector with the trainer interface the experiment runner uses.

    Subclasses set ``hparams`` and say which candidate models to fit; their name is the one
    they are registered under.
    """

    image_size: ClassVar[int] = 28
    hparams: ClassVar[tuple[HParam, ...]]
    #: The scikit-learn class of the fitted detector (checked when a model is loaded).
    estimator: ClassVar[type]
    #: Scoring is one scikit-learn call: there is no progress to show.
    show_scoring_progress = False

    def __init__(self, hps: dict[str, Any], sample_shape: tuple[int, ...], seed: int) -> None:
        self.hps = hps
        self.seed = seed
        self.image_size = self.side_for(sample_shape)
        self.detector: Any = None
        #: The default setting's detector (the first candidate): the label-free 'last' model.
        self.default_detector: Any = None
        self.chosen = ""
        self.validation_best: dict[str, float] = {}
        self.stopwatch = Stopwatch()
        #: 'validation' when labelled validation chose among several settings, else 'last'
        #: (the one fitted detector: no labels used); set by :meth:`fit`.
        self.selection_rule = "last"

    @property
    def name(self) -> str:
        return registered_name(type(self))

    @classmethod
    def schema(cls) -> Schema:
        return schema_of(*cls.hparams)

    @abc.abstractmethod
    def candidates(self, train: np.ndarray) -> list[tuple[str, Any]]:
        """Unfitted detectors to try, each with a description of its setting; the default
        setting first (used alone when validation has no anomalies to rank)."""

    @staticmethod
    @abc.abstractmethod
    def score(detector: Any, images: np.ndarray) -> np.ndarray:
        """Anomaly scores ``[N]`` of flattened images, higher = more anomalous."""

    def fit(self, data: PreparedData, run_dir: Path, writer: tf.summary.SummaryWriter,
            progress_bar: bool = True) -> None:
        """Fit every candidate on (a subsample of) the training split; keep the best one on
        validation ``selection_metric`` (the only one when there is a single candidate)."""
        train = flat_images(data.train)
        if len(train) > self.hps["max_train_samples"]:
            rng = np.random.default_rng(self.seed)
            train = train[rng.choice(len(train), self.hps["max_train_samples"], replace=False)]
        validation = flat_images(data.validation)
        projection = self._projection(train)
        if projection is not None:
            train, validation = projection.transform(train), projection.transform(validation)
            print(f"{self.name}: PCA keeps {projection.n_components_} of "
                  f"{projection.n_features_in_} dimensions "
                  f"({self.hps['pca_variance']:.0%} of the training variance)")
        metric = self.hps["selection_metric"]
        best = -np.inf
        for index, (setting, detector) in enumerate(self.candidates(train)):
            with self.stopwatch.measure("train_steps"):
                detector.fit(train)
            with self.stopwatch.measure("validation"):
                metrics = ranking_metrics(data.validation_labels,
                                          self.score(detector, validation))
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) or "no anomalies"
            print(f"{self.name} {setting}: validation {shown}")
            with writer.as_default():
                for name, value in metrics.items():
                    tf.summary.scalar(f"validation/{name}", value, step=index)
            value = metrics.get(metric, -np.inf)
            if self.detector is None:
                self.default_detector = detector
            if self.detector is None or value > best:
                best, self.detector, self.chosen = value, detector, setting
                self.validation_best = metrics
            if not metrics:
                break
            if index:
                self.selection_rule = "validation"
        if projection is not None:
            self.detector = Pipeline([("pca", projection), ("detector", self.detector)])
            self.default_detector = Pipeline([("pca", projection),
                                              ("detector", self.default_detector)])
        writer.flush()

    def _projection(self, train: np.ndarray) -> PCA | None:
        """The PCA fitted on the training images that ``pca_variance`` asks for, or None."""
        if not self.hps["pca_variance"]:
            return None
        share = self.hps["pca_variance"]
        return PCA(n_components=None if share == 1.0 else share, svd_solver="full").fit(train)

    def select_final_model(self, run_dir: Path, data: PreparedData) -> str:
        """Store the chosen detector in ``model/``; say which setting it is."""
        (run_dir / MODEL_DIR).mkdir(parents=True, exist_ok=True)
        self.save_detector(run_dir / MODEL_DIR)
        return self.chosen

    def save_detector(self, model_dir: Path) -> None:
        """Store the detector as ``detector.skops`` (loads without running code); an older
        model's pickle there is removed."""
        write_bytes_atomically(model_dir / DETECTOR_FILE, skops_io().dumps(self.detector))
        (model_dir / PICKLED_DETECTOR_FILE).unlink(missing_ok=True)

    def selection_note(self) -> str | None:
        return None

    def by_selection(self, run_dir: Path, data: PreparedData,
                     chosen_test: dict[str, float]) -> dict[str, dict[str, Any]]:
        """The chosen detector under its own rule (validation and synthetic metrics and
        ``chosen_test``); when labelled validation chose it among several settings, also the
        default setting's detector as 'last', the label-free model, with a label-free
        threshold."""
        reports = {self.selection_rule: self._report(self.detector, data, chosen_test)}
        if self.selection_rule == "validation":
            reports["last"] = self._report(self.default_detector, data, None)
        return reports

    def _report(self, detector: Any, data: PreparedData,
                test: dict[str, float] | None) -> dict[str, Any]:
        """Validation and synthetic metrics of one detector, and its test metrics (``test``,
        or measured with a label-free threshold)."""
        validation_scores = self.score(detector, flat_images(data.validation))
        if test is None:
            test = test_metrics(data, validation_scores,
                                self.score(detector, flat_images(data.test)), label_free=True)
        return {"epoch": 1,
                "validation": ranking_metrics(data.validation_labels, validation_scores),
                "synthetic": ({} if data.synthetic is None else ranking_metrics(
                    data.synthetic_labels, self.score(detector, flat_images(data.synthetic)))),
                "test": test}

    def final_scores(self, cached: tf.data.Dataset) -> np.ndarray:
        """Scores ``[N]`` of every sample of a cached split by the chosen detector."""
        return self.score(self.detector, flat_images(cached))

    def load_model(self, model_dir: Path, trusted: bool = False) -> None:
        """Load the detector that :meth:`select_final_model` stored, without running code from
        the file; an older model's pickle only when ``trusted``. Raises :class:`UntrustedModel`
        for a pickle (not ``trusted``), unknown object types, or a detector of another kind."""
        stored = model_dir / DETECTOR_FILE
        if not stored.is_file() and (model_dir / PICKLED_DETECTOR_FILE).is_file():
            if not trusted:
                raise UntrustedModel(
                    f"{model_dir / PICKLED_DETECTOR_FILE} is a pickle, which runs whatever code "
                    f"it holds when loaded; it was not loaded. If you made this model yourself, "
                    f"load it once as trusted (anomaly-box ... --trust-model, or "
                    f"anomaly_toolbox.load(path, trusted=True)) and save it again "
                    f"(Detector.save) to store it in the safe format")
            with open(model_dir / PICKLED_DETECTOR_FILE, "rb") as file:
                detector = pickle.load(file)  # noqa: S301 - the caller trusts this directory
        else:
            data = stored.read_bytes()
            try:
                unknown = [name for name in skops_io().get_untrusted_types(data=data)
                           if name not in CHECKED_TYPES]
                if unknown and not trusted:
                    raise UntrustedModel(
                        f"{stored} holds object types that no {self.name} model holds "
                        f"({', '.join(unknown)}); it was not loaded. Load it as trusted "
                        f"(--trust-model, or anomaly_toolbox.load(path, trusted=True)) only if "
                        f"you made it")
                detector = skops_io().load(io.BytesIO(data), trusted=[*CHECKED_TYPES, *unknown])
            except UntrustedModel:
                raise
            except Exception as error:  # noqa: BLE001 - skops reports damage in many ways
                raise UntrustedModel(f"{stored} is not a readable skops file ({error}); "
                                     f"retrain the run") from None
        self.detector = self._checked(detector, model_dir)

    def _checked(self, detector: Any, model_dir: Path) -> Any:
        """``detector`` after checking that it is this method's kind (alone or after a PCA) with
        tree node indices in bounds; a KDE's tree is rebuilt from its data."""
        final = detector.steps[-1][1] if isinstance(detector, Pipeline) else detector
        expected = self.estimator
        if type(final) is not expected or (isinstance(detector, Pipeline) and (
                len(detector.steps) != 2 or not isinstance(detector.steps[0][1], PCA))):
            raise UntrustedModel(f"{model_dir} holds a {type(final).__name__}, not the "
                                 f"{expected.__name__} of a {self.name} model; retrain the run")
        for tree in _trees(final):
            _check_tree(tree, final.n_features_in_, model_dir)
        if isinstance(final, KernelDensity):
            final.fit(np.asarray(final.tree_.data))
        return detector

    def training_summary(self) -> dict[str, Any]:
        return {"epochs_trained": 1, "steps_trained": 0, "epochs_planned": 1,
                "validation_best": self.validation_best}

    def evaluate(self, data: PreparedData,
                 validation_scores: np.ndarray | None = None) -> dict[str, Any]:
        if validation_scores is None:
            validation_scores = self.final_scores(data.validation)
        test_scores = self.final_scores(data.test)
        return {"test": test_metrics(data, validation_scores, test_scores,
                                     label_free=self.selection_rule != "validation"),
                "validation": {}, "test_scores": test_scores}


def _trees(detector: Any) -> list[Tree]:
    """The fitted trees inside ``detector`` (Isolation Forest's), else none."""
    return [estimator.tree_ for estimator in getattr(detector, "estimators_", [])]


def _check_tree(tree: Any, features: int, model_dir: Path) -> None:
    """Refuse a tree whose node arrays index outside themselves or the features, which
    scikit-learn would follow without bounds checks."""
    nodes = tree.node_count
    children = np.concatenate([tree.children_left, tree.children_right])
    leaves = tree.children_left == -1
    if (not isinstance(tree, Tree) or len(tree.children_left) != nodes
            or len(tree.children_right) != nodes or len(tree.feature) != nodes
            or children.min(initial=-1) < -1 or children.max(initial=-1) >= nodes
            or np.any(tree.children_right[leaves] != -1)
            or np.any((tree.feature[~leaves] < 0) | (tree.feature[~leaves] >= features))):
        raise UntrustedModel(f"{model_dir}: a tree of the stored detector has node indices out "
                             f"of bounds; the file is damaged or was crafted. Retrain the run")


def _median_distance(train: np.ndarray, seed: int, pairs: int = 2_000) -> float:
    """Median Euclidean distance between random pairs of training images."""
    rng = np.random.default_rng(seed)
    first, second = rng.integers(len(train), size=(2, pairs))
    return float(np.median(np.linalg.norm(train[first] - train[second], axis=1))) or 1.0


class OCSVMTrainer(ShallowTrainer):
    """One-class SVM with an RBF kernel."""

    estimator = OneClassSVM
    hparams = ocsvm_schema.HPARAMS


    def candidates(self, train: np.ndarray) -> list[tuple[str, Any]]:
        if self.hps["gamma"] is not None:
            gammas = [self.hps["gamma"]]
        else:
            scale = 1.0 / (train.shape[1] * (train.var() or 1.0))
            gammas = ([scale] if self.hps["width_rule"] == "scale"
                      else [scale * 2.0 ** k for k in sorted(range(-3, 7), key=abs)])
        return [(f"gamma={gamma:.3g}", OneClassSVM(kernel="rbf", nu=self.hps["nu"], gamma=gamma))
                for gamma in gammas]

    @staticmethod
    def score(detector: Any, images: np.ndarray) -> np.ndarray:
        return -detector.decision_function(images)


class IsolationForestTrainer(ShallowTrainer):
    """Isolation Forest (Liu et al. 2008)."""

    estimator = IsolationForest
    hparams = iforest_schema.HPARAMS


    def candidates(self, train: np.ndarray) -> list[tuple[str, Any]]:
        return [(f"n_estimators={self.hps['n_estimators']}",
                 IsolationForest(n_estimators=self.hps["n_estimators"], random_state=self.seed))]

    @staticmethod
    def score(detector: Any, images: np.ndarray) -> np.ndarray:
        return -detector.score_samples(images)


class KDETrainer(ShallowTrainer):
    """Gaussian kernel density estimate."""

    estimator = KernelDensity
    hparams = kde_schema.HPARAMS


    def candidates(self, train: np.ndarray) -> list[tuple[str, Any]]:
        if self.hps["bandwidth"] is not None:
            bandwidths = [self.hps["bandwidth"]]
        else:
            median = _median_distance(train, self.seed)
            bandwidths = [median * 2.0 ** k for k in sorted(range(-4, 2), key=abs)]
            if self.hps["width_rule"] == "likelihood":
                search = GridSearchCV(KernelDensity(), {"bandwidth": bandwidths}, cv=KFold(
                    5, shuffle=True, random_state=self.seed)).fit(train)
                bandwidths = [search.best_params_["bandwidth"]]
        return [(f"bandwidth={bandwidth:.3g}", KernelDensity(bandwidth=bandwidth))
                for bandwidth in bandwidths]

    @staticmethod
    def score(detector: Any, images: np.ndarray) -> np.ndarray:
        return -detector.score_samples(images)
