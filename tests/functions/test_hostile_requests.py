"""Hostile requests: every permanent error, wherever it is raised, is answered 2xx with exactly one
dead letter; only what a retry can fix answers 5xx."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions import runtime as runtime_module
from functions.guards import Guards
from mlops_cli.reliability.events import incident, pubsub_event, storage_event
from mlops_cli.reliability.instances import Instance, wait_ready
from stack.emulators import free_port
from stack.vertex import VertexEmulator
from tests.functions.conftest import dead_letters

CE = {
    "ce-specversion": "1.0",
    "ce-id": "hostile-1",
    "ce-type": "google.cloud.storage.object.v1.finalized",
    "ce-source": "//storage.googleapis.com/projects/_/buckets/demo-data",
}
DEEP = b"[" * 100_000 + b"]" * 100_000
STRUCTURED = "application/cloudevents+json"
ENVELOPE = b'{"specversion": "1.0", "id": "s-1", "type": "t", "source": "//s", "data": '

# (headers, body, what the dead letter's reason says): each raised inside functions-framework,
# before our function, as RecursionError, UnicodeDecodeError, TypeError, a JSON error...
BEFORE_THE_FUNCTION = [
    pytest.param({**CE, "content-type": "application/json"}, DEEP, "", id="binary-deeply-nested"),
    pytest.param(
        {"content-type": STRUCTURED}, ENVELOPE + DEEP + b"}", "structured-mode body", id="structured-deep"
    ),
    pytest.param(
        {"content-type": STRUCTURED}, ENVELOPE + b'"\xff\xfe"}', "not valid UTF-8", id="structured-not-utf8"
    ),
    pytest.param(
        {**CE, "content-type": STRUCTURED}, b"{broken", "structured-mode body", id="ce-headers-and-structured"
    ),
    pytest.param(
        {"content-type": "application/cloudevents-batch+json"},
        json.dumps([{"specversion": "1.0", "id": "b", "type": "t", "source": "s"}]).encode(),
        "batched CloudEvents",
        id="batch",
    ),
]


@pytest.mark.parametrize(("headers", "body", "reason"), BEFORE_THE_FUNCTION)
def test_errors_before_the_function_are_dead_lettered_and_acknowledged(
    client, function_env: Path, vertex: VertexEmulator, headers: dict[str, str], body: bytes, reason: str
) -> None:
    response = client("on_new_data").post("/", data=body, headers=headers)
    assert response.status_code == 200, response.data[:300]
    (record,) = dead_letters(function_env)
    assert record["entry_point"] == "on_new_data" and reason in record["reason"]
    assert vertex.created_jobs() == {}


def test_a_lone_surrogate_in_an_identity_launches_instead_of_failing_forever(
    client, function_env: Path, vertex: VertexEmulator
) -> None:
    key = json.loads('"\\ud800"')
    request = {"pipeline": "training", "parameters": {"data_uri": "gs://demo-data/x.csv", "model_name": "m"}}
    run = pubsub_event("on_run_request", "t", {**request, "idempotency_key": key}, message_id="m-1")
    alert = pubsub_event(
        "on_monitoring_alert", "a", incident(json.loads('"0.\\udfffx"'), "open", "churn"), message_id="a-1"
    )
    for entry_point, d in (("on_run_request", run), ("on_monitoring_alert", alert)):
        for _ in range(2):  # a redelivery finds the same job
            assert client(entry_point).post("/", data=d.body, headers=d.headers).status_code == 200
    assert sorted(j["labels"]["mlops-pipeline"] for j in vertex.created_jobs().values()) == [
        "retraining",
        "training",
    ]
    assert dead_letters(function_env) == []


@pytest.mark.parametrize(
    ("stage", "error", "status"),
    [
        ("route", KeyError("a bug"), 200),
        ("guards", ValueError("a bug"), 200),
        ("guards", UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), 200),
        ("guards", ConnectionError("state bucket unreachable"), 500),
    ],
)
def test_unexpected_exceptions_in_routing_and_guards_are_permanent_unless_a_retry_can_fix_them(
    client, function_env: Path, monkeypatch: pytest.MonkeyPatch, stage: str, error: Exception, status: int
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise error

    if stage == "route":
        monkeypatch.setattr(runtime_module, "route", boom)
    else:
        monkeypatch.setattr(Guards, "apply", boom)
    d = storage_event("demo-data", "incoming/churn/a.csv", 7, 10)
    response = client("on_new_data").post("/", data=d.body, headers=d.headers)
    assert response.status_code == status
    records = dead_letters(function_env)
    if status == 500:
        assert records == []  # redelivered, not recorded
    else:
        (record,) = records
        assert (
            f"internal error while {'routing' if stage == 'route' else 'applying the guards'}"
            in record["reason"]
        )
        assert type(error).__name__ in record["reason"]


def test_an_event_far_in_the_future_is_rejected_within_the_skew_allowed(
    client, function_env: Path, vertex: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_EVENT_AGE_SECONDS", "86400")
    runtime_module.reset_runtime()
    app = client("on_new_data")
    for i, ahead in enumerate((timedelta(days=3650), timedelta(minutes=10), timedelta(seconds=60))):
        d = storage_event("demo-data", f"incoming/churn/f{i}.csv", 1, 10)
        when = (datetime.now(UTC) + ahead).isoformat()
        assert app.post("/", data=d.body, headers={**d.headers, "ce-time": when}).status_code == 200
    reasons = [r["reason"] for r in dead_letters(function_env)]
    assert len(reasons) == 2 and all(
        "in the future" in r and "MAX_EVENT_FUTURE_SECONDS=300" in r for r in reasons
    )
    assert len(vertex.created_jobs()) == 1  # 60 s ahead: within the allowance


def test_a_rejected_event_delivered_again_is_recorded_once(client, function_env: Path) -> None:
    d = pubsub_event("on_run_request", "t", {"pipeline": "no-such"}, message_id="again")
    for _ in range(3):
        assert client("on_run_request").post("/", data=d.body, headers=d.headers).status_code == 200
    assert len(dead_letters(function_env)) == 1


# --- over real HTTP: functions-framework (gunicorn, as deployed) in a subprocess -----------------


@pytest.fixture
def served(function_env: Path, tmp_path: Path) -> Iterator[Instance]:
    import os

    inst = Instance("on_new_data", 0, free_port(), dict(os.environ), tmp_path / "on_new_data.log")
    inst.start()
    try:
        wait_ready([inst.url])
        yield inst
    finally:
        inst.stop()


def raw_post(port: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The status line of a request sent as written: headers may repeat, as no client library allows."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    request = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{head}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request.encode() + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.slow
def test_what_the_server_rejects_before_the_app_is_recorded_and_acknowledged(
    served: Instance, function_env: Path
) -> None:
    ce = [(k, v) for k, v in CE.items()]
    duplicated = [*ce, ("Content-Type", "application/json"), ("Content-Type", "application/json")]
    assert raw_post(served.port, duplicated, b"{}") == b"HTTP/1.1 200 OK"
    (record,) = dead_letters(function_env)
    assert "the HTTP server rejected the request" in record["reason"] and "CONTENT-TYPE" in record["reason"]
    # The same errors as in process, now through gunicorn: 200 and a record each.
    for headers, body, _reason in (p.values for p in BEFORE_THE_FUNCTION):
        assert raw_post(served.port, list(headers.items()), body) == b"HTTP/1.1 200 OK"
    assert len(dead_letters(function_env)) == 1 + len(BEFORE_THE_FUNCTION)
