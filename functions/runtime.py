"""Per-instance runtime (rules, templates, launcher, dead letters) and the error policy.

Error policy, because Eventarc and Pub/Sub redeliver every non-2xx answer:
- permanent problems (malformed event, unsupported event, unknown pipeline, invalid parameters,
  a request Vertex rejects, an event too old) are logged, recorded as a dead letter, and the
  function returns normally (2xx) so the event is not redelivered forever;
- transient problems (Vertex 429/5xx, timeouts, a dead letter that could not be published, the
  state bucket unreachable: ``functions.failures``) raise, the platform answers 500 and redelivers;
  the deterministic job id makes the retry safe.
An exception nobody expected, in parsing, routing, the guards or the launcher, is classified the
same way: permanent unless a retry can fix it, so a bug hit by one event is a dead letter, never
an endless 500 loop. A permanent failure after the guards releases what they recorded for it.
"""

from __future__ import annotations

import string
import threading
import time
import traceback
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from events import envelope, parse
from events.decision import Decision, Launch, Reject, Skip
from events.errors import PermanentError
from events.model import Event, PubSubMessage
from events.routing import RuleSet, default_rules_text, load_rules, route
from functions.dead_letter import DeadLetters, make_record
from functions.failures import describe, is_transient
from functions.guards import Deferred, Guards
from functions.log import log
from functions.objects import ObjectReader, launcher_session
from functions.settings import Settings
from pipelines import parsed
from pipelines.launch.base import (
    Launcher,
    LaunchResult,
    PermanentLaunchError,
    Templates,
    TransientLaunchError,
)

# The answer header that says what the function did with an event (Outcome.summary()), for
# `mlops-events replay`: a permanent error is answered 200 too, so the status alone does not tell.
OUTCOME_HEADER = "Mlops-Events-Outcome"


def outcome_header_value(summary: str) -> str:
    """``summary`` as a header value: printable ASCII as is, ``%`` and anything else as UTF-8 %XX."""
    return urllib.parse.quote(summary, safe=" " + string.punctuation.replace("%", ""))


