import json
from pathlib import Path

import pytest

from anomaly_toolbox.registry import EXPERIMENTS, trainer_class
from anomaly_toolbox.catalogue import render
from anomaly_toolbox.hps import (BUDGET_SOURCE, HpsError, defaults, expand, full_hps, load_grid,
                                  parse_grid, shipped_grids)
from anomaly_toolbox.schemas import budget_source

HPS_DIR = Path(__file__).resolve().parents[1] / "hps"


@pytest.fixture
def schema():
    return trainer_class("egbad").schema()


def test_grid_parses_and_expands(schema):
    grid = parse_grid({"learning_rate": {"type": "Discrete", "values": [1e-4, 1]},
                       "score": {"type": "Discrete", "values": ["fm", "bce"]}}, schema, "f.json")
    assert grid["learning_rate"] == [1e-4, 1.0] and isinstance(grid["learning_rate"][1], float)
    runs = expand(grid, schema, tuning=True)
    assert len(runs) == 4 and {r["score"] for r in runs} == {"fm", "bce"}
    assert all(r["epochs"] == defaults(schema)["epochs"] for r in runs)
    single = expand(grid, schema, tuning=False)
    assert single == [{**defaults(schema), "learning_rate": 1e-4, "score": "fm"}]


@pytest.mark.parametrize("raw, message", [
    ({"learning_rat": {"values": [1e-4]}}, "key 'learning_rat': unknown hyperparameter; did you "
                                           "mean 'learning_rate'?"),
    ({"epochs": {"type": "Discrete", "values": []}}, "key 'epochs': 'values' must be a non-empty"),
    ({"epochs": {"type": "Discrete", "values": ["10"]}}, "key 'epochs': expects int, got '10'"),
    ({"epochs": {"type": "Discrete", "values": [True]}}, "expects int"),
    ({"epochs": {"type": "Discrete", "values": [0]}}, "must be > 0"),
    ({"score": {"type": "Discrete", "values": ["l2"]}}, "not one of \\['fm', 'bce'\\]"),
    ({"epochs": {"type": "Range", "values": [1, 2]}}, "type 'Range' is not supported"),
    ({"epochs": [1, 2]}, "expected {\"type\": \"Discrete\""),
    ({"epochs": {"values": [1], "typo": 1}}, "unexpected field"),
    ([1, 2], "top level must be a JSON object"),
])
def test_bad_grids_name_file_key_and_problem(schema, raw, message):
    with pytest.raises(HpsError, match=message) as error:
        parse_grid(raw, schema, "my.json")
    assert str(error.value).startswith("my.json")


def test_malformed_and_missing_files(schema, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"epochs": {"type": "Discrete", "values": [1,]}}')
    with pytest.raises(HpsError, match=r"broken.json: malformed JSON at line 1, column \d+"):
        load_grid(broken, schema)
    with pytest.raises(HpsError, match="not found"):
        load_grid(tmp_path / "missing.json", schema)


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_every_experiment_ships_a_grid_starting_with_its_defaults(experiment):
    schema = trainer_class(experiment).schema()
    grid = load_grid(HPS_DIR / f"{experiment}.json", schema)
    assert expand(grid, schema, tuning=False)[0] == defaults(schema)
    assert len(expand(grid, schema, tuning=True)) > 1


