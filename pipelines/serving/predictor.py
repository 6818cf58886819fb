"""A model artifact in memory, and what it answers for a list of instances.

Instances are objects ``{feature: value}`` (other keys, the label column among them, are ignored)
or arrays in ``feature_names`` order. Either way the estimator gets a DataFrame with exactly the
model's feature columns, typed as in training (numeric as float, categorical as text): the
artifact's Pipeline selects columns by name, which a plain array cannot do (the failure of the
prebuilt scikit-learn image).

Predictions: regression, a number; classification, ``{"prediction": <label>, "probabilities":
{"<class>": p, ...}}`` (classes as strings, rounded to 6 decimals; the label is the estimator's
``predict``, the same as batch prediction's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pandas as pd

MAX_PROBLEMS: Final = 5  # instance problems listed in one error message


class InstanceError(ValueError):
    """The instances cannot be scored; the message names the instance(s) and feature(s)."""


@dataclass(frozen=True)
class ServedModel:
    artifact_uri: str
    estimator: Any
    metadata: Mapping[str, Any]
    feature_names: tuple[str, ...]
    kinds: Mapping[str, str]  # feature -> "numeric" | "categorical" (empty: infer per request)

    @classmethod
    def load(cls, artifact_uri: str) -> ServedModel:
        """Read ``model.joblib`` and ``metadata.json`` from a gs:// or local folder."""
        from pipelines.components import training

        estimator, metadata = training.load_model(artifact_uri)
        names = tuple(str(f) for f in metadata.get("feature_names") or ())
        if not names:
            raise ValueError(f"{artifact_uri}/metadata.json names no feature_names")
        schema = metadata.get("schema") or {}
        kinds = {f: str(schema[f]) for f in names if f in schema}
        return cls(artifact_uri, estimator, metadata, names, kinds if len(kinds) == len(names) else {})

    @property
    def task(self) -> str:
        return str(self.metadata.get("task") or "")

    @property
    def label_column(self) -> str | None:
        label = self.metadata.get("label_column")
        return str(label) if label else None

    def named(self, instances: Sequence[Any]) -> list[dict[str, Any]]:
        """Each instance as ``{feature: value}`` over exactly the model's features, or
        ``InstanceError`` listing the first problems (which instance, which feature)."""
        problems: list[str] = []
        rows: list[dict[str, Any]] = []
        n = len(self.feature_names)
        for i, instance in enumerate(instances):
            if len(problems) >= MAX_PROBLEMS:
                break
            if isinstance(instance, Mapping):
                missing = [f for f in self.feature_names if f not in instance]
                if missing:
                    problems.append(
                        f"instance {i} lacks feature(s) {', '.join(map(repr, missing))} "
                        f"(the model's features: {', '.join(self.feature_names)})"
                    )
                    continue
                row = {f: instance[f] for f in self.feature_names}
            elif isinstance(instance, list):
                if len(instance) != n:
                    problems.append(
                        f"instance {i} has {len(instance)} values; the model takes {n}, in this order: "
                        + ", ".join(self.feature_names)
                    )
                    continue
                row = dict(zip(self.feature_names, instance, strict=True))
            else:
                problems.append(
                    f"instance {i} must be an object {{feature: value}} or an array in feature order, "
                    f"got {type(instance).__name__}"
                )
                continue
            problems.extend(self._value_problems(i, row))
            rows.append(row)
        if problems:
            more = " (and possibly more)" if len(problems) >= MAX_PROBLEMS else ""
            raise InstanceError("; ".join(problems[:MAX_PROBLEMS]) + more)
        return rows

    def _value_problems(self, i: int, row: Mapping[str, Any]) -> list[str]:
        out = []
        for name, value in row.items():
            if value is None:
                continue  # a missing value: the artifact's imputer fills it
            kind = self.kinds.get(name)
            if kind == "numeric" and not _is_number(value):
                out.append(f"instance {i}: feature {name!r} must be a number or null, got {value!r}")
            elif not isinstance(value, str | int | float | bool):
                out.append(
                    f"instance {i}: feature {name!r} must be a string, number or null, "
                    f"got {type(value).__name__}"
                )
        return out

    def frame(self, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """The estimator's input: the feature columns, typed as the model was trained."""
        import pandas as pd

        columns = list(self.feature_names)
        if not self.kinds:
            from pipelines.components.training import features_of

            return features_of(pd.DataFrame(list(rows), columns=columns), columns)
        data: dict[str, Any] = {}
        for name in columns:
            values = [row[name] for row in rows]
            if self.kinds[name] == "numeric":
                data[name] = pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
            else:
                # As training.categorical_as_text: text, None where missing.
                data[name] = pd.Series([str(v) if v is not None else None for v in values], dtype=object)
        return pd.DataFrame(data, columns=columns)

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One JSON-able prediction per row (see the module docstring for the shapes)."""
        X = self.frame(rows)
        estimator = self.estimator
        final, Xt = estimator, X
        steps = getattr(estimator, "steps", None)
        if steps and len(steps) > 1:  # a Pipeline: transform once for predict and predict_proba
            final, Xt = estimator[-1], estimator[:-1].transform(X)
        labels = final.predict(Xt).tolist()
        if self.task != "classification":
            return [_finite(v) for v in labels]
        if not hasattr(final, "predict_proba"):
            return [{"prediction": label} for label in labels]
        classes = [str(c) for c in final.classes_.tolist()]
        proba = final.predict_proba(Xt)
        return [
            {
                "prediction": label,
                "probabilities": {c: round(float(p), 6) for c, p in zip(classes, row, strict=True)},
            }
            for label, row in zip(labels, proba, strict=True)
        ]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None
