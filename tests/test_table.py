"""Any CSV table: reading, encoding on the training split only, training, and scoring new rows."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from anomaly_toolbox.datasets import load_raw, one_class_splits
from anomaly_toolbox.datasets.table import TableEncoder, TableError, encode_splits, read_table
from tests.conftest import invoke, table_rows, train_on_table, write_table

def test_encoder_one_hots_text_and_scales_numbers_with_training_statistics_only():
    train = np.array([["1", "a"], ["3", "b"], ["2", "a"]], dtype=object)
    encoder = TableEncoder.fit(train, ["size", "colour"])
    assert [c.kind for c in encoder.columns] == ["numeric", "text"] and encoder.width == 3
    np.testing.assert_allclose(encoder.transform(train),
                               [[0.0, 1, 0], [1.0, 0, 1], [0.5, 1, 0]])
    unseen = encoder.transform(np.array([["9", "z"]], dtype=object))
    np.testing.assert_allclose(unseen, [[4.0, 0, 0]])  # not clipped; unknown category: zeros
    assert TableEncoder.from_dict(json.loads(json.dumps(encoder.to_dict()))) == encoder


@pytest.mark.parametrize("rows, message", [
    ([["1"], ["2"], ["x"]], "column 'c', training row 3: 'x' is not a finite number"),
    ([["1"], ["inf"], ["2"]], "training row 2"),
])
def test_encoder_names_junk_in_a_numeric_column(rows, message):
    with pytest.raises(TableError, match=message):
        TableEncoder.fit(np.array(rows, dtype=object), ["c"])


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("a,b\n", "header but no data rows"),
    ("a,b\n1,2\n3\n", "line 3: 1 fields, but the header has 2 columns"),
    ("a,a\n1,2\n", "distinct, non-empty column names"),
])
def test_read_table_names_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(TableError, match=message):
        read_table(path)


def test_csv_splits_are_encoded_with_the_training_split_alone(tmp_path):
    raw = load_raw("csv", write_table(tmp_path / "t.csv", table_rows(300)),
                   options={"label_column": "label", "normal_value": "ok"})
    assert raw.num_classes == 2 and raw.columns == ("amount", "kind", "hour")
    before = one_class_splits(raw, "normal", 0, seed=1)
    splits, encoder = encode_splits(raw, before)
    train_amounts = before.train.x[:, 0].astype(float)
    assert (encoder.columns[0].low, encoder.columns[0].high) == (train_amounts.min(),
                                                                 train_amounts.max())
    assert splits.train.x.min() == 0.0 and splits.train.x.max() == 1.0
    assert splits.test.x.shape[1] == encoder.width == 1 + 2 + 1  # kind: a, b seen in training
    fraud_amounts = splits.test.x[splits.test.y == 1, 0]
    assert fraud_amounts.min() > 1.0  # the test part's fraud lies beyond the training range


def test_train_on_a_csv_table_then_score_new_rows_from_the_command_line(tmp_path):
    run_dir = train_on_table(tmp_path, table_rows(600), epochs=3)
    metadata = json.loads((run_dir / "model" / "metadata.json").read_text())
    assert [c["name"] for c in metadata["table"]["columns"]] == ["amount", "kind", "hour"]
    assert metadata["sample_shape"] == [4]

    new = table_rows(60, seed=7)
    reordered = [[hour, kind, amount] for amount, kind, hour, _ in new]  # other column order
    rows_file = write_table(tmp_path / "new.csv", reordered, ["hour", "kind", "amount"])
    result = invoke("score", "--model", run_dir, rows_file, "--csv", tmp_path / "scores.csv")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "scores.csv") as file:
        scored = list(csv.DictReader(file))
    assert [r["row"] for r in scored[:2]] == [f"{rows_file}:1", f"{rows_file}:2"]
    cli_scores = np.array([float(r["score"]) for r in scored])

    from anomaly_toolbox import load

    api_scores = load(run_dir).decision_function(np.array(new, dtype=object)[:, :3])
    np.testing.assert_allclose(cli_scores, api_scores, rtol=1e-5)
    fraud = np.array([row[3] == "fraud" for row in new])
    assert cli_scores[fraud].mean() > cli_scores[~fraud].mean()

    missing = write_table(tmp_path / "missing.csv", [["9", "a"]], ["hour", "kind"])
    result = invoke("score", "--model", run_dir, missing)
    assert result.exit_code == 2 and "lacks the column(s) amount" in result.output
    junk = write_table(tmp_path / "junk.csv", [["9", "a", "1"], ["9", "a", "lots"]],
                       ["hour", "kind", "amount"])
    result = invoke("score", "--model", run_dir, junk)
    assert result.exit_code == 2 and "column 'amount', row 2: 'lots'" in result.output


@pytest.mark.parametrize("args, message", [
    (["--label-column", "lab", "--normal-value", "ok"], "has no column 'lab'"),
    (["--label-column", "label", "--normal-value", "fine"], "no rows with the value 'fine'"),
    (["--label-column", "label"], "needs --normal-value"),
])
def test_csv_options_are_checked(tmp_path, args, message):
    table = write_table(tmp_path / "t.csv", table_rows(60))
    result = invoke("-e", "ocsvm", "-d", "csv", "--data-dir", table, *args,
                    "--log-dir", tmp_path / "logs")
    assert result.exit_code == 2 and message in result.output, result.output


def test_table_options_belong_to_the_csv_dataset(tmp_path):
    result = invoke("-e", "ocsvm", "-d", "mnist-5k", "--label-column", "label")
    assert result.exit_code == 2 and "applies to the csv dataset" in result.output
    result = invoke("-e", "ocsvm", "-d", "csv", "--data-dir", tmp_path, "--label-column", "x",
                    "--normal-value", "y")
    assert result.exit_code == 2 and "pass --data-dir FILE.csv" in result.output


def test_python_api_scales_integer_and_text_tables_and_keeps_the_encoder(tmp_path):
    from anomaly_toolbox import OCSVM, load

    rows = np.array(table_rows(400), dtype=object)
    x, fraud = rows[:, :3], rows[:, 3] == "fraud"
    model = OCSVM().fit(x[~fraud][:200], x[200:], fraud[200:].astype(int))
    scores = model.decision_function(x[200:])
    assert scores[fraud[200:]].min() > scores[~fraud[200:]].max()
    assert model.table.names == ["column 0", "column 1", "column 2"]
    np.testing.assert_allclose(load(model.save(tmp_path / "m")).decision_function(x[200:]), scores)

    counts = np.random.default_rng(0).integers(0, 1000, (120, 3))  # integer columns
    counts[:20] += 5000
    model = OCSVM().fit(counts[20:])
    integer_scores = model.decision_function(counts)
    assert integer_scores[:20].min() > np.median(integer_scores[20:])


def test_python_api_fits_the_table_encoder_on_the_rows_left_after_the_validation_hold_out():
    from anomaly_toolbox import KDE

    rows = np.arange(200, dtype=np.int64)[:, None] * np.array([[1, 2]])
    model = KDE(seed=4).fit(rows)
    order = np.random.default_rng(4).permutation(200)
    training = rows[order[20:]]  # val_share 0.1 of 200 rows held out, the largest among them
    assert 199 in order[:20]
    assert [(c.low, c.high) for c in model.table.columns] == [
        (float(training[:, 0].min()), float(training[:, 0].max())),
        (float(training[:, 1].min()), float(training[:, 1].max()))]


def test_a_default_batch_larger_than_a_small_table_is_capped_and_a_given_one_refused(tmp_path):
    table = write_table(tmp_path / "small.csv", table_rows(60))
    command = ["-e", "egbad", "-d", "csv", "--data-dir", table, "--label-column", "label",
               "--normal-value", "ok", "--epochs", "1", "--set", "filters=4", "--set",
               "latent_dim=8", "--set", "jit_compile=false", "--log-dir", tmp_path / "logs", "-q"]
    result = invoke(*command)
    assert result.exit_code == 0, result.output
    [results_file] = (tmp_path / "logs").glob("egbad/*/*/results.json")
    results = json.loads(results_file.read_text())
    train_size = results["splits"]["train_size"]
    assert train_size < 100 and results["hps"]["batch_size"] == train_size
    assert (f"batch_size 100 (the default) is larger than the {train_size} training samples: "
            f"training with batch_size {train_size}") in result.output
    given = invoke(*command, "--set", "batch_size=100")
    assert given.exit_code == 2 and "lower batch_size" in given.output
