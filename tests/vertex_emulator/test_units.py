"""The emulator's pure parts, without a server: list filters, runtime parameters, project
numbers, and the audit sink's retries and outbox."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stack.vertex import audit
from stack.vertex.errors import ApiError
from stack.vertex.filters import compile_filter, page
from stack.vertex.names import Projects
from stack.vertex.parameters import resolve


def _job(**kw: Any) -> Any:
    return SimpleNamespace(
        **{"display_name": "", "state": "PIPELINE_STATE_RUNNING", "labels": {}, "t": None, **kw}
    )


FIELDS = {"display_name": lambda r: r.display_name, "state": lambda r: r.state, "create_time": lambda r: r.t}


def test_filter_terms_joined_by_and() -> None:
    keep = compile_filter(
        'labels.mlops-pipeline="training" AND state=PIPELINE_STATE_RUNNING AND display_name!="x"',
        FIELDS,
        lambda r: r.labels,
    )
    assert keep(_job(labels={"mlops-pipeline": "training"}, display_name="y"))
    assert not keep(_job(labels={"mlops-pipeline": "training"}, display_name="x"))
    assert not keep(_job(labels={"mlops-pipeline": "scoring"}))
    assert not keep(_job(labels={"mlops-pipeline": "training"}, state="PIPELINE_STATE_FAILED"))


def test_filter_presence_quotes_and_times() -> None:
    assert compile_filter("labels.team:*", FIELDS, lambda r: r.labels)(_job(labels={"team": ""}))
    assert not compile_filter("labels.team:*", FIELDS, lambda r: r.labels)(_job())
    assert compile_filter('display_name="a \\"b\\""', FIELDS, lambda r: r.labels)(_job(display_name='a "b"'))
    later = compile_filter('create_time>"2026-01-01T00:00:00Z"', FIELDS, lambda r: r.labels)
    assert later(_job(t="2026-03-01T10:00:00.123Z")) and not later(_job(t="2025-12-31T23:59:59Z"))
    assert compile_filter("", FIELDS, lambda r: r.labels)(_job())


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('state="A" OR state="B"', "only AND"),
        ("colour=red", "Unsupported filter field 'colour'"),
        ("(state=A)", "expected FIELD=VALUE"),
        ("labels.team:x", "Unsupported filter term"),
    ],
)
def test_filter_refuses_what_it_does_not_implement(text: str, complaint: str) -> None:
    with pytest.raises(ApiError) as caught:
        compile_filter(text, FIELDS, lambda r: r.labels)
    assert caught.value.status == "INVALID_ARGUMENT"
    assert complaint in caught.value.message


def test_pages_and_tokens() -> None:
    first, token = page(list(range(5)), 2, "")
    second, token2 = page(list(range(5)), 2, token)
    last, end = page(list(range(5)), 2, token2)
    assert (first, second, last, end) == ([0, 1], [2, 3], [4], "")
    with pytest.raises(ApiError, match="page_token"):
        page([1], 1, "%%%")


SPEC = {
    "root": {
        "inputDefinitions": {
            "parameters": {
                "n": {"parameterType": "NUMBER_INTEGER", "defaultValue": 3.0, "isOptional": True},
                "rate": {"parameterType": "NUMBER_DOUBLE"},
                "name": {"parameterType": "STRING"},
                "flags": {"parameterType": "LIST", "isOptional": True},
            }
        }
    }
}


def test_parameters_are_typed_and_defaulted_as_the_template_says() -> None:
    args, problems = resolve(SPEC, {"rate": 1, "name": "x", "n": 5.0})
    assert problems == []
    assert args == {"n": 5, "rate": 1.0, "name": "x"}
    assert type(args["n"]) is int and type(args["rate"]) is float
    defaulted, _ = resolve(SPEC, {"rate": 0.5, "name": "y"})
    assert defaulted["n"] == 3


def test_parameter_problems_are_all_reported() -> None:
    _, problems = resolve(SPEC, {"n": 2.5, "extra": 1, "name": 3})
    assert problems == [
        "the pipeline does not declare parameter(s) ['extra'] (declared: ['flags', 'n', 'name', 'rate'])",
        "parameter 'n' must be an integer, got 2.5",
        "required parameter 'rate' (NUMBER_DOUBLE) has no value",
        "parameter 'name' must be a string, got 3",
    ]


def test_project_numbers_are_stable_and_persisted(tmp_path: Path) -> None:
    projects = Projects(tmp_path / "projects.json", "111111111111")
    assert projects.number("alpha") == "111111111111"
    beta = projects.number("beta")
    assert beta != "111111111111" and len(beta) == 12 and beta.isdigit()
    assert projects.number("222") == "222"
    again = Projects(tmp_path / "projects.json", "111111111111")
    assert (again.number("beta"), again.project_id("111111111111")) == (beta, "alpha")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_audit_event_that_cannot_be_delivered_goes_to_the_outbox(tmp_path: Path) -> None:
    sink = audit.AuditSink(
        f"http://127.0.0.1:{_closed_port()}/", tmp_path / "outbox.jsonl", attempts=3, backoff=0.01
    )
    event = audit.build_event(
        method="MergeVersionAliases",
        project="p",
        location="us-central1",
        resource_name="projects/p/locations/us-central1/models/m@2",
        request={"name": "projects/p/locations/us-central1/models/m@2", "versionAliases": ["champion"]},
        response=None,
        principal="alice@example.com",
    )
    sink.emit(event)
    sink.close()
    (kept,) = audit.read_outbox(tmp_path / "outbox.jsonl")
    assert "failed 3 times" in kept["reason"]
    assert kept["event"]["methodname"] == "google.cloud.aiplatform.v1.ModelService.MergeVersionAliases"
    assert (
        kept["event"]["data"]["protoPayload"]["authenticationInfo"]["principalEmail"] == "alice@example.com"
    )
    assert sink.failed == 1 and sink.delivered == 0


def test_audit_event_parses_as_a_registry_event() -> None:
    from events.envelope import from_http
    from events.model import ModelRegistryEvent
    from events.parse import parse

    event = audit.build_event(
        method="MergeVersionAliases",
        project="p",
        location="us-central1",
        resource_name="projects/p/locations/us-central1/models/m@2",
        request={
            "name": "projects/p/locations/us-central1/models/m@2",
            "versionAliases": ["champion", "-old"],
        },
        response=None,
        principal="ci@p.iam.gserviceaccount.com",
    )
    parsed = parse(from_http(event.binary_headers(), event.body()))
    assert isinstance(parsed, ModelRegistryEvent)
    assert (parsed.model_id, parsed.version, parsed.aliases, parsed.removed_aliases) == (
        "m",
        "2",
        ("champion",),
        ("old",),
    )
    assert json.loads(event.body())["operation"]["last"] is True


def test_no_url_sends_nothing(tmp_path: Path) -> None:
    sink = audit.AuditSink(None, tmp_path / "outbox.jsonl")
    sink.emit(audit.build_event(method="UploadModel", project="p", location="l", resource_name="projects/p/locations/l",
                                request={}, response=None, principal="x"))  # fmt: skip
    sink.close()
    assert not (tmp_path / "outbox.jsonl").exists()