@dataclass(frozen=True)
class Outcome:
    """What happened to one event (returned for tests and the CLI; the function returns None)."""

    decision: Decision
    event: Event | None = None
    launch: LaunchResult | None = None

    def summary(self) -> str:
        """``launched: JOB (created)``, ``skipped: REASON`` or ``dead-lettered: REASON``."""
        if self.launch is not None:
            return f"launched: {self.launch.job_id} ({self.launch.status})"
        if isinstance(self.decision, Skip):
            return f"skipped: {self.decision.reason}"
        if isinstance(self.decision, Reject):
            return f"dead-lettered: {self.decision.reason}"
        return type(self.decision).__name__.lower()


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()

    @cached_property
    def rules(self) -> RuleSet:
        path = self.settings.config_path
        text: str | dict[str, Any]
        if path is None:
            text = default_rules_text()
        else:
            data = path.read_bytes()
            copy = parsed.read(path, data)  # the bundle's pre-parsed rules: no PyYAML to import
            text = copy if isinstance(copy, dict) else data.decode("utf-8")
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
        return Guards(
            self.settings,
            routes=lambda event: route(event, self.rules, self.digests),
            # One authorized session per instance: the guards' object reads reuse the launcher's.
            objects=ObjectReader(lambda: launcher_session(lambda: self.launcher)),
        )

    @cached_property
    def dead_letters(self) -> DeadLetters:
        s = self.settings
        return DeadLetters(s.dead_letter_topic_path(), s.dead_letter_dir, s.dead_letter_bucket)

    def warm(self) -> None:
        """Load the rules and the manifest now rather than at the first event (the benchmark's setup)."""
        _ = self.rules, self.digests

    # --- one event -----------------------------------------------------------------------------

    def handle(
        self,
        entry_point: str,
        accepts: frozenset[str],
        attributes: Mapping[str, Any],
        data: Any,
        body: bytes | None = None,
    ) -> Outcome:
        """Parse, route, guard and launch one event. Returns normally for every permanent outcome
        (the caller answers 2xx); raises only what a retry can fix. ``body``: the request body,
        recorded in a dead letter when ``data`` cannot be encoded as JSON."""
        started = time.perf_counter()
        base: dict[str, Any] = {
            "entry_point": entry_point,
            "event_id": attributes.get("id"),
            "event_type": attributes.get("type"),
        }
        failed = _Failure(self, attributes, data, body, base)
        try:
            event = parse.parse(
                envelope.from_attributes(attributes, data), max_message_bytes=self.settings.max_message_bytes
            )
        except PermanentError as exc:
            return failed.reject(Reject(str(exc)), None)
        except Exception as exc:  # a parser bug must not turn one bad event into endless retries
            return failed.unexpected("parsing", exc, None)

        base["identity"] = event.identity
        try:
            decision = self._decide(event, accepts)
        except Exception as exc:  # routing is pure: whatever it raises, it raises again
            return failed.unexpected("routing", exc, event)
        if isinstance(decision, Reject):
            return failed.reject(decision, event)
        if isinstance(decision, Skip):
            return self._skip(decision, event, base)

        routed = decision
        try:
            guarded = self.guards.apply(routed, event)
        except Deferred as exc:
            # Not an error: the platform's redelivery is the timer (debounce, concurrency: defer).
            log("NOTICE", str(exc), decision="defer", rule=routed.rule, **base)
            raise
        except Exception as exc:
            return failed.unexpected("applying the guards", exc, event, release=routed)
        if isinstance(guarded, Skip):
            return self._skip(guarded, event, base)
        if isinstance(guarded, Reject):
            return failed.reject(guarded, event)

        request = guarded.request
        fields = {
            **base,
            "decision": "launch",
            "rule": request.rule,
            "pipeline": request.pipeline,
            "job_id": request.job_id,
        }
        try:
            result = self.launcher.launch(request)
        except TransientLaunchError as exc:
            log("WARNING", f"launch failed, will be retried: {exc}", **fields)
            raise
        except PermanentLaunchError as exc:
            reject = Reject(f"launch failed permanently: {exc}", rule=request.rule)
            return failed.reject(reject, event, release=(routed, guarded))
        except Exception as exc:
            return failed.unexpected("launching", exc, event, release=(routed, guarded))
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
        return Outcome(guarded, event, result)

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
            return Reject(f"event is {age:.0f} s old, older than MAX_EVENT_AGE_SECONDS={limit:.0f}")
        ahead = self.settings.max_event_future_seconds
        if ahead > 0 and age is not None and -age > ahead:
            return Reject(
                f"event time is {-age:.0f} s in the future, more than the clock skew allowed "
                f"(MAX_EVENT_FUTURE_SECONDS={ahead:.0f})"
            )
        return route(event, self.rules, self.digests)

    def reject_request(
        self,
        entry_point: str,
        headers: Mapping[str, str],
        body: bytes,
        path: str,
        error: BaseException | None = None,
        reason: str | None = None,
    ) -> str:
        """An HTTP request the framework (or the server: ``reason``) could not read as a CloudEvent:
        record it, return why."""
        if reason is None:
            reason = _unreadable(headers, body, path, error)
        attributes = {
            k: v for k, v in headers.items() if k.lower().startswith("ce-") or k.lower() == "content-type"
        }
        base = {"entry_point": entry_point, "event_id": _header(headers, "ce-id")}
        _Failure(self, attributes, body, body, base).reject(Reject(reason), None)
        return reason

    def record_dead_letter(
        self,
        decision: Reject,
        attributes: Mapping[str, Any],
        data: Any,
        base: Mapping[str, Any],
        body: bytes | None = None,
    ) -> dict[str, Any]:
        """Log and record one permanent failure; return the record as written. Raises when a sink
        fails (the event is then redelivered, not lost)."""
        record = make_record(
            entry_point=str(base["entry_point"]),
            attributes=attributes,
            data=data,
            reason=decision.reason,
            rule=decision.rule,
            body=body,
        )
        try:
            written = self.dead_letters.record(record)
        except Exception as exc:
            log(
                "ERROR",
                f"dead letter not recorded, will be retried: {describe(exc)}",
                reason=decision.reason,
                **base,
            )
            raise
        log(
            "ERROR",
            f"reject: {decision.reason}",
            decision="reject",
            rule=decision.rule,
            reason=decision.reason,
            dead_letter=written,
            **base,
        )
        return written


@dataclass
class _Failure:
    """The permanent-failure path of one event: release guard state, record, acknowledge."""

    runtime: Runtime
    attributes: Mapping[str, Any]
    data: Any
    body: bytes | None
    base: Mapping[str, Any]

    def reject(
        self, decision: Reject, event: Event | None, release: Launch | tuple[Launch, Launch] | None = None
    ) -> Outcome:
        if release is not None and event is not None:
            # The launch will not happen: guard state must not keep citing it (cooldown, active run).
            self.runtime.guards.release(release if isinstance(release, tuple) else (release,), event)
        self.runtime.record_dead_letter(decision, self.attributes, self.data, self.base, self.body)
        return Outcome(decision, event)

    def unexpected(
        self,
        stage: str,
        exc: Exception,
        event: Event | None,
        release: Launch | tuple[Launch, Launch] | None = None,
    ) -> Outcome:
        """An exception nobody expected: retried when a retry can fix it, else recorded as permanent."""
        if is_transient(exc):
            log("WARNING", f"{stage} failed, will be retried: {describe(exc)}", **self.base)
            raise exc
        detail = f"internal error while {stage}: {describe(exc)}"
        log("ERROR", detail, traceback=traceback.format_exc(limit=20), **self.base)
        rule = release[0].rule if isinstance(release, tuple) else release.rule if release else None
        return self.reject(Reject(detail, rule=rule), event, release)


def _unreadable(headers: Mapping[str, str], body: bytes, path: str, error: BaseException | None) -> str:
    """Why a request could not be read: our own reading's reason, else the framework's error."""
    try:
        envelope.from_http(headers, body, path)
    except PermanentError as exc:
        return str(exc)
    except Exception as exc:  # our own reading failed too: say how, still record it
        return f"the request could not be read as a CloudEvent: {describe(error or exc)}"
    if error is not None:
        return f"functions-framework could not read the request: {describe(error)}"
    return "the request could not be read as a CloudEvent"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


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
