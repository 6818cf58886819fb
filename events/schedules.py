"""The ``schedules:`` section of the rules file: run requests published on a cron schedule.

Each entry is one run request and when to publish it::

    schedules:
      - name: monitoring-churn          # lowercase letters, digits, dashes (at most 40)
        description: free text
        cron: "0 */6 * * *"             # unix-cron, five fields (events.cron)
        time_zone: Europe/Paris         # IANA name; default UTC
        pipeline: monitoring            # a catalog pipeline
        parameters: {model_name: churn} # constants, checked like a rule's launch parameters

On Google Cloud each entry is a Cloud Scheduler job (``deploy.schedules``); locally the stack's
player (``stack.scheduler``) plays Cloud Scheduler. Either way a fire publishes a run request on
the run-requests topic, so the router, its guards and the lineage labels apply as to any run
request. Validation happens at load, with the rules, and reports every problem named by schedule
and field. Pure: no I/O.

A tick is one run. The local player publishes ``idempotency_key = "<name>-<fire time>"``. A Cloud
Scheduler job publishes the same message body every time (it has no per-fire templating), without
a key; ``with_tick_key`` gives such a message the same key from its publish time, when that is
within ``TICK_TOLERANCE`` of a fire time of the schedule the message names, so a tick Cloud
Scheduler executes twice is still one pipeline run, and a tick fired locally and on Google names
the same job. A run request published by hand (``gcloud scheduler jobs run``, off the schedule)
keeps its message id as identity: a new run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from events.cron import Cron, CronError, time_zone
from events.template import TemplateError, placeholders

if TYPE_CHECKING:
    from events.catalog import Catalog, PipelineSpec
    from events.model import RunRequestMessage

SCHEDULE_KEYS: Final = frozenset({"name", "description", "cron", "time_zone", "pipeline", "parameters"})
DEFAULT_TIME_ZONE: Final = "UTC"
# How far from a fire time a Cloud Scheduler message may be published and still be that tick.
TICK_TOLERANCE: Final = timedelta(minutes=5)
REQUESTED_BY_PREFIX: Final = "schedule "
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")

# The rules loader's own checks, passed in by events.rules (no import cycle).
Substitute = Callable[[Any, str], Any]
CheckParameters = Callable[[str, "PipelineSpec", Mapping[str, Any], list[str]], None]


@dataclass(frozen=True)
class Schedule:
    name: str
    cron: Cron
    time_zone: str
    pipeline: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return time_zone(self.time_zone)

    @property
    def requested_by(self) -> str:
        return f"{REQUESTED_BY_PREFIX}{self.name}"

    def next_fires(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` fire times strictly after ``after``, as UTC datetimes."""
        return self.cron.next_fires(self.zone, after, count)

    def idempotency_key(self, fire_time: datetime) -> str:
        return f"{self.name}-{fire_time.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"

    def message(self) -> dict[str, Any]:
        """The run request a Cloud Scheduler job publishes (the same bytes at every fire)."""
        return {
            "pipeline": self.pipeline,
            "parameters": dict(self.parameters),
            "requested_by": self.requested_by,
        }

    def run_request(self, fire_time: datetime) -> dict[str, Any]:
        """The run request of one fire, keyed by the tick (what the local player publishes)."""
        return {**self.message(), "idempotency_key": self.idempotency_key(fire_time)}

    def tick_near(self, when: datetime) -> datetime | None:
        """The fire time within ``TICK_TOLERANCE`` of ``when`` (the nearest), if any."""
        near = self.cron.between(
            self.zone, when - TICK_TOLERANCE - timedelta(seconds=1), when + TICK_TOLERANCE
        )
        return min(near, key=lambda t: abs(t - when)) if near else None


def message_bytes(doc: Mapping[str, Any]) -> bytes:
    """The exact JSON a fire publishes (sorted keys: the deployed job and the local player agree)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def with_tick_key(request: RunRequestMessage, schedules: tuple[Schedule, ...]) -> RunRequestMessage:
    """A run request Cloud Scheduler published for one of ``schedules`` gets its tick's key."""
    by = request.requested_by or ""
    if request.idempotency_key or not by.startswith(REQUESTED_BY_PREFIX):
        return request
    schedule = next((s for s in schedules if s.requested_by == by), None)
    published = request.message.publish_time
    if schedule is None or published is None or request.pipeline != schedule.pipeline:
        return request
    tick = schedule.tick_near(published)
    if tick is None:
        return request
    return dataclasses.replace(request, idempotency_key=schedule.idempotency_key(tick))


