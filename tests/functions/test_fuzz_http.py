"""Fuzzing the four entry points over real HTTP: functions-framework (gunicorn, as deployed) in
subprocesses, raw requests on a socket (so headers can repeat or be malformed, as no client
library would send them). Over 1,000 generated requests -- binary, structured, Pub/Sub push and
batch deliveries, garbage, deep nesting, lone surrogates, dates far in the future, repeated and
invalid headers -- nothing crashes, nothing hangs, nothing answers 5xx (no injected fault makes a
retry meaningful here), every request is logged with its decision, and every rejection has its
dead-letter record."""

from __future__ import annotations

import base64
import json
import os
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.runtime import reset_runtime
from mlops_cli.reliability import stub_templates
from mlops_cli.reliability.instances import Instance, wait_ready
from stack.emulators import free_port
from stack.vertex import ephemeral_emulator
from tests.function_env import FOREIGN

pytestmark = pytest.mark.slow

REQUESTS = 1100
ENTRY_POINTS = ("on_new_data", "on_monitoring_alert", "on_model_registry_event", "on_run_request")
TYPES = (
    "google.cloud.storage.object.v1.finalized",
    "google.cloud.storage.object.v1.deleted",
    "google.cloud.pubsub.topic.v1.messagePublished",
    "google.cloud.audit.log.v1.written",
    "x.y",
)
NOW = datetime.now(UTC)
TIMES = [
    NOW.isoformat(),
    (NOW + timedelta(days=3650)).isoformat(),
    (NOW - timedelta(days=3650)).isoformat(),
    "yesterday",
    "",
]
SOURCES = [
    "//storage.googleapis.com/projects/_/buckets/demo-data",
    "//pubsub.googleapis.com/projects/p/topics/t",
    "x",
]
KEYS = ["bucket", "name", "generation", "size", "metadata", "message", "data", "messageId", "protoPayload",
        "methodName", "pipeline", "parameters", "idempotency_key", "incident", "state", "version"]  # fmt: skip

# Text as events carry it: anything JSON can escape, lone surrogates included.
text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12) | st.sampled_from(
    ["\ud800", "a\udfffb", "{{x}}", "../../x", "UPPER", "incoming/a.csv", "training", "open"]
)
latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=16)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | text, inner, max_size=5)
    ),
    max_leaves=15,
)


@st.composite
def storage_data(draw: Any) -> dict[str, Any]:
    return {
        "bucket": draw(st.sampled_from(["demo-data", "other", ""])),
        "name": draw(st.sampled_from(["incoming/", "incoming/churn/", "x/", ""])) + draw(text) + draw(st.sampled_from([".csv", ".tmp", ""])),
        "generation": draw(st.sampled_from(["1", "2", -1, "x", 10**30]) | st.integers(0, 10**6)),
        "metageneration": "1",
        "size": draw(st.sampled_from(["0", "100", 5, "-1"])),
        **draw(st.fixed_dictionaries({}, optional={"metadata": st.dictionaries(text, text, max_size=3), "timeCreated": st.sampled_from(TIMES)})),
    }  # fmt: skip


@st.composite
def message_payload(draw: Any, kind: str) -> bytes:
    if kind == "run":
        doc = {
            "pipeline": draw(st.sampled_from(["training", "training", "batch_prediction", "no-such"]) | text),
            "parameters": draw(st.fixed_dictionaries(
                {"data_uri": st.sampled_from(["gs://demo-data/x.csv", "gs://demo-data/a{{b}}.csv"]) | text,
                 "model_name": st.sampled_from(["churn", "m"]) | text},
                optional={"service_account": text, "n_estimators": st.integers()},
            )),
            **draw(st.fixed_dictionaries({}, optional={"idempotency_key": text})),
        }  # fmt: skip
        return json.dumps(doc).encode()
    if kind == "incident":
        inc = {
            "incident_id": draw(text),
            "state": draw(st.sampled_from(["open", "OPEN", "closed", "x"])),
            "policy_user_labels": {"model": draw(st.sampled_from(["churn"]) | text)},
            "summary": draw(text),
        }
        return json.dumps({"version": draw(st.sampled_from(["1.2", "1.2", "test", "9"])), "incident": inc}).encode()  # fmt: skip
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    return draw(st.binary(max_size=64))


