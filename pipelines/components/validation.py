"""Validate a training dataset and write a readable report; bad data stops the run.

Checks: the label column is present and filled, enough rows, no column mostly missing, no column
that mixes numbers and text, and the schema (columns and their kinds) against the data the
current champion was trained on, so a changed upstream export is caught before training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    import pandas as pd

Kind = Literal["numeric", "categorical"]
TASKS: Final = ("classification", "regression")
# A text column whose values are at least this share numbers is a numeric column with bad values.
_NUMERIC_SHARE: Final = 0.8


@dataclass
class ValidationReport:
    rows: int
    columns: list[str]
    label_column: str
    task: str
    schema: dict[str, str] = field(default_factory=dict)
    missing: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def render(self) -> str:
        lines = [
            f"Data validation: {'PASSED' if self.ok else 'FAILED'}",
            f"  rows: {self.rows}, columns: {len(self.columns)}, label: {self.label_column!r}, task: {self.task}",
        ]
        if self.problems:
            lines.append(f"  problems ({len(self.problems)}):")
            lines.extend(f"    - {p}" for p in self.problems)
        if self.warnings:
            lines.append(f"  warnings ({len(self.warnings)}):")
            lines.extend(f"    - {w}" for w in self.warnings)
        return "\n".join(lines)


def column_kind(series: pd.Series) -> Kind:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "categorical"
    return "numeric"


def infer_schema(frame: pd.DataFrame) -> dict[str, str]:
    return {str(c): column_kind(frame[c]) for c in frame.columns}


def _mixed_type_problem(name: str, series: pd.Series) -> str | None:
    """A text column that is mostly numbers has bad values (a unit, 'n/a', a shifted column)."""
    import pandas as pd

    values = series.dropna()
    if values.empty or pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    as_numbers = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    bad = values[as_numbers.isna()]
    share = 1 - len(bad) / len(values)
    if bad.empty or share < _NUMERIC_SHARE:
        return None
    examples = ", ".join(repr(v) for v in bad.astype(str).unique()[:3])
    return f"column {name!r} mixes numbers and text: {len(bad)} of {len(values)} values are not numbers (e.g. {examples})"


def validate(
    frame: pd.DataFrame,
    *,
    label_column: str,
    task: str,
    min_rows: int,
    reference_schema: dict[str, str] | None = None,
    max_missing: float = 0.5,
) -> ValidationReport:
    """Every problem with ``frame`` as training data (the report lists them all at once)."""
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    report = ValidationReport(rows=len(frame), columns=columns, label_column=label_column, task=task)
    report.schema = infer_schema(frame)
    report.missing = {c: round(float(frame[c].isna().mean()), 4) for c in columns} if len(frame) else {}
    p = report.problems

    if task not in TASKS:
        p.append(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if len(frame) == 0:
        p.append("the dataset has no rows")
    elif len(frame) < min_rows:
        p.append(f"too few rows: {len(frame)} < min_rows {min_rows}")
    if label_column not in columns:
        p.append(f"label column {label_column!r} is missing (columns: {', '.join(columns) or 'none'})")
    if not [c for c in columns if c != label_column]:
        p.append("no feature columns besides the label")

    for name in columns:
        problem = _mixed_type_problem(name, frame[name])
        if problem:
            p.append(problem)
        share = report.missing.get(name, 0.0)
        if name != label_column and share > max_missing:
            p.append(f"column {name!r} is {share:.0%} missing (more than {max_missing:.0%})")
        elif name != label_column and share > 0:
            report.warnings.append(f"column {name!r} has {share:.1%} missing values (imputed)")

    if label_column in columns and len(frame):
        label = frame[label_column]
        if label.isna().any():
            p.append(f"label column {label_column!r} has {int(label.isna().sum())} missing values")
        if task == "classification" and label.nunique(dropna=True) < 2:
            p.append(f"label column {label_column!r} has fewer than 2 classes: cannot train a classifier")
        if task == "regression" and not pd.api.types.is_numeric_dtype(label):
            p.append(f"label column {label_column!r} must be numeric for regression, got {label.dtype}")

    if reference_schema:
        for name, kind in reference_schema.items():
            if name == label_column and name not in report.schema:
                continue  # already reported as the missing label
            if name not in report.schema:
                p.append(f"column {name!r} of the champion's training data is missing")
            elif report.schema[name] != kind:
                p.append(
                    f"column {name!r} changed type: {kind} in the champion's data, {report.schema[name]} now"
                )
        extra = sorted(set(report.schema) - set(reference_schema))
        if extra:
            report.warnings.append(f"new columns not in the champion's data: {', '.join(extra)}")
    return report
