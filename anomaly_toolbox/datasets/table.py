"""Any CSV table as anomaly-detection data (``--dataset csv``), and the encoder saved with a model.

A table is read as text (:func:`read_table`); one column holds labels, and the rows whose label
equals ``--normal-value`` are class 0 (normal), every other row class 1. A fixed,
seed-independent stratified quarter of the rows is the test part (:data:`TEST_SHARE`).

The features are encoded only after the one-class splits exist, with statistics of the training
split alone (:func:`encode_splits`): numeric columns min-max scaled by the training split's
minimum and maximum (values outside it are kept, not clipped, so an extreme value stays extreme),
text columns one-hot over the training split's categories (a category it never saw encodes as all
zeros). The fitted :class:`TableEncoder` is stored in the model's metadata, so that
``anomaly-box score --model RUN rows.csv`` and the Python API encode new rows the same way.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_toolbox.datasets.sources import RawData
from anomaly_toolbox.datasets.splits import OneClassSplits, Split

#: Share of the rows held out as the test part (stratified by class, fixed seed).
TEST_SHARE = 0.25
_SPLIT_SEED = 20180002
#: A column is numeric when more than this share of its values are numbers; its other values
#: are then errors (junk in a numeric column), not categories.
NUMERIC_MAJORITY = 0.5


class TableError(ValueError):
    """A table (or rows given for scoring) is unusable; the message names the column and row."""


def read_table(path: Path) -> tuple[list[str], np.ndarray]:
    """The header and the rows (strings, ``[N, C]`` object array) of a comma-separated file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            lines = list(csv.reader(file))
    except FileNotFoundError:
        raise TableError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise TableError(f"{path} is a folder; give the CSV file itself") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise TableError(f"{path} is not a UTF-8 comma-separated text file ({error})") from None
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if not lines:
        raise TableError(f"{path} is empty; it needs a header line and data rows")
    header = [name.strip() for name in lines[0]]
    if len(lines) == 1:
        raise TableError(f"{path} has a header but no data rows")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates or "" in header:
        raise TableError(f"{path}: the header needs distinct, non-empty column names"
                         f"{' (repeated: ' + ', '.join(duplicates) + ')' if duplicates else ''}")
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise TableError(f"{path}, line {number}: {len(line)} fields, but the header has "
                             f"{len(header)} columns")
    rows = np.array([[cell.strip() for cell in line] for line in lines[1:]], dtype=object)
    return header, rows


def _numbers(values: np.ndarray) -> np.ndarray:
    """``values`` ``[N]`` as float64, NaN where a value is not a finite number."""
    try:
        numbers = values.astype(np.float64)
    except (TypeError, ValueError):
        numbers = np.array([_number(value) for value in values], dtype=np.float64)
    return np.where(np.isfinite(numbers), numbers, np.nan)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclasses.dataclass(frozen=True)
class Column:
    """How one input column becomes features: ``numeric`` (scaled by ``low``/``high``) or
    ``text`` (one-hot over ``categories``)."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 1.0
    categories: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return 1 if self.kind == "numeric" else len(self.categories)

    def scaled(self, numbers: np.ndarray) -> np.ndarray:
        """``(x - low) / (high - low)`` of finite float64 ``numbers``, computed on halves so that
        a column spanning most of the float64 range (1e308 and -1e308) does not overflow, and
        kept within float32's range."""
        span = (self.high / 2 - self.low / 2) or 0.5
        limit = float(np.finfo(np.float32).max)
        return np.clip((numbers / 2 - self.low / 2) / span, -limit, limit)


