"""Monitoring's default serving data: this model's records under MLOPS_SERVING_RECORDS_URI, last N days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.components import predict
from pipelines.components.errors import ComponentError
from pipelines.components.steps import monitoring as monitoring_steps
from pipelines.serving.records import RecordWriter


def old_record(root: Path, model: str, days_ago: int) -> None:
    day = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%d")
    folder = root / model / day
    folder.mkdir(parents=True)
    stamp = f"{day}T12:00:00.000000Z"
    (folder / "old.jsonl").write_text(
        f'{{"timestamp": "{stamp}", "instance": {{"usage": 99.0, "tenure": 1.0, "plan": "pro"}}, "prediction": 1}}\n'
    )


def test_the_window_of_days_holds_this_models_records_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_SERVING_RECORDS_URI", str(tmp_path))
    writer = RecordWriter(records_uri=str(tmp_path), model_name="churn", context={})
    writer.offer("r", [{"usage": 1.0, "tenure": 2.0, "plan": "basic"}], [0])
    writer.close()
    old_record(tmp_path, "churn", days_ago=10)  # outside the default 7 days
    old_record(tmp_path, "fraud", days_ago=0)  # another model
    today = datetime.now(UTC).strftime("%Y-%m-%d")

    week = monitoring_steps._default_serving_uri("churn")
    assert week == f"{tmp_path}/churn/{today}/"
    assert predict.load_serving(week)["usage"].tolist() == [1.0]
    month = monitoring_steps._default_serving_uri("churn", window_days=30)
    assert month.split(",")[-1] == week and len(month.split(",")) == 2
    assert sorted(predict.load_serving(month)["usage"].tolist()) == [1.0, 99.0]


def test_no_records_in_the_window_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_SERVING_RECORDS_URI", str(tmp_path))
    old_record(tmp_path, "churn", days_ago=8)
    with pytest.raises(
        ComponentError, match=r"no serving records of model 'churn' under .*/churn/ for the last 7 day"
    ):
        monitoring_steps._default_serving_uri("churn")


def test_without_the_setting_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_SERVING_RECORDS_URI", raising=False)
    with pytest.raises(ComponentError, match="serving_uri is empty and MLOPS_SERVING_RECORDS_URI is not set"):
        monitoring_steps._default_serving_uri("churn")
