"""The router's answer for one event: Launch(RunRequest), Skip(reason) or Reject(reason).

Decisions are values (as Dagster's RunRequest / SkipReason): the routing logic is a pure function
that tests call directly, and the edge only carries out what the value says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class RunRequest:
    """Everything a launcher needs, except authority (project, region, service account, pipeline
    root and the template's location come from settings, never from the event)."""

    pipeline: str
    job_id: str
    parameters: Mapping[str, Any]
    labels: Mapping[str, str]
    rule: str
    enable_caching: bool | None = None  # None: the template's own default
    template_digest: str | None = None
    template_uri: str | None = None  # an Artifact Registry template: sent as templateUri


@dataclass(frozen=True)
class Launch:
    request: RunRequest
    reason: str
    # Extra behaviour attached by the rule (debounce, cooldown...): applied by the edge, which has state.
    options: Mapping[str, Any] = field(default_factory=dict)
    decision: Literal["launch"] = "launch"

    @property
    def rule(self) -> str:
        return self.request.rule


@dataclass(frozen=True)
class Skip:
    reason: str
    rule: str | None = None
    decision: Literal["skip"] = "skip"


@dataclass(frozen=True)
class Reject:
    """A permanent problem: the event is recorded as a dead letter and acknowledged."""

    reason: str
    rule: str | None = None
    decision: Literal["reject"] = "reject"


Decision = Launch | Skip | Reject
