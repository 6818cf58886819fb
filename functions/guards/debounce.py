"""Debounce (storage rules with ``debounce: {quiet, max_wait, marker}``) -- no scheduler of our own

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
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from events import keys
from events.decision import Launch, Skip
from events.model import StorageObject
from events.options import Debounce
from functions.guards.deferred import Deferred
from functions.state import JsonDict, StateStore

CLOSED_WINDOWS_KEPT: Final = 50


def debounce_launch(
    decision: Launch,
    event: StorageObject,
    debounce: Debounce,
    *,
    store: StateStore,
    clock: Callable[[], float],
    stale: Callable[[StorageObject], str | None],
    storage_reachable: bool,
) -> Launch | Skip:
    """Add ``event`` to its window: the window's Launch once released, a Skip, or raise ``Deferred``."""
    folder = posixpath.dirname(event.name)
    prefix = f"{folder}/" if folder else ""
    scope = f"{event.bucket}/{prefix}"
    key = f"debounce/{keys.slug(decision.rule, 40)}/{keys.digest(scope)}.json"
    is_marker = debounce.marker is not None and posixpath.basename(event.name) == debounce.marker

    # Read first: most redeliveries need no write (already released, or still waiting).
    doc = store.read(key)
    closed = _closed_window(doc, event)
    if closed is not None:
        return _window_launch(decision, closed)
    reason = None if is_marker else stale(event)
    if reason:
        return Skip(reason, rule=decision.rule)
    now = clock()
    opened = (doc or {}).get("open")
    marker_seen = is_marker or _marker_present(event.bucket, prefix, debounce, opened, storage_reachable)
    known = opened is not None and not is_marker and opened["objects"].get(event.name) == event.generation
    if opened is not None and known and not marker_seen and not _releasable(opened, now, debounce):
        raise _defer(opened, scope, now, debounce)

    verdict: dict[str, Any] = {}

    def update(current: JsonDict | None) -> JsonDict:
        verdict.clear()
        doc = dict(current or {"bucket": event.bucket, "prefix": prefix, "rule": decision.rule, "closed": []})
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
            released = _release(decision, event, window, scope, now, debounce, marker_seen)
            doc["closed"] = [*doc.get("closed", []), released][-CLOSED_WINDOWS_KEPT:]
            doc["open"] = None
            verdict["released"] = released
        else:
            doc["open"] = window
            verdict["open"] = window
        return doc

    store.update(key, update)
    if "skip" in verdict:
        return Skip(verdict["skip"], rule=decision.rule)
    if "open" in verdict:
        raise _defer(verdict["open"], scope, now, debounce)
    window = verdict.get("closed") or verdict["released"]
    return _window_launch(decision, window)


def _marker_present(
    bucket: str, prefix: str, debounce: Debounce, window: Mapping[str, Any] | None, storage_reachable: bool
) -> bool:
    # Only with a state bucket: that is when storage is reachable. The marker must be newer
    # than the window's oldest object, so last batch's _SUCCESS does not release this one.
    if debounce.marker is None or window is None or not storage_reachable:
        return False
    from functions.state import object_created

    created = object_created(bucket, prefix + debounce.marker)
    if created is None:
        return False
    first = window.get("first_created")
    return not first or not created or _dt(created) >= _dt(first)


def _release(
    decision: Launch,
    event: StorageObject,
    window: Mapping[str, Any],
    scope: str,
    now: float,
    debounce: Debounce,
    marker_seen: bool,
) -> JsonDict:
    """The closed window: its job id and parameters, fixed now so every delivery launches the same."""
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
    why = "marker" if marker_seen else "quiet" if now - window["last_at"] >= debounce.quiet else "max_wait"
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


def _window_launch(decision: Launch, window: Mapping[str, Any]) -> Launch:
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


def _defer(window: Mapping[str, Any], scope: str, now: float, debounce: Debounce) -> Deferred:
    quiet_for = now - window["last_at"]
    left = min(debounce.quiet - quiet_for, debounce.max_wait - (now - window["opened_at"]))
    what = f"waiting for the marker {debounce.marker} or " if debounce.marker else ""
    message = (
        f"debounce: window {window['id']} of gs://{scope} holds {len(window['objects'])} object(s), "
        f"{what}quiet for {quiet_for:.0f}s of {debounce.quiet:.0f}s; released in <= {max(left, 0):.0f}s "
        "by a redelivery"
    )
    return Deferred(message)


def _closed_window(doc: Mapping[str, Any] | None, event: StorageObject) -> Mapping[str, Any] | None:
    for window in reversed((doc or {}).get("closed") or []):
        if window["objects"].get(event.name) == event.generation:
            return dict(window)
    return None


def _releasable(window: Mapping[str, Any], now: float, debounce: Debounce) -> bool:
    return now - window["last_at"] >= debounce.quiet or now - window["opened_at"] >= debounce.max_wait


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
