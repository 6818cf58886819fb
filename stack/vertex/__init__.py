"""A local Vertex AI: the v1 REST API of PipelineService, ModelService, EndpointService and
PredictionService (and operations), for the SDK and GAPIC clients over REST. See
docs/vertex-emulator.md.

Importing this package is cheap; ``VertexEmulator`` (which loads the aiplatform_v1 protos) is
imported on first use. ``ephemeral_emulator`` starts one for a test or a run (free port, temporary
state, pipeline jobs recorded but not run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stack.vertex.ephemeral import ephemeral_emulator
from stack.vertex.faults import Faults, Stats

if TYPE_CHECKING:
    from stack.vertex.emulator import VertexEmulator

__all__ = ["Faults", "Stats", "VertexEmulator", "ephemeral_emulator"]


def __getattr__(name: str) -> Any:
    if name == "VertexEmulator":
        from stack.vertex.emulator import VertexEmulator

        return VertexEmulator
    raise AttributeError(f"module 'stack.vertex' has no attribute {name!r}")
