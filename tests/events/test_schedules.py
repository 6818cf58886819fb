"""Schedules: the cron evaluator against known fire tables (DST, month ends, day-of-month OR
day-of-week), the ``schedules:`` section's validation, and one run per tick through the router."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path

import pytest

from events import envelope, parse
from events.cron import Cron, CronError, time_zone
from events.decision import Launch
from events.errors import ConfigError
from events.routing import default_rules_text, route
from events.schedules import delivered_event, routing_problems
from tests.catalog import load_rules

DEMO_RULES = Path(__file__).resolve().parents[2] / "demo" / "rules.yaml"
RUN_REQUEST_RULE = """
version: 1
rules:
  - name: run-request
    on: run.request
    launch: {pipeline: "{pipeline}", parameters: "{parameters}"}
"""


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def fires(expr: str, zone: str, after: str, count: int) -> list[str]:
    found = Cron.parse(expr).next_fires(time_zone(zone), utc(after), count)
    return [f"{t:%Y-%m-%dT%H:%MZ}" for t in found]


# --- the evaluator ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        # every 6 hours, strictly after the given instant
        ("0 */6 * * *", "2026-12-01T06:00:00Z", ["2026-12-01T12:00Z", "2026-12-01T18:00Z", "2026-12-02T00:00Z"]),
        ("0 */6 * * *", "2026-12-01T05:59:59Z", ["2026-12-01T06:00Z", "2026-12-01T12:00Z", "2026-12-01T18:00Z"]),
        # lists, ranges with steps, names (case-insensitive) of months and days
        (
            "*/20 9-17/4 * JAN,jul mon-FRI",
            "2026-07-01T12:00:00Z",
            ["2026-07-01T13:00Z", "2026-07-01T13:20Z", "2026-07-01T13:40Z", "2026-07-01T17:00Z",
             "2026-07-01T17:20Z", "2026-07-01T17:40Z", "2026-07-02T09:00Z"],
        ),
        # month ends: the 31st skips the months without one; 29 February waits for a leap year
        (
            "0 0 31 * *",
            "2026-01-31T00:00:00Z",
            ["2026-03-31T00:00Z", "2026-05-31T00:00Z", "2026-07-31T00:00Z", "2026-08-31T00:00Z",
             "2026-10-31T00:00Z", "2026-12-31T00:00Z"],
        ),
        ("0 12 29 2 *", "2026-01-01T00:00:00Z", ["2028-02-29T12:00Z", "2032-02-29T12:00Z"]),
        (
            "59 23 28-31 2 *",
            "2026-01-01T00:00:00Z",
            ["2026-02-28T23:59Z", "2027-02-28T23:59Z", "2028-02-28T23:59Z", "2028-02-29T23:59Z"],
        ),
        # both day fields restricted: either matches (1 June 2026 and 1 July are a Monday and a Wednesday)
        (
            "0 9 1 * MON",
            "2026-06-01T00:00:00Z",
            ["2026-06-01T09:00Z", "2026-06-08T09:00Z", "2026-06-15T09:00Z", "2026-06-22T09:00Z",
             "2026-06-29T09:00Z", "2026-07-01T09:00Z", "2026-07-06T09:00Z"],
        ),
        # day of month starts with '*': both must match (odd days that are Mondays)
        (
            "0 9 */2 * MON",
            "2026-06-01T00:00:00Z",
            ["2026-06-01T09:00Z", "2026-06-15T09:00Z", "2026-06-29T09:00Z", "2026-07-13T09:00Z"],
        ),
        # 7 is Sunday too; 5-7 is Friday to Sunday
        ("0 8 * * 5-7", "2026-06-05T09:00:00Z", ["2026-06-06T08:00Z", "2026-06-07T08:00Z", "2026-06-12T08:00Z"]),
    ],
)  # fmt: skip
def test_next_fire_tables_in_utc(expr: str, after: str, expected: list[str]) -> None:
    assert fires(expr, "UTC", after, len(expected)) == expected


@pytest.mark.parametrize(
    ("expr", "zone", "after", "expected"),
    [
        # Europe/Paris springs forward on 2026-03-29 at 02:00 -> 03:00: 02:30 does not exist that day.
        ("30 2 * * *", "Europe/Paris", "2026-03-27T12:00:00Z",
         ["2026-03-28T01:30Z", "2026-03-30T00:30Z", "2026-03-31T00:30Z"]),
        # ... and falls back on 2026-10-25 at 03:00 -> 02:00: 02:30 happens twice, both fire.
        ("30 2 * * *", "Europe/Paris", "2026-10-23T12:00:00Z",
         ["2026-10-24T00:30Z", "2026-10-25T00:30Z", "2026-10-25T01:30Z", "2026-10-26T01:30Z"]),
        # Hourly across the Paris fall-back: the wall clock shows 02:00 twice, UTC stays hourly.
        ("0 * * * *", "Europe/Paris", "2026-10-24T23:30:00Z",
         ["2026-10-25T00:00Z", "2026-10-25T01:00Z", "2026-10-25T02:00Z"]),
        # America/New_York: 2026-03-08 02:00 -> 03:00 (02:30 skipped), 2026-11-01 02:00 -> 01:00.
        ("30 2 * * *", "America/New_York", "2026-03-06T12:00:00Z",
         ["2026-03-07T07:30Z", "2026-03-09T06:30Z"]),
        ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z",
         ["2026-11-01T05:30Z", "2026-11-01T06:30Z", "2026-11-02T06:30Z"]),
        # A fixed local time keeps its wall time: 09:00 is 14:00Z in winter, 13:00Z in summer.
        ("0 9 * * *", "America/New_York", "2026-03-06T15:00:00Z",
         ["2026-03-07T14:00Z", "2026-03-08T13:00Z"]),
    ],
)  # fmt: skip
def test_next_fire_tables_across_daylight_saving(
    expr: str, zone: str, after: str, expected: list[str]
) -> None:
    assert fires(expr, zone, after, len(expected)) == expected


def test_dst_effects_name_the_days_a_schedule_skips_or_doubles() -> None:
    start = utc("2026-01-01T00:00:00Z")
    paris = Cron.parse("30 2 * * *").dst_effects(time_zone("Europe/Paris"), start)
    assert paris == [
        "2026-03-29 02:30 does not exist in Europe/Paris: no fire",
        "2026-10-25 02:30 occurs twice in Europe/Paris: fires at 00:30Z and 01:30Z",
    ]
    assert Cron.parse("0 12 * * *").dst_effects(time_zone("Europe/Paris"), start) == []
    assert Cron.parse("30 2 * * *").dst_effects(time_zone("UTC"), start) == []


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * * *", "expected five fields"),
        ("0 0 * * * *", "no seconds field"),
        ("@daily", "macros"),
        ("every 5 minutes", "expected five fields"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 0 0 * *", "day of month: 0 is out of range 1-31"),
        ("0 0 * 13 *", "month: 13 is out of range 1-12"),
        ("0 0 * * 8", "day of week: 8 is out of range 0-7"),
        ("0 0 * FOO *", "month: 'FOO' is not a number"),
        ("0 0 L * *", "not supported by Cloud Scheduler"),
        ("0 0 ? * MON#2", "not supported by Cloud Scheduler"),
        ("5/15 * * * *", "a step needs a range (write 5-59/15)"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "step /0 must be at least 1"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 1,,2 * *", "day of month: '': expected"),
    ],
)
def test_bad_cron_expressions_say_which_field_and_why(expr: str, message: str) -> None:
    with pytest.raises(CronError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        Cron.parse(expr)


def test_time_zones_are_iana_names() -> None:
    assert str(time_zone("utc")) == "UTC" and str(time_zone("Etc/UTC")) == "Etc/UTC"
    for bad in ("Mars/Olympus", "../../etc/passwd", "Europe", "", "+02:00"):
        with pytest.raises(CronError, match="time zone"):
            time_zone(bad)


# --- the schedules: section ---------------------------------------------------------------------

SCHEDULED = (
    RUN_REQUEST_RULE
    + """