@st.composite
def body(draw: Any, kind: str) -> bytes:
    if kind == "storage":
        return json.dumps(draw(storage_data())).encode()
    if kind in ("run", "incident", "pubsub"):
        payload = draw(message_payload("json" if kind == "pubsub" else kind))
        message = {
            "data": base64.b64encode(payload).decode(),
            "messageId": draw(latin1.filter(bool)),
            "publishTime": draw(st.sampled_from(TIMES)),
        }
        return json.dumps({"message": message, "subscription": "projects/p/subscriptions/s"}).encode()  # fmt: skip
    if kind == "audit":
        method = draw(
            st.sampled_from(
                [
                    "google.cloud.aiplatform.v1.ModelService.UploadModel",
                    "google.cloud.aiplatform.v1.ModelService.MergeVersionAliases",
                    "x",
                ]
            )
        )
        payload = {
            "methodName": method,
            "serviceName": "aiplatform.googleapis.com",
            "resourceName": draw(text),
            "response": draw(json_values),
        }
        return json.dumps({"protoPayload": payload, "insertId": draw(latin1)}).encode()  # fmt: skip
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "deep":
        depth = draw(st.sampled_from([10, 900, 5000, 100_000]))
        return b'{"message": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == "not-utf8":
        return b'{"bucket": "\xff\xfe", "name": "a"}'
    return draw(st.binary(min_size=1, max_size=200))


# What each entry point is meant to receive: CloudEvent type, source and data kind.
MEANT = {
    "on_new_data": (TYPES[0], SOURCES[0], "storage"),
    "on_monitoring_alert": (TYPES[2], SOURCES[1], "incident"),
    "on_model_registry_event": (TYPES[3], "//cloudaudit.googleapis.com/projects/p/logs/activity", "audit"),
    "on_run_request": (TYPES[2], SOURCES[1], "run"),
}
BODY_KINDS = ["storage", "run", "incident", "pubsub", "audit", "json", "bytes", "deep", "not-utf8"]


@dataclass(frozen=True)
class Request:
    entry_point: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@st.composite
def requests(draw: Any) -> Request:
    """Mostly what the entry point is meant to get, with one thing wrong (or nothing) -- that is
    where bugs hide -- and sometimes anything at all."""
    entry_point = draw(st.sampled_from(ENTRY_POINTS))
    type_, source, kind = MEANT[entry_point]
    if draw(st.integers(0, 3)) == 0:
        kind = draw(st.sampled_from(BODY_KINDS))
    ce = {"ce-specversion": "1.0", "ce-id": draw(latin1.filter(bool)), "ce-type": type_, "ce-source": source,
          "ce-time": draw(st.sampled_from(TIMES[:1] * 4 + TIMES))}  # fmt: skip
    wrong = draw(st.sampled_from(["nothing"] * 4 + ["drop", "type", "specversion", "source"]))
    if wrong == "drop":
        del ce[draw(st.sampled_from(sorted(ce)))]
    elif wrong == "type":
        ce["ce-type"] = draw(st.sampled_from(TYPES))
    elif wrong == "specversion":
        ce["ce-specversion"] = draw(st.sampled_from(["0.3", "", "2"]))
    elif wrong == "source":
        ce["ce-source"] = draw(st.sampled_from(SOURCES) | latin1)
    data = draw(body(kind))
    mode = draw(
        st.sampled_from(["binary"] * 6 + ["structured", "push", "batch", "repeated-header", "bad-header"])
    )
    path = "/"
    headers: list[tuple[str, str]]
    if mode == "structured":
        event: dict[str, Any] = {k[3:]: v for k, v in ce.items()}
        try:
            event["data"] = json.loads(data)
        except (ValueError, RecursionError):
            event["data_base64"] = base64.b64encode(data).decode()
        data = json.dumps(event).encode() if draw(st.integers(0, 9)) else data  # sometimes the raw body
        headers = [("Content-Type", "application/cloudevents+json")]
    elif mode == "push":
        path = draw(st.sampled_from(["/projects/p/topics/t", "/"]))
        headers = [("Content-Type", "application/json")]
    elif mode == "batch":
        headers = [("Content-Type", "application/cloudevents-batch+json")]
    else:
        content_type = draw(
            st.sampled_from(["application/json"] * 4 + ["text/plain", "application/octet-stream"])
        )
        headers = [*ce.items(), ("Content-Type", content_type)]
        if mode == "repeated-header":
            headers.append(draw(st.sampled_from([("Content-Type", "application/json"), ("Host", "other")])))
        elif mode == "bad-header":
            headers.append(
                draw(st.sampled_from([("X-Bad", "a\x01b"), ("Bad Name", "v"), ("X-Obs", "a\r\n b")]))
            )
    return Request(entry_point, path, headers, data)


