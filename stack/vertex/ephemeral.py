"""An emulator for one test or run: in process, on a free port, its state in a temporary directory
removed afterwards, pipeline jobs recorded but not run (``execute="none"``) unless asked.

    with ephemeral_emulator(Faults(rate=0.2)) as vertex:
        ... VERTEX_API_ENDPOINT=vertex.url ...
        vertex.created_jobs()  # {job id: the PipelineJob as parsed, REST JSON}
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from stack.vertex.faults import Faults

if TYPE_CHECKING:  # both load the aiplatform_v1 protos: imported when an emulator starts
    from stack.vertex.emulator import VertexEmulator
    from stack.vertex.pipeline_jobs import Execute

E = TypeVar("E", bound="VertexEmulator")


@contextlib.contextmanager
def ephemeral(
    cls: type[E], faults: Faults | None = None, *, execute: Execute = "none", **kwargs: Any
) -> Iterator[E]:
    """``cls`` is ``VertexEmulator`` or a subclass (the benchmarks' times its calls); ``kwargs`` go to it."""
    with (
        tempfile.TemporaryDirectory(prefix="vertex-emulator-") as state,
        cls(Path(state), execute=execute, faults=faults, **kwargs) as vertex,
    ):
        yield vertex


def ephemeral_emulator(
    faults: Faults | None = None, *, execute: Execute = "none", **kwargs: Any
) -> contextlib.AbstractContextManager[VertexEmulator]:
    from stack.vertex.emulator import VertexEmulator

    return ephemeral(VertexEmulator, faults, execute=execute, **kwargs)
