"""Guards: stateful checks applied to a Launch after routing (hygiene, ordering, debounce, cooldown,
concurrency). The router is pure; whatever needs memory across events and instances lives here, with
its state in the bucket (``functions.state``: JSON documents written with generation preconditions),
never only in the process.

Exactly-once comes from two things together: every launch uses a job id derived from what the
event is about (a redelivery maps to the same Vertex job, and "already exists" is success), and
every decision that spans several events (a debounce window, a cooldown slot) is *recorded before
the launch* with the job id it chose. A redelivery finds that record and launches the same job id
again, so a launch that failed transiently is retried by the platform and can never fork.

One module per guard, each documenting its own rules and state document; ``Guards.apply`` runs them
in this order: ``hygiene`` and ``ordering`` (storage events), ``debounce`` (storage rules with
``debounce:``), then ``concurrency`` and ``cooldown`` (any rule). ``deferred`` is the "come back
later" answer (HTTP 500, redelivered) that debounce and concurrency give.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from events.decision import Launch, Skip
from events.model import Event, StorageObject
from events.options import parse_concurrency, parse_cooldown, parse_debounce
from functions.guards.concurrency import Busy, RunStatus, claim_run, launcher_status, release_run
from functions.guards.cooldown import LAUNCHES_KEPT, cooldown_launch
from functions.guards.debounce import CLOSED_WINDOWS_KEPT, debounce_launch
from functions.guards.deferred import Deferred
from functions.guards.hygiene import OUTPUT_METADATA, TEMPORARY_NAME, check_hygiene
from functions.guards.ordering import GenerationCache
from functions.log import log
from functions.settings import Settings
from functions.state import BucketStateStore, LocalStateStore, StateStore

__all__ = [
    "CLOSED_WINDOWS_KEPT",
    "LAUNCHES_KEPT",
    "OUTPUT_METADATA",
    "TEMPORARY_NAME",
    "Deferred",
    "Guards",
    "RunStatus",
]


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
        self._generations = GenerationCache()  # highest generation seen per object

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
        except Busy as exc:
            return Skip(str(exc), rule=decision.rule)

    def _apply(self, decision: Launch, event: Event) -> Launch | Skip:
        options = decision.options
        if isinstance(event, StorageObject):
            debounce = _parsed(parse_debounce, options.get("debounce"))
            if debounce is not None and debounce.quiet == 0 and debounce.marker is None:
                debounce = None  # quiet: 0s switches debounce off (no state touched)
            reason = check_hygiene(event, self.settings.pipeline_root, debounce)
            if reason:
                return Skip(reason, rule=decision.rule)
            if debounce is not None:
                return debounce_launch(
                    decision,
                    event,
                    debounce,
                    store=self.store,
                    clock=self.clock,
                    stale=self._stale,
                    storage_reachable=bool(self.settings.state_bucket),
                )
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
            claim_run(self.store, request, model, concurrency, clock=self.clock, run_status=self.run_status)
        if cooldown is not None:
            verdict = cooldown_launch(decision, event, model, cooldown, store=self.store, clock=self.clock)
            if isinstance(verdict, Skip):
                if concurrency is not None:
                    release_run(self.store, request, model)  # no launch: the model is free again
                return verdict
            decision = verdict
        return decision

    def _stale(self, event: StorageObject) -> str | None:
        return self._generations.stale(event, self.settings.ordering)

    def run_status(self, job_id: str) -> str | None:
        if self._run_status is None:
            self._run_status = launcher_status(self.settings)
        try:
            return self._run_status(job_id)
        except Exception as exc:  # unknown: the run counts as active until its timeout
            log("WARNING", f"could not read the state of {job_id}: {exc}")
            return None


def _parsed(parse: Callable[[Any], tuple[Any, list[str]]], raw: Any) -> Any:
    # Options were validated when the rules were loaded; a None here means "not set".
    if raw is None:
        return None
    value, problems = parse(raw)
    if problems:
        raise ValueError("; ".join(problems))
    return value
