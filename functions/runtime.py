"""Per-instance runtime (rules, templates, launcher, dead letters) and the error policy.

Error policy, because Eventarc and Pub/Sub redeliver every non-2xx answer:
- permanent problems (malformed event, unsupported event, unknown pipeline, invalid parameters,
  a request Vertex rejects, an event too old) are logged, recorded as a dead letter, and the
  function returns normally (2xx) so the event is not redelivered forever;
- transient problems (Vertex 429/5xx, timeouts, a dead letter that could not be published) raise,
  the platform answers 500 and redelivers; the deterministic job id makes the retry safe.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from events import envelope, parse
from events.decision import Decision, Reject, Skip
from events.errors import PermanentError
from events.model import Event, PubSubMessage
from events.routing import RuleSet, default_rules_text, load_rules, route
from functions.dead_letter import DeadLetters, make_record
from functions.guards import Deferred, Guards
from functions.log import log
from functions.settings import Settings
from pipelines.launch.base import (
    Launcher,
    LaunchResult,
    PermanentLaunchError,
    Templates,
    TransientLaunchError,
)


@dataclass(frozen=True)
class Outcome:
    """What happened to one event (returned for tests and the CLI; the function returns None)."""

    decision: Decision
    event: Event | None = None
    launch: LaunchResult | None = None


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()

    @cached_property
    def rules(self) -> RuleSet:
        path = self.settings.config_path
        text = path.read_text(encoding="utf-8") if path else default_rules_text()
        return load_rules(
            text,
            catalog=self.templates.catalog,
            variables=self.settings.variables,
            source=str(path or "default rules"),
        )

    @cached_property
    def templates(self) -> Templates:
        return Templates(self.settings.templates_dir)

    @cached_property
    def digests(self) -> dict[str, str]:
        return self.templates.digests()

    @cached_property
    def launcher(self) -> Launcher:
        s = self.settings
        from pipelines.launch.vertex import VertexConfig

        config = VertexConfig(
            project=s.project or "local-project",
            region=s.region,
            pipeline_root=s.pipeline_root or "",
            service_account=s.pipeline_service_account,
            api_endpoint=s.vertex_api_endpoint,
            timeout_seconds=s.vertex_timeout_seconds,
        )
        if s.launcher == "dry-run":
            from pipelines.launch.dry_run import DryRunLauncher

            return DryRunLauncher(config, self.templates)
        if not s.project or not s.pipeline_root:
            raise PermanentLaunchError("GOOGLE_CLOUD_PROJECT and PIPELINE_ROOT (or DATA_BUCKET) must be set")
        from pipelines.launch.vertex import VertexLauncher

        return VertexLauncher(config, self.templates)

    @cached_property
    def guards(self) -> Guards:
        return Guards(self.settings)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        return DeadLetters(self.settings.dead_letter_topic_path(), self.settings.dead_letter_dir)

    def warm(self) -> None:
        """Load the rules and the manifest now rather than at the first event (the benchmark's setup)."""
        _ = self.rules, self.digests

    # --- one event -----------------------------------------------------------------------------

    def handle(
        self, entry_point: str, accepts: frozenset[str], attributes: Mapping[str, Any], data: Any
    ) -> Outcome:
        started = time.perf_counter()
        base = {
            "entry_point": entry_point,
            "event_id": attributes.get("id"),
            "event_type": attributes.get("type"),
        }
        try:
            event = parse.parse(
                envelope.from_attributes(attributes, data), max_message_bytes=self.settings.max_message_bytes
            )
        except PermanentError as exc:
            return self._reject(Reject(str(exc)), None, attributes, data, base)
        except Exception as exc:  # a parser bug must not turn one bad event into endless retries
            detail = f"internal error while parsing: {type(exc).__name__}: {exc}"
            log("ERROR", detail, traceback=traceback.format_exc(), **base)
            return self._reject(Reject(detail), None, attributes, data, base)

        base["identity"] = event.identity
        decision = self._decide(event, accepts)
        if isinstance(decision, Reject):
            return self._reject(decision, event, attributes, data, base)
        if isinstance(decision, Skip):
            return self._skip(decision, event, base)

        try:
            decision = self.guards.apply(decision, event)
        except Deferred as exc:
            # Not an error: the platform's redelivery is the timer (debounce, concurrency: defer).
            log("NOTICE", str(exc), decision="defer", rule=decision.rule, **base)
            raise
        if isinstance(decision, Skip):
            return self._skip(decision, event, base)

        request = decision.request
        fields = {
            **base,
            "decision": "launch",
            "rule": request.rule,
            "pipeline": request.pipeline,
            "job_id": request.job_id,
        }
        try:
            result = self.launcher.launch(request)
        except PermanentLaunchError as exc:
            return self._reject(
                Reject(f"launch failed permanently: {exc}", rule=request.rule), event, attributes, data, base
            )
        except TransientLaunchError as exc:
            log("WARNING", f"launch failed, will be retried: {exc}", **fields)
            raise
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        lost = result.status == "exists_failed"  # the job of this event FAILED or was CANCELLED
        log(
            "WARNING" if lost else "INFO",
            f"launch {request.pipeline} as {request.job_id}: {result.status}"
            + (
                f": Vertex says that job is {result.detail.get('state')}, so this event did not get its "
                f"run; `mlops-events rerun {request.job_id}` starts a new attempt"
                if lost
                else ""
            ),
            status=result.status,
            job=result.job_name,
            labels=dict(request.labels),
            parameters=dict(request.parameters),
            elapsed_ms=elapsed_ms,
            **fields,
        )
        return Outcome(decision, event, result)

    def _skip(self, decision: Skip, event: Event, base: Mapping[str, Any]) -> Outcome:
        log(
            "INFO",
            f"skip: {decision.reason}",
            decision="skip",
            rule=decision.rule,
            reason=decision.reason,
            **base,
        )
        return Outcome(decision, event)

    def _decide(self, event: Event, accepts: frozenset[str]) -> Decision:
        if event.kind not in accepts:
            what = (
                "data is not a run request or an alert"
                if isinstance(event, PubSubMessage)
                else "wrong trigger?"
            )
            return Reject(
                f"this function handles {', '.join(sorted(accepts))} events, got {event.kind} ({what})"
            )
        age = _age_seconds(event)
        limit = self.settings.max_event_age_seconds
        if limit > 0 and age is not None and age > limit:
            return Reject(
                f"event is {age:.0f} s old, older than MAX_EVENT_AGE_SECONDS={self.settings.max_event_age_seconds:.0f}"
            )
        return route(event, self.rules, self.digests)

    def reject_request(self, entry_point: str, headers: Mapping[str, str], body: bytes, path: str) -> str:
        """An HTTP request the framework could not read as a CloudEvent: record it, return why."""
        try:
            envelope.from_http(headers, body, path)
            reason = "the request could not be read as a CloudEvent"
        except PermanentError as exc:
            reason = str(exc)
        attributes = {
            k: v for k, v in headers.items() if k.lower().startswith("ce-") or k.lower() == "content-type"
        }
        data: Any = body
        self._reject(
            Reject(reason),
            None,
            attributes,
            data,
            {"entry_point": entry_point, "event_id": headers.get("ce-id")},
        )
        return reason

    def _reject(
        self,
        decision: Reject,
        event: Event | None,
        attributes: Mapping[str, Any],
        data: Any,
        base: Mapping[str, Any],
    ) -> Outcome:
        entry_point = str(base["entry_point"])
        record = make_record(
            entry_point=entry_point,
            attributes=attributes,
            data=data,
            reason=decision.reason,
            rule=decision.rule,
        )
        log(
            "ERROR",
            f"reject: {decision.reason}",
            decision="reject",
            rule=decision.rule,
            reason=decision.reason,
            dead_letter=record,
            **base,
        )
        # If the record cannot be published this raises: the event is redelivered, not lost.
        self.dead_letters.record(record)
        return Outcome(decision, event)


def _age_seconds(event: Event) -> float | None:
    ctx = event.context
    when = ctx.time
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (datetime.now(UTC) - when).total_seconds()


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """The instance's runtime, built once from the environment."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime(Settings.from_env())
        return _runtime


def reset_runtime() -> None:
    """Forget the cached runtime (tests change the environment between cases)."""
    global _runtime
    with _runtime_lock:
        _runtime = None