@pytest.mark.parametrize("path", sorted(HPS_DIR.glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_grid_file_is_valid(path):
    experiment = path.stem.split("_")[0]
    assert experiment in EXPERIMENTS, f"{path.name} names no experiment"
    assert load_grid(path, trainer_class(experiment).schema())
    assert json.loads(path.read_text())


def test_epochs_given_alone_are_trained_exactly_and_the_default_budget_is_in_steps(schema):
    default = defaults(schema)
    assert default["min_steps"] == default["epochs"] * -(-6000 // default["batch_size"])
    assert expand({}, schema, tuning=False)[0]["min_steps"] == default["min_steps"]
    assert expand({"epochs": [3]}, schema, tuning=False)[0]["min_steps"] == 0
    assert expand({"epochs": [3, 4]}, schema, tuning=True)[1]["min_steps"] == 0
    both = expand({"epochs": [3], "min_steps": [50]}, schema, tuning=False)[0]
    assert (both["epochs"], both["min_steps"]) == (3, 50)
    assert full_hps({"epochs": 2}, schema)["min_steps"] == 0
    assert full_hps({"learning_rate": 1e-3}, schema)["min_steps"] == default["min_steps"]
    with pytest.raises(HpsError, match="'min_steps': must be >= 0"):
        full_hps({"min_steps": -1}, schema)


@pytest.mark.parametrize("experiment, images_per_epoch", [
    ("egbad", 6000), ("ganomaly", 50_400), ("memgan", 6000), ("ama", 6000), ("jointgan", 5000),
    ("deepsvdd", 6000)])
def test_the_default_budget_counts_the_epoch_of_the_protocol_its_epochs_come_from(
        experiment, images_per_epoch):
    """GANomaly's 15 epochs are P1 epochs of full MNIST (8.4 times the steps of one class);
    Berg et al.'s 32 are epochs of one CIFAR-10 class."""
    default = defaults(trainer_class(experiment).schema())
    assert default["min_steps"] == default["epochs"] * -(-images_per_epoch // default["batch_size"])


def test_every_network_method_says_where_its_budget_comes_from_and_list_shows_it():
    listing = render()
    for name, experiment in EXPERIMENTS.items():
        if "min_steps" not in trainer_class(name).schema():
            continue
        source = budget_source(name)
        assert source != BUDGET_SOURCE, f"{name} states no BUDGET_SOURCE"
        assert source.startswith("ours:") or "paper" in source or "code" in source, source
        assert f"(budget: {source})" in " ".join(listing.split()), name


def test_list_says_which_label_free_rules_are_measured_and_which_are_the_default():
    listing = " ".join(render().split())
    assert ("skipganomaly" in listing and "synthetic; not measured for this method yet: the "
            "toolbox's default)" in listing)
    assert ("last; measured: the README's table 'Numbers without labels'; "
            "benchmarks/RESULTS.md)" in listing)


def test_hps_carry_the_keys_the_user_gave_from_grid_command_line_or_api(schema):
    """One place decides what "given" means: the grid's keys and the command line's overrides
    (which replace the grid's values), or the API's keywords; the defaults are not given."""
    [from_grid] = expand({"epochs": [3], "dropout": [0.2]}, schema, tuning=False,
                         overrides={"learning_rate": 1e-3, "not_egbad": 1})
    assert from_grid.given == {"epochs", "dropout", "learning_rate"}
    assert (from_grid["epochs"], from_grid["min_steps"], from_grid["learning_rate"]) == (3, 0, 1e-3)
    [overridden] = expand({"epochs": [3, 4]}, schema, tuning=False, overrides={"epochs": 9})
    assert (overridden["epochs"], overridden["min_steps"]) == (9, 0)
    [over_a_budget] = expand({"epochs": [15], "min_steps": [1410]}, schema, tuning=False,
                             overrides={"epochs": 1})  # the README's `--hps-path ganomaly --epochs 1`
    assert (over_a_budget["epochs"], over_a_budget["min_steps"]) == (1, 0)
    steps_too = expand({}, schema, tuning=False, overrides={"epochs": 2, "min_steps": 40})[0]
    assert (steps_too["min_steps"], steps_too.given) == (40, {"epochs", "min_steps"})
    assert full_hps({"score": "bce"}, schema).given == {"score"}
    assert expand({}, schema, tuning=False)[0].given == set()


def test_shipped_grids_load_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    schema = trainer_class("ganomaly").schema()
    assert load_grid("ganomaly_kdd99", schema) == load_grid(HPS_DIR / "ganomaly_kdd99.json",
                                                            schema)
    assert load_grid("ganomaly_kdd99.json", schema) == load_grid("ganomaly_kdd99", schema)
    assert set(shipped_grids()) == {path.stem for path in HPS_DIR.glob("*.json")}
    (tmp_path / "ganomaly").write_text('{"epochs": {"type": "Discrete", "values": [3]}}')
    assert load_grid("ganomaly", schema) == {"epochs": [3]}  # a file of that name comes first
