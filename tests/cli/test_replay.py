"""``mlops-events replay`` against the real function over HTTP (functions-framework's app, the
Vertex AI emulator): what the function did with each record, exit codes, no self-feeding, encoding."""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.dead_letter import make_record
from functions.runtime import reset_runtime
from mlops_cli import cmd_replay
from mlops_cli.cmd_reliability import pubsub_event, stub_templates
from stack.vertex import Faults, VertexEmulator, ephemeral_emulator
from tests.function_env import FOREIGN

MAIN = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")
RUN = {"pipeline": "training", "parameters": {"data_uri": "gs://data/y.csv", "model_name": "m"}}


@pytest.fixture
def function_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[str, VertexEmulator, Path]]:
    import functions_framework
    from werkzeug.serving import make_server

    for name in FOREIGN:  # nothing from the shell
        monkeypatch.delenv(name, raising=False)
    with ephemeral_emulator(Faults(rate=0.0)) as vertex:
        for k, v in {
            "GOOGLE_CLOUD_PROJECT": "p",
            "DATA_BUCKET": "data",
            "MLOPS_LAUNCHER": "vertex",
            "VERTEX_API_ENDPOINT": vertex.url,
            "MLOPS_TEMPLATES": str(stub_templates(tmp_path / "templates")),
            "MLOPS_DEAD_LETTER_DIR": str(tmp_path / "dead"),
            "MLOPS_STATE_DIR": str(tmp_path / "state"),
        }.items():
            monkeypatch.setenv(k, v)
        reset_runtime()
        app = functions_framework.create_app("on_run_request", MAIN, "cloudevent")
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", vertex, tmp_path / "dead"
        finally:
            server.shutdown()
            reset_runtime()


def record(
    payload: Any, message_id: str, reason: str = "earlier failure", **attributes: str
) -> dict[str, Any]:
    delivery = pubsub_event("on_run_request", "run-requests", payload, message_id=message_id)
    attrs = {k[3:]: v for k, v in delivery.headers.items() if k.startswith("ce-")}
    attrs["datacontenttype"] = "application/json"
    return make_record(
        entry_point="on_run_request",
        attributes={**attrs, **attributes},
        data=json.loads(delivery.body),
        reason=reason,
    )


def write(path: Path, *records: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def replay(directory: Path, url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cmd_replay.register(parser.add_subparsers())
    code = cmd_replay.run(parser.parse_args(["replay", "--dir", str(directory), "--to", url]))
    # The function runs in this process: drop its structured log lines (JSON).
    out = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("{")]
    return code, "\n".join(out)


def lines(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for f in sorted(directory.glob("*.jsonl")) for x in f.read_text().splitlines()]


@pytest.mark.slow
def test_each_record_is_reported_with_what_the_function_did(
    function_url: tuple[str, VertexEmulator, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, vertex, dead = function_url
    source = tmp_path / "replay"
    bad = {"pipeline": "training", "parameters": {"service_account": "x@evil"}}
    write(source / "dead-letters-1.jsonl", record(RUN, "m1"), record(bad, "m2"))
    code, out = replay(source, url, capsys)
    assert len(vertex.created_jobs()) == 1, out
    launched, again, summary = out.strip().splitlines()
    assert launched.startswith("launched") and "(created)" in launched
    # Answered 200, but dead-lettered again: said so, with the new reason, and the exit is 1.
    assert again.startswith("DEAD-LETTERED") and "parameter 'service_account' is not allowed" in again
    assert "(was: earlier failure)" in again
    assert summary == (
        "replayed 2 record(s): 1 accepted (1 launched, 0 skipped), 1 dead-lettered again, 0 failed, 0 not sent"
    )
    assert code == 1
    assert len(lines(dead)) == 1  # the new record the function wrote


@pytest.mark.slow
def test_records_written_during_the_replay_are_not_replayed_in_it(
    function_url: tuple[str, VertexEmulator, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, dead = function_url
    bad = {"pipeline": "nope"}
    # An old file, and today's, which the function appends to while the replay runs.
    write(dead / "dead-letters-20000101.jsonl", record(bad, "old"))
    write(dead / f"dead-letters-{time.strftime('%Y%m%d', time.gmtime())}.jsonl", record(bad, "new"))
    code, out = replay(dead, url, capsys)
    assert "replayed 2 record(s)" in out and code == 1
    assert len(lines(dead)) == 4  # 2 + the 2 copies: nothing was replayed twice
    code, out = replay(dead, url, capsys)
    assert "replayed 4 record(s)" in out


@pytest.mark.slow
def test_attributes_arrive_as_recorded_and_a_bad_record_does_not_stop_the_rest(
    function_url: tuple[str, VertexEmulator, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, vertex, dead = function_url
    source = tmp_path / "replay"
    # Legal in structured mode, impossible in a header: sent in structured mode, unchanged.
    unicode = record({"pipeline": "nope"}, "m1", subject="données/€ 100%")
    # As Eventarc sends an audit event's id: with a literal %2F (no percent-encoding in headers).
    escaped = record({"pipeline": "nope"}, "m4")
    escaped["event"]["attributes"]["id"] = "projects/p/logs/cloudaudit.googleapis.com%2Factivity-x1"
    broken = record(RUN, "m2")
    broken["event"]["data"] = {"base64": "not base64!"}
    write(source / "dead-letters-1.jsonl", unicode, escaped, broken, record(RUN, "m3"))
    code, out = replay(source, url, capsys)
    first, second, third, fourth, summary = out.strip().splitlines()
    assert first.startswith("DEAD-LETTERED") and "'nope'" in first
    assert second.startswith("DEAD-LETTERED")
    again = lines(dead)
    assert [r["event"]["attributes"].get("subject") for r in again] == ["données/€ 100%", None]
    assert again[1]["event"]["attributes"]["id"] == "projects/p/logs/cloudaudit.googleapis.com%2Factivity-x1"
    assert third.startswith("FAILED") and "Error" in third  # the record, not the replay, is broken
    assert fourth.startswith("launched") and len(vertex.created_jobs()) == 1
    assert "2 dead-lettered again, 1 failed" in summary and code == 1


def test_binary_mode_carries_values_as_recorded_structured_mode_what_a_header_cannot() -> None:
    headers, body = cmd_replay.http_request(record(RUN, "m1", subject="a b 100% %2F"))
    assert headers["ce-subject"] == "a b 100% %2F" and headers["content-type"] == "application/json"
    assert json.loads(body)["message"]["messageId"] == "m1"
    headers, body = cmd_replay.http_request(record(RUN, "m1", subject="é", extension="x\ny"))
    assert headers == {"content-type": "application/cloudevents+json"}
    doc = json.loads(body)
    assert (doc["subject"], doc["extension"], doc["id"]) == ("é", "x\ny", "m1")
    assert doc["data"]["message"]["messageId"] == "m1" and doc["datacontenttype"] == "application/json"