def parse_schedules(
    raw: Any,
    catalog: Catalog,
    problems: list[str],
    *,
    substitute: Substitute,
    check_parameters: CheckParameters,
) -> tuple[Schedule, ...]:
    """The ``schedules:`` list; every problem is appended to ``problems``, named by schedule and field."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append("schedules: must be a list of schedules")
        return ()
    out: list[Schedule] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        name = entry.get("name") if isinstance(entry, dict) else None
        label = name if isinstance(name, str) and name else f"schedules[{index}]"
        if label in seen:
            problems.append(f"schedule {label}: the name is used twice")
        seen.add(label)
        schedule = _load_schedule(
            substitute(entry, f"schedule {label}"), index, catalog, problems, check_parameters
        )
        if schedule is not None:
            out.append(schedule)
    return tuple(out)


def _valid_name(name: Any) -> bool:
    return (
        isinstance(name, str)
        and 0 < len(name) <= 40
        and name[0].isalpha()
        and name[0].islower()
        and set(name) <= _NAME_CHARS
    )


def _load_schedule(
    raw: Any,
    index: int,
    catalog: Catalog,
    problems: list[str],
    check_parameters: CheckParameters,
) -> Schedule | None:
    where = f"schedules[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    name = raw.get("name")
    if not _valid_name(name):
        problems.append(f"{where}: name {name!r} must be lowercase letters, digits and dashes (at most 40)")
    else:
        where = f"schedule {name}"
    before = len(problems)
    unknown = set(raw) - SCHEDULE_KEYS
    if unknown:
        problems.append(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} (use: {', '.join(sorted(SCHEDULE_KEYS))})"
        )

    cron: Cron | None = None
    if "cron" not in raw:
        problems.append(f'{where}: cron: required (e.g. "0 */6 * * *")')
    else:
        try:
            cron = Cron.parse(raw["cron"])
        except CronError as exc:
            problems.append(f"{where}: {exc}")  # "cron '...': <field>: <why>"
    zone_name = raw.get("time_zone", DEFAULT_TIME_ZONE)
    try:
        time_zone(zone_name)
    except CronError as exc:
        problems.append(f"{where}: time_zone: {exc}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{where}: description: must be text")

    pipeline = raw.get("pipeline")
    params = raw.get("parameters") or {}
    if not isinstance(pipeline, str) or not pipeline:
        problems.append(f"{where}: pipeline: required (a catalog pipeline)")
    elif pipeline not in catalog:
        problems.append(f"{where}: pipeline: unknown pipeline {pipeline!r} (known: {catalog.known()})")
    if not isinstance(params, dict):
        problems.append(f"{where}: parameters: must be a mapping of name to value")
    elif isinstance(pipeline, str) and pipeline in catalog:
        _check_parameters(where, catalog[pipeline], params, problems, check_parameters)
    if len(problems) > before or cron is None or not isinstance(name, str):
        return None
    return Schedule(name, cron, zone_name, str(pipeline), dict(params), description)


def _check_parameters(
    where: str,
    spec: PipelineSpec,
    params: Mapping[str, Any],
    problems: list[str],
    check_parameters: CheckParameters,
) -> None:
    # The rules loader's checks (authority, unknown, type, required) name "launch.parameters";
    # a schedule's field is "parameters".
    found: list[str] = []
    check_parameters(where, spec, params, found)
    problems.extend(p.replace(f"{where}: launch.parameters", f"{where}: parameters", 1) for p in found)
    for key, value in params.items():
        try:
            has_placeholders = bool(placeholders(value))
        except TemplateError:
            has_placeholders = True
        if has_placeholders:
            problems.append(
                f"{where}: parameters.{key}: a schedule has no event to fill {{placeholders}} from; "
                "write the value"
            )
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            problems.append(f"{where}: parameters.{key}: {value!r} is not a JSON value (quote it)")


def delivered_event(
    schedule: Schedule, fire_time: datetime, *, topic: str, project: str, keyed: bool = True
) -> dict[str, Any]:
    """The structured CloudEvent the run-request function receives for one fire (for checks and
    tests): ``keyed`` is the local player's message, else Cloud Scheduler's."""
    import base64

    doc = schedule.run_request(fire_time) if keyed else schedule.message()
    published = fire_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    message_id = f"{schedule.name}-{int(fire_time.timestamp())}"
    return {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": f"//pubsub.googleapis.com/projects/{project}/topics/{topic}",
        "id": message_id,
        "datacontenttype": "application/json",
        "data": {
            "message": {
                "data": base64.b64encode(message_bytes(doc)).decode(),
                "messageId": message_id,
                "publishTime": published,
            },
            "subscription": f"projects/{project}/subscriptions/{topic}-push",
        },
    }


def routing_problems(rules: Any, *, topic: str, project: str = "project") -> list[str]:
    """A schedule whose run request the rules would not launch, one line each (what the deploy and
    ``mlops-events schedules`` check: a schedule that launches nothing is a configuration error)."""
    from events import envelope, parse
    from events.decision import Launch
    from events.routing import route

    out: list[str] = []
    for schedule in rules.schedules:
        fire = schedule.next_fires(datetime(2026, 1, 1, tzinfo=UTC), 1)[0]
        event = parse.parse(
            envelope.from_json_document(delivered_event(schedule, fire, topic=topic, project=project))
        )
        decision = route(event, rules)
        if not isinstance(decision, Launch):
            out.append(
                f"schedule {schedule.name}: its run request on topic {topic!r} would not launch "
                f"{schedule.pipeline}: {decision.decision} ({decision.reason})"
            )
    return out
