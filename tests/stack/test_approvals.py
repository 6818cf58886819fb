"""Lineage and the report show who approved or rejected which version and why: the principal from
the registry's audit events as the bridge delivered them (``deliveries.jsonl``), joined with the
decision recorded on the version. The events are the emulator's own (``stack.vertex.audit``),
relayed by the bridge's real relay and deliverer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipelines.registry.vertex import describe_version
from stack.bridge import Deliverer, RelayServer
from stack.config import RetryPolicy
from stack.lineage import Lineage
from stack.lineage_read import read_events, version_node
from stack.report import write_report
from stack.vertex.audit import DEFAULT_PRINCIPAL, build_event
from tests.stack.test_report import Table

PARENT = "projects/local-project/locations/us-central1"
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def function_url() -> Iterator[str]:
    """Stands in for on_model_registry_event's HTTP endpoint: accepts every delivery."""

    class Accept(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _call(method: str, version: str, principal: str, seconds: int, **request: Any) -> Any:
    name = f"{PARENT}/models/churn@{version}"
    if method == "UploadModel":
        req: dict[str, Any] = {"parent": PARENT, "parentModel": f"{PARENT}/models/churn"}
        resp: dict[str, Any] | None = {"model": f"{PARENT}/models/churn", "modelVersionId": version}
        resource = PARENT
    elif method == "MergeVersionAliases":
        req, resp, resource = {"name": name, **request}, {"name": f"{PARENT}/models/churn"}, name
    else:  # UpdateModel: the registry writes the decision into the description and a label
        req = {"model": {"name": name, "labels": {"decision": request["decision"]}}}
        resp, resource = {"name": f"{PARENT}/models/churn", "versionId": version}, name
    return build_event(
        method=method,
        project="local-project",
        location="us-central1",
        resource_name=resource,
        request=req,
        response=resp,
        principal=principal,
        now=T0 + timedelta(seconds=seconds),
    )


def _decision(decision: str, principal: str, reason: str, seconds: int) -> dict[str, str]:
    at = (T0 + timedelta(seconds=seconds)).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"decision": decision, "principal": principal, "reason": reason, "at": at}


def _version(number: str, aliases: list[str], decisions: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "versionId": number,
        "versionAliases": aliases,
        "versionDescription": describe_version("", {"roc_auc": 0.8}, {}, decisions),
    }


def test_lineage_and_report_name_who_decided_what_and_why(tmp_path: Path, function_url: str) -> None:
    calls = [
        _call("UploadModel", "1", DEFAULT_PRINCIPAL, 0),
        _call("MergeVersionAliases", "1", DEFAULT_PRINCIPAL, 1, versionAliases=["champion"]),  # the gate
        _call("UploadModel", "2", DEFAULT_PRINCIPAL, 60),
        _call("UpdateModel", "2", "alice@example.com", 300, decision="approved"),  # promote: record
        _call("MergeVersionAliases", "2", "alice@example.com", 301, versionAliases=["champion"]),  # move
        _call("UploadModel", "3", DEFAULT_PRINCIPAL, 900),
        _call("UpdateModel", "3", "bob@example.com", 1200, decision="rejected"),  # reject --by bob@local
        _call("MergeVersionAliases", "1", "carol@example.com", 5000, versionAliases=["champion"]),  # console
    ]
    deliveries = tmp_path / "logs" / "deliveries.jsonl"
    deliverer = Deliverer(deliveries, RetryPolicy(initial_s=0.1, maximum_s=0.2, give_up_after_s=5))
    relay = RelayServer(0, deliverer, function_url)
    log = tmp_path / "logs" / "on_model_registry_event.log"
    try:
        for event in calls:
            relay.relay(event.binary_headers(), event.body())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and deliveries.read_text().count('"delivered"') < len(calls):
            time.sleep(0.05)
    finally:
        deliverer.close()
        relay.server_close()
    lines = [json.loads(line) for line in deliveries.read_text().splitlines()]
    assert {line["principal"] for line in lines} >= {
        "alice@example.com",
        "bob@example.com",
        DEFAULT_PRINCIPAL,
    }
    with log.open("w") as f:  # what the function logs: one decision line per event
        for event in calls:
            decided = "launch" if "champion" in json.dumps(event.data["protoPayload"]["request"]) else "skip"
            f.write(json.dumps({"entry_point": "on_model_registry_event", "event_id": event.attributes["id"],
                                "identity": event.attributes["id"], "decision": decided}) + "\n")  # fmt: skip

    v1 = version_node("churn", _version("1", ["champion"], []))
    v1.promoted = True  # as read_versions sets it from the training run's output
    v2 = version_node(
        "churn", _version("2", [], [_decision("approved", "alice@example.com", "read it", 300)])
    )
    v3 = version_node(
        "churn", _version("3", [], [_decision("rejected", "bob@local", "leaks the label", 1200)])
    )
    lineage = Lineage(events=read_events(tmp_path), versions={v.key: v for v in (v1, v2, v3)})

    described = [(a.version, a.describe()) for a in lineage.approvals()]
    assert described == [
        ("churn@1", f"champion moved by {DEFAULT_PRINCIPAL}: the training gate (promotion: auto)"),
        ("churn@2", "approved by alice@example.com: read it"),
        ("churn@3", "rejected by bob@example.com (recorded as bob@local): leaks the label"),
        ("churn@1", "champion moved by carol@example.com: no recorded decision (moved outside mlops-events promote)"),
    ]  # fmt: skip
    summary = "\n".join(lineage.summary())
    assert "event registry MergeVersionAliases churn@2 by alice@example.com" in summary
    assert json.loads(json.dumps(lineage.to_dict()))["approvals"][1]["by"] == "alice@example.com"

    text = write_report(lineage, tmp_path / "report.html").read_text()
    table = Table()
    table.feed(text[text.index("<h2>Approvals</h2>") :])
    header, *rows = table.rows[:5]
    assert header[:4] == ["version", "decision", "by the audit log's principal",
                          "recorded as mlops-events promote/reject --by"]  # fmt: skip
    assert rows[1][:5] == ["churn@2", "approved", "alice@example.com", "alice@example.com", "read it"]
    assert rows[2][:5] == ["churn@3", "rejected", "bob@example.com", "bob@local", "leaks the label"]
    # The metrics table's verdict says who decided, not the gate (promotion: manual).
    metrics = Table()
    metrics.feed(text[text.index("<h2>Champion vs challenger</h2>") : text.index("<h2>Approvals</h2>")])
    assert metrics.rows[2][3] == "approved by alice@example.com"
