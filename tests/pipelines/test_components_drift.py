"""Drift statistics, serving-log parsing and the deployment's traffic arithmetic (no kfp)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipelines.components import deploy, drift, predict
from pipelines.ports import Deployment, ModelVersion, Prediction
from tests.pipelines.datasets import generated


def test_same_distribution_does_not_drift_and_a_shift_does() -> None:
    ref = generated(2000, seed=1)
    same = generated(500, seed=2)
    shifted = generated(500, seed=3, shift=1.0, plan_mix=(0.1, 0.2, 0.7))
    calm = drift.feature_drift(ref, same, ["usage", "tenure", "plan"], threshold=0.2)
    assert not calm["drift"] and calm["max_psi"] < 0.1
    moved = drift.feature_drift(ref, shifted, ["usage", "tenure", "plan"], threshold=0.2)
    assert moved["drifted_features"] == ["usage", "plan"]
    by_name = {f["feature"]: f for f in moved["features"]}
    assert by_name["usage"]["ks_pvalue"] < 1e-6 and by_name["usage"]["kind"] == "numeric"
    assert by_name["plan"]["js_distance"] > 0.2 and by_name["plan"]["kind"] == "categorical"
    assert by_name["tenure"]["drifted"] is False


def test_psi_edge_cases_stay_finite() -> None:
    assert drift.psi_numeric(pd.Series([1.0] * 10), pd.Series([1.0] * 5)) == pytest.approx(0.0)
    assert drift.psi_numeric(pd.Series([1.0] * 10), pd.Series([2.0] * 5)) > 1
    assert drift.psi_categorical(pd.Series(["a", "b"]), pd.Series(["c"])) > 1
    assert drift.psi_numeric(pd.Series([], dtype=float), pd.Series([1.0])) == 0.0


def test_missing_serving_features_are_reported_not_crashing() -> None:
    report = drift.feature_drift(
        generated(100, seed=1), generated(50, seed=2).drop(columns=["plan"]), ["usage", "plan"], 0.2
    )
    assert report["missing_features"] == ["plan"]
    assert [f["feature"] for f in report["features"]] == ["usage"]


def test_html_report_escapes_feature_names() -> None:
    ref = pd.DataFrame({"<b>x</b>": [1.0, 2.0, 3.0] * 10})
    page = drift.render_html(drift.feature_drift(ref, ref, ["<b>x</b>"], 0.2), "Drift <report>")
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "no drift" in page


def test_serving_log_shapes() -> None:
    lines = [
        json.dumps({"timestamp": "2024-05-01T00:00:00Z", "instance": {"a": 1}, "prediction": 0}),
        json.dumps({"instances": [{"a": 2}, {"a": 3}], "predictions": [1, 0]}),
        json.dumps({"a": 4}),
        "",
    ]
    rows = predict.serving_rows(lines)
    assert [r["a"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["_timestamp"] == "2024-05-01T00:00:00Z" and rows[2]["_prediction"] == 0


def test_canary_traffic_shares() -> None:
    assert deploy.canary_traffic({}, "2", 10) == {"2": 100}
    assert deploy.canary_traffic({"1": 100}, "2", 10) == {"1": 90, "2": 10}
    assert deploy.canary_traffic({"1": 50, "3": 50}, "4", 25) == {"1": 38, "3": 37, "4": 25}
    assert deploy.normalize({"1": 90}) == {"1": 100}
    with pytest.raises(ValueError, match="canary_percent"):
        deploy.canary_traffic({"1": 100}, "2", 0)


def test_prediction_checks() -> None:
    meta = {"task": "classification", "classes": [0, 1]}
    assert deploy.check_predictions([0, 1], 2, meta) is None
    assert deploy.check_predictions([0], 2, meta) == "expected 2 predictions, got 1"
    assert "not one of the model's classes" in (deploy.check_predictions([0, 7], 2, meta) or "")
    assert "not finite" in (deploy.check_predictions([float("nan")], 1, {"task": "regression"}) or "")


def test_the_smoke_test_answer_must_come_from_the_new_version() -> None:
    """Issue 12: a request follows the traffic split; only the response says who answered."""
    model = ModelVersion("churn", "2", "gs://m/2")
    deployment = Deployment("churn-smoke-v2-abc", {"2": 100}, ("2",), {"2": "222"})
    own = Prediction(
        [1], deployed_model_id="222", model_version_id="2", model="projects/1/locations/l/models/churn"
    )
    assert deploy.served_by(own, deployment, model) is None
    champion = Prediction([1], deployed_model_id="111", model_version_id="1", model=own.model)
    assert deploy.served_by(champion, deployment, model) == (
        "the answer came from deployed model 111 (version 1), not v2 (deployed model 222)"
    )
    other = Prediction(
        [1], deployed_model_id="222", model_version_id="2", model="projects/1/locations/l/models/fraud"
    )
    assert "not churn" in (deploy.served_by(other, deployment, model) or "")
    assert "not deployed" in (deploy.served_by(own, Deployment("e", {}), model) or "")


def test_predicted_classes_compare_as_numbers_after_json() -> None:
    meta = {"task": "classification", "classes": [0, 1]}
    assert deploy.check_predictions([{"prediction": 1.0}, {"prediction": 0}], 2, meta) is None
    assert (
        deploy.check_predictions(
            [{"prediction": "yes"}], 1, {"task": "classification", "classes": ["no", "yes"]}
        )
        is None
    )
