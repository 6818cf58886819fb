"""The Vertex AI stand-in of the reliability run, behind the few calls the run needs.

The functions call ``pipelineJobs.create`` (and ``get``, for ``concurrency:``) on ``url``; the run
sets the share of create calls that fail and reads back what was created. Today this is the
fault-injecting fake of ``stack/fake_vertex.py``; a full emulator with the same fault options
replaces it here, in ``start_vertex``, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class FaultPlan:
    """Share of create calls that fail (429, 503, a stall past the client's timeout, a stall *after*
    the job was created), decided per call from ``seed``."""

    rate: float
    seed: int
    stall_seconds: float = 1.5


class VertexUnderTest(Protocol):
    @property
    def url(self) -> str: ...

    def jobs(self) -> Mapping[str, Mapping[str, Any]]:
        """Job id -> the PipelineJob as created."""
        ...

    def stats(self) -> dict[str, Any]:
        """``create_calls``, ``conflicts`` (409s) and ``faults`` (kind -> count)."""
        ...

    def stop(self) -> None: ...


class _Fake:
    def __init__(self, faults: FaultPlan) -> None:
        from stack.fake_vertex import FakeVertex, Faults

        self._fake = FakeVertex(
            Faults(rate=faults.rate, timeout_seconds=faults.stall_seconds, seed=faults.seed)
        )
        self._fake.start()

    @property
    def url(self) -> str:
        return self._fake.url

    def jobs(self) -> Mapping[str, Mapping[str, Any]]:
        return dict(self._fake.jobs)

    def stats(self) -> dict[str, Any]:
        s = self._fake.stats
        return {"create_calls": len(self._fake.requests), "conflicts": s.conflicts, "faults": dict(s.faults)}

    def stop(self) -> None:
        self._fake.stop()


def start_vertex(faults: FaultPlan) -> VertexUnderTest:
    return _Fake(faults)
