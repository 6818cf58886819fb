"""Test datasets: a real one shipped with scikit-learn, and a generated one whose drift we control."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def breast_cancer() -> pd.DataFrame:
    """569 rows, 30 numeric features, binary ``target`` (scikit-learn's copy of the UCI data)."""
    from sklearn.datasets import load_breast_cancer

    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    return frame


def generated(
    rows: int, *, seed: int, shift: float = 0.0, plan_mix: tuple[float, float, float] = (0.5, 0.3, 0.2)
) -> pd.DataFrame:
    """Customers with two numeric features and one categorical; ``shift`` moves ``usage`` by that
    many standard deviations and ``plan_mix`` sets the share of each plan: that is the drift."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    usage = rng.normal(10 + 3 * shift, 3, rows)
    tenure = rng.exponential(24, rows)
    plan = rng.choice(["basic", "plus", "pro"], size=rows, p=list(plan_mix))
    score = 0.3 * (usage - 10) - 0.05 * (tenure - 24) + (plan == "pro") * 1.0 + rng.normal(0, 0.5, rows)
    return pd.DataFrame(
        {"usage": usage.round(3), "tenure": tenure.round(2), "plan": plan, "target": (score > 0).astype(int)}
    )
