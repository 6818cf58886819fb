"""``mlops-events run PIPELINE --local --param key=value ...``: run a pipeline under kfp.local.

The template runs here, task by task, for quick iteration; its tasks reach the registry and the
endpoints through the same Vertex adapters as on Google Cloud, against emulators: those of the
stack running from ``--state-dir`` if there is one, else fake-gcs-server and the Vertex AI emulator
started for the run, their state kept in ``--runs-dir`` (``stack.local_services``). Nothing reaches
Google Cloud.

Values are parsed by the parameter types the compiled template declares: str as given, int,
float, bool (true/false/1/0/yes/no), list and dict as JSON. A relative local path in a ``*_uri``
parameter is made absolute (``data_uri=mine.csv``). Exit 0 on success, 1 when the run fails (the
failed task and why are printed), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from events.catalog import PipelineSpec
from stack.config import DEFAULT_STATE_DIR
from stack.local_services import RUNS_DIR

_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class ParamError(ValueError):
    """A ``--param`` that does not fit the pipeline's catalog entry."""


def parse_value(spec: PipelineSpec, key: str, raw: str) -> Any:
    param = spec.parameter(key)
    if param is None:
        names = ", ".join(p.name for p in spec.parameters)
        raise ParamError(f"pipeline {spec.name!r} has no parameter {key!r} (it takes: {names})")
    try:
        if param.type == "str":
            return raw
        if param.type == "int":
            return int(raw)
        if param.type == "float":
            return float(raw)
        if param.type == "bool":
            if raw.strip().lower() not in _BOOLS:
                raise ValueError("expected true or false")
            return _BOOLS[raw.strip().lower()]
        value = json.loads(raw)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ParamError(f"--param {key}={raw!r}: not a valid {param.type}: {exc}") from exc
    expected = list if param.type == "list" else dict
    if not isinstance(value, expected):
        raise ParamError(f"--param {key}: expected a JSON {param.type}, got {type(value).__name__}")
    return value


def absolute_paths(params: dict[str, Any]) -> dict[str, Any]:
    """``*_uri`` parameters with relative local paths made absolute (comma-separated lists too):
    the tasks and the emulator's processes do not share this shell's working directory."""
    out = dict(params)
    for key, value in params.items():
        if key.endswith("_uri") and isinstance(value, str) and value:
            parts = [p.strip() for p in value.split(",")]
            out[key] = ",".join(p if "://" in p or not p else str(Path(p).resolve()) for p in parts)
    return out


def parse_params(spec: PipelineSpec, items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ParamError(f"--param {item!r}: expected key=value")
        params[key.strip()] = parse_value(spec, key.strip(), raw)
    problems = spec.validate(params)
    if problems:
        raise ParamError("; ".join(problems))
    return params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a pipeline locally under kfp.local",
        description="Run a pipeline locally (kfp.local, this environment as the component image). "
        "Data URIs may be gs:// (storage emulator) or local paths. `mlops-events pipelines` lists "
        "the pipelines and their parameters.",
    )
    p.add_argument("pipeline", metavar="PIPELINE")
    p.add_argument(
        "--local",
        action="store_true",
        help="run under kfp.local (required: Vertex runs go through the router)",
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a pipeline parameter (repeatable)"
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"use the stack running from this state directory, if one does (default {DEFAULT_STATE_DIR})",
    )
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=RUNS_DIR,
        help="with no stack running: where the emulators started for the run keep their state "
        f"(models, endpoints, objects), kept from one run to the next (default {RUNS_DIR})",
    )
    p.add_argument(
        "--pipeline-root",
        type=Path,
        default=None,
        help="where the tasks' artifacts go (default: pipeline-root/ in --runs-dir)",
    )
    p.add_argument(
        "--templates",
        type=Path,
        help="compiled templates to run (default: compile the pipelines now, into a temporary directory)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="stream every task's log")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object at the end")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.local_run import LocalRunError, run_pipeline

    if not args.local:
        print(
            "mlops-events run: only --local is supported here; Vertex runs are launched by the router",
            file=sys.stderr,
        )
        return 2
    from pipelines.catalog import CatalogError, compiled_templates, load_catalog
    from pipelines.compile import CompileError

    try:
        templates = compiled_templates(args.templates)
        catalog = load_catalog(templates)
        if args.pipeline not in catalog:
            raise ParamError(f"unknown pipeline {args.pipeline!r} (known: {catalog.known()})")
        params = parse_params(catalog[args.pipeline], args.param)
    except (ParamError, CatalogError, CompileError) as exc:
        print(f"mlops-events run: {exc}", file=sys.stderr)
        return 2
    from stack.emulators import EmulatorError
    from stack.local_services import local_services

    params = absolute_paths(params)
    try:
        with local_services(args.runs_dir, args.state_dir, pipeline_root=args.pipeline_root) as services:
            for line in services.where:
                print(f"run --local: {line}")
            result = run_pipeline(
                args.pipeline, params, services.pipeline_root, template_dir=templates, verbose=args.verbose
            )
    except LocalRunError as exc:
        print(f"mlops-events run: {exc}", file=sys.stderr)
        return 2
    except EmulatorError as exc:
        print(f"mlops-events run: an emulator did not start: {exc}", file=sys.stderr)
        return 1
    if result.ok:
        print(f"\n{args.pipeline}: SUCCEEDED in {result.seconds:.1f}s")
        for key, value in result.outputs.items():
            shown = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
            print(f"  {key}: {shown}")
    else:
        print(
            f"\n{args.pipeline}: FAILED in {result.seconds:.1f}s at task {result.failed_task!r}",
            file=sys.stderr,
        )
        print("  " + (result.reason or "no reason recorded").replace("\n", "\n  "), file=sys.stderr)
    if args.json:
        doc = {
            "pipeline": result.pipeline,
            "ok": result.ok,
            "seconds": round(result.seconds, 2),
            "failed_task": result.failed_task,
            "reason": result.reason,
            "outputs": result.outputs,
            "tasks": [
                {"name": t.name, "status": t.status, "seconds": round(t.seconds, 2)} for t in result.tasks
            ],
        }
        print(json.dumps(doc, sort_keys=True, default=str))
    return 0 if result.ok else 1
