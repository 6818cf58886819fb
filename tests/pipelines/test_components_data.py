"""Data loading and validation, as plain functions (no kfp)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.components import data, validation
from pipelines.components.errors import DataError
from tests.pipelines.datasets import breast_cancer, generated


def test_loads_csv_jsonl_and_parquet_from_several_uris(tmp_path: Path) -> None:
    frame = generated(30, seed=1)
    frame.iloc[:10].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[10:20].to_json(tmp_path / "b.jsonl", orient="records", lines=True)
    frame.iloc[20:].to_parquet(tmp_path / "c.parquet", index=False)
    uris = ", ".join(str(tmp_path / n) for n in ("a.csv", "b.jsonl", "c.parquet"))
    loaded = data.load_dataset(uris)
    assert len(loaded) == 30
    assert list(loaded.columns) == ["usage", "tenure", "plan", "target"]
    pd.testing.assert_series_equal(loaded["plan"], frame["plan"], check_names=False)


def test_folder_uri_lists_datasets_and_skips_predictions(tmp_path: Path) -> None:
    generated(12, seed=1).to_csv(tmp_path / "day1.csv", index=False)
    generated(8, seed=2).to_csv(tmp_path / "day2.csv", index=False)
    (tmp_path / "day1.csv.predictions.jsonl").write_text('{"usage": 1}\n')
    (tmp_path / "notes.txt").write_text("not data")
    assert len(data.load_dataset(f"{tmp_path}/")) == 20


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "is empty"),
        ("data.xlsx", "x", "cannot tell the format"),
        ("bad.jsonl", "{not json", "cannot parse"),
    ],
)
def test_unreadable_data_is_named(tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        data.load_dataset(str(tmp_path / name))


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        data.load_dataset(str(tmp_path / "nope.csv"))


def test_good_data_passes_with_warnings_for_missing_values() -> None:
    frame = breast_cancer()
    frame.loc[:9, "mean radius"] = None
    report = validation.validate(frame, label_column="target", task="classification", min_rows=20)
    assert report.ok, report.render()
    assert any("mean radius" in w for w in report.warnings)
    assert report.schema["mean radius"] == "numeric"


def test_every_problem_is_reported_at_once() -> None:
    frame = generated(10, seed=3).drop(columns=["target"])
    frame["usage"] = frame["usage"].astype(object)
    frame.loc[0, "usage"] = "12.5 kWh"
    frame["tenure"] = None
    report = validation.validate(frame, label_column="target", task="classification", min_rows=20)
    text = report.render()
    assert not report.ok
    assert "too few rows: 10 < min_rows 20" in text
    assert "label column 'target' is missing" in text
    assert "column 'usage' mixes numbers and text: 1 of 10 values are not numbers (e.g. '12.5 kWh')" in text
    assert "column 'tenure' is 100% missing" in text


def test_schema_is_checked_against_the_champions_data() -> None:
    reference = validation.infer_schema(generated(50, seed=1))
    changed = generated(50, seed=2).drop(columns=["tenure"])
    changed["plan"] = changed["plan"].map({"basic": 1, "plus": 2, "pro": 3})
    changed["extra"] = 1.0
    report = validation.validate(
        changed, label_column="target", task="classification", min_rows=20, reference_schema=reference
    )
    assert "column 'tenure' of the champion's training data is missing" in report.problems
    assert "column 'plan' changed type: categorical in the champion's data, numeric now" in report.problems
    assert any("extra" in w for w in report.warnings)


def test_label_checks_depend_on_the_task() -> None:
    frame = generated(40, seed=4)
    frame["target"] = 1
    assert (
        "fewer than 2 classes"
        in validation.validate(frame, label_column="target", task="classification", min_rows=1).render()
    )
    frame["target"] = "high"
    assert (
        "must be numeric for regression"
        in validation.validate(frame, label_column="target", task="regression", min_rows=1).render()
    )
    assert (
        "task must be one of"
        in validation.validate(frame, label_column="target", task="ranking", min_rows=1).render()
    )
