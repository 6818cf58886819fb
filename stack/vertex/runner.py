"""The pipeline worker: ``python -m stack.vertex.runner JOB_DIR`` runs one pipeline job.

The emulator starts one worker per job, in its own session (kfp.local's ``init`` is process-wide,
so two runs never share it, and cancelling kills the worker's whole process group). The worker
reads ``run.json`` (the job's ``pipelineSpec``, typed arguments, local pipeline root), runs the spec
with ``kfp.local`` (SubprocessRunner, no venv: each task a subprocess of this environment) and
records what Vertex would show in ``progress.json``, rewritten at each task start and end: the
job state and times, and per task its state, times, input and output parameters, output
artifacts and, on failure, the reason read from the task's own log.

Tasks are followed by wrapping kfp.local's task executor (``execute_single_task``) rather than by
parsing its log, so parallel tasks (``ParallelFor``) and cache hits are reported exactly. Task
output printed by kfp.local is routed per thread into the task's log and always to stdout
(``worker.log``).

Only the standard library and kfp are imported here: no aiplatform, no emulator state.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stack.vertex.names import numeric_id, write_atomic


class Progress:
    """``progress.json``, written whole after every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.doc: dict[str, Any] = {"state": "RUNNING", "start_time": time.time(), "tasks": []}
        self.write()

    def write(self) -> None:
        write_atomic(self.path, json.dumps(self.doc, indent=1, default=str))

    def task(self, name: str) -> dict[str, Any]:
        record = {"id": numeric_id(), "name": name, "state": "RUNNING", "start_time": time.time()}
        with self.lock:
            self.doc["tasks"].append(record)
            self.write()
        return record

    def update(self, record: dict[str, Any], **fields: Any) -> None:
        with self.lock:
            record.update(fields)
            self.write()

    def finish(self, state: str, **fields: Any) -> None:
        with self.lock:
            self.doc.update(state=state, end_time=time.time(), **fields)
            self.write()


class _TaskStreams(io.TextIOBase):
    """Stands in for sys.stdout: what a task prints also goes to the log of the task its thread runs."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.local = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.real.write(s)
        lines: list[str] | None = getattr(self.local, "lines", None)
        if lines is not None:
            buf = getattr(self.local, "buf", "") + s
            *done, self.local.buf = buf.split("\n")
            # kfp.local indents what the task's process prints; its own log lines are not.
            lines.extend(line[4:] for line in done if line.startswith("    "))
        return len(s)

    def flush(self) -> None:
        self.real.flush()


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def _artifact(value: Any) -> dict[str, Any]:
    return {
        "name": getattr(value, "name", ""),
        "uri": getattr(value, "uri", ""),
        "metadata": _jsonable(dict(getattr(value, "metadata", {}) or {})),
        "schema_title": getattr(value, "schema_title", ""),
        "schema_version": getattr(value, "schema_version", ""),
    }


def _is_artifact(value: Any) -> bool:
    return hasattr(value, "uri") and hasattr(value, "schema_title")


def split_outputs(outputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(output parameters, output artifacts by name) of one task."""
    params: dict[str, Any] = {}
    artifacts: dict[str, list[dict[str, Any]]] = {}
    for key, value in outputs.items():
        if isinstance(value, list) and value and all(_is_artifact(v) for v in value):
            artifacts[key] = [_artifact(v) for v in value]
        elif _is_artifact(value):
            artifacts[key] = [_artifact(value)]
        else:
            params[key] = _jsonable(value)
    return params, artifacts


