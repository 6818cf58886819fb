"""A person's decision on a model version: approve it (move ``champion`` to it) or reject it.

``promotion: manual`` leaves a trained version as ``challenger`` with its comparison to the
champion; a person decides. Approving records the decision on the version, then moves
``champion`` (MergeVersionAliases): the registry's audit event of that move is what deploys it,
exactly as when the console moves the alias. Recording first means no champion ever lacks its
record; a move that fails after the record leaves an approval that ``promote`` completes when run
again.

Policy (docs/pipelines.md, "Approval"):

- the version already holds ``champion``: nothing is written (not an error);
- a version whose latest decision is a rejection is not promoted unless ``force``: a rejection
  is a decision too, and overturning it should be deliberate;
- the champion cannot be rejected: it serves, and a rejection does not undeploy. Promote
  another version first;
- a rejection needs a reason; an approval without one records "no reason given".

Works on the ``ModelRegistry`` port: the Vertex adapter, on Vertex AI or the emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from pipelines.ports import ModelRegistry, ModelVersion
from pipelines.registry import CHAMPION, DEFAULT_ALIAS, RegistryError

NO_REASON: Final = "no reason given"

Action = Literal["promoted", "already_champion", "rejected"]


class ApprovalError(RegistryError):
    """The decision cannot be made as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    action: Action
    version: ModelVersion  # as the registry holds it after the decision
    previous: ModelVersion | None = None  # the champion before a promotion

    @property
    def label(self) -> str:
        return f"v{self.version.version} of {self.version.model_name}"


def find_version(registry: ModelRegistry, model: str, ref: str) -> ModelVersion:
    """The version ``ref`` (an id or an alias) of ``model``; unknown ones name what there is."""
    found = registry.get(model, ref)
    if found is not None:
        return found
    versions = registry.list_versions(model)
    if not versions:
        models = registry.list_models()
        known = ", ".join(models) if models else "none"
        raise ApprovalError(f"model {model!r} is not in the registry (models there: {known})")
    listed = ", ".join(
        v.version + (f" [{', '.join(named)}]" if (named := _named(v)) else "") for v in versions
    )
    raise ApprovalError(f"model {model!r} has no version or alias {ref!r} (versions: {listed})")


def _named(version: ModelVersion) -> list[str]:
    """The aliases worth naming (Vertex's ``default`` is on every newest version)."""
    return [a for a in version.aliases if a != DEFAULT_ALIAS]


def last_decision(version: ModelVersion) -> Mapping[str, str] | None:
    return version.decisions[-1] if version.decisions else None


def promote(
    registry: ModelRegistry,
    model: str,
    ref: str,
    *,
    principal: str,
    reason: str = "",
    force: bool = False,
) -> Outcome:
    version = find_version(registry, model, ref)
    if CHAMPION in version.aliases:
        return Outcome("already_champion", version)
    last = last_decision(version)
    if last is not None and last.get("decision") == "rejected" and not force:
        raise ApprovalError(
            f"v{version.version} of {model} was rejected by {last.get('principal')} at {last.get('at')}: "
            f"{last.get('reason')!r}; promote it anyway with --force (the approval is recorded after the rejection)"
        )
    previous = registry.get(model, CHAMPION)
    name = version.model_name  # the registry id (a display name resolves to it)
    registry.record_decision(
        name, version.version, "approved", principal=principal, reason=reason.strip() or NO_REASON
    )
    moved = registry.set_alias(name, version.version, CHAMPION, principal=principal)
    return Outcome("promoted", moved, previous)


def reject(registry: ModelRegistry, model: str, ref: str, *, principal: str, reason: str) -> Outcome:
    if not reason.strip():
        raise ApprovalError("a rejection needs a reason (--reason TEXT): it is what the next person reads")
    version = find_version(registry, model, ref)
    if CHAMPION in version.aliases:
        raise ApprovalError(
            f"v{version.version} of {model} is the champion: it serves, and a rejection does not undeploy; "
            "promote another version first (mlops-events promote MODEL VERSION)"
        )
    recorded = registry.record_decision(
        version.model_name, version.version, "rejected", principal=principal, reason=reason.strip()
    )
    return Outcome("rejected", recorded)
