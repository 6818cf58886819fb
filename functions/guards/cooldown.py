"""Cooldown (``cooldown: 6h`` or ``{period: 6h, after: 3, within: 1h}``)

One document per (rule, model) at ``mlops-state/cooldown/<rule>/<model>.json``. Repeated
notifications of one incident are one identity (``alert/<source>/<id>/open``) and count once.
A launch is recorded (with its job id) in the same compare-and-swap that grants it; inside the
period other incidents are skipped; with ``after: N`` the launch waits for N distinct incidents
within ``within`` (those before the last launch do not count).

A launch that failed permanently is *marked* failed (``release_cooldown``): it no longer counts
for the period and is never cited; a replay of that incident after a fix may launch again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

from events import keys
from events.decision import Launch, Skip
from events.model import Event
from events.options import Cooldown
from functions.state import JsonDict, StateStore

LAUNCHES_KEPT: Final = 20


def cooldown_launch(
    decision: Launch,
    event: Event,
    model: str,
    cooldown: Cooldown,
    *,
    store: StateStore,
    clock: Callable[[], float],
) -> Launch | Skip:
    """Grant ``decision`` a launch slot for ``model`` (recorded), or a Skip saying when the next one is."""
    request = decision.request
    key = _key(decision.rule, model)
    incident = event.identity
    now = clock()
    verdict: dict[str, Any] = {}

    def update(current: JsonDict | None) -> JsonDict:
        verdict.clear()
        doc = dict(current or {"model": model, "rule": decision.rule, "incidents": {}, "launches": []})
        launches = list(doc.get("launches", []))
        done = next((x for x in launches if x["incident"] == incident and not x.get("failed")), None)
        if done is not None:
            verdict["launch"] = done
            return doc
        horizon = now - max(cooldown.period, cooldown.within or 0.0)
        incidents = {k: t for k, t in dict(doc.get("incidents", {})).items() if t >= horizon}
        incidents.setdefault(incident, now)
        doc["incidents"] = incidents
        counted = [x for x in launches if not x.get("failed")]
        last = max((x["at"] for x in counted), default=None)
        if last is not None and now - last < cooldown.period:
            last_job = max(counted, key=lambda x: x["at"])["job_id"]
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
        launches = [x for x in launches if x["incident"] != incident]  # a failed attempt is replaced
        doc["launches"] = [*launches, entry][-LAUNCHES_KEPT:]
        verdict["launch"] = entry
        return doc

    store.update(key, update)
    if "skip" in verdict:
        return Skip(verdict["skip"], rule=decision.rule)
    entry = verdict["launch"]
    if entry["job_id"] != request.job_id:  # recorded by an earlier delivery: the same job, again
        return replace(decision, request=replace(request, job_id=entry["job_id"]))
    return decision


def release_cooldown(store: StateStore, rule: str, model: str, incident: str, job_ids: set[str]) -> None:
    """Mark the launch recorded for ``incident`` failed: it will not be created, so it must not
    hold the period or be cited as "retrained ... ago"."""

    def update(current: JsonDict | None) -> JsonDict:
        doc = dict(current or {"model": model, "rule": rule, "incidents": {}, "launches": []})
        doc["launches"] = [
            {**x, "failed": True} if x["incident"] == incident and x["job_id"] in job_ids else x
            for x in doc.get("launches", [])
        ]
        return doc

    if store.read(_key(rule, model)) is not None:
        store.update(_key(rule, model), update)


def _key(rule: str, model: str) -> str:
    return f"cooldown/{keys.slug(rule, 40)}/{keys.slug(model, 60)}-{keys.digest(model, 8)}.json"
