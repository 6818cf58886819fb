"""Guards: stateful checks applied to a Launch after routing (hygiene, ordering, debounce, cooldown,
concurrency). The router is pure; whatever needs memory across events and instances lives here, with
its state in the bucket (``functions.state``: JSON documents written with generation preconditions),
never only in the process.

Exactly-once comes from two things together: every launch uses a job id derived from what the
event is about (a redelivery maps to the same Vertex job, and "already exists" is success), and
every decision that spans several events (a debounce window, a cooldown slot) is *recorded before
the launch* with the job id it chose. A redelivery finds that record and launches the same job id
again, so a launch that failed transiently is retried by the platform and can never fork.

Hygiene (storage events; pure, no I/O)
    Objects written by our pipelines never retrigger: custom metadata ``mlops-events-output: "true"``
    or a name under ``PIPELINE_ROOT`` (same bucket). Temporary objects (``*.tmp``, ``*.temp``,
    ``*.part``, ``*~``, ``*_COPYING_*``, ``.../_temporary/...``) and zero-byte objects are skipped.

Ordering (storage events)
    An event whose generation is older than the object's live generation is stale (the object was
    overwritten; ``gs://bucket/name`` now means the newer data, whose own event launches): skipped.
    ``MLOPS_ORDERING=storage`` reads the live generation (one metadata GET; a per-instance cache of
    the highest generation seen answers the obviously stale ones for free); ``memory`` uses the
    cache only; ``off`` trusts the event. A newer generation is new data: it has its own job id.

Debounce (storage rules with ``debounce: {quiet, max_wait, marker}``) -- no scheduler of our own
    The platform's redelivery is the timer. A window is one JSON document per (rule, bucket, folder)
    at ``mlops-state/debounce/<rule>/<digest>.json``. A delivery adds its object to the open window
    (only a *new* object moves ``last_at``; a redelivery does not extend the quiet period) and, while
    the window is not releasable, raises ``Deferred`` (HTTP 500): Eventarc redelivers it later with
    back-off. The first delivery (of any object of the window) that finds the window releasable --
    quiet for ``quiet`` seconds, or open for ``max_wait``, or the ``marker`` object (e.g.
    ``_SUCCESS``) present in the folder -- closes it in the same compare-and-swap, recording the job
    id (derived from the window id) and the parameters: ``data_uri`` = every object's URI, sorted,
    comma-separated. Every other delivery of an object of that window then finds it in the closed
    list and launches the same job id (Vertex answers 409 = success), so all deliveries converge on
    one run that receives every object. Closed windows are kept (the last 50) for late redeliveries.

Cooldown (``cooldown: 6h`` or ``{period: 6h, after: 3, within: 1h}``)
    One document per (rule, model) at ``mlops-state/cooldown/<rule>/<model>.json``. Repeated
    notifications of one incident are one identity (``alert/<source>/<id>/open``) and count once.
    A launch is recorded (with its job id) in the same compare-and-swap that grants it; inside the
    period other incidents are skipped; with ``after: N`` the launch waits for N distinct incidents
    within ``within`` (those before the last launch do not count).

Concurrency (``concurrency: skip|defer``)
    One document per (pipeline, model) at ``mlops-state/runs/<pipeline>/<model>.json`` holds the run
    our functions launched last. While it is active (asked from the launcher: Vertex
    ``pipelineJobs.get`` / the local job's status; unknown counts as active until ``timeout``),
    another launch for that model is skipped, or deferred (HTTP 500, redelivered later). Why a state
    document rather than ``pipelineJobs.list`` with a label filter: the claim must be atomic with the
    decision (two alerts at once must not both pass), list is eventually consistent and costs a
    list call per event, and the document works the same for the local launcher.
"""

from __future__ import annotations

import posixpath
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from events import keys
from events.decision import Launch, RunRequest, Skip
from events.model import Event, StorageObject
from events.options import Concurrency, Cooldown, Debounce, parse_concurrency, parse_cooldown, parse_debounce
from functions.log import log
from functions.settings import Settings
from functions.state import BucketStateStore, JsonDict, LocalStateStore, StateStore
from pipelines.launch.base import TransientLaunchError