schedules:
  - name: monitor-churn
    description: every 6 hours
    cron: "0 */6 * * *"
    time_zone: Europe/Paris
    pipeline: monitoring
    parameters: {model_name: churn, alerts_topic: "${ALERTS_TOPIC:-alerts}"}
"""
)


def test_a_schedule_loads_with_its_run_request() -> None:
    rules = load_rules(SCHEDULED, variables={"ALERTS_TOPIC": "mlops-alerts"})
    (s,) = rules.schedules
    assert (s.name, s.time_zone, s.pipeline, s.description) == (
        "monitor-churn",
        "Europe/Paris",
        "monitoring",
        "every 6 hours",
    )
    assert s.parameters == {"model_name": "churn", "alerts_topic": "mlops-alerts"}
    fire = utc("2026-12-01T05:00:00Z")  # 06:00 in Paris
    assert s.next_fires(utc("2026-12-01T04:00:00Z"), 1) == [fire]
    assert s.run_request(fire) == {
        "pipeline": "monitoring",
        "parameters": {"model_name": "churn", "alerts_topic": "mlops-alerts"},
        "idempotency_key": "monitor-churn-2026-12-01T05:00:00Z",
        "requested_by": "schedule monitor-churn",
    }
    assert "idempotency_key" not in s.message()  # what a Cloud Scheduler job publishes every time


def test_main_refused_a_schedules_section() -> None:
    """On the old main, ``schedules:`` was an unknown top-level key."""
    rules = load_rules(SCHEDULED, variables={})
    assert [s.name for s in rules.schedules] == ["monitor-churn"]
    assert load_rules(default_rules_text(), variables={"DATA_BUCKET": "b"}).schedules == ()


def test_every_schedule_problem_is_reported_at_once_by_schedule_and_field() -> None:
    text = (
        RUN_REQUEST_RULE
        + """