def send(port: int, r: Request, timeout: float = 20.0) -> int:
    """The status of ``r`` sent as written; -1 when the function hung up without an answer, -2 on a hang."""
    head = "".join(f"{k}: {v}\r\n" for k, v in r.headers)
    raw = f"POST {r.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(r.body)}\r\nConnection: close\r\n{head}\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(raw.encode("latin-1") + r.body)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
    except TimeoutError:
        return -2
    except OSError:
        return -1
    try:
        return int(answer.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return -1


@pytest.fixture
def instances(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Instance]]:
    for name in FOREIGN:  # nothing from the shell
        monkeypatch.delenv(name, raising=False)
    with ephemeral_emulator() as vertex:
        env = {
            **os.environ,
            "GOOGLE_CLOUD_PROJECT": "p",
            "DATA_BUCKET": "demo-data",
            "MLOPS_LAUNCHER": "vertex",
            "VERTEX_API_ENDPOINT": vertex.url,
            "MLOPS_TEMPLATES": str(stub_templates(tmp_path / "templates")),
            "MLOPS_DEAD_LETTER_DIR": str(tmp_path / "dead"),
            "MLOPS_STATE_DIR": str(tmp_path / "state"),
        }
        started = {ep: Instance(ep, 0, free_port(), env, tmp_path / f"{ep}.log") for ep in ENTRY_POINTS}
        for inst in started.values():
            inst.start()
        try:
            wait_ready([i.url for i in started.values()])
            yield started
        finally:
            for inst in started.values():
                inst.stop()
            reset_runtime()


def test_fuzzed_requests_over_http_are_answered_2xx_and_every_rejection_is_recorded(
    instances: dict[str, Instance], tmp_path: Path
) -> None:
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    offsets = dict.fromkeys(instances, 0)
    decisions: Counter[str] = Counter()

    def new_lines(entry_point: str) -> list[dict[str, Any]]:
        log = instances[entry_point].log
        with log.open("rb") as f:
            f.seek(offsets[entry_point])
            data = f.read()
        offsets[entry_point] += len(data)
        return [json.loads(x) for x in data.splitlines() if x.startswith(b"{")]

    @settings(
        max_examples=REQUESTS, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(r=requests())
    def one(r: Request) -> None:
        status = send(instances[r.entry_point].port, r)
        statuses[status] += 1
        lines = [x for x in new_lines(r.entry_point) if "decision" in x]
        if not (200 <= status < 300):
            problems.append(f"{status} for {r.entry_point} {r.headers} {r.body[:120]!r}")
        if not lines:
            problems.append(f"no decision logged for {r.entry_point} {r.headers} {r.body[:120]!r}")
        for line in lines:
            decisions[line["decision"]] += 1
            if line["decision"] == "reject":
                record_id = (line.get("dead_letter") or {}).get("id")
                if not record_id or not (tmp_path / "dead" / ".recorded" / record_id).exists():
                    problems.append(f"a rejection without its dead letter: {line['message'][:200]}")

    one()
    alive = [ep for ep, inst in instances.items() if inst.alive()]
    print(f"fuzz: {sum(statuses.values())} requests, answers {dict(statuses)}, decisions {dict(decisions)}")
    assert sum(statuses.values()) >= 1000
    assert alive == list(ENTRY_POINTS), "an instance crashed"
    assert statuses[-2] == 0, "a request hung"
    assert problems == [], f"{len(problems)} problems, first: {problems[:5]}"
    assert decisions["reject"] > 100 and decisions["launch"] + decisions["skip"] > 50  # both paths ran
