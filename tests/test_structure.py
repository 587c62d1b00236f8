"""The package's shape: no import circle anywhere, and a new method is one registration line."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import anomaly_toolbox
from anomaly_toolbox.hps import common_hparams, defaults, load_grid
from anomaly_toolbox.registry import EXPERIMENTS, Experiment, register, trainer_class
from anomaly_toolbox.schemas import method_schema, schema_module
from anomaly_toolbox.trainers import MethodTrainer
from anomaly_toolbox.trainers.base import Trainer
from anomaly_toolbox.trainers.helpers import adam
from tests.conftest import invoke, make_trainer


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` statement of ``path`` names (at any level of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


PACKAGE = Path(__file__).resolve().parents[1] / "anomaly_toolbox"


def package_modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package is its ``__init__``)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its file (``TYPE_CHECKING`` and
    function-level imports included); a name imported from a module counts as that module."""
    modules = package_modules()

    def module_of(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    return {name: {module_of(imported) for imported in imported_modules(path)
                   if imported.startswith("anomaly_toolbox")} - {"", name}
            for name, path in modules.items()}


def find_circle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of ``graph`` as ``[a, b, ..., a]``, or ``[]``."""
    finished: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return path[path.index(module):] + [module]
        if module in finished:
            return []
        for imported in sorted(graph[module]):
            if circle := visit(imported, path + [module]):
                return circle
        finished.add(module)
        return []

    return next((circle for module in sorted(graph) if (circle := visit(module, []))), [])


def test_find_circle_finds_one_and_only_one():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_import_graph_has_no_circle_and_the_registry_is_the_ground_floor():
    graph = import_graph()
    assert "anomaly_toolbox.trainers.base" in graph and len(graph) > 40
    assert find_circle(graph) == []
    assert graph["anomaly_toolbox.registry"] == set()
    assert graph["anomaly_toolbox.version"] == set()


def test_no_module_that_the_api_imports_imports_it_back():
    skops_loaded, *loaded = subprocess.run(
        [sys.executable, "-c", "import sys, anomaly_toolbox.detector; print('skops.io' in "
         "sys.modules); print('\\n'.join(f'{n} {m.__file__}' for n, m in sys.modules.items() "
         "if n.startswith('anomaly_toolbox')))"],
        capture_output=True, text=True, check=True).stdout.split()
    modules = dict(zip(loaded[::2], loaded[1::2]))
    assert "anomaly_toolbox.experiments.runner" not in modules  # the CLI's glue stays out
    assert skops_loaded == "False"  # its 4 s of start-up are paid only when a detector is stored
    importing_back = [name for name, file in modules.items() if name != "anomaly_toolbox.detector"
                      and "anomaly_toolbox.detector" in imported_modules(Path(file))]
    assert importing_back == []


#: The toy method's schema (a method's ``schemas/<name>.py``; here this module, registered as it).
HPARAMS = common_hparams(epochs=1, batch_size=32, learning_rate=1e-3, beta_1=0.9, latent_dim=8,
                         filters=4)


class ToyTrainer(Trainer):
    """A dense autoencoder in a few lines: what a contributor's new method looks like."""

    image_size = 28
    hparams = HPARAMS

    def build_networks(self) -> dict[str, keras.Model]:
        inputs = keras.Input(self.image_shape)
        code = keras.layers.Dense(self.hps["latent_dim"])(keras.layers.Flatten()(inputs))
        pixels = keras.layers.Dense(int(np.prod(self.image_shape)), activation="tanh")(code)
        return {"autoencoder": keras.Model(inputs, keras.layers.Reshape(self.image_shape)(pixels))}

    def build_optimizers(self):
        return {"autoencoder": (adam(self.hps["learning_rate"], self.hps["beta_1"]),
                                ("autoencoder",))}

    def _error(self, images: tf.Tensor, networks: dict, training: bool) -> tf.Tensor:
        errors = tf.square(images - networks["autoencoder"](images, training=training))
        return tf.reduce_mean(tf.reshape(errors, [tf.shape(images)[0], -1]), axis=1)

    def train_step(self, images, noise):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(self._error(images, self.networks, training=True))
        self.apply_gradients(tape, {"autoencoder": loss})
        return {"loss": loss}

    def score(self, images):
        return self._error(images, self.scoring_networks, training=False)


@pytest.fixture
def toy_registered():
    yield register(Experiment("toy", f"{__name__}:ToyTrainer", "Toy", "toy: a dense autoencoder",
                              schema=__name__))
    EXPERIMENTS.pop("toy")


def test_a_new_method_needs_one_registration_line_for_the_cli_and_the_api(toy_registered, tmp_path,
                                                                          bundled):
    import anomaly_toolbox

    result = invoke("-e", "toy", "-d", "mnist-5k", "--anomalous-label", "1", "--epochs", "2",
                    "--log-dir", tmp_path / "logs", "-q")
    assert result.exit_code == 0, result.output
    [results_file] = (tmp_path / "logs" / "toy").glob("*/*/results.json")
    results = json.loads(results_file.read_text())
    assert results["status"] == "completed" and results["epochs_trained"] == 2
    assert anomaly_toolbox.load(results_file.parent).experiment == "toy"

    model = anomaly_toolbox.Toy(epochs=2).fit(bundled.x_train[bundled.y_train == 1][:300])
    assert type(model).__name__ == "Toy" and "Toy" in dir(anomaly_toolbox)
    ones, sevens = bundled.x_test[bundled.y_test == 1], bundled.x_test[bundled.y_test == 7]
    assert model.decision_function(sevens).mean() > model.decision_function(ones).mean()
    assert "toy" in invoke("-e", "toys").output  # did-you-mean reads the registry too


def test_network_and_scikit_learn_trainers_satisfy_one_contract():
    for name in EXPERIMENTS:
        cls = trainer_class(name)
        trainer = (make_trainer(name) if issubclass(cls, Trainer) else
                   cls(defaults(cls.schema()), sample_shape=(28, 28, 1), seed=0))
        assert isinstance(trainer, MethodTrainer), name



#: Modules allowed past :data:`MAX_MODULE_LINES`, each with its reason.
LONG_MODULES = {
    "anomaly_toolbox/trainers/base.py": "the method contract with its step mechanics (mixed "
    "precision, replicas, the weight EMA, several steps per call), each a few lines of one "
    "class that every method's step relies on",
    "anomaly_toolbox/detector.py": "the scikit-learn-style API: one Detector class (fit, score, "
    "predict, thresholds, save) and load with the checks a model directory must pass",
    "anomaly_toolbox/experiments/runner.py": "one run end to end (hps sets, run identity and "
    "reuse, locks, results files, the grid's choice): the CLI's glue in one place",
}
MAX_MODULE_LINES = 420


def test_no_module_is_long_without_a_stated_reason():
    root = PACKAGE.parent
    lengths = {path.relative_to(root).as_posix(): len(path.read_text().splitlines())
               for path in package_modules().values()}
    too_long = {name: lines for name, lines in lengths.items()
                if lines > MAX_MODULE_LINES and name not in LONG_MODULES}
    assert too_long == {}
    assert all(lengths[name] > MAX_MODULE_LINES for name in LONG_MODULES)  # reasons stay true


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_every_method_lives_in_its_trainer_networks_schema_grid_and_registry_line(experiment):
    """The places "Add a method" (README) names, and they agree: the grid parses against the
    schema, and the schema module is the one the trainer trains with."""
    package = Path(anomaly_toolbox.__file__).parent
    registered = EXPERIMENTS[experiment]
    assert registered.schema_module == f"anomaly_toolbox.schemas.{experiment}"
    assert (package / "schemas" / f"{experiment}.py").is_file()
    trainer = trainer_class(experiment)
    assert Path(sys.modules[trainer.__module__].__file__).parent == package / "trainers"
    assert trainer.hparams is schema_module(experiment).HPARAMS
    if issubclass(trainer, Trainer):  # the scikit-learn baselines have no networks of their own
        networks = {module.__module__ for module in vars(sys.modules[trainer.__module__]).values()
                    if callable(module) and getattr(module, "__module__", "").startswith(
                        "anomaly_toolbox.models.")}
        assert networks, f"{experiment}'s trainer builds no networks from anomaly_toolbox/models"
    grid = Path(__file__).parents[1] / "hps" / f"{experiment}.json"
    assert load_grid(grid, method_schema(experiment))
    source = (package / "registry.py").read_text()
    assert source.count(f'register(Experiment("{experiment}"') == 1
