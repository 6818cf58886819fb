"""One function per pipeline step: the body of each ``@dsl.component`` wrapper.

They take plain values and local paths (the KFP artifacts' ``.path``), reach the registry,
endpoints and alerts through ``pipelines.backends`` (Vertex AI, or the emulator that the API
endpoint names), print a readable line or report for the task log, and return JSON-able dicts.

The steps live in one module per pipeline family; this package re-exports them, so the wrappers
(``kfp_components``, ``kfp_steps``, ``tasks``) call ``steps.<name>``.
"""

from pipelines.components.steps.common import CHALLENGER, CHAMPION, get_version, label_value
from pipelines.components.steps.deployment import (
    canary_check,
    deploy_canary,
    finalize_deployment,
    refuse_failed_smoke_test,
    smoke_test,
)
from pipelines.components.steps.monitoring import drift, drift_alert_id, publish_drift_alert
from pipelines.components.steps.prediction import batch_predict
from pipelines.components.steps.training import (
    compare_with_champion,
    evaluate,
    evaluate_version,
    load,
    register,
    retraining_window,
    split,
    train,
    validate,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "batch_predict",
    "canary_check",
    "compare_with_champion",
    "deploy_canary",
    "drift",
    "drift_alert_id",
    "evaluate",
    "evaluate_version",
    "finalize_deployment",
    "get_version",
    "label_value",
    "load",
    "publish_drift_alert",
    "refuse_failed_smoke_test",
    "register",
    "retraining_window",
    "smoke_test",
    "split",
    "train",
    "validate",
]
