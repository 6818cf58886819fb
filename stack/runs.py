"""A pipeline run as the stack's tools show it, read from the PipelineJob Vertex AI reports.

Where Vertex puts what we need (the emulator reports the same, docs/vertex-emulator.md): the job's
``state`` (``PIPELINE_STATE_SUCCEEDED``...), ``labels`` (the router's lineage labels: rule,
pipeline, event digest; a rerun's ``mlops-attempt``), ``runtimeConfig.parameterValues``, times, and
``jobDetail.taskDetails``: the root DAG's execution metadata holds the pipeline's output
parameters (``output:Output``, the built-in pipelines' JSON summary), each task its state, error
and output artifacts (``outputs[name].artifacts[].uri``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from stack.lineage import RunNode
from stack.times import timestamp

STATE_PREFIX: Final = "PIPELINE_STATE_"
TERMINAL: Final = ("SUCCEEDED", "FAILED", "CANCELLED")
PIPELINE_LABEL: Final = "mlops-pipeline"
RULE_LABEL: Final = "mlops-rule"


def short_state(state: str | None) -> str:
    """``PIPELINE_STATE_RUNNING`` -> ``RUNNING`` (what the demo and the report show)."""
    text = str(state or "PIPELINE_STATE_UNSPECIFIED")
    return text[len(STATE_PREFIX) :] if text.startswith(STATE_PREFIX) else text


def _seconds(start: str | None, end: str | None) -> float | None:
    a, b = timestamp(start), timestamp(end)
    return b - a if a is not None and b is not None else None


def _parameter(value: Any) -> Any:
    """An output parameter as reported (a JSON string for the built-in pipelines' summaries)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def outputs_of(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``output:<name>`` entries of an execution's metadata; a JSON object ``Output`` is merged in
    (the built-in pipelines return their summary as one JSON string)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if not key.startswith("output:"):
            continue
        name, parsed = key[len("output:") :], _parameter(value)
        if name == "Output" and isinstance(parsed, dict):
            out.update(parsed)
        else:
            out[name] = parsed
    return out


def task_details(job: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the root DAG's task detail, the tasks under it) of a job."""
    details = list((job.get("jobDetail") or {}).get("taskDetails") or [])
    root = next((d for d in details if not d.get("parentTaskId")), None)
    return root, [d for d in details if d.get("parentTaskId")]


def run_from_job(job: Mapping[str, Any]) -> RunNode:
    labels = {str(k): str(v) for k, v in (job.get("labels") or {}).items()}
    root, tasks = task_details(job)
    outputs = outputs_of(((root or {}).get("execution") or {}).get("metadata") or {})
    if not outputs:  # no pipeline-level outputs reported: the tasks' own, in order
        for task in tasks:
            outputs.update(outputs_of((task.get("execution") or {}).get("metadata") or {}))
    artifacts: dict[str, str] = {}
    task_states: dict[str, Any] = {}
    failed = None
    for task in tasks:
        name = str(task.get("taskName"))
        state = str(task.get("state") or "")
        task_states[name] = {"status": state, "seconds": _seconds(task.get("startTime"), task.get("endTime"))}
        if state == "FAILED" and failed is None:
            failed = task
        for key, output in (task.get("outputs") or {}).items():
            for artifact in output.get("artifacts") or []:
                if artifact.get("uri"):
                    artifacts.setdefault(str(key), str(artifact["uri"]))
    error = (job.get("error") or {}).get("message")
    if failed is not None and (failed.get("error") or {}).get("message"):
        error = str(failed["error"]["message"])  # the task's own reason, not the DAG's summary
    pipeline = labels.get(PIPELINE_LABEL) or str((root or {}).get("taskName") or "")
    return RunNode(
        job_id=str(job.get("name", "")).rsplit("/", 1)[-1],
        pipeline=pipeline,
        rule=labels.get(RULE_LABEL),
        state=short_state(job.get("state")),
        parameters=dict((job.get("runtimeConfig") or {}).get("parameterValues") or {}),
        labels=labels,
        outputs=outputs,
        error=str(error) if error else None,
        failed_task=str(failed.get("taskName")) if failed is not None else None,
        seconds=_seconds(job.get("startTime"), job.get("endTime")),
        tasks=task_states,
        artifacts=artifacts,
        created_at=str(job.get("createTime") or ""),
    )


def router_filter(pipeline: str | None = None) -> str:
    """The list filter of the runs the router launched (all of them carry ``mlops-pipeline``)."""
    if pipeline:
        return f'labels.{PIPELINE_LABEL}="{pipeline}"'
    return f"labels.{PIPELINE_LABEL}:*"
