"""Who approved or rejected which model version, and why: the lineage's view of people's decisions.

Two records, joined:

- the decision written on the version (``mlops-events promote``/``reject``: decision, the
  principal it was told or guessed, reason, time), from the version description;
- the registry's audit events (the bridge's deliveries): the ``UpdateModel`` call that wrote the
  decision and the ``MergeVersionAliases`` call that moved ``champion``, each with the audit log's
  principal (``authenticationInfo.principalEmail``). That principal is who made the call, from the
  credentials on Vertex AI: it is shown as "by", the recorded one only when it says otherwise.

A champion move with no recorded approval is shown too: the gate's own (``promotion: auto``), or
a person's in the console, by the audit log's principal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pipelines.registry import CHAMPION
from stack.times import timestamp

if TYPE_CHECKING:
    from stack.lineage import EventNode, VersionNode

UPDATE: Final = "UpdateModel"
MERGE: Final = "MergeVersionAliases"
# A decision's record and its audit event are seconds apart; this much apart, they are not one.
MATCH_WINDOW_S: Final = 120.0


@dataclass(frozen=True)
class Approval:
    version: str  # model@version
    decision: str  # approved, rejected, or "champion moved" (no recorded decision)
    by: str | None  # the audit log's principal of the call; None: no audit event seen
    recorded_by: str | None  # the principal written in the decision (promote --by)
    reason: str
    at: str

    def describe(self) -> str:
        who = self.by or self.recorded_by or "unknown"
        if self.recorded_by and self.by and self.recorded_by != self.by:
            who += f" (recorded as {self.recorded_by})"
        elif self.by is None and self.recorded_by:
            who += " (as recorded; no audit event seen)"
        return f"{self.decision} by {who}" + (f": {self.reason}" if self.reason else "")


def _call(event: EventNode) -> str:
    return (event.method or "").rsplit(".", 1)[-1]


def _nearest(events: Sequence[EventNode], at: str, used: set[str]) -> EventNode | None:
    """The event closest in time to ``at`` (within the window) not matched yet."""
    when = timestamp(at)
    best: tuple[float, EventNode] | None = None
    for event in events:
        then = timestamp(event.time)
        if event.event_id in used or when is None or then is None:
            continue
        gap = abs(then - when)
        if gap <= MATCH_WINDOW_S and (best is None or gap < best[0]):
            best = (gap, event)
    return best[1] if best else None


def approvals(events: Sequence[EventNode], versions: Mapping[str, VersionNode]) -> list[Approval]:
    """Every decision on every version, then the champion moves no decision accounts for; by time."""
    registry = [e for e in events if e.kind == "registry" and e.subject]
    used: set[str] = set()
    out: list[Approval] = []
    for key, version in versions.items():
        updates = [e for e in registry if e.subject == key and _call(e) == UPDATE]
        merges = [e for e in registry if e.subject == key and _call(e) == MERGE and CHAMPION in e.aliases]
        for d in version.decisions:
            at = d.get("at", "")
            wrote = _nearest(updates, at, used)
            if wrote is not None:
                used.add(wrote.event_id)
            by = wrote.principal if wrote is not None else None
            if d.get("decision") == "approved":
                moved = _nearest(merges, at, used)
                if moved is not None:  # who moved champion is who approved, as the audit log says
                    used.add(moved.event_id)
                    by = moved.principal or by
            out.append(Approval(key, d.get("decision", "?"), by, d.get("principal"), d.get("reason", ""), at))
    gated: set[str] = set()  # the gate moves champion once, right after registering the version
    for event in registry:
        if _call(event) == MERGE and CHAMPION in event.aliases and event.event_id not in used:
            moved_to = versions.get(str(event.subject))
            if moved_to is not None and moved_to.promoted and moved_to.key not in gated:
                gated.add(moved_to.key)
                how = "the training gate (promotion: auto)"
            else:
                how = "no recorded decision (moved outside mlops-events promote)"
            out.append(
                Approval(str(event.subject), "champion moved", event.principal, None, how, event.time or "")
            )
    return sorted(out, key=_order)


def _order(approval: Approval) -> float:
    when = timestamp(approval.at)
    return when if when is not None else float("inf")
