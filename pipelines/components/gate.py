"""Champion/challenger: the new version takes ``champion`` only if it passes an absolute floor and
beats the current champion, scored on the same holdout, by at least the margin. A worse model never
takes ``champion``; ties keep the incumbent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    metric: str
    challenger: float
    champion: float | None
    champion_version: str | None
    floor: float
    margin: float
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # No nulls: KFP struct parameters cannot carry None under kfp.local.
        return {k: v for k, v in asdict(self).items() if v is not None}


def decide(
    *,
    metric: str,
    challenger: float,
    champion: float | None,
    champion_version: str | None,
    floor: float,
    margin: float,
) -> GateDecision:
    reasons: list[str] = []
    ok = True
    if challenger < floor:
        ok = False
        reasons.append(f"{metric} {challenger:.4f} is below the floor {floor:.4f}")
    if champion is None:
        reasons.append("no current champion")
    elif challenger <= champion + margin:
        ok = False
        reasons.append(
            f"{metric} {challenger:.4f} does not beat champion v{champion_version} ({champion:.4f}) by more than {margin:.4f}"
        )
    else:
        reasons.append(
            f"{metric} {challenger:.4f} beats champion v{champion_version} ({champion:.4f}) by more than {margin:.4f}"
        )
    if ok and challenger >= floor:
        reasons.append(f"{metric} {challenger:.4f} passes the floor {floor:.4f}")
    return GateDecision(ok, metric, challenger, champion, champion_version, floor, margin, reasons)
