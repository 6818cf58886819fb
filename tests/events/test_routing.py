"""The router with the shipped rules: one decision per event, with its reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import envelope, keys, parse
from events.decision import Launch, Reject, Skip
from events.model import Event
from events.routing import default_rules_text, route
from tests import samples
from tests.catalog import load_rules

RULES = load_rules(default_rules_text(), variables={"DATA_BUCKET": "demo-data"})
DIGESTS = {"training": "a" * 64, "retraining": "b" * 64, "deployment": "c" * 64}


def decide_doc(doc: dict) -> tuple[Event, Launch | Skip | Reject]:
    ev = parse.parse(envelope.from_json_document(doc))
    return ev, route(ev, RULES, DIGESTS)


def launch(doc_or_event: dict | Event) -> Launch:
    ev = doc_or_event if not isinstance(doc_or_event, dict) else decide_doc(doc_or_event)[0]
    decision = route(ev, RULES, DIGESTS)
    assert isinstance(decision, Launch), decision
    return decision


def test_new_csv_under_incoming_launches_training_with_its_uri() -> None:
    d = launch(samples.event("storage-finalized.json"))
    r = d.request
    assert (r.pipeline, r.rule) == ("training", "new-training-data")
    assert r.parameters == {
        "data_uri": "gs://demo-data/incoming/churn/2024-05-01.csv",
        "model_name": "churn",
        "trigger": "gs://demo-data/incoming/churn/2024-05-01.csv#1714557492345678",
    }
    assert r.enable_caching is False
    assert r.labels["mlops-template"] == "a" * 20
    assert r.labels["mlops-rule"] == "new-training-data"
    assert keys.label_problems(r.labels) == []
    assert keys.JOB_ID_RE.match(r.job_id)


def test_file_directly_under_incoming_trains_the_default_model() -> None:
    d = launch(samples.storage_event("incoming/data.parquet"))
    assert d.request.parameters["model_name"] == "default"


@pytest.mark.parametrize(
    ("name", "bucket", "size", "reason"),
    [
        ("incoming/notes.txt", "demo-data", 10, "does not end with .csv/.jsonl/.parquet"),
        ("other/a.csv", "demo-data", 10, "is not under incoming/"),
        ("incoming/a.csv", "other-bucket", 10, "bucket 'other-bucket' is not demo-data"),
        ("incoming/a.csv", "demo-data", 0, "size 0 is below 1"),
    ],
)
def test_other_objects_are_skipped_with_the_reason(name: str, bucket: str, size: int, reason: str) -> None:
    _, decision = decide_doc(samples.storage_event(name, bucket=bucket, size=size))
    assert isinstance(decision, Skip)
    assert reason in decision.reason
    assert decision.reason.startswith("no rule matched (new-training-data:")


def test_redelivery_with_a_new_event_id_maps_to_the_same_job() -> None:
    first = launch(samples.storage_event(event_id="a", generation=5))
    again = launch(samples.storage_event(event_id="b", generation=5))
    newer = launch(samples.storage_event(event_id="c", generation=6))
    assert first.request.job_id == again.request.job_id
    assert newer.request.job_id != first.request.job_id


def test_open_incident_retrains_the_model_it_names() -> None:
    d = launch(samples.event("monitoring-incident-open.json"))
    assert d.request.pipeline == "retraining"
    assert d.request.parameters["model_name"] == "churn"
    assert d.request.parameters["alert_id"] == "0.nq2nm7ld1c5h"


def test_our_drift_alert_retrains() -> None:
    d = launch(samples.event("drift-alert-open.json"))
    assert d.request.pipeline == "retraining"


def test_closed_and_test_incidents_are_skipped() -> None:
    closed = route(samples.event("monitoring-incident-closed.json"), RULES)
    assert isinstance(closed, Skip)
    assert "state 'closed' is not open" in closed.reason
    test = route(samples.event("monitoring-incident-test.json"), RULES)
    assert isinstance(test, Skip)
    assert "test notification" in test.reason


def test_open_and_closed_of_one_incident_are_distinct_jobs_repeats_are_not() -> None:
    open_ = samples.event("monitoring-incident-open.json")
    assert open_.identity.endswith("/open")
    assert (
        launch(open_).request.job_id == launch(samples.event("monitoring-incident-open.json")).request.job_id
    )


@pytest.mark.parametrize(
    "file",
    [
        "vertex-merge-version-aliases-v1.json",
        "vertex-merge-version-aliases-v1beta1.json",
        "vertex-merge-version-aliases-ui.json",
    ],
)
def test_champion_alias_deploys_in_every_api_spelling(file: str) -> None:
    d = launch(samples.event(file))
    assert d.request.pipeline == "deployment"
    assert d.request.parameters["version"]


def test_other_registry_calls_are_skipped() -> None:
    for file in (
        "vertex-delete-model-version-v1.json",
        "vertex-copy-model-v1.json",
        "vertex-get-model-v1.json",
    ):
        decision = route(samples.event(file), RULES)
        assert isinstance(decision, Skip), (file, decision)


def test_a_failed_audited_call_changes_nothing() -> None:
    decision = route(samples.event("vertex-merge-version-aliases-denied.json"), RULES)
    assert isinstance(decision, Skip)
    assert "the audited call failed (status 7)" in decision.reason


def test_run_request_launches_the_named_pipeline_with_its_key() -> None:
    d = launch(samples.event("run-request.json"))
    assert d.request.pipeline == "training"
    assert d.request.parameters == {
        "data_uri": "gs://demo-data/incoming/churn/2024-05-01.csv",
        "model_name": "churn",
    }
    other_message = samples.load("run-request.json")
    other_message["data"]["message"]["messageId"] = "another-delivery"
    # The idempotency key, not the message id, names the request.
    assert launch(other_message).request.job_id == d.request.job_id


def test_run_request_without_key_is_named_by_message_id() -> None:
    a = launch(
        samples.pubsub_event(
            {
                "pipeline": "batch_prediction",
                "parameters": {"model_name": "m", "data_uri": "gs://demo-data/x.csv"},
            },
            message_id="1",
        )
    )
    b = launch(
        samples.pubsub_event(
            {
                "pipeline": "batch_prediction",
                "parameters": {"model_name": "m", "data_uri": "gs://demo-data/x.csv"},
            },
            message_id="2",
        )
    )
    assert a.request.job_id != b.request.job_id


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"pipeline": "mine-bitcoin"}, "pipeline 'mine-bitcoin' is not in the catalog"),
        (
            {
                "pipeline": "training",
                "parameters": {"data_uri": "gs://b/a.csv", "model_name": "m", "service_account": "root@evil"},
            },
            "parameter 'service_account' is not allowed: events choose data, never the template, service account",
        ),
        (
            {
                "pipeline": "training",
                "parameters": {"data_uri": "gs://b/a.csv", "model_name": "m", "pipeline_root": "gs://evil"},
            },
            "parameter 'pipeline_root' is not allowed",
        ),
        (
            {
                "pipeline": "training",
                "parameters": {"data_uri": "gs://b/a.csv", "model_name": "m", "seed": "x"},
            },
            "parameter 'seed' must be int, got str",
        ),
        ({"pipeline": "training", "parameters": {"model_name": "m"}}, "parameter 'data_uri' is required"),
        (
            {
                "pipeline": "training",
                "parameters": {"data_uri": "gs://b/a.csv", "model_name": "m", "colour": 1},
            },
            "pipeline 'training' has no parameter 'colour'",
        ),
    ],
)
def test_bad_run_requests_are_rejected_with_a_clear_reason(payload: dict, reason: str) -> None:
    _, decision = decide_doc(samples.pubsub_event(payload))
    assert isinstance(decision, Reject)
    assert reason in decision.reason


def test_allow_list_limits_what_a_run_request_may_launch() -> None:
    rules = load_rules(
        "rules:\n- name: manual\n  on: run.request\n  launch: {pipeline: '{pipeline}', parameters: '{parameters}', allow: [batch_prediction]}\n",
        variables={},
    )
    ev = parse.parse(
        envelope.from_json_document(samples.pubsub_event({"pipeline": "training", "parameters": {}}))
    )
    decision = route(ev, rules)
    assert isinstance(decision, Reject)
    assert "not allowed by rule manual (allowed: batch_prediction)" in decision.reason


def test_events_with_no_rule_for_their_kind_are_skipped() -> None:
    plain = parse.parse(envelope.from_json_document(samples.pubsub_event(b"hello")))
    decision = route(plain, RULES)
    assert decision == Skip("no rule handles pubsub.message events")


def test_integer_parameter_keeps_its_type_and_floats_accept_ints() -> None:
    rules = load_rules(
        "rules:\n- name: r\n  on: storage.object.finalized\n  launch:\n    pipeline: training\n"
        "    parameters: {data_uri: '{uri}', model_name: m, seed: '{generation}', metric_floor: 0}\n",
        variables={},
    )
    ev = parse.parse(envelope.from_json_document(samples.storage_event(generation=77)))
    decision = route(ev, rules)
    assert isinstance(decision, Launch)
    assert decision.request.parameters["seed"] == 77
    assert decision.request.parameters["metric_floor"] == 0.0
    assert isinstance(decision.request.parameters["metric_floor"], float)


@given(
    pipeline=st.text(min_size=1, max_size=80),
    rule=st.text(min_size=1, max_size=80),
    identity=st.text(max_size=300),
)
def test_job_ids_are_always_valid_for_vertex(pipeline: str, rule: str, identity: str) -> None:
    job = keys.job_id(pipeline, rule, identity)
    assert keys.JOB_ID_RE.match(job)
    assert job == keys.job_id(pipeline, rule, identity)


@given(kind=st.text(max_size=100), rule=st.text(max_size=100), identity=st.text(max_size=100))
def test_lineage_labels_always_obey_vertex_rules(kind: str, rule: str, identity: str) -> None:
    labels = keys.lineage_labels(
        source_kind=kind, rule=rule, pipeline="training", identity=identity, template_digest="ab" * 32
    )
    assert keys.label_problems(labels) == []


def test_batch_predictions_written_beside_their_input_never_retrain() -> None:
    _, decision = decide_doc(samples.storage_event("incoming/churn/day1.csv.predictions.jsonl"))
    assert isinstance(decision, Skip)
    assert "is excluded by **/*.predictions.*" in decision.reason
