"""The demo's data: customers of a subscription service and whether they churned, generated with
numpy from a seed, with a drift we control.

- ``reference``: the data the first model trains on.
- ``drifted``: a later period. Covariate drift: usage moves up by two standard deviations and the
  plan mix moves towards ``pro``. Concept drift: heavy users on ``pro`` now churn (a competitor's
  offer), which the first model has never seen. ``support_calls`` and ``tenure`` do not drift.

``strength`` (0..1) blends reference and drifted behaviour: the demo's traffic drifts gradually.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import pandas as pd

MODEL: Final = "churn"
FEATURES: Final = ("usage", "tenure", "support_calls", "plan")
LABEL: Final = "target"
PLANS: Final = ("basic", "plus", "pro")


def customers(rows: int, *, seed: int, strength: float = 0.0, labelled: bool = True) -> pd.DataFrame:
    """``rows`` customers; ``strength`` 0 = the reference period, 1 = fully drifted."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    usage = rng.normal(10 + 6 * strength, 3, rows).clip(0)
    tenure = rng.exponential(24, rows).round(1)
    calls = rng.poisson(1.5, rows)
    mix = np.array([0.5, 0.3, 0.2]) * (1 - strength) + np.array([0.2, 0.3, 0.5]) * strength
    plan = rng.choice(PLANS, size=rows, p=mix)
    score = (
        0.6 * (calls - 1.5)
        - 0.05 * (tenure - 24)
        - 0.25 * (usage - 10)
        + (plan == "basic") * 0.6
        + strength * (plan == "pro") * 0.9 * (usage - 12)  # the new behaviour
        + rng.normal(0, 0.6, rows)
    )
    frame = pd.DataFrame({"usage": usage.round(2), "tenure": tenure, "support_calls": calls, "plan": plan})
    if labelled:
        frame[LABEL] = (score > 0).astype(int)
    return frame


def reference(rows: int = 1500, seed: int = 7) -> pd.DataFrame:
    return customers(rows, seed=seed)


def drifted(rows: int = 1500, seed: int = 8, strength: float = 1.0) -> pd.DataFrame:
    return customers(rows, seed=seed, strength=strength)
