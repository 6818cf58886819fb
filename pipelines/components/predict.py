"""Predictions with a registered model: batch scoring and reading serving logs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pipelines.components.data import PREDICTIONS_MARK
from pipelines.components.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def serving_rows(lines: list[str], uri: str = "<serving log>") -> list[dict[str, Any]]:
    """Instances from a serving log. A line is one record, in any of these shapes:
    ``{"instance": {...}, "prediction": p, "timestamp": t, ...}`` (the serving container's records,
    ``pipelines.serving.records``), ``{"instances": [...], "predictions": [...]}``, or the instance
    itself. Predictions are kept as ``_prediction`` (a classifier's label; its class probabilities
    as ``_probabilities``), the record's time as ``_timestamp``.
    """
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{uri} line {n} is not JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise DataError(f"{uri} line {n} is not a JSON object")
        if "instances" in record:
            preds = record.get("predictions") or [None] * len(record["instances"])
            rows.extend(
                {**inst, "_prediction": p} for inst, p in zip(record["instances"], preds, strict=False)
            )
        elif "instance" in record:
            if not isinstance(record["instance"], dict):
                raise DataError(f"{uri} line {n}: instance must be an object keyed by feature names")
            prediction = record.get("prediction")
            row = {**record["instance"], "_timestamp": record.get("timestamp")}
            if isinstance(prediction, dict) and "prediction" in prediction:
                row["_prediction"] = prediction["prediction"]
                row["_probabilities"] = prediction.get("probabilities")
            else:
                row["_prediction"] = prediction
            rows.append(row)
        else:
            rows.append(dict(record))
    return rows


def load_serving(serving_uri: str) -> pd.DataFrame:
    """Serving inputs (and predictions) from one or more JSONL logs or folders of them."""
    import pandas as pd

    from pipelines import storage_io
    from pipelines.components.data import expand, split_uris

    rows: list[dict[str, Any]] = []
    for part in split_uris(serving_uri):
        for uri in expand(part):
            try:
                rows.extend(serving_rows(storage_io.read_text(uri).splitlines(), uri))
            except storage_io.StorageError as exc:
                raise DataError(f"serving log {uri} does not exist") from exc
    if not rows:
        raise DataError(f"no serving records in {serving_uri}")
    return pd.DataFrame(rows)


def predict_frame(estimator: Any, metadata: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``prediction`` column (and ``probability`` for binary classifiers)."""
    from pipelines.components.training import features_of

    X = features_of(frame, list(metadata["feature_names"]))
    out = frame.copy()
    out["prediction"] = estimator.predict(X)
    if metadata.get("task") == "classification" and hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(X)
        if proba.shape[1] == 2:
            out["probability"] = proba[:, 1].round(6)
    return out


def default_output_uri(data_uri: str) -> str:
    """Beside the first input: ``<input>.predictions.jsonl``."""
    from pipelines.components.data import split_uris

    first = split_uris(data_uri)[0].rstrip("/")
    return f"{first}{PREDICTIONS_MARK}jsonl"
