"""Debounce (storage rules with ``debounce: {quiet, max_wait, marker}``) -- no scheduler of our own

The platform's redelivery is the timer. A window is one JSON document per (rule, bucket, folder)
at ``mlops-state/debounce/<rule>/<digest>.json``. A delivery adds its object to the open window
and, while the window is not releasable, raises ``Deferred`` (HTTP 500): Eventarc redelivers it
later with back-off. The first delivery (of any object of the window) that finds the window
releasable closes it in the same compare-and-swap, recording the job id (derived from the window
id) and the parameters: ``data_uri`` = every object's URI, sorted, comma-separated. Every other
delivery of an object of that window then finds it closed and launches the same job id (Vertex
answers 409 = success), so all deliveries converge on one run that receives every object.

Time is the objects' own: a window is *quiet* when its newest object was *created* (``timeCreated``,
stamped by Cloud Storage) ``quiet`` seconds ago, and it is released at the latest ``max_wait``
after its oldest object was created -- however late, or in whatever order, the deliveries come.
"Now" is the guards' clock, corrected to the state store's (``functions.clock``), so instances
with different clocks agree. A ``marker`` object (e.g. ``_SUCCESS``) newer than the window's
oldest object releases it at once.

At release, when the bucket is reachable, the folder is *listed*: objects of this rule whose
delivery has not arrived yet (delayed, or lost to a crashed instance) join the window if they
belong to its burst -- created less than ``quiet`` apart from its objects, transitively, and not
in a closed window. Should the listing show the burst still going, the window stays open. So a
delayed delivery cannot split a burst: when it comes, its object is already in a closed window.
Closed windows are never forgotten (``functions.guards.windows``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from events import keys
from events.decision import Launch, Skip
from events.model import StorageObject
from events.options import Debounce
from functions.guards import windows
from functions.guards.deferred import Deferred
from functions.state import JsonDict, StateStore

# The objects of a folder that this rule would launch for: (name, generation, created).
Listing = Callable[[str, str], list[tuple[str, int, float]]]


def debounce_launch(
    decision: Launch,
    event: StorageObject,
    debounce: Debounce,
    *,
    store: StateStore,
    clock: Callable[[], float],
    stale: Callable[[StorageObject], str | None],
    listing: Listing | None,
    created_at: Callable[[str, str], str | None],
) -> Launch | Skip:
    """Add ``event`` to its window: the window's Launch once released, a Skip, or raise ``Deferred``."""
    folder = posixpath.dirname(event.name)
    prefix = f"{folder}/" if folder else ""
    scope = f"{event.bucket}/{prefix}"
    key = f"debounce/{keys.slug(decision.rule, 40)}/{keys.digest(scope)}.json"
    is_marker = debounce.marker is not None and posixpath.basename(event.name) == debounce.marker
    created = event.time_created.timestamp() if event.time_created else None

    def closed_in(doc: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        return windows.find_closed(doc, event.name, event.generation, created, store=store, key=key)

    # Read first: most redeliveries need no write (already released, or still waiting).
    doc = store.read(key)
    closed = closed_in(doc)
    if closed is not None:
        return _window_launch(decision, closed)
    reason = None if is_marker else stale(event)
    if reason:
        return Skip(reason, rule=decision.rule)
    now = clock()
    opened = (doc or {}).get("open")
    marker_seen = is_marker or _marker_present(
        event.bucket, prefix, debounce, opened, listing is not None, created_at
    )
    known = opened is not None and not is_marker and opened["objects"].get(event.name) == event.generation
    if opened is not None and known and not marker_seen and not _releasable(opened, now, debounce):
        raise _defer(opened, scope, now, debounce)
    # It may be released now: the listing brings the objects whose deliveries have not come yet.
    if opened is None:
        opened = _new_window(scope, event, now)
    candidate = _with(opened, event, created, is_marker, now)
    listed = None
    if listing is not None and (marker_seen or _releasable(candidate, now, debounce)):
        listed = [x for x in listing(event.bucket, prefix) if posixpath.basename(x[0]) != debounce.marker]

    verdict: dict[str, Any] = {}

    def update(current: JsonDict | None) -> JsonDict:
        verdict.clear()
        doc = dict(current or {"bucket": event.bucket, "prefix": prefix, "rule": decision.rule, "closed": []})
        closed = closed_in(doc)
        if closed is not None:
            verdict["closed"] = closed
            return doc
        window = dict(doc.get("open") or {})
        if not window:
            if is_marker:
                verdict["skip"] = f"marker {event.uri} arrived with no open window: nothing to release"
                return doc
            window = _new_window(scope, event, now)
        window = _with(window, event, created, is_marker, now)
        if listed:
            window = _join(window, listed, doc, debounce, store=store, key=key)
        if marker_seen or _releasable(window, now, debounce):
            released = _release(decision, event, window, scope, now, debounce, marker_seen)
            windows.close(doc, released, store=store, key=key)
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


def _new_window(scope: str, event: StorageObject, now: float) -> JsonDict:
    identity = f"window/{scope}#{event.name}#{event.generation}@{now:.6f}"
    return {"id": keys.digest(identity), "opened_at": now, "objects": {}, "created": {}}


def _with(
    window: Mapping[str, Any], event: StorageObject, created: float | None, is_marker: bool, now: float
) -> JsonDict:
    """``window`` with ``event``'s object in it (a newer generation replaces an older one)."""
    out = dict(window)
    if is_marker or out["objects"].get(event.name) == event.generation:
        return out
    out["objects"] = {**out["objects"], event.name: event.generation}
    # Without a creation time (not sent by Cloud Storage; tests) the first delivery's time stands in.
    out["created"] = {**out.get("created", {}), event.name: created if created is not None else now}
    return out


def _join(
    window: JsonDict,
    listed: list[tuple[str, int, float]],
    doc: Mapping[str, Any],
    debounce: Debounce,
    *,
    store: StateStore,
    key: str,
) -> JsonDict:
    """Add the listed objects of the window's burst: created less than ``quiet`` apart from an
    object of the window (transitively), not released by a closed window."""
    released = windows.released_names(doc)
    candidates = sorted(
        (t, name, gen)
        for name, gen, t in listed
        if window["objects"].get(name) != gen and (name, gen) not in released
    )
    times = list(window["created"].values())
    if not times or not candidates:
        return window
    low, high = min(times), max(times)
    joined: list[tuple[float, str, int]] = []
    changed = True
    while changed:
        changed = False
        for c in candidates:
            if c not in joined and low - debounce.quiet < c[0] < high + debounce.quiet:
                joined.append(c)
                low, high = min(low, c[0]), max(high, c[0])
                changed = True
    through = doc.get("through")
    out = dict(window)
    for t, name, gen in joined:
        if (
            through is not None
            and t <= through
            and windows.find_closed(doc, name, gen, t, store=store, key=key)
        ):
            continue  # released by an archived window
        out["objects"] = {**out["objects"], name: gen}
        out["created"] = {**out["created"], name: t}
    return out


def _marker_present(
    bucket: str,
    prefix: str,
    debounce: Debounce,
    window: Mapping[str, Any] | None,
    storage_reachable: bool,
    created_at: Callable[[str, str], str | None],
) -> bool:
    # Only when storage is reachable. The marker must be newer than the window's oldest object,
    # so last batch's _SUCCESS does not release this one.
    if debounce.marker is None or window is None or not storage_reachable:
        return False
    created = created_at(bucket, prefix + debounce.marker)
    if created is None:
        return False
    first = _first_created(window)
    return first is None or not created or _dt(created).timestamp() >= first


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
    last = _last_created(window)
    why = (
        "marker"
        if marker_seen
        else "quiet"
        if last is not None and now - last >= debounce.quiet
        else "max_wait"
    )
    return {
        "id": window["id"],
        "objects": dict(window["objects"]),
        "opened_at": window["opened_at"],
        "first_created": _first_created(window),
        "last_created": last,
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
    last = _last_created(window)
    quiet_for = now - (last if last is not None else now)
    left = min(debounce.quiet - quiet_for, debounce.max_wait - (now - _started(window)))
    what = f"waiting for the marker {debounce.marker} or " if debounce.marker else ""
    message = (
        f"debounce: window {window['id']} of gs://{scope} holds {len(window['objects'])} object(s), "
        f"{what}quiet for {quiet_for:.0f}s of {debounce.quiet:.0f}s; released in <= {max(left, 0):.0f}s "
        "by a redelivery"
    )
    return Deferred(message)


def _releasable(window: Mapping[str, Any], now: float, debounce: Debounce) -> bool:
    last = _last_created(window)
    if last is None:
        return False  # nothing in it yet
    return now - last >= debounce.quiet or now - _started(window) >= debounce.max_wait


def _last_created(window: Mapping[str, Any]) -> float | None:
    times = (window.get("created") or {}).values()
    return max(times) if times else None


def _first_created(window: Mapping[str, Any]) -> float | None:
    times = (window.get("created") or {}).values()
    return min(times) if times else None


def _started(window: Mapping[str, Any]) -> float:
    first = _first_created(window)
    return min(first, window["opened_at"]) if first is not None else window["opened_at"]


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
