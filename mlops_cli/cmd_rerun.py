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
    from mlops_cli.target import TargetError, resolve_target
    from pipelines.launch.base import LaunchError, Templates
    from pipelines.launch.rerun import describe, rerun
    from pipelines.launch.vertex import VertexConfig, VertexLauncher

    try:
        target = resolve_target(args.state_dir)
    except TargetError as exc:
        return _fail(str(exc))
    config = VertexConfig(
        project=target.project,
        region=target.region,
        pipeline_root="",
        api_endpoint=target.api_endpoint,
        timeout_seconds=target.timeout_seconds,
    )
    where = target.where
    # A rerun copies the first attempt's spec from Vertex: no local templates are read.
    launcher = VertexLauncher(config, Templates(Path(os.devnull)))
    try:
        result = rerun(launcher, args.job_id, reason=args.reason)
    except LaunchError as exc:
        return _fail(f"{exc} (on {where})")
    print(f"{describe(result)} on {where}")
    return 0
