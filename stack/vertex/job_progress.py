"""A pipeline worker's ``progress.json`` as Vertex shows it on the PipelineJob: the job's state,
times and ``error``, and ``jobDetail.taskDetails``.

Where Vertex puts things: one task detail for the pipeline's root DAG and one per task under it
(``parentTaskId``); a task's execution (``system.ContainerExecution``) carries its parameters in
``execution.metadata`` as ``input:<name>`` and ``output:<name>``; its output artifacts are in
``outputs`` (``{"<name>": {"artifacts": [Artifact]}}``). A task served from the cache is
``SKIPPED`` with execution state ``CACHED``. A failed task has ``error`` (google.rpc.Status) with
the reason read from its log; the job's ``error`` names the failed task and that reason.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Final

from google.cloud import aiplatform_v1 as v1

from stack.vertex import protos
from stack.vertex.errors import rpc_status

TERMINAL: Final = frozenset(
    {
        v1.PipelineState.PIPELINE_STATE_SUCCEEDED,
        v1.PipelineState.PIPELINE_STATE_FAILED,
        v1.PipelineState.PIPELINE_STATE_CANCELLED,
    }
)
_JOB_STATE: Final = {
    "RUNNING": v1.PipelineState.PIPELINE_STATE_RUNNING,
    "SUCCEEDED": v1.PipelineState.PIPELINE_STATE_SUCCEEDED,
    "FAILED": v1.PipelineState.PIPELINE_STATE_FAILED,
}
_EXECUTION_STATE: Final = {
    "RUNNING": "RUNNING",
    "SUCCEEDED": "COMPLETE",
    "SKIPPED": "CACHED",
    "FAILED": "FAILED",
    "CANCELLED": "CANCELLED",
}


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def derived_id(text: str) -> str:
    """A stable 19-digit id for something that has none of its own (the root task)."""
    return str(10**18 + int(hashlib.sha256(text.encode()).hexdigest(), 16) % (8 * 10**18))


def _metadata_store(job_name: str) -> str:
    return job_name.split("/pipelineJobs/")[0] + "/metadataStores/default"


def _task(job_name: str, parent_id: str, task: dict[str, Any]) -> dict[str, Any]:
    state = str(task["state"])
    store = _metadata_store(job_name)
    metadata = {f"input:{k}": v for k, v in (task.get("inputs") or {}).items()}
    metadata.update({f"output:{k}": v for k, v in (task.get("parameters") or {}).items()})
    detail: dict[str, Any] = {
        "taskId": task["id"],
        "parentTaskId": parent_id,
        "taskName": task["name"],
        "createTime": rfc3339(task["start_time"]),
        "startTime": rfc3339(task["start_time"]),
        "state": state,
        "execution": {
            "name": f"{store}/executions/{task['id']}",
            "displayName": task["name"],
            "state": _EXECUTION_STATE.get(state, "RUNNING"),
            "schemaTitle": "system.ContainerExecution",
            "schemaVersion": "0.0.1",
            "metadata": metadata,
        },
    }
    if task.get("end_time"):
        detail["endTime"] = rfc3339(task["end_time"])
    if task.get("error"):
        detail["error"] = rpc_status("FAILED_PRECONDITION", str(task["error"]))
    outputs: dict[str, Any] = {}
    for key, artifacts in (task.get("artifacts") or {}).items():
        outputs[key] = {
            "artifacts": [
                {
                    "name": f"{store}/artifacts/{derived_id(task['id'] + key + str(i))}",
                    "displayName": key,
                    "uri": a.get("uri", ""),
                    "schemaTitle": a.get("schema_title") or "system.Artifact",
                    "schemaVersion": a.get("schema_version") or "0.0.1",
                    "metadata": a.get("metadata") or {},
                    "state": "LIVE",
                    "createTime": rfc3339(task.get("end_time") or task["start_time"]),
                }
                for i, a in enumerate(artifacts)
            ]
        }
    if outputs:
        detail["outputs"] = outputs
    return detail


def _root(job: Any, root_id: str, doc: dict[str, Any], state: str) -> dict[str, Any]:
    root: dict[str, Any] = {
        "taskId": root_id,
        "taskName": job.pipeline_spec["pipelineInfo"]["name"] if "pipelineInfo" in job.pipeline_spec else "",
        "createTime": rfc3339(doc["start_time"]),
        "startTime": rfc3339(doc["start_time"]),
        "state": state,
        "execution": {
            "name": f"{_metadata_store(job.name)}/executions/{root_id}",
            "displayName": job.display_name or job.name.rsplit("/", 1)[-1],
            "state": _EXECUTION_STATE.get(state, "RUNNING"),
            "schemaTitle": "system.Run",
            "schemaVersion": "0.0.1",
            "metadata": {f"output:{k}": v for k, v in (doc.get("outputs") or {}).items()},
        },
    }
    if doc.get("end_time"):
        root["endTime"] = rfc3339(doc["end_time"])
    return root


def apply_progress(job: Any, doc: dict[str, Any], *, cancelled: bool = False) -> None:
    """Update ``job`` (a PipelineJob pb) from its worker's progress document."""
    state = "CANCELLED" if cancelled else str(doc.get("state", "RUNNING"))
    root_id = derived_id(job.name)
    tasks = []
    for task in doc.get("tasks", []):
        if cancelled and task["state"] == "RUNNING":
            task = {**task, "state": "CANCELLED"}
        tasks.append(_task(job.name, root_id, task))
    detail = {"taskDetails": [_root(job, root_id, doc, state), *tasks]}
    job.job_detail.Clear()
    protos.parse_into(detail, job.job_detail, "job_detail")
    job.start_time.CopyFrom(protos.timestamp(doc["start_time"]))
    if cancelled:
        job.state = v1.PipelineState.PIPELINE_STATE_CANCELLED
    elif state in _JOB_STATE:
        job.state = _JOB_STATE[state]
    if job.state in TERMINAL:
        job.end_time.CopyFrom(protos.timestamp(doc.get("end_time")))
    error = doc.get("error")
    if job.state == v1.PipelineState.PIPELINE_STATE_FAILED and error:
        job.error.Clear()
        job.error.code = 9  # FAILED_PRECONDITION, as Vertex reports a failed DAG
        task = error.get("task")
        job.error.message = (
            f"The DAG failed because some tasks failed. The failed tasks are: [{task}]. "
            f"Task {task} failed: {error.get('reason', '')}"
            if task
            else f"The pipeline failed: {error.get('reason', '')}"
        )
    job.update_time.CopyFrom(protos.timestamp())
