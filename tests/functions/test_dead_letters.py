"""Dead letters never fail for their size, are written once per event, and keep what replay needs;
guard state is released when a launch fails permanently; a reused idempotency key is rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions import dead_letter
from functions.runtime import reset_runtime
from mlops_cli import cmd_replay
from mlops_cli.reliability.events import incident, pubsub_event
from stack.vertex import VertexEmulator
from tests.functions.conftest import dead_letters

LOGGING_LIMIT = 256 * 1024  # Cloud Logging's limit for one entry
RECORD_LIMIT = 64 * 1024  # dead_letter.MAX_RECORD_BYTES, spelled out: the test states the contract


def big_request(megabytes: float) -> tuple[dict[str, str], bytes, bytes]:
    """A run request whose message is ``megabytes`` large (over MAX_MESSAGE_BYTES): rejected."""
    payload = json.dumps({"pipeline": "training", "parameters": {"x": "y" * int(megabytes * 1e6)}}).encode()
    d = pubsub_event("on_run_request", "run-requests", payload, message_id="big-1")
    return d.headers, d.body, payload


def test_an_8_mb_dead_letter_is_truncated_stored_whole_once_and_replayable(
    client, function_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    headers, body, _ = big_request(7.5)
    app = client("on_run_request")
    for _ in range(3):  # redelivered: still one record, one stored copy
        assert app.post("/", data=body, headers=headers).status_code == 200
    (record,) = dead_letters(function_env)
    line = (function_env / next(p.name for p in function_env.glob("*.jsonl"))).read_bytes()
    assert len(line) <= RECORD_LIMIT + 1
    assert "over the limit" in record["reason"]
    assert record["event"]["attributes"]["id"] == "big-1"
    assert len(record["event"]["data_head"]) == dead_letter.HEAD_BYTES  # the first 8 KiB kept
    truncated = record["truncated"]
    assert truncated["bytes"] > 10_000_000 and truncated["kept_bytes"] == dead_letter.HEAD_BYTES
    assert len(list((function_env / "events").rglob("*.json"))) == 1
    # No log line carries the whole record: each stays far below Cloud Logging's entry limit.
    out = capsys.readouterr().out.splitlines()
    assert out and max(len(x.encode()) for x in out) < LOGGING_LIMIT
    # Replay: the whole record comes back from where it was stored, byte for byte the same event.
    whole = dead_letter.full_record(record)
    replay_headers, replay_body = cmd_replay.http_request(whole)
    assert json.loads(replay_body) == json.loads(body)
    assert replay_headers["ce-id"] == "big-1"


def test_a_truncated_record_without_storage_says_it_cannot_be_replayed() -> None:
    record = dead_letter.make_record(
        entry_point="on_new_data", attributes={"id": "1"}, data=b"x" * 100_000, reason="r"
    )
    short = dead_letter.bounded(record, stored_at=None)
    assert len(json.dumps(short)) <= dead_letter.MAX_RECORD_BYTES
    with pytest.raises(ValueError, match="cannot be replayed"):
        dead_letter.full_record(short)


def test_huge_attributes_and_reasons_are_bounded_too() -> None:
    attributes = {f"ext{i}": "v" * 50_000 for i in range(100)}
    record = dead_letter.make_record(
        entry_point="e", attributes=attributes, data={"a": 1}, reason="why " * 100_000
    )
    short = dead_letter.bounded(record, stored_at="gs://b/x.json")
    assert len(json.dumps(short)) <= dead_letter.MAX_RECORD_BYTES
    assert short["truncated"]["attributes_dropped"] == 100 - dead_letter.MAX_ATTRIBUTES


def test_guard_state_is_released_when_a_launch_fails_permanently(
    client, function_env: Path, vertex: VertexEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - name: drift-retrain\n    on: monitoring.alert\n    match: {state: open}\n"
        "    launch: {pipeline: retraining, parameters: {model_name: '{model}', trigger: '{alert_id}'}}\n"
        "    cooldown: 6h\n    concurrency: skip\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("MLOPS_CONFIG", str(rules))
    reset_runtime()
    app = client("on_monitoring_alert")
    vertex.faults.rate, vertex.faults.kinds = 1.0, ("400",)  # Vertex rejects the first launch
    first = pubsub_event("on_monitoring_alert", "a", incident("inc-1", "open", "churn"), message_id="1")
    assert app.post("/", data=first.body, headers=first.headers).status_code == 200
    assert "launch failed permanently" in dead_letters(function_env)[0]["reason"]
    vertex.faults.rate = 0.0
    second = pubsub_event("on_monitoring_alert", "a", incident("inc-2", "open", "churn"), message_id="2")
    assert app.post("/", data=second.body, headers=second.headers).status_code == 200
    # Neither the cooldown nor the active-run claim of the job that never existed holds it back.
    (job,) = vertex.created_jobs().values()
    assert job["runtimeConfig"]["parameterValues"]["trigger"] == "inc-2"
    third = pubsub_event("on_monitoring_alert", "a", incident("inc-3", "open", "churn"), message_id="3")
    assert app.post("/", data=third.body, headers=third.headers).status_code == 200
    assert len(vertex.created_jobs()) == 1  # and the cooldown now holds, citing the job that exists


def test_a_reused_idempotency_key_with_other_parameters_is_rejected_naming_both(
    client, function_env: Path, vertex: VertexEmulator
) -> None:
    app = client("on_run_request")
    base = {"pipeline": "training", "idempotency_key": "nightly-2026-12-01"}
    first = {**base, "parameters": {"data_uri": "gs://demo-data/a.csv", "model_name": "churn"}}
    other = {**base, "parameters": {"data_uri": "gs://demo-data/b.csv", "model_name": "churn"}}
    for i, payload in enumerate((first, first, other)):
        d = pubsub_event("on_run_request", "r", payload, message_id=f"m-{i}")
        assert app.post("/", data=d.body, headers=d.headers).status_code == 200
    assert len(vertex.created_jobs()) == 1
    (record,) = dead_letters(function_env)
    assert '"nightly-2026-12-01" was already used with other parameters' in record["reason"]
    assert "gs://demo-data/a.csv" in record["reason"] and "gs://demo-data/b.csv" in record["reason"]
