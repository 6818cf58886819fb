"""Text that came from an event: lone surrogates in identities, braces in substituted values."""

from __future__ import annotations

import json

import pytest

from events import envelope, keys, parse
from events.decision import Launch
from events.routing import default_rules_text, route
from events.template import placeholders, render
from tests import samples
from tests.catalog import load_rules

RULES = load_rules(default_rules_text(), variables={"DATA_BUCKET": "demo-data"})


def run_request(key: str) -> Launch:
    # The escape sequence goes through JSON, as a JavaScript client that cut a string would send it.
    payload = (
        '{"pipeline": "training", "parameters": {"data_uri": "gs://demo-data/x.csv", '
        f'"model_name": "churn"}}, "idempotency_key": "{key}"}}'
    ).encode()
    event = parse.parse(envelope.from_json_document(samples.pubsub_event(payload)))
    decision = route(event, RULES, {})
    assert isinstance(decision, Launch), decision
    return decision


@pytest.mark.parametrize("escaped", ["\\ud800", "x\\udfff", "\\ud83d", "\\ud83d\\ude00\\ud800"])
def test_lone_surrogate_in_an_idempotency_key_gives_a_valid_job_id(escaped: str) -> None:
    decision = run_request(escaped)
    assert keys.JOB_ID_RE.match(decision.request.job_id)
    assert keys.label_problems(decision.request.labels) == []


def test_surrogate_identities_neither_crash_nor_collide() -> None:
    texts = ["\ud800", "\udfff", "\ud83d\ude00", "\U0001f600", "?", ""]
    digests = {keys.digest(t) for t in texts}
    assert len(digests) == len(texts)
    assert keys.digest("\ud800") == keys.digest("\ud800")  # deterministic: a redelivery is the same job


def test_a_structured_document_with_a_surrogate_gets_a_stable_id() -> None:
    doc = json.loads('{"bucket": "b", "name": "a\\ud800.csv", "generation": "1"}')
    first = envelope.from_json_document(doc, "google.cloud.storage.object.v1.finalized", "//s")
    again = envelope.from_json_document(doc, "google.cloud.storage.object.v1.finalized", "//s")
    assert first.context.id == again.context.id


def test_str_data_with_a_surrogate_is_read_not_crashed_on() -> None:
    raw = envelope.from_attributes({"id": "1", "source": "//s", "specversion": "1.0", "type": "t"}, "a\ud800")
    assert isinstance(raw.data, bytes)


@pytest.mark.parametrize(
    ("value", "template", "expected"),
    [
        ("gs://b/a{{b}}.csv", "{uri}#{generation}", "gs://b/a{{b}}.csv#7"),
        ("gs://b/a}}b.csv", "x-{uri}", "x-gs://b/a}}b.csv"),
        ("{generation}", "{uri}/{generation}", "{generation}/7"),  # a value is never a placeholder
        ("${HOME}", "{uri}!", "${HOME}!"),
    ],
)
def test_substituted_text_is_never_read_as_template(value: str, template: str, expected: str) -> None:
    assert render(template, {"uri": value, "generation": 7}) == expected


def test_literal_braces_of_the_template_itself_still_work() -> None:
    assert render("{{x}}-{uri}", {"uri": "u"}) == "{x}-u"
    assert render("${VAR}/{uri}", {"uri": "u"}) == "${VAR}/u"
    assert [p.head for p in placeholders("{{x}} {uri} ${VAR} {a|b}")] == ["uri", "a", "b"]