def _hook(progress: Progress, streams: _TaskStreams) -> None:
    """Wrap kfp.local's task execution to report each task."""
    from kfp.local import status, task_dispatcher
    from kfp.local.orchestrator import task_executor

    from pipelines.local_run import failure_reason

    execute: Callable[..., Any] = task_executor.execute_single_task
    dispatch: Callable[..., Any] = task_dispatcher.run_single_task_implementation
    calls = threading.local()

    def traced_dispatch(**kwargs: Any) -> Any:
        calls.dispatched = True
        calls.inputs = {
            k: _jsonable(v) for k, v in kwargs.get("arguments", {}).items() if not _is_artifact(v)
        }
        return dispatch(**kwargs)

    def traced_execute(**kwargs: Any) -> Any:
        task_spec = kwargs["task_spec"]
        name = task_spec.task_info.name or kwargs["task_name"]
        component = kwargs["components"][task_spec.component_ref.name]
        is_container = kwargs["executors"][component.executor_label].WhichOneof("spec") == "container"
        record = progress.task(name)
        log: list[str] = []
        calls.dispatched, calls.inputs = False, {}
        streams.local.lines, streams.local.buf = log, ""
        try:
            outputs, task_status = execute(**kwargs)
        except BaseException as exc:
            progress.update(
                record, state="FAILED", end_time=time.time(), error=f"{type(exc).__name__}: {exc}"
            )
            raise
        finally:
            streams.local.lines = None
        params, artifacts = split_outputs(outputs or {})
        fields: dict[str, Any] = {"end_time": time.time(), "inputs": calls.inputs}
        if task_status == status.Status.SUCCESS:
            cached = is_container and not calls.dispatched
            fields.update(state="SKIPPED" if cached else "SUCCEEDED", parameters=params, artifacts=artifacts)
            fields["cached"] = cached
        else:
            reason = failure_reason(log) or "the task exited with a non-zero status"
            fields.update(state="FAILED", error=reason)
        progress.update(record, **fields)
        return outputs, task_status

    task_executor.execute_single_task = traced_execute
    task_dispatcher.run_single_task_implementation = traced_dispatch


def _import_kfp_without_client() -> None:
    """``import kfp`` also imports ``kfp.client`` and with it the kubernetes client (seconds without
    bytecode); kfp skips that when ``_KFP_RUNTIME`` is set, as in its own task containers. Set it
    only for the package import: ``kfp.dsl``, imported next by kfp.local, must load whole."""
    previous = os.environ.get("_KFP_RUNTIME")
    os.environ["_KFP_RUNTIME"] = "true"
    try:
        import kfp  # noqa: F401
    finally:
        if previous is None:
            del os.environ["_KFP_RUNTIME"]
        else:
            os.environ["_KFP_RUNTIME"] = previous


def run(job_dir: Path) -> int:
    run_doc: dict[str, Any] = json.loads((job_dir / "run.json").read_text(encoding="utf-8"))
    progress = Progress(job_dir / "progress.json")
    streams = _TaskStreams(sys.stdout)
    sys.stdout = streams
    try:
        _import_kfp_without_client()
        from google.protobuf import json_format
        from kfp import local
        from kfp.local import pipeline_orchestrator
        from kfp.pipeline_spec import pipeline_spec_pb2

        spec = json_format.ParseDict(run_doc["pipeline_spec"], pipeline_spec_pb2.PipelineSpec())
        Path(run_doc["pipeline_root"]).mkdir(parents=True, exist_ok=True)
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=run_doc["pipeline_root"],
            raise_on_error=False,
            enable_caching=True,  # per task, as the spec's cachingOptions say (Vertex's behaviour)
            cache_root=run_doc["cache_root"],
        )
        _hook(progress, streams)
        outputs = pipeline_orchestrator.run_local_pipeline(spec, run_doc["arguments"])
    except Exception as exc:  # the worker's job is to record the failure, whatever it is
        traceback.print_exc()
        failed = [t for t in progress.doc["tasks"] if t["state"] == "FAILED"]
        if failed:  # kfp.local refused a task (a container component...): name it
            progress.finish("FAILED", error={"task": failed[0]["name"], "reason": failed[0].get("error", "")})
        else:
            progress.finish("FAILED", error={"reason": f"{type(exc).__name__}: {exc}"})
        return 1
    finally:
        sys.stdout = streams.real
    failed = [t for t in progress.doc["tasks"] if t["state"] == "FAILED"]
    if failed:
        progress.finish("FAILED", error={"task": failed[0]["name"], "reason": failed[0].get("error", "")})
        return 1
    params, _ = split_outputs(outputs or {})
    progress.finish("SUCCEEDED", outputs=params)
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
