"""The Vertex AI of the reliability run: the emulator (``stack/vertex``), behind the few calls the
run needs.

The functions call ``pipelineJobs.create`` (and ``get``, for ``concurrency:``) on ``url``; the
emulator parses every body with the aiplatform_v1 ``PipelineJob`` proto (unknown fields refused),
fails a share of create calls, records the jobs without running them (``execute="none"``), and the
run reads back what was created.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
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
        """Job id -> the PipelineJob as created (REST JSON)."""
        ...

    def stats(self) -> dict[str, Any]:
        """``create_calls``, ``conflicts`` (409s) and ``faults`` (kind -> count)."""
        ...

    def stop(self) -> None: ...


class _Emulator:
    def __init__(self, faults: FaultPlan) -> None:
        from stack.vertex import Faults, ephemeral_emulator

        self._stack = ExitStack()
        self._vertex = self._stack.enter_context(
            ephemeral_emulator(
                Faults(rate=faults.rate, timeout_seconds=faults.stall_seconds, seed=faults.seed)
            )
        )

    @property
    def url(self) -> str:
        return self._vertex.url

    def jobs(self) -> Mapping[str, Mapping[str, Any]]:
        return self._vertex.created_jobs()

    def stats(self) -> dict[str, Any]:
        s = self._vertex.stats
        return {"create_calls": s.create_calls, "conflicts": s.conflicts, "faults": dict(s.faults)}

    def stop(self) -> None:
        self._stack.close()


def start_vertex(faults: FaultPlan) -> VertexUnderTest:
    return _Emulator(faults)
