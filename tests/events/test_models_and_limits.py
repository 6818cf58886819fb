"""Settings per model (``models:``) and limits on destinations: what an event may and may not ask for."""

from __future__ import annotations

from typing import Any

import pytest

from events import envelope, parse
from events.decision import Decision, Launch, Reject
from events.errors import ConfigError
from events.routing import default_rules_text, route
from tests import samples
from tests.catalog import load_rules

VARS = {"DATA_BUCKET": "demo-data"}
SHIPPED = load_rules(default_rules_text(), variables=VARS)


def rules_with(models: str) -> Any:
    """The shipped rules with ``models`` as the models: section (replacing the shipped one)."""
    text = default_rules_text().split("\nmodels:")[0] + "\nmodels:\n" + models
    return load_rules(text, variables=VARS)


def run_request(pipeline: str, parameters: dict[str, Any], key: str = "k1") -> Decision:
    doc = samples.pubsub_event({"pipeline": pipeline, "parameters": parameters, "idempotency_key": key})
    return route(parse.parse(envelope.from_json_document(doc)), RULES)


RULES = rules_with(
    """  churn:
    label_column: churned
    model_family: random_forest
    promotion: manual
    machine: {cpu: 8, memory: 32G}
    limits: {endpoints: [churn, churn-shadow]}
  "*":
    limits:
      alerts_topics: [alerts]
      ranges: {hyperparameters.n_estimators: 1..5000, canary_percent: 1..25}
"""
)


def storage(name: str, generation: int = 3) -> Decision:
    doc = samples.storage_event(bucket="demo-data", name=name, generation=generation)
    return route(parse.parse(envelope.from_json_document(doc)), RULES)


def _drift(model: str) -> Any:
    from events.schemas import build_drift_alert

    message = build_drift_alert(
        alert_id=f"drift-{model}-1",
        model=model,
        features=[{"feature": "usage", "score": 0.4, "threshold": 0.2, "metric": "psi"}],
        threshold=0.2,
        window_start="2026-01-01T00:00:00Z",
        window_end="2026-01-02T00:00:00Z",
        report_uri="gs://demo-data/r.json",
        created_at="2026-01-02T00:00:00Z",
        labels={"mlops_action": "retrain"},
    )
    doc = samples.pubsub_event(message, topic="alerts")
    return parse.parse(envelope.from_json_document(doc))


def launched(decision: Decision) -> dict[str, Any]:
    assert isinstance(decision, Launch), decision
    return dict(decision.request.parameters)


# --- a model's label column, written once -----------------------------------------------------


def test_a_models_settings_reach_every_rule_that_launches_for_it() -> None:
    trained = launched(storage("incoming/churn/week-1.csv"))
    assert trained["label_column"] == "churned" and trained["model_family"] == "random_forest"
    assert trained["promotion"] == "manual"
    assert (trained["machine_cpu"], trained["machine_memory"]) == ("8", "32G")
    retrained = launched(route(_drift("churn"), RULES))
    assert retrained["label_column"] == "churned" and retrained["promotion"] == "manual"
    other = launched(storage("incoming/fraud/week-1.csv"))
    assert "label_column" not in other and "promotion" not in other  # the template's defaults


def test_an_event_cannot_change_a_setting_the_model_fixes() -> None:
    decision = run_request(
        "training", {"data_uri": "gs://demo-data/x.csv", "model_name": "churn", "label_column": "target"}
    )
    assert isinstance(decision, Reject)
    assert "'label_column' is 'target', but model 'churn' fixes it to 'churned'" in decision.reason
    same = run_request(
        "training", {"data_uri": "gs://demo-data/x.csv", "model_name": "churn", "label_column": "churned"}
    )
    assert launched(same)["label_column"] == "churned"


@pytest.mark.parametrize("key", ["promotion", "machine_cpu", "machine_memory"])
def test_policy_and_cost_come_from_settings_only(key: str) -> None:
    decision = run_request(
        "training", {"data_uri": "gs://demo-data/x.csv", "model_name": "fraud", key: "auto"}
    )
    assert (
        isinstance(decision, Reject) and f"parameter {key!r} is set by a model's settings" in decision.reason
    )


def test_a_rule_may_not_set_policy_either() -> None:
    text = default_rules_text().replace(
        '        trigger: "{uri}#{generation}"\n',
        '        trigger: "{uri}#{generation}"\n        promotion: auto\n',
        1,
    )
    with pytest.raises(ConfigError, match=r"launch\.parameters\.promotion: set it in the models: section"):
        load_rules(text, variables=VARS)


def test_models_section_is_validated_with_every_problem_named() -> None:
    with pytest.raises(ConfigError) as info:
        rules_with(
            """  churn:
    label_colum: churned
    promotion: sometimes
    machine: {cpu: -1, memory: lots}
    limits: {endpoints: churn, data: ["s3://x/"], ranges: {canary_percent: many}}
"""
        )
    text = str(info.value)
    for needle in (
        "models.churn: unknown setting(s) label_colum",
        "models.churn.promotion: must be auto or manual",
        "models.churn.machine.cpu: must be a positive number",
        "models.churn.machine.memory: must look like 16G",
        "models.churn.limits.endpoints: must be a list of text",
        "models.churn.limits.data: every entry must be a gs:// prefix",
        "models.churn.limits.ranges.canary_percent: 'many' is not a range",
    ):
        assert needle in text, text