@dataclasses.dataclass(frozen=True)
class TableEncoder:
    """Input columns -> float32 features ``[N, F]``; fitted on training rows only."""

    columns: tuple[Column, ...]

    @classmethod
    def fit(cls, rows: np.ndarray, names: list[str] | None = None) -> TableEncoder:
        """Learn each column's kind and statistics from training ``rows`` ``[N, C]``."""
        rows = _as_rows(rows, None)
        names = names or [f"column {index}" for index in range(rows.shape[1])]
        columns = []
        for index, name in enumerate(names):
            values = rows[:, index]
            numbers = _numbers(values)
            invalid = np.flatnonzero(np.isnan(numbers))
            if len(invalid) < (1.0 - NUMERIC_MAJORITY) * len(values):
                if len(invalid):
                    raise TableError(f"column '{name}', training row {invalid[0] + 1}: "
                                     f"{values[invalid[0]]!r} is not a finite number, while "
                                     f"most of the column is numeric; fix or remove that value")
                columns.append(Column(name, "numeric", float(numbers.min()),
                                      float(numbers.max())))
            else:
                columns.append(Column(name, "text",
                                      categories=tuple(sorted({str(v) for v in values}))))
        return cls(tuple(columns))

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def width(self) -> int:
        """Number of features the encoder produces."""
        return sum(column.width for column in self.columns)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """Features ``[N, F]`` float32 of ``rows`` ``[N, C]`` (C = the fitted columns)."""
        rows = _as_rows(rows, len(self.columns))
        parts = []
        for index, column in enumerate(self.columns):
            values = rows[:, index]
            if column.kind == "numeric":
                numbers = _numbers(values)
                invalid = np.flatnonzero(np.isnan(numbers))
                if len(invalid):
                    raise TableError(f"column '{column.name}', row {invalid[0] + 1}: "
                                     f"{values[invalid[0]]!r} is not a finite number")
                parts.append(column.scaled(numbers)[:, None])
            else:
                text = values.astype(str)
                parts.append((text[:, None] == np.array(column.categories)[None, :]))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def select(self, header: list[str], rows: np.ndarray, source: str) -> np.ndarray:
        """The encoder's columns of a table read with :func:`read_table` (other columns, such as
        the label, are ignored); names every missing column."""
        missing = [name for name in self.names if name not in header]
        if missing:
            raise TableError(f"{source} lacks the column(s) {', '.join(missing)} that the model "
                             f"was trained on (it has: {', '.join(header)})")
        return rows[:, [header.index(name) for name in self.names]]

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [dataclasses.asdict(column) for column in self.columns]}

    @classmethod
    def from_dict(cls, stored: Any) -> TableEncoder:
        """The encoder of :meth:`to_dict`; ``TableError`` when the stored form is damaged."""
        try:
            columns = tuple(Column(**{**column, "categories": tuple(column["categories"])})
                            for column in stored["columns"])
        except (TypeError, KeyError) as error:
            raise TableError(f"the stored table encoder is damaged ({error})") from None
        for column in columns:
            if column.kind not in ("numeric", "text") or not (
                    math.isfinite(_number(column.low)) and math.isfinite(_number(column.high))):
                raise TableError(f"the stored table encoder's column {column.name!r} is damaged")
        return cls(columns)


def _as_rows(rows: Any, columns: int | None) -> np.ndarray:
    """``rows`` as a 2-D array ``[N, C]`` (one row ``[C]`` gains N = 1), C checked if given."""
    rows = np.asarray(rows)
    if rows.dtype.kind in "US":
        rows = rows.astype(object)
    if rows.ndim == 1:
        rows = rows[None]
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise TableError(f"expected table rows [N, C], got an array of shape {rows.shape}")
    if columns is not None and rows.shape[1] != columns:
        raise TableError(f"expected rows of {columns} columns (as in training), got "
                         f"{rows.shape[1]}")
    return rows


def load_csv(data_dir: str | Path | None, category: str | None = None, *,
             label_column: str | None = None, normal_value: str | None = None) -> RawData:
    """A CSV table: rows (text) without the label column, class 0 where the label equals
    ``normal_value``, class 1 elsewhere; the test part a fixed stratified :data:`TEST_SHARE`."""
    from sklearn.model_selection import train_test_split

    if data_dir is None or label_column is None or normal_value is None:
        raise TableError("the csv dataset needs --data-dir FILE.csv, --label-column NAME and "
                         "--normal-value VALUE")
    path = Path(data_dir)
    header, rows = read_table(path)
    if label_column not in header:
        raise TableError(f"{path} has no column '{label_column}' (columns: "
                         f"{', '.join(header)}); pass --label-column with one of them")
    if len(header) < 2:
        raise TableError(f"{path} has only the label column; it needs feature columns too")
    position = header.index(label_column)
    labels = rows[:, position]
    normal = labels == str(normal_value).strip()
    seen = sorted(set(labels.tolist()))
    if normal.all() or not normal.any():
        raise TableError(f"{path}: column '{label_column}' holds {'only' if normal.all() else 'no'}"
                         f" rows with the value '{normal_value}'; pass the normal rows' value "
                         f"with --normal-value (values there: {', '.join(seen[:10])}"
                         f"{', ...' if len(seen) > 10 else ''}); anomalous rows are needed too")
    classes = (~normal).astype(np.int64)
    features = np.delete(rows, position, axis=1)
    try:
        train, test = train_test_split(np.arange(len(classes)), test_size=TEST_SHARE,
                                       stratify=classes, random_state=_SPLIT_SEED)
    except ValueError:
        raise TableError(f"{path}: too few rows of one class to hold out a stratified test "
                         f"part; each class needs at least 2 rows") from None
    names = [name for name in header if name != label_column]
    return RawData(
        x_train=features[train], y_train=classes[train], x_test=features[test],
        y_test=classes[test], num_classes=2, name="csv", location=str(path.resolve()),
        source=(f"csv: {path}, {len(classes)} rows ({int(normal.sum())} with {label_column} = "
                f"{normal_value}: class 0, normal by default), {len(names)} feature columns"),
        columns=tuple(names))


def encode_splits(raw: RawData,
                  splits: OneClassSplits) -> tuple[OneClassSplits, TableEncoder | None]:
    """For a table (``raw.columns`` set), the splits with encoded features and the encoder,
    fitted on the training split alone; other data unchanged, with None."""
    if raw.columns is None:
        return splits, None
    encoder = TableEncoder.fit(splits.train.x, list(raw.columns))

    def encoded(split: Split) -> Split:
        return Split(encoder.transform(split.x), split.y)

    return dataclasses.replace(splits, train=encoded(splits.train),
                               validation=encoded(splits.validation),
                               test=encoded(splits.test)), encoder
