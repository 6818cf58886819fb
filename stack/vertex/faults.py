"""Fault injection on ``pipelineJobs.create`` and the counters tests and the reliability run read.

A share of create calls (``rate``, decided per call from a seeded RNG) answered 429
``RESOURCE_EXHAUSTED`` or 503 ``UNAVAILABLE``, stalled past the client's time-out (``timeout``:
then 503), or stalled *after* the job was created (``timeout_after_create``: the case idempotent
job ids exist for); ``delay_seconds`` is added to every create. Not among the default kinds:
``"400"`` (a permanent rejection, ``INVALID_ARGUMENT``: a run of transient faults must not lose
events) and ``"aborted"`` (409 with status ``ABORTED``, a concurrent modification: a 409 that does
*not* mean the job exists, which a launcher must retry rather than count as launched).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields

KINDS = ("429", "503", "timeout", "timeout_after_create")
ALL_KINDS = (*KINDS, "400", "aborted")


@dataclass
class Faults:
    rate: float = 0.0
    kinds: tuple[str, ...] = KINDS
    delay_seconds: float = 0.0
    timeout_seconds: float = 2.0
    seed: int = 7

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(ALL_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown} (known: {', '.join(ALL_KINDS)})")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], got {self.rate}")


@dataclass
class Stats:
    requests: int = 0  # every HTTP request, any method
    create_calls: int = 0  # pipelineJobs.create requests that parsed, faulted or not
    created: int = 0
    conflicts: int = 0  # creates answered 409 ALREADY_EXISTS
    get_calls: int = 0  # pipelineJobs.get requests (a launcher reads a job that already exists)
    faults: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        """Every counter back to zero, in place (the fault plan holds this object)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                value.clear()
            else:
                setattr(self, f.name, 0)


class FaultPlan:
    """Draws the fault (or none) of each create call, counting what it drew. ``faults`` is read at
    each draw, so a test may change ``rate`` and ``kinds`` while the emulator runs."""

    def __init__(self, faults: Faults, stats: Stats) -> None:
        self.faults = faults
        self._stats = stats
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        with self._lock:
            if not self.faults.kinds or self._rng.random() >= self.faults.rate:
                return None
            kind = self._rng.choice(self.faults.kinds)
            if kind not in ALL_KINDS:
                raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(ALL_KINDS)})")
            self._stats.faults[kind] = self._stats.faults.get(kind, 0) + 1
            return kind
