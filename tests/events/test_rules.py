"""Loading and validating the rules file: every problem named by rule and field."""

from __future__ import annotations

import pytest

from events.errors import ConfigError
from events.rules import KIND_FIELDS, default_rules_text
from tests import samples
from tests.catalog import load_rules

VARS = {"DATA_BUCKET": "demo-data"}


def problems_of(text: str, variables: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_rules(text, variables=variables if variables is not None else VARS)
    return info.value.problems


def test_the_shipped_rules_load() -> None:
    rules = load_rules(default_rules_text(), variables=VARS)
    assert [r.name for r in rules.rules] == [
        "new-training-data",
        "drift-retrain",
        "deploy-champion",
        "run-request",
    ]
    assert rules.buckets() == {"demo-data"}
    assert rules.audit_methods() == {"UploadModel", "MergeVersionAliases", "UpdateModel"}


def test_on_is_a_key_not_a_yaml_boolean() -> None:
    rules = load_rules("rules:\n- name: a\n  on: pubsub.message\n  skip: ignore\n", variables={})
    assert rules.rules[0].on == "pubsub.message"


def test_unset_variable_is_named_with_its_rule() -> None:
    problems = problems_of(default_rules_text(), variables={})
    assert problems == [
        "rule new-training-data: variable ${DATA_BUCKET} is not set (set it, or write ${DATA_BUCKET:-default})"
    ]


def test_variable_default_is_used() -> None:
    text = (
        "rules:\n- name: a\n  on: storage.object.finalized\n  match: {bucket: '${B:-fallback}'}\n  skip: x\n"
    )
    assert load_rules(text, variables={}).rules[0].match["bucket"] == "fallback"


def test_every_problem_is_reported_at_once() -> None:
    text = """
rules:
  - name: Bad_Name
    on: storage.object.finalized
    skip: x
  - name: wrong-kind
    on: storage.created
    skip: x
  - name: misfit
    on: storage.object.finalized
    match: {state: open, min_size: -1}
    launch:
      pipeline: training
      parameters: {service_account: evil, colour: red, test_fraction: "half", data_uri: "{nope}"}
  - name: misfit
    on: run.request
    launch: {pipeline: "{pipeline}", allow: [training, nonsense]}
  - name: both
    on: pubsub.message
    skip: x
    launch: {pipeline: training}
"""
    problems = problems_of(text)
    expected = [
        "rules[0]: name 'Bad_Name' must be lowercase letters, digits and dashes (at most 40)",
        "rule wrong-kind: on: 'storage.created' is not an event kind",
        "rule misfit: match.state does not apply to storage.object.finalized events",
        "rule misfit: match.min_size must be a non-negative integer",
        "rule misfit: placeholder {nope} is not a field of storage.object.finalized events",
        "rule misfit: launch.parameters.service_account: not allowed: rules choose data, never authority",
        "rule misfit: launch.parameters.colour: pipeline 'training' has no such parameter",
        "rule misfit: launch.parameters.test_fraction: parameter 'test_fraction' must be float, got str",
        "rule misfit: launch.parameters: pipeline 'training' requires model_name",
        "rule misfit: launch.allow: unknown pipeline 'nonsense'",
        "rule both: needs exactly one of 'launch' or 'skip'",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in problems), f"missing problem {want!r} in {problems}"
    assert any("name is used twice" in p for p in problems)


def test_unknown_keys_are_errors() -> None:
    text = "rules:\n- name: a\n  on: pubsub.message\n  skip: x\n  colour: blue\n"
    assert problems_of(text) == ["rule a: unknown key(s) colour"]
    text = "rules:\n- name: a\n  on: pubsub.message\n  launch: {pipeline: training, when: now}\n"
    assert "rule a: launch: unknown key(s) when" in problems_of(text)


def test_unknown_registry_method_is_an_error() -> None:
    text = "rules:\n- name: a\n  on: model_registry\n  match: {method: DeleteEverything}\n  skip: x\n"
    assert problems_of(text)[0].startswith("rule a: match.method ['DeleteEverything'] unknown")


def test_invalid_yaml_and_shape() -> None:
    assert problems_of("rules: [")[0].startswith("not valid YAML")
    assert problems_of("- just a list") == ["the file must be a mapping with a 'rules' list"]


@pytest.mark.parametrize(
    "file",
    [
        "storage-finalized.json",
        "monitoring-incident-open.json",
        "drift-alert-open.json",
        "run-request.json",
        "vertex-merge-version-aliases-v1.json",
        "vertex-get-model-v1.json",
    ],
)
def test_kind_fields_match_what_events_expose(file: str) -> None:
    # Placeholders are validated against KIND_FIELDS at load time; they must be what fields() gives.
    ev = samples.event(file)
    assert set(ev.fields()) == KIND_FIELDS[ev.kind]


def test_unresolved_variables_inside_longer_strings_are_not_placeholders() -> None:
    # build_bundle checks rules before deploy-time variables exist (variables=None).
    text = (
        "rules:\n- name: a\n  on: monitoring.alert\n  launch:\n    pipeline: retraining\n"
        "    parameters: {model_name: '{model}', data_uri: 'gs://${DATA_BUCKET}/feedback/{model}/'}\n"
    )
    rules = load_rules(text, variables=None)
    assert rules.rules[0].launch.parameters["data_uri"] == "gs://${DATA_BUCKET}/feedback/{model}/"
    resolved = load_rules(text, variables={"DATA_BUCKET": "d"})
    assert resolved.rules[0].launch.parameters["data_uri"] == "gs://d/feedback/{model}/"