# --- destinations and values: limited by the rules, never chosen by the event -------------------


@pytest.mark.parametrize(
    ("pipeline", "params", "reason"),
    [
        (
            "deployment",
            {"model_name": "churn", "endpoint_name": "fraud"},
            "may deploy only to churn, churn-shadow",
        ),
        ("deployment", {"model_name": "fraud", "endpoint_name": "churn"}, "may deploy only to fraud"),
        ("deployment", {"model_name": "fraud", "canary_percent": 100}, "outside its range 1..50"),
        ("deployment", {"model_name": "fraud", "canary_percent": -50}, "outside its range 1..50"),
        ("deployment", {"model_name": "fraud", "canary_percent": 40}, "outside limits.ranges 1..25"),
        (
            "monitoring",
            {"model_name": "fraud", "alerts_topic": "run-requests"},
            "alerts may go to alerts only",
        ),
        ("training", {"model_name": "fraud", "data_uri": "file:///etc/passwd"}, "is not a gs:// URI"),
        ("training", {"model_name": "fraud", "data_uri": "/etc/passwd"}, "is not a gs:// URI"),
        (
            "training",
            {"model_name": "fraud", "data_uri": "gs://other-team/x.csv"},
            "in a bucket no storage rule watches",
        ),
        (
            "batch_prediction",
            {
                "model_name": "fraud",
                "data_uri": "gs://demo-data/x.csv",
                "output_uri": "gs://demo-data/incoming/fraud/p.csv",
            },
            "would start rule new-training-data",
        ),
        ("training", {"model_name": "", "data_uri": "gs://demo-data/x.csv"}, "not a Vertex model id"),
        ("training", {"model_name": "../../x", "data_uri": "gs://demo-data/x.csv"}, "not a Vertex model id"),
        ("training", {"model_name": "UPPER", "data_uri": "gs://demo-data/x.csv"}, "not a Vertex model id"),
        (
            "training",
            {"model_name": "m" * 10_000, "data_uri": "gs://demo-data/x.csv"},
            "has 10000 characters",
        ),
        (
            "training",
            {
                "model_name": "fraud",
                "data_uri": "gs://demo-data/x.csv",
                "hyperparameters": {"n_estimators": 10**9},
            },
            "hyperparameters.n_estimators' is 1000000000, outside limits.ranges 1..5000",
        ),
        (
            "training",
            {"model_name": "fraud", "data_uri": "gs://demo-data/x.csv", "task": "clustering"},
            "not one of: classification, regression",
        ),
    ],
)
def test_limits_refuse_what_the_event_may_not_choose(
    pipeline: str, params: dict[str, Any], reason: str
) -> None:
    decision = run_request(pipeline, params)
    assert isinstance(decision, Reject), decision
    assert reason in decision.reason, decision.reason


def test_within_the_limits_the_event_chooses_the_data() -> None:
    params = launched(
        run_request(
            "batch_prediction",
            {
                "model_name": "fraud",
                "data_uri": "gs://demo-data/scoring/x.csv",
                "output_uri": "gs://demo-data/scored/x.predictions.csv",
            },
        )
    )
    assert params["output_uri"] == "gs://demo-data/scored/x.predictions.csv"
    beside = launched(
        run_request(
            "batch_prediction",
            {
                "model_name": "fraud",
                "data_uri": "gs://demo-data/incoming/f/x.csv",
                "output_uri": "gs://demo-data/incoming/f/x.predictions.csv",
            },
        )
    )
    assert beside["output_uri"].endswith(".predictions.csv")  # excluded by the storage rule: no retrigger
    assert launched(run_request("deployment", {"model_name": "churn", "endpoint_name": "churn-shadow"}))


def test_a_null_parameter_is_left_out_as_the_sdk_does() -> None:
    params = launched(
        run_request("training", {"model_name": "fraud", "data_uri": "gs://demo-data/x.csv", "seed": None})
    )
    assert "seed" not in params
    missing = run_request("training", {"model_name": "fraud", "data_uri": None})
    assert isinstance(missing, Reject) and "parameter 'data_uri' is required" in missing.reason


def test_a_numeric_model_id_from_the_console_is_a_model_name() -> None:
    decision = route(samples.event("vertex-merge-version-aliases-ui.json"), SHIPPED)
    assert launched(decision)["model_name"].isdigit()


def test_the_shipped_rules_limit_alerts_to_the_alerts_topic() -> None:
    rules = load_rules(default_rules_text(), variables={**VARS, "ALERTS_TOPIC": "mlops-alerts"})
    doc = samples.pubsub_event(
        {"pipeline": "monitoring", "parameters": {"model_name": "m", "alerts_topic": "mlops-run-requests"}}
    )
    decision = route(parse.parse(envelope.from_json_document(doc)), rules)
    assert isinstance(decision, Reject) and "alerts may go to mlops-alerts only" in decision.reason
