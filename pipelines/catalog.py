"""The catalog of pipelines and their typed parameters. Importable without kfp.

The router validates every launch against this catalog before anything is submitted, and the
compiler checks that each compiled template declares exactly these inputs (a test keeps the two
in step), so a rule can never send a parameter the pipeline does not accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

ParamType = Literal["str", "int", "float", "bool", "list", "dict"]

_PY_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}

# Parameters that would let an event choose authority rather than data. No pipeline may declare
# them as inputs; the router rejects them by name with a clear reason.
RESERVED_PARAMETERS: Final = frozenset(
    {
        "service_account",
        "pipeline_root",
        "project",
        "project_id",
        "location",
        "region",
        "template",
        "template_path",
        "network",
        "encryption_spec_key_name",
    }
)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParamType
    description: str
    default: Any = None
    required: bool = False

    def check(self, value: Any) -> str | None:
        """Return a problem with ``value`` for this parameter, or None when it fits."""
        if value is None:
            return f"parameter {self.name!r} is required" if self.required else None
        expected = _PY_TYPES[self.type]
        # bool is an int in Python: do not let True pass as an int or a float.
        if isinstance(value, bool) and self.type != "bool":
            return f"parameter {self.name!r} must be {self.type}, got bool"
        if not isinstance(value, expected):
            return f"parameter {self.name!r} must be {self.type}, got {type(value).__name__}"
        return None

    def coerce(self, value: Any) -> Any:
        """Normalise a value that passed ``check`` (float params accept ints; lists stay lists)."""
        if self.type == "float" and isinstance(value, int):
            return float(value)
        if self.type == "list" and isinstance(value, tuple):
            return list(value)
        return value


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    description: str
    parameters: tuple[Parameter, ...]

    @property
    def template_file(self) -> str:
        return f"{self.name}.yaml"

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def validate(self, values: Mapping[str, Any]) -> list[str]:
        """Every problem with ``values`` as this pipeline's parameters (empty when valid)."""
        problems: list[str] = []
        declared = {p.name for p in self.parameters}
        for key in values:
            if key in RESERVED_PARAMETERS:
                problems.append(
                    f"parameter {key!r} is not allowed: events choose data, never the "
                    "template, service account, pipeline root, project or region"
                )
            elif key not in declared:
                problems.append(
                    f"pipeline {self.name!r} has no parameter {key!r} (it takes: {', '.join(sorted(declared))})"
                )
        for param in self.parameters:
            problem = param.check(values.get(param.name))
            if problem:
                problems.append(problem)
        return problems

    def resolve(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validated values with types normalised; defaults are left to the template."""
        return {k: self.parameter(k).coerce(v) for k, v in values.items() if self.parameter(k)}  # type: ignore[union-attr]


def _p(
    name: str, type_: ParamType, description: str, default: Any = None, required: bool = False
) -> Parameter:
    return Parameter(name, type_, description, default, required)


_MODEL = _p("model_name", "str", "Registry name of the model (parent model).", required=True)
_EVENT = _p("trigger", "str", "Identity of the event that started the run (lineage).", default="")

PIPELINES: Final[dict[str, PipelineSpec]] = {
    spec.name: spec
    for spec in (
        PipelineSpec(
            "training",
            "Validate data, train, evaluate, compare with the champion, register (and promote).",
            (
                _p(
                    "data_uri",
                    "str",
                    "Dataset URI(s), comma-separated: gs://... or a local path (CSV, JSONL, Parquet).",
                    required=True,
                ),
                _MODEL,
                _p("label_column", "str", "Name of the label column.", default="target"),
                _p("task", "str", "classification or regression.", default="classification"),
                _p(
                    "model_family",
                    "str",
                    "gradient_boosting, random_forest, logistic_regression or linear_regression.",
                    default="gradient_boosting",
                ),
                _p("hyperparameters", "dict", "Estimator keyword arguments.", default={}),
                _p("test_fraction", "float", "Holdout fraction.", default=0.25),
                _p("min_rows", "int", "Fewest rows accepted by validation.", default=20),
                _p("metric_floor", "float", "Absolute floor of the primary metric.", default=0.5),
                _p(
                    "promotion_margin",
                    "float",
                    "How much the challenger must beat the champion by.",
                    default=0.0,
                ),
                _p("seed", "int", "Random seed.", default=42),
                _EVENT,
            ),
        ),
        PipelineSpec(
            "retraining",
            "Training on a new data window (newest data plus a reference), started by an alert.",
            (
                _MODEL,
                _p(
                    "data_uri",
                    "str",
                    "Newest data URI(s); empty: every dataset file now under the folders of the champion's training data.",
                    default="",
                ),
                _p(
                    "reference_uri",
                    "str",
                    "Reference data URI(s); empty: the champion's training data.",
                    default="",
                ),
                _p(
                    "alert_id",
                    "str",
                    "The alert that caused this run (recorded as a label of the new version).",
                    default="",
                ),
                _p("label_column", "str", "Name of the label column.", default="target"),
                _p("task", "str", "classification or regression.", default="classification"),
                _p("model_family", "str", "Model family.", default="gradient_boosting"),
                _p("hyperparameters", "dict", "Estimator keyword arguments.", default={}),
                _p("test_fraction", "float", "Holdout fraction.", default=0.25),
                _p("min_rows", "int", "Fewest rows accepted by validation.", default=20),
                _p("metric_floor", "float", "Absolute floor of the primary metric.", default=0.5),
                _p(
                    "promotion_margin",
                    "float",
                    "How much the challenger must beat the champion by.",
                    default=0.0,
                ),
                _p("seed", "int", "Random seed.", default=42),
                _EVENT,
            ),
        ),
        PipelineSpec(
            "evaluation",
            "Evaluate a model version on a dataset and record its metrics.",
            (
                _MODEL,
                _p("version", "str", "Model version id or alias.", default="champion"),
                _p(
                    "data_uri",
                    "str",
                    "Evaluation dataset URI(s) (default: the version's own holdout).",
                    default="",
                ),
                _p("label_column", "str", "Name of the label column (default: the model's).", default=""),
                _EVENT,
            ),
        ),
        PipelineSpec(
            "deployment",
            "Deploy the champion with a canary traffic split, smoke-test, promote or roll back.",
            (
                _MODEL,
                _p(
                    "version",
                    "str",
                    "Model version to deploy (default: whichever holds champion).",
                    default="champion",
                ),
                _p("endpoint_name", "str", "Endpoint display name (default: the model name).", default=""),
                _p(
                    "canary_percent",
                    "int",
                    "Traffic share for the new version during the smoke test.",
                    default=10,
                ),
                _p(
                    "smoke_test_uri",
                    "str",
                    "Instances for smoke-test predictions (default: a sample of training data).",
                    default="",
                ),
                _EVENT,
            ),
        ),
        PipelineSpec(
            "monitoring",
            "Compare recent serving inputs with the champion's training data; alert on drift.",
            (
                _MODEL,
                _p(
                    "serving_uri",
                    "str",
                    "Serving log URI(s) or folder(s) ending in / (JSONL of requests and predictions); required in practice.",
                    default="",
                ),
                _p(
                    "reference_uri",
                    "str",
                    "Reference data (default: the champion's training data).",
                    default="",
                ),
                _p(
                    "psi_threshold",
                    "float",
                    "Population stability index above which a feature drifts.",
                    default=0.2,
                ),
                _p(
                    "alerts_topic",
                    "str",
                    "Pub/Sub topic for drift alerts (empty: do not publish).",
                    default="",
                ),
                _EVENT,
            ),
        ),
        PipelineSpec(
            "batch_prediction",
            "Score a dataset with the champion and write predictions beside it.",
            (
                _MODEL,
                _p("data_uri", "str", "Dataset URI(s) to score.", required=True),
                _p("version", "str", "Model version id or alias.", default="champion"),
                _p(
                    "output_uri", "str", "Where to write predictions (default: beside the input).", default=""
                ),
                _EVENT,
            ),
        ),
    )
}


def get(name: str) -> PipelineSpec | None:
    return PIPELINES.get(name)
