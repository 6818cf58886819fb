"""The rules file's ``models:`` section: settings per model, written once, applied by every rule.

    models:
      churn:                            # a model name or a glob; entries are tried in file order
        label_column: churned
        model_family: hist_gradient_boosting
        hyperparameters: {max_iter: 300}
        primary_metric: roc_auc
        promotion: manual               # a person moves champion (`mlops-events promote`)
        machine: {cpu: 8, memory: 32G}  # the training task's machine on Vertex
        limits:                         # what events may ask for (see events/limits.py)
          endpoints: [churn, churn-canary]
      "*":                              # every model: later entries fill what earlier ones leave out
        limits: {alerts_topics: ["${ALERTS_TOPIC:-alerts}"]}

A setting is fixed for its model: the router sets the pipeline parameter it maps to, and an
event (or a rule) asking for a different value is rejected, naming the setting. ``promotion`` and
``machine`` choose policy and cost, so only this section sets them, never an event or a rule.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from events.limits import LIMIT_KEYS, Limits, load_limits
from events.match import glob_match

# Setting -> the pipeline parameter it fixes (a pipeline that does not declare it is unaffected).
PARAMETER_OF: Final[dict[str, str]] = {
    "label_column": "label_column",
    "task": "task",
    "model_family": "model_family",
    "hyperparameters": "hyperparameters",
    "primary_metric": "primary_metric",
    "promotion": "promotion",
}
MACHINE_PARAMETERS: Final = {"cpu": "machine_cpu", "memory": "machine_memory"}
# Parameters only a models: entry may set (policy and cost), never a rule or an event.
SETTINGS_ONLY: Final = frozenset({"promotion", *MACHINE_PARAMETERS.values()})
_KEYS: Final = frozenset({*PARAMETER_OF, "machine", "limits", "description"})
_MEMORY_RE: Final = re.compile(r"^\d+(\.\d+)?[KMGT]i?$|^\d+$")
_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "label_column": str,
    "task": str,
    "model_family": str,
    "hyperparameters": dict,
    "primary_metric": str,
    "promotion": str,
}


@dataclass(frozen=True)
class ModelEntry:
    pattern: str  # a model name or glob
    parameters: Mapping[str, Any]  # pipeline parameter -> fixed value
    limits: Limits = field(default_factory=Limits)

    def applies_to(self, model: str) -> bool:
        return glob_match(self.pattern, model)


@dataclass(frozen=True)
class ModelSettings:
    """What the ``models:`` entries matching one model say, merged (first entry wins per key)."""

    model: str
    parameters: Mapping[str, Any]
    limits: Limits
    entries: tuple[str, ...]  # the patterns that matched, in order (for error messages)

    def describe(self) -> str:
        return "models: " + ", ".join(repr(e) for e in self.entries) if self.entries else "no models: entry"


@dataclass(frozen=True)
class ModelsSection:
    entries: tuple[ModelEntry, ...] = ()

    def for_model(self, model: str) -> ModelSettings:
        params: dict[str, Any] = {}
        limits: list[Limits] = []
        matched: list[str] = []
        for entry in self.entries:
            if entry.applies_to(model):
                matched.append(entry.pattern)
                for key, value in entry.parameters.items():
                    params.setdefault(key, value)
                limits.append(entry.limits)
        return ModelSettings(model, params, Limits.merged(limits), tuple(matched))


def load_models(raw: Any, problems: list[str]) -> ModelsSection:
    """Parse and check the section; every problem is appended, named by model and field."""
    if raw is None:
        return ModelsSection()
    if not isinstance(raw, Mapping):
        problems.append("models: must be a mapping of model name (or glob) to settings")
        return ModelsSection()
    entries = []
    for pattern, settings in raw.items():
        where = f"models.{pattern}"
        if not isinstance(pattern, str) or not pattern:
            problems.append(f"models: {pattern!r} is not a model name or glob")
            continue
        if not isinstance(settings, Mapping):
            problems.append(f"{where}: must be a mapping of settings")
            continue
        unknown = sorted(set(settings) - _KEYS)
        if unknown:
            problems.append(
                f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})"
            )
        params = {}
        for key, param in PARAMETER_OF.items():
            if key in settings:
                value = settings[key]
                if not isinstance(value, _TYPES[key]):
                    problems.append(f"{where}.{key}: must be {_TYPES[key].__name__}")  # type: ignore[union-attr]
                    continue
                params[param] = value
        if params.get("promotion") not in (None, "auto", "manual"):
            problems.append(f"{where}.promotion: must be auto or manual, got {params['promotion']!r}")
        params.update(_machine(settings.get("machine"), where, problems))
        limits = load_limits(settings.get("limits"), f"{where}.limits", problems)
        entries.append(ModelEntry(pattern, params, limits))
    return ModelsSection(tuple(entries))


def _machine(raw: Any, where: str, problems: list[str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or set(raw) - set(MACHINE_PARAMETERS):
        problems.append(
            f"{where}.machine: must be a mapping with cpu and/or memory (e.g. {{cpu: 8, memory: 32G}})"
        )
        return {}
    out = {}
    cpu, memory = raw.get("cpu"), raw.get("memory")
    if cpu is not None:
        if isinstance(cpu, bool) or not isinstance(cpu, int | float) or cpu <= 0:
            problems.append(f"{where}.machine.cpu: must be a positive number of vCPUs, got {cpu!r}")
        else:
            out["machine_cpu"] = str(int(cpu) if float(cpu).is_integer() else cpu)
    if memory is not None:
        if not _MEMORY_RE.match(str(memory)):
            problems.append(f"{where}.machine.memory: must look like 16G or 64Gi, got {memory!r}")
        else:
            out["machine_memory"] = str(memory)
    return out


__all__ = ["LIMIT_KEYS", "SETTINGS_ONLY", "ModelSettings", "ModelsSection", "load_models"]