OUTPUT_METADATA: Final = "mlops-events-output"  # pipelines set it to "true" on what they write
TEMPORARY_NAME: Final = re.compile(r"(\.tmp|\.temp|\.part|~)$|_COPYING_|(^|/)_temporary/", re.IGNORECASE)
CLOSED_WINDOWS_KEPT: Final = 50
LAUNCHES_KEPT: Final = 20
_TERMINAL: Final = frozenset(
    {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED", "SUCCEEDED", "FAILED"}
)


class Deferred(TransientLaunchError):
    """Not now, later: the function answers 500 so the platform redelivers the event with back-off
    (a debounce window still open; a run still active under ``concurrency: defer``)."""


RunStatus = Callable[[str], str | None]  # job id -> state ("PIPELINE_STATE_RUNNING", ...), None: unknown


class Guards:
    def __init__(
        self,
        settings: Settings,
        store: StateStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        run_status: RunStatus | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self.clock = clock
        self._run_status = run_status
        self._generations: OrderedDict[str, int] = OrderedDict()  # highest generation seen per object
        self._lock = threading.Lock()

    @property
    def store(self) -> StateStore:
        if self._store is None:
            s = self.settings
            self._store = (
                BucketStateStore(s.state_bucket) if s.state_bucket else LocalStateStore(s.state_dir / "state")
            )
        return self._store

    def apply(self, decision: Launch, event: Event) -> Launch | Skip:
        """Return the Launch to carry out (possibly changed), or a Skip saying why not; raise
        ``Deferred`` (transient) when the event must come back later."""
        try:
            return self._apply(decision, event)
        except _Busy as exc:
            return Skip(str(exc), rule=decision.rule)

    def _apply(self, decision: Launch, event: Event) -> Launch | Skip:
        options = decision.options
        if isinstance(event, StorageObject):
            debounce = _parsed(parse_debounce, options.get("debounce"))
            if debounce is not None and debounce.quiet == 0 and debounce.marker is None:
                debounce = None  # quiet: 0s switches debounce off (no state touched)
            reason = self._hygiene(event, debounce)
            if reason:
                return Skip(reason, rule=decision.rule)
            if debounce is not None:
                return self._debounce(decision, event, debounce)
            reason = self._stale(event)
            if reason:
                return Skip(reason, rule=decision.rule)
        concurrency = _parsed(parse_concurrency, options.get("concurrency"))
        cooldown = _parsed(parse_cooldown, options.get("cooldown"))
        if cooldown is not None and cooldown.period == 0 and cooldown.after == 1:
            cooldown = None  # cooldown: 0s switches it off
        if concurrency is None and cooldown is None:
            return decision
        request = decision.request
        model = str(request.parameters.get("model_name") or "default")
        if concurrency is not None:
            self._claim_run(request, model, concurrency)
        if cooldown is not None:
            verdict = self._cooldown(decision, event, model, cooldown)
            if isinstance(verdict, Skip):
                if concurrency is not None:
                    self._release_run(request, model)
                return verdict
            decision = verdict
        return decision

    # --- hygiene and ordering ----------------------------------------------------------------

    def _hygiene(self, event: StorageObject, debounce: Debounce | None) -> str | None:
        if str(event.metadata.get(OUTPUT_METADATA, "")).lower() == "true":
            return f"{event.uri} was written by a pipeline (metadata {OUTPUT_METADATA}=true): outputs never retrigger"
        root = self.settings.pipeline_root or ""
        if root.startswith(f"gs://{event.bucket}/") and event.uri.startswith(root.rstrip("/") + "/"):
            return f"{event.uri} is under PIPELINE_ROOT ({root}): pipeline outputs never retrigger"
        if TEMPORARY_NAME.search(event.name):
            return f"{event.name} is a temporary object (upload or copy in progress)"
        is_marker = debounce is not None and debounce.marker == posixpath.basename(event.name)
        if event.size == 0 and not is_marker:
            return f"{event.uri} is empty (zero bytes)"
        return None

    def _stale(self, event: StorageObject) -> str | None:
        mode = self.settings.ordering
        if mode == "off":
            return None
        key = f"{event.bucket}/{event.name}"
        with self._lock:
            seen = self._generations.get(key, 0)
        live = seen
        if event.generation >= seen and mode == "storage":
            from functions.state import current_generation

            found = current_generation(event.bucket, event.name)
            if found is None:
                return (
                    f"{event.uri} no longer exists (deleted after generation {event.generation} was written)"
                )
            live = found
        self._remember(key, max(live, event.generation))
        if event.generation < live:
            return (
                f"stale event: {event.uri} generation {event.generation} was overwritten by generation {live}"
            )
        return None

    def _remember(self, key: str, generation: int) -> None:
        with self._lock:
            if self._generations.get(key, 0) < generation:
                self._generations[key] = generation
            self._generations.move_to_end(key)
            while len(self._generations) > 100_000:
                self._generations.popitem(last=False)

    # --- debounce ------------------------------------------------------------------------------

    def _debounce(self, decision: Launch, event: StorageObject, debounce: Debounce) -> Launch | Skip:
        folder = posixpath.dirname(event.name)
        prefix = f"{folder}/" if folder else ""
        scope = f"{event.bucket}/{prefix}"
        key = f"debounce/{keys.slug(decision.rule, 40)}/{keys.digest(scope)}.json"
        is_marker = debounce.marker is not None and posixpath.basename(event.name) == debounce.marker

        # Read first: most redeliveries need no write (already released, or still waiting).
        doc = self.store.read(key)
        closed = _closed_window(doc, event)
        if closed is not None:
            return self._window_launch(decision, closed)
        reason = None if is_marker else self._stale(event)
        if reason:
            return Skip(reason, rule=decision.rule)
        now = self.clock()
        opened = (doc or {}).get("open")
        marker_seen = is_marker or self._marker_present(event.bucket, prefix, debounce, opened)
        known = opened is not None and not is_marker and opened["objects"].get(event.name) == event.generation
        if opened is not None and known and not marker_seen and not _releasable(opened, now, debounce):
            raise self._defer(opened, scope, now, debounce)

        verdict: dict[str, Any] = {}

        def update(current: JsonDict | None) -> JsonDict:
            verdict.clear()
            doc = dict(
                current or {"bucket": event.bucket, "prefix": prefix, "rule": decision.rule, "closed": []}
            )
            closed = _closed_window(doc, event)
            if closed is not None:
                verdict["closed"] = closed
                return doc
            window = dict(doc.get("open") or {})
            if not window:
                if is_marker:
                    verdict["skip"] = f"marker {event.uri} arrived with no open window: nothing to release"
                    return doc
                identity = f"window/{scope}#{event.name}#{event.generation}@{now:.6f}"
                window = {"id": keys.digest(identity), "opened_at": now, "last_at": now, "objects": {}}
            objects = dict(window["objects"])
            if not is_marker and objects.get(event.name) != event.generation:
                objects[event.name] = event.generation  # a newer generation replaces an older one
                window["last_at"] = now
            window["objects"] = objects
            if event.time_created and not is_marker:
                created = event.time_created.isoformat()
                window["first_created"] = min(window.get("first_created") or created, created)
            if marker_seen or _releasable(window, now, debounce):
                released = self._release(decision, event, window, scope, now, debounce, marker_seen)
                doc["closed"] = [*doc.get("closed", []), released][-CLOSED_WINDOWS_KEPT:]
                doc["open"] = None
                verdict["released"] = released
            else:
                doc["open"] = window
                verdict["open"] = window
            return doc

        self.store.update(key, update)
        if "skip" in verdict:
            return Skip(verdict["skip"], rule=decision.rule)
        if "open" in verdict:
            raise self._defer(verdict["open"], scope, now, debounce)
        window = verdict.get("closed") or verdict["released"]
        return self._window_launch(decision, window)

    def _marker_present(
        self, bucket: str, prefix: str, debounce: Debounce, window: Mapping[str, Any] | None
    ) -> bool:
        # Only with a state bucket: that is when storage is reachable. The marker must be newer
        # than the window's oldest object, so last batch's _SUCCESS does not release this one.
        if debounce.marker is None or window is None or not self.settings.state_bucket:
            return False
        from functions.state import object_created

        created = object_created(bucket, prefix + debounce.marker)
        if created is None:
            return False
        first = window.get("first_created")
        return not first or not created or _dt(created) >= _dt(first)

    def _release(
        self,
        decision: Launch,
        event: StorageObject,
        window: Mapping[str, Any],
        scope: str,
        now: float,
        debounce: Debounce,
        marker_seen: bool,
    ) -> JsonDict:
        request = decision.request
        identity = f"window/{scope}#{window['id']}"
        uris = [f"gs://{event.bucket}/{name}" for name in sorted(window["objects"])]
        parameters = dict(request.parameters)
        parameters[debounce.parameter] = ",".join(uris)
        if "trigger" in parameters:
            parameters["trigger"] = identity
        labels = keys.lineage_labels(
            source_kind=event.kind,
            rule=request.rule,
            pipeline=request.pipeline,
            identity=identity,
            template_digest=request.template_digest,
        )
        why = (
            "marker" if marker_seen else "quiet" if now - window["last_at"] >= debounce.quiet else "max_wait"
        )
        return {
            "id": window["id"],
            "objects": dict(window["objects"]),
            "opened_at": window["opened_at"],
            "released_at": now,
            "why": why,
            "job_id": keys.job_id(request.pipeline, request.rule, identity),
            "parameters": parameters,
            "labels": labels,
        }

    def _window_launch(self, decision: Launch, window: Mapping[str, Any]) -> Launch:
        request = replace(
            decision.request,
            job_id=window["job_id"],
            parameters=dict(window["parameters"]),
            labels=dict(window["labels"]),
        )
        n = len(window["objects"])
        return replace(
            decision,
            request=request,
            reason=f"debounce window {window['id']} ({n} object(s), {window['why']})",
        )

    def _defer(self, window: Mapping[str, Any], scope: str, now: float, debounce: Debounce) -> Deferred:
        quiet_for = now - window["last_at"]
        left = min(debounce.quiet - quiet_for, debounce.max_wait - (now - window["opened_at"]))
        what = f"waiting for the marker {debounce.marker} or " if debounce.marker else ""
        message = (
            f"debounce: window {window['id']} of gs://{scope} holds {len(window['objects'])} object(s), "
            f"{what}quiet for {quiet_for:.0f}s of {debounce.quiet:.0f}s; released in <= {max(left, 0):.0f}s "
            "by a redelivery"
        )
        return Deferred(message)

    # --- cooldown ------------------------------------------------------------------------------

    def _cooldown(self, decision: Launch, event: Event, model: str, cooldown: Cooldown) -> Launch | Skip:
        request = decision.request
        key = f"cooldown/{keys.slug(decision.rule, 40)}/{keys.slug(model, 60)}-{keys.digest(model, 8)}.json"
        incident = event.identity
        now = self.clock()
        verdict: dict[str, Any] = {}

        def update(current: JsonDict | None) -> JsonDict:
            verdict.clear()
            doc = dict(current or {"model": model, "rule": decision.rule, "incidents": {}, "launches": []})
            launches = list(doc.get("launches", []))
            done = next((x for x in launches if x["incident"] == incident), None)
            if done is not None:
                verdict["launch"] = done
                return doc
            horizon = now - max(cooldown.period, cooldown.within or 0.0)
            incidents = {k: t for k, t in dict(doc.get("incidents", {})).items() if t >= horizon}
            incidents.setdefault(incident, now)
            doc["incidents"] = incidents
            last = max((x["at"] for x in launches), default=None)
            if last is not None and now - last < cooldown.period:
                last_job = max(launches, key=lambda x: x["at"])["job_id"]
                verdict["skip"] = (
                    f"cooldown: {model} was retrained {now - last:.0f}s ago ({last_job}); at most one "
                    f"launch per {cooldown.period:.0f}s, next after {cooldown.period - (now - last):.0f}s"
                )
                return doc
            if cooldown.after > 1:
                since = max(now - (cooldown.within or 0.0), last or 0.0)
                count = sum(1 for t in incidents.values() if t >= since)
                if count < cooldown.after:
                    verdict["skip"] = (
                        f"cooldown: {count} of {cooldown.after} incident(s) for {model} within "
                        f"{cooldown.within or 0:.0f}s: not launching yet"
                    )
                    return doc
            entry = {"incident": incident, "job_id": request.job_id, "at": now}
            doc["launches"] = [*launches, entry][-LAUNCHES_KEPT:]
            verdict["launch"] = entry
            return doc

        self.store.update(key, update)
        if "skip" in verdict:
            return Skip(verdict["skip"], rule=decision.rule)
        entry = verdict["launch"]
        if entry["job_id"] != request.job_id:  # recorded by an earlier delivery: the same job, again
            return replace(decision, request=replace(request, job_id=entry["job_id"]))
        return decision

    # --- concurrency ---------------------------------------------------------------------------

    def _runs_key(self, request: RunRequest, model: str) -> str:
        return f"runs/{keys.slug(request.pipeline, 40)}/{keys.slug(model, 60)}-{keys.digest(model, 8)}.json"

    def _claim_run(self, request: RunRequest, model: str, concurrency: Concurrency) -> None:
        key = self._runs_key(request, model)
        for _ in range(3):
            busy = self._try_claim(key, request, model, concurrency.timeout)
            if busy is None:
                return
            state = self.run_status(busy["job_id"])
            if state not in _TERMINAL:
                what = (
                    f"{request.pipeline} for {model} is still running "
                    f"({busy['job_id']}, state {state or 'unknown'})"
                )
                if concurrency.mode == "defer":
                    raise Deferred(f"concurrency: {what}; redelivered later")
                raise _Busy(f"concurrency: {what}; skipped")
            self._clear_run(key, busy)  # it has finished: clear it (only if unchanged), claim again
        raise Deferred(f"concurrency: could not claim {key} (it keeps changing); redelivered later")

    def _try_claim(self, key: str, request: RunRequest, model: str, timeout: float) -> JsonDict | None:
        """Record ``request`` as the active run unless another one is; return that other one."""
        now = self.clock()
        busy: list[JsonDict] = []

        def update(current: JsonDict | None) -> JsonDict:
            busy.clear()
            doc = dict(current or {"pipeline": request.pipeline, "model": model})
            active = doc.get("active")
            if active and active["job_id"] != request.job_id and now - active["at"] < timeout:
                busy.append(active)
                return doc
            doc["active"] = {"job_id": request.job_id, "at": now}
            return doc

        self.store.update(key, update)
        return busy[0] if busy else None

    def _clear_run(self, key: str, finished: Mapping[str, Any]) -> None:
        def update(current: JsonDict | None) -> JsonDict:
            doc = dict(current or {})
            if doc.get("active") == finished:
                doc["active"] = None
            return doc

        self.store.update(key, update)

    def _release_run(self, request: RunRequest, model: str) -> None:
        key = self._runs_key(request, model)

        def update(current: JsonDict | None) -> JsonDict:
            doc = dict(current or {})
            if (doc.get("active") or {}).get("job_id") == request.job_id:
                doc["active"] = None
            return doc

        self.store.update(key, update)

    def run_status(self, job_id: str) -> str | None:
        if self._run_status is None:
            self._run_status = _launcher_status(self.settings)
        try:
            return self._run_status(job_id)
        except Exception as exc:  # unknown: the run counts as active until its timeout
            log("WARNING", f"could not read the state of {job_id}: {exc}")
            return None


class _Busy(Exception):
    """A run of the same pipeline for the same model is active and the rule says skip."""


def _launcher_status(settings: Settings) -> RunStatus:
    """How to ask the configured launcher for a job's state."""
    if settings.launcher == "local":
        from pipelines.launch.local import read_status

        jobs = settings.state_dir / "jobs"
        return lambda job_id: (
            str(read_status(jobs / job_id).get("state")) if (jobs / job_id).exists() else None
        )
    if settings.launcher == "dry-run":
        return lambda job_id: "SUCCEEDED"
    from pipelines.launch.vertex import VertexConfig

    config = VertexConfig(
        project=settings.project or "local-project",
        region=settings.region,
        pipeline_root=settings.pipeline_root or "",
        api_endpoint=settings.vertex_api_endpoint,
    )

    def status(job_id: str) -> str | None:
        import requests

        if config.anonymous:
            session: Any = requests.Session()
        else:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            session = AuthorizedSession(credentials)
        parent = f"projects/{config.project}/locations/{config.region}"
        response = session.get(f"{config.base_url}/v1/{parent}/pipelineJobs/{job_id}", timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return str(response.json().get("state"))

    return status


def _closed_window(doc: Mapping[str, Any] | None, event: StorageObject) -> Mapping[str, Any] | None:
    for window in reversed((doc or {}).get("closed") or []):
        if window["objects"].get(event.name) == event.generation:
            return dict(window)
    return None


def _releasable(window: Mapping[str, Any], now: float, debounce: Debounce) -> bool:
    return now - window["last_at"] >= debounce.quiet or now - window["opened_at"] >= debounce.max_wait


def _parsed(parse: Callable[[Any], tuple[Any, list[str]]], raw: Any) -> Any:
    # Options were validated when the rules were loaded; a None here means "not set".
    if raw is None:
        return None
    value, problems = parse(raw)
    if problems:
        raise ValueError("; ".join(problems))
    return value


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
