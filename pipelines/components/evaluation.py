"""Score a fitted model on a holdout: accuracy, ROC AUC, F1 (classification); RMSE, MAE, R2."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pandas as pd

# The metric the champion/challenger gate compares (higher is better for both).
PRIMARY_METRIC: Final = {"classification": "roc_auc", "regression": "r2"}
HIGHER_IS_BETTER: Final = {"accuracy", "roc_auc", "f1", "r2"}


def primary_metric(task: str, metrics: dict[str, float], chosen: str = "") -> str:
    """The metric the gate compares: ``chosen`` (a model's setting) or the task's default."""
    if chosen:
        if chosen not in HIGHER_IS_BETTER:
            raise ValueError(
                f"primary metric {chosen!r} is not one the gate can compare (higher is better): "
                + ", ".join(sorted(HIGHER_IS_BETTER))
            )
        if chosen not in metrics:
            raise ValueError(
                f"primary metric {chosen!r} was not computed for {task} (have: {', '.join(metrics)})"
            )
        return chosen
    name = PRIMARY_METRIC[task]
    # ROC AUC is undefined when the holdout holds one class: fall back to accuracy.
    return name if name in metrics else "accuracy"


def score(
    estimator: Any, holdout: pd.DataFrame, *, label_column: str, task: str, feature_names: list[str]
) -> dict[str, float]:
    from sklearn import metrics as m

    from pipelines.components.training import features_of

    X = features_of(holdout, feature_names)
    y = holdout[label_column]
    pred = estimator.predict(X)
    out: dict[str, float] = {}
    if task == "classification":
        classes = list(getattr(estimator, "classes_", sorted(y.unique())))
        binary = len(classes) == 2
        out["accuracy"] = float(m.accuracy_score(y, pred))
        out["f1"] = float(
            m.f1_score(y, pred, average="binary", pos_label=classes[-1])
            if binary
            else m.f1_score(y, pred, average="macro")
        )
        if hasattr(estimator, "predict_proba") and y.nunique() > 1:
            proba = estimator.predict_proba(X)
            try:
                auc = (
                    m.roc_auc_score(y, proba[:, 1])
                    if binary
                    else m.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
                )
                out["roc_auc"] = float(auc)
            except ValueError:
                pass  # a class absent from the holdout: AUC undefined, accuracy is the primary metric
    else:
        out["rmse"] = float(math.sqrt(m.mean_squared_error(y, pred)))
        out["mae"] = float(m.mean_absolute_error(y, pred))
        out["r2"] = float(m.r2_score(y, pred))
    return {k: round(v, 6) for k, v in out.items() if math.isfinite(v)}
