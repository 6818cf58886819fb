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
``debounce:``), ``idempotency`` (run requests with a key), then ``concurrency`` and ``cooldown``
(any rule). ``deferred`` is the "come back later" answer (HTTP 500, redelivered) that debounce and
concurrency give. When a launch then fails permanently, ``Guards.release`` gives back what the
guards recorded for it (the active run, the cooldown slot). The guards' clock is the state store's
(``functions.clock``), so instances with skewed clocks agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from events.decision import Decision, Launch, Reject, Skip
from events.model import Event, RunRequestMessage, StorageObject
from events.options import Debounce, parse_concurrency, parse_cooldown, parse_debounce
from functions.clock import StoreClock, skewed
from functions.guards.concurrency import Busy, RunStatus, claim_run, launcher_status, release_run
from functions.guards.cooldown import LAUNCHES_KEPT, cooldown_launch, release_cooldown
from functions.guards.debounce import debounce_launch
from functions.guards.deferred import Deferred
from functions.guards.hygiene import OUTPUT_METADATA, TEMPORARY_NAME, check_hygiene
from functions.guards.idempotency import check_key
from functions.guards.listing import list_folder
from functions.guards.ordering import GenerationCache
from functions.guards.windows import RECENT_WINDOWS_KEPT
from functions.log import log
from functions.objects import ObjectReader
from functions.settings import Settings
from functions.state import BucketStateStore, LocalStateStore, StateStore

__all__ = [
    "LAUNCHES_KEPT",
    "OUTPUT_METADATA",
    "RECENT_WINDOWS_KEPT",
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
        clock: Callable[[], float] | None = None,
        run_status: RunStatus | None = None,
        routes: Callable[[Event], Decision] | None = None,
        local_clock: Callable[[], float] | None = None,
        objects: ObjectReader | None = None,
    ) -> None:
        """``clock``: an exact clock, used as it is (tests with a fake time). Otherwise the guards'
        clock is ``local_clock`` (default: this instance's, shifted by MLOPS_CLOCK_SKEW_SECONDS)
        corrected to the store's. ``routes``: the router, to tell which listed objects of a folder a
        rule launches for. ``objects``: how object metadata is read (the runtime lends it the
        launcher's session)."""
        self.settings = settings
        self._store = store
        self._clock = clock
        self._local_clock = local_clock or skewed(settings.clock_skew_seconds)
        self._run_status = run_status
        self.routes = routes
        self._generations = GenerationCache()  # highest generation seen per object
        self.objects = objects or ObjectReader()

    def clock(self) -> float:
        if self._clock is None:
            self._clock = StoreClock(self._local_clock, self.store.server_time)
        return self._clock()

    @property
    def store(self) -> StateStore:
        if self._store is None:
            s = self.settings
            self._store = (
                BucketStateStore(s.state_bucket) if s.state_bucket else LocalStateStore(s.state_dir / "state")
            )
        return self._store

    def apply(self, decision: Launch, event: Event) -> Launch | Skip | Reject:
        """Return the Launch to carry out (possibly changed), a Skip saying why not, or a Reject
        (a reused idempotency key); raise ``Deferred`` (transient) when the event must come back later."""
        try:
            return self._apply(decision, event)
        except Busy as exc:
            return Skip(str(exc), rule=decision.rule)

    def release(self, launches: tuple[Launch, ...], event: Event) -> None:
        """The launch of ``launches`` (as routed, as guarded) failed permanently: free the model's
        active-run claim and mark the cooldown slot failed, so neither cites a job that will never
        exist. Idempotent; raises (transient) when the store cannot be written."""
        options = launches[0].options
        concurrency = _parsed(parse_concurrency, options.get("concurrency"))
        cooldown = _parsed(parse_cooldown, options.get("cooldown"))
        if concurrency is None and cooldown is None:
            return
        job_ids = {x.request.job_id for x in launches}
        model = _model(launches[0])
        if concurrency is not None:
            for launch in launches:
                release_run(self.store, launch.request, model)
        if cooldown is not None:
            release_cooldown(self.store, launches[0].rule, model, event.identity, job_ids)
        log("NOTICE", f"released guard state of {', '.join(sorted(job_ids))} (launch failed permanently)")

    def _apply(self, decision: Launch, event: Event) -> Launch | Skip | Reject:
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
                    listing=self._listing(decision, debounce) if self.settings.state_bucket else None,
                    created_at=self.objects.created,
                )
            reason = self._stale(event)
            if reason:
                return Skip(reason, rule=decision.rule)
        if isinstance(event, RunRequestMessage) and event.idempotency_key:
            checked = check_key(decision, event, store=self.store, clock=self.clock)
            if isinstance(checked, Reject):
                return checked
        concurrency = _parsed(parse_concurrency, options.get("concurrency"))
        cooldown = _parsed(parse_cooldown, options.get("cooldown"))
        if cooldown is not None and cooldown.period == 0 and cooldown.after == 1:
            cooldown = None  # cooldown: 0s switches it off
        if concurrency is None and cooldown is None:
            return decision
        request = decision.request
        model = _model(decision)
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

    def _listing(
        self, decision: Launch, debounce: Debounce
    ) -> Callable[[str, str], list[tuple[str, int, float]]]:
        def listing(bucket: str, prefix: str) -> list[tuple[str, int, float]]:
            return list_folder(
                bucket,
                prefix,
                decision.rule,
                debounce,
                routes=self.routes,
                pipeline_root=self.settings.pipeline_root,
            )

        return listing

    def _stale(self, event: StorageObject) -> str | None:
        return self._generations.stale(event, self.settings.ordering, self.objects.generation)

    def run_status(self, job_id: str) -> str | None:
        if self._run_status is None:
            self._run_status = launcher_status(self.settings)
        try:
            return self._run_status(job_id)
        except Exception as exc:  # unknown: the run counts as active until its timeout
            log("WARNING", f"could not read the state of {job_id}: {exc}")
            return None


def _model(decision: Launch) -> str:
    return str(decision.request.parameters.get("model_name") or "default")


def _parsed(parse: Callable[[Any], tuple[Any, list[str]]], raw: Any) -> Any:
    # Options were validated when the rules were loaded; a None here means "not set".
    if raw is None:
        return None
    value, problems = parse(raw)
    if problems:
        raise ValueError("; ".join(problems))
    return value