schedules:
  - name: Bad_Name
    cron: "0 0 * * *"
    pipeline: monitoring
    parameters: {model_name: churn}
  - name: dup
    cron: "61 * * * *"
    time_zone: Mars/Olympus
    pipeline: nope
  - name: dup
    cron: "0 * * * *"
    pipeline: monitoring
    parameters: {service_account: x, psi_threshold: high, bogus: 1, alerts_topic: "{topic}"}
    colour: red
  - name: no-cron
    pipeline: training
    parameters: {model_name: m, data_uri: "gs://b/${MISSING_VAR}"}
  - not a mapping
"""
    )
    with pytest.raises(ConfigError) as err:
        load_rules(text, variables={})
    assert err.value.problems == [
        "schedules[0]: name 'Bad_Name' must be lowercase letters, digits and dashes (at most 40)",
        "schedule dup: cron '61 * * * *': minute: 61 is out of range 0-59",
        "schedule dup: time_zone: time zone 'Mars/Olympus' is not in the tz database "
        "(use an IANA name such as Europe/Paris or UTC)",
        "schedule dup: pipeline: unknown pipeline 'nope' "
        "(known: batch_prediction, deployment, evaluation, monitoring, retraining, training, training_stepwise)",
        "schedule dup: the name is used twice",
        "schedule dup: unknown key(s) colour (use: cron, description, name, parameters, pipeline, time_zone)",
        "schedule dup: parameters.service_account: not allowed: rules choose data, never authority",
        "schedule dup: parameters.psi_threshold: parameter 'psi_threshold' must be float, got str",
        "schedule dup: parameters.bogus: pipeline 'monitoring' has no such parameter (it takes: "
        "alerts_topic, model_name, psi_threshold, reference_uri, serving_uri, trigger)",
        "schedule dup: parameters: pipeline 'monitoring' requires model_name",
        "schedule dup: parameters.alerts_topic: a schedule has no event to fill {placeholders} from; "
        "write the value",
        "schedule no-cron: variable ${MISSING_VAR} is not set (set it, or write ${MISSING_VAR:-default})",
        'schedule no-cron: cron: required (e.g. "0 */6 * * *")',
        "schedules[4]: must be a mapping",
    ]


def test_schedules_must_be_a_list() -> None:
    with pytest.raises(ConfigError, match="schedules: must be a list"):
        load_rules(RUN_REQUEST_RULE + "schedules: {name: x}\n", variables={})


def test_a_schedule_the_rules_would_not_launch_is_reported() -> None:
    text = SCHEDULED.replace('parameters: "{parameters}"}', 'parameters: "{parameters}", allow: [training]}')
    rules = load_rules(text, variables={})
    assert routing_problems(rules, topic="mlops-run-requests") == [
        "schedule monitor-churn: its run request on topic 'mlops-run-requests' would not launch "
        "monitoring: reject (pipeline 'monitoring' is not allowed by rule run-request (allowed: training))"
    ]
    assert routing_problems(load_rules(SCHEDULED, variables={}), topic="mlops-run-requests") == []
    # The shipped run-request rule and the demo's allow any catalog pipeline.
    demo = load_rules(DEMO_RULES.read_text(), variables={"DATA_BUCKET": "b"})
    assert [s.name for s in demo.schedules] == ["monitor-churn"]
    assert routing_problems(demo, topic="run-requests") == []


# --- one run per tick ---------------------------------------------------------------------------


def _route(rules, doc):  # type: ignore[no-untyped-def]
    decision = route(parse.parse(envelope.from_json_document(doc)), rules)
    assert isinstance(decision, Launch), decision
    return decision.request


def test_a_tick_is_one_job_whether_the_local_player_or_cloud_scheduler_publishes_it() -> None:
    rules = load_rules(SCHEDULED, variables={})
    (s,) = rules.schedules
    tick = utc("2026-12-01T05:00:00Z")
    local = delivered_event(s, tick, topic="run-requests", project="p")
    cloud = delivered_event(s, tick, topic="run-requests", project="p", keyed=False)
    # Cloud Scheduler publishes a few seconds late, twice, under two message ids.
    cloud["data"]["message"]["publishTime"] = "2026-12-01T05:00:03.512Z"
    again = delivered_event(s, tick, topic="run-requests", project="p", keyed=False)
    again["data"]["message"].update(messageId="another-id", publishTime="2026-12-01T05:01:10Z")
    jobs = {_route(rules, doc).job_id for doc in (local, cloud, again)}
    assert len(jobs) == 1
    # The next tick is another run.
    nxt = delivered_event(s, utc("2026-12-01T11:00:00Z"), topic="run-requests", project="p")
    assert _route(rules, nxt).job_id not in jobs


def test_a_run_request_published_off_the_schedule_keeps_its_message_identity() -> None:
    rules = load_rules(SCHEDULED, variables={})
    (s,) = rules.schedules

    def identity(doc, with_rules=rules):  # type: ignore[no-untyped-def]
        decision = route(parse.parse(envelope.from_json_document(doc)), with_rules)
        assert isinstance(decision, Launch), decision
        return decision.reason.rsplit(" ", 1)[-1]

    doc = delivered_event(s, utc("2026-12-01T05:00:00Z"), topic="run-requests", project="p", keyed=False)
    doc["data"]["message"].update(messageId="m1", publishTime="2026-12-01T05:04:59Z")
    assert identity(doc) == "run-request/key/monitor-churn-2026-12-01T05:00:00Z"
    # `gcloud scheduler jobs run` at 07:30 is not a tick: a run of its own.
    doc["data"]["message"].update(publishTime="2026-12-01T07:30:00Z")
    assert identity(doc) == "run-request/message/m1"
    # Nor does a request get a tick key from rules without that schedule, or when it runs another pipeline.
    doc["data"]["message"].update(publishTime="2026-12-01T05:00:01Z")
    assert identity(doc, load_rules(RUN_REQUEST_RULE, variables={})) == "run-request/message/m1"
    body = {**s.message(), "pipeline": "training", "parameters": {"model_name": "m", "data_uri": "gs://b/x"}}
    doc["data"]["message"]["data"] = base64.b64encode(json.dumps(body).encode()).decode()
    assert identity(doc) == "run-request/message/m1"
