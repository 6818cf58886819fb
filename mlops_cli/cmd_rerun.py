"""``mlops-events rerun JOB_ID [--reason TEXT]``: a new attempt of a pipeline job that FAILED or was
CANCELLED (``pipelines/launch/rerun.py``).

Job ids come from events, so a redelivered event never starts its job twice, and an event whose job
failed never runs again by itself: its function logs ``exists_failed`` naming this command. The new
attempt ``<job id>-r2`` (``-r3``...) has the first attempt's template, parameters and lineage labels,
plus ``mlops-attempt`` and ``mlops-first-attempt``. Rerunning while the latest attempt is pending,
running or succeeded starts nothing (exit 0, and says so).

Where: ``--state-dir DIR`` names a local stack (its Vertex AI emulator); otherwise the functions'
settings from the environment (``GOOGLE_CLOUD_PROJECT``, ``GOOGLE_CLOUD_REGION``,
``VERTEX_API_ENDPOINT``), and with none of those, the stack running from the default state directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stack.config import DEFAULT_STATE_DIR


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rerun",
        help="start a new attempt of a pipeline job that FAILED or was CANCELLED",
        description="Start attempt <JOB_ID>-r2 (then -r3...) of a failed or cancelled pipeline job, with "
        "the same template, parameters and lineage labels. Idempotent: nothing starts while the latest "
        "attempt is pending, running or succeeded.",
    )
    p.add_argument("job_id", metavar="JOB_ID", help="the job id (as logged by the function, or -rN)")
    p.add_argument("--reason", default="", help="why, shown in the new attempt's display name")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="rerun on the local stack running from DIR (default: Vertex AI as the environment says "
        f"— GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_REGION, VERTEX_API_ENDPOINT — else the stack in {DEFAULT_STATE_DIR})",
    )
    p.set_defaults(func=cmd_rerun)


def _fail(message: str) -> int:
    print(f"mlops-events rerun: {message}", file=sys.stderr)
    return 1


def cmd_rerun(args: argparse.Namespace) -> int:
    from pipelines.launch.base import LaunchError, Templates
    from pipelines.launch.rerun import describe, rerun
    from pipelines.launch.vertex import VertexConfig, VertexLauncher
    from stack.config import read_stack

    if args.state_dir is None and not (
        os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("VERTEX_API_ENDPOINT")
    ):
        args.state_dir = DEFAULT_STATE_DIR  # nothing says Google Cloud: the local stack, if one runs
    if args.state_dir is not None:
        info = read_stack(args.state_dir.resolve())
        if info is None:
            return _fail(
                f"no local stack is running from {args.state_dir}; start it (`mlops-events up --state-dir "
                f"{args.state_dir}`), or set GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_REGION) for Vertex AI"
            )
        config = VertexConfig(
            project=str(info["project"]),
            region=str(info.get("region") or "us-central1"),
            pipeline_root="",
            api_endpoint=str(info["vertex"]["url"]),
        )
        where = f"the local stack in {info['state_dir']} ({config.base_url})"
    else:
        from functions.settings import Settings, SettingsError

        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            return _fail(str(exc))
        if not settings.project:
            return _fail("set GOOGLE_CLOUD_PROJECT (VERTEX_API_ENDPOINT alone does not name a project)")
        config = VertexConfig(
            project=settings.project,
            region=settings.region,
            pipeline_root="",
            api_endpoint=settings.vertex_api_endpoint,
            timeout_seconds=settings.vertex_timeout_seconds,
        )
        where = f"Vertex AI {config.project}/{config.region} ({config.base_url})"
    # A rerun copies the first attempt's spec from Vertex: no local templates are read.
    launcher = VertexLauncher(config, Templates(Path(os.devnull)))
    try:
        result = rerun(launcher, args.job_id, reason=args.reason)
    except LaunchError as exc:
        return _fail(f"{exc} (on {where})")
    print(f"{describe(result)} on {where}")
    return 0
