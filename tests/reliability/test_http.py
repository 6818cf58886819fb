"""The functions over HTTP (functions-framework's real app): faults with Eventarc-style
redelivery, duplicates, concurrent deliveries, bad input and fuzzing, dead-letter replay."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.runtime import reset_runtime
from mlops_cli import cmd_replay
from mlops_cli.cmd_reliability import (
    Delivery,
    incident,
    pubsub_event,
    redeliver,
    storage_event,
    stub_templates,
)
from stack.vertex import Faults, VertexEmulator, ephemeral_emulator
from tests.function_env import FOREIGN

MAIN = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")


@pytest.fixture
def vertex() -> Iterator[VertexEmulator]:
    with ephemeral_emulator(Faults(rate=0.2, timeout_seconds=0.6, seed=3)) as emulator:
        yield emulator


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vertex: VertexEmulator) -> Path:
    for name in FOREIGN:  # nothing from the shell
        monkeypatch.delenv(name, raising=False)
    values = {
        "GOOGLE_CLOUD_PROJECT": "p",
        "DATA_BUCKET": "data",
        "MLOPS_LAUNCHER": "vertex",
        "VERTEX_API_ENDPOINT": vertex.url,
        "VERTEX_TIMEOUT_SECONDS": "0.3",  # the injected stalls (0.6 s) become client time-outs
        "MLOPS_TEMPLATES": str(stub_templates(tmp_path / "templates")),
        "MLOPS_DEAD_LETTER_DIR": str(tmp_path / "dead"),
        "MLOPS_STATE_DIR": str(tmp_path / "state"),
        "MLOPS_DEBOUNCE_QUIET": "0s",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    reset_runtime()
    yield tmp_path
    reset_runtime()


def client(target: str) -> Any:
    import functions_framework

    return functions_framework.create_app(target, MAIN, "cloudevent").test_client()


def deliver_until_accepted(app: Any, d: Delivery, limit: int = 60) -> int:
    for attempt in range(1, limit + 1):
        if app.post("/", data=d.body, headers=d.headers).status_code < 300:
            return attempt
    raise AssertionError(f"not accepted after {limit} deliveries")


def dead_letters(tmp: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted((tmp / "dead").glob("*.jsonl")) for line in f.open()]


@pytest.mark.slow
def test_faults_duplicates_and_concurrency_lead_to_exactly_one_run_each(
    env: Path, vertex: VertexEmulator
) -> None:
    data, alerts, requests = client("on_new_data"), client("on_monitoring_alert"), client("on_run_request")
    events = [storage_event("data", f"incoming/m/f{i}.csv", 100 + i, 9) for i in range(12)]
    attempts = 0
    for d in events:
        attempts += deliver_until_accepted(data, d)
        attempts += deliver_until_accepted(data, redeliver(d, **{"ce-id": "again-" + d.headers["ce-id"]}))
    for state in ("open", "open", "closed"):
        deliver_until_accepted(
            alerts,
            pubsub_event(
                "on_monitoring_alert",
                "a",
                incident("i-1", state, "churn"),
                message_id=f"i-1-{state}-{attempts}",
            ),
        )
    req = pubsub_event(
        "on_run_request",
        "r",
        {
            "pipeline": "training",
            "parameters": {"data_uri": "gs://data/requests/x.csv", "model_name": "m"},
            "idempotency_key": "k1",
        },
        message_id="r1",
    )
    threads = [
        threading.Thread(target=deliver_until_accepted, args=(client("on_run_request"), req))
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deliver_until_accepted(requests, redeliver(req, **{"ce-id": "r1-other-path"}))
    assert sum(vertex.stats.faults.values()) > 0 and attempts > 2 * len(
        events
    )  # faults were hit, and retried
    pipelines = sorted(job["labels"]["mlops-pipeline"] for job in vertex.created_jobs().values())
    assert pipelines == ["retraining"] + ["training"] * 13
    uris = sorted(
        job["runtimeConfig"]["parameterValues"]["data_uri"]
        for job in vertex.created_jobs().values()
        if "retraining" not in job["labels"]["mlops-pipeline"]
    )
    assert uris == sorted(
        [d_uri for d_uri in (f"gs://data/incoming/m/f{i}.csv" for i in range(12))]
        + ["gs://data/requests/x.csv"]
    )


@pytest.mark.slow
def test_timeout_after_create_counts_as_success(env: Path, vertex: VertexEmulator) -> None:
    vertex.faults.rate, vertex.faults.kinds = 1.0, ("timeout_after_create",)
    app = client("on_new_data")
    d = storage_event("data", "incoming/m/slow.csv", 7, 9)
    assert app.post("/", data=d.body, headers=d.headers).status_code == 500  # the client timed out...
    assert len(vertex.created_jobs()) == 1  # ...but the job was created
    vertex.faults.rate = 0.0
    assert app.post("/", data=d.body, headers=d.headers).status_code == 200  # redelivery: 409 = success
    assert len(vertex.created_jobs()) == 1 and vertex.stats.conflicts == 1


BAD: list[tuple[str, dict[str, str], bytes]] = [
    ("on_new_data", {"ce-type": "google.cloud.storage.object.v1.finalized"}, b"\x00\x01 not json"),
    ("on_new_data", {"ce-type": "google.cloud.storage.object.v1.finalized"}, b'{"bucket": "data"}'),
    (
        "on_new_data",
        {"ce-type": "google.cloud.storage.object.v1.finalized"},
        b'{"bucket": "data", "name": "a", "generation": "x"}',
    ),
    (
        "on_new_data",
        {"ce-type": "google.cloud.pubsub.topic.v1.messagePublished"},
        b'{"message": {"data": "%%%"}}',
    ),
    (
        "on_run_request",
        {"ce-type": "google.cloud.pubsub.topic.v1.messagePublished"},
        b'{"message": {"data": "bm90IGpzb24=", "messageId": "1"}}',
    ),
    ("on_monitoring_alert", {"ce-type": "google.cloud.audit.log.v1.written"}, b'{"protoPayload": 3}'),
    ("on_model_registry_event", {"ce-type": "google.cloud.audit.log.v1.written"}, b"[]"),
]


@pytest.mark.parametrize(("target", "headers", "body"), BAD)
def test_bad_input_is_acknowledged_and_dead_lettered_with_a_reason(
    env: Path, target: str, headers: dict[str, str], body: bytes
) -> None:
    base = {
        "ce-specversion": "1.0",
        "ce-id": "bad-1",
        "ce-source": "//x/projects/p/topics/t",
        "content-type": "application/json",
    }
    response = client(target).post("/", data=body, headers={**base, **headers})
    assert response.status_code == 200
    records = dead_letters(env)
    assert len(records) == 1 and records[0]["reason"] and records[0]["entry_point"] == target
    assert records[0]["event"]["attributes"]["id"] == "bad-1"


@pytest.mark.slow
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    target=st.sampled_from(
        ["on_new_data", "on_monitoring_alert", "on_run_request", "on_model_registry_event"]
    ),
    ce_type=st.sampled_from(
        [
            "google.cloud.storage.object.v1.finalized",
            "google.cloud.pubsub.topic.v1.messagePublished",
            "google.cloud.audit.log.v1.written",
            "x.y",
        ]
    ),
    body=st.one_of(
        st.binary(min_size=1, max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda c: (
                st.lists(c, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "bucket",
                            "name",
                            "generation",
                            "size",
                            "message",
                            "data",
                            "messageId",
                            "protoPayload",
                            "methodName",
                            "pipeline",
                            "parameters",
                            "incident",
                        ]
                    ),
                    c,
                    max_size=5,
                )
            ),
            max_leaves=12,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_fuzzed_deliveries_never_crash_and_never_5xx(
    env: Path, target: str, ce_type: str, body: bytes
) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "f",
        "ce-type": ce_type,
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "content-type": "application/json",
    }
    before = len(dead_letters(env))
    response = client(target).post("/", data=body, headers=headers)
    assert response.status_code < 500, response.data[:300]
    if response.status_code == 200 and len(dead_letters(env)) > before:
        assert dead_letters(env)[-1]["reason"]


@pytest.mark.slow
def test_replayed_dead_letters_are_handled_exactly_once(
    env: Path, vertex: VertexEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from werkzeug.serving import make_server

    vertex.faults.rate = 0.0
    (env / "templates" / "training.yaml").unlink()  # a broken deploy: the template is missing
    app = client("on_run_request")
    req = pubsub_event(
        "on_run_request",
        "r",
        {
            "pipeline": "training",
            "parameters": {"data_uri": "gs://data/requests/y.csv", "model_name": "m"},
            "idempotency_key": "k2",
        },
        message_id="r2",
    )
    assert app.post("/", data=req.body, headers=req.headers).status_code == 200
    assert not vertex.created_jobs() and "no compiled template" in dead_letters(env)[0]["reason"]

    stub_templates(env / "templates")  # the fix
    reset_runtime()
    import functions_framework

    server = make_server(
        "127.0.0.1", 0, functions_framework.create_app("on_run_request", MAIN, "cloudevent"), threaded=True
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        argv = ["--dir", str(env / "dead"), "--to", f"on_run_request={url}"]
        parser = __import__("argparse").ArgumentParser()
        cmd_replay.register(parser.add_subparsers())
        for _ in range(2):  # replayed twice: still one run
            args = parser.parse_args(["replay", *argv])
            assert cmd_replay.run(args) == 0
    finally:
        server.shutdown()
    assert len(vertex.created_jobs()) == 1 and vertex.stats.conflicts == 1
    assert "replayed 1 record(s): 1 accepted" in capsys.readouterr().out
