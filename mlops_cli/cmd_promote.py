"""``mlops-events promote MODEL VERSION [--reason TEXT]`` and ``mlops-events reject MODEL VERSION
--reason TEXT``: a person's decision on a model version (``pipelines/registry/approval.py``).

``promote`` records the approval on the version (who, why, when: its description and its
``decision`` label), then moves ``champion`` to it. Deployment is not started here: it follows
from the registry's audit event of the alias move (the ``deploy-champion`` rule), as when the
alias is moved in the console. Already champion: nothing changes (exit 0, and says so). A
rejected version is promoted only with ``--force``. ``reject`` records a rejection; the champion
cannot be rejected (promote another version first).

Who: ``--by``, by default the active gcloud account on Vertex AI (``$USER@<host>`` without
gcloud), ``$USER@local`` on the local stack. That is a claim written into the record; on Vertex
AI, the Cloud Audit Logs entries of the calls (``authenticationInfo.principalEmail``, from the
credentials) are authoritative. The local emulator has no credentials: it writes the ``--by``
value as the principal of its audit events (header ``x-mlops-principal``).

Where: as ``rerun`` (``mlops_cli/target.py``): ``--state-dir DIR`` is a local stack; otherwise
``GOOGLE_CLOUD_PROJECT``/``GOOGLE_CLOUD_REGION``/``VERTEX_API_ENDPOINT``; with none of those, the
stack running from the default state directory. Exit 0 done (or nothing to do), 1 refused or
failed, 2 usage.
"""

from __future__ import annotations

import argparse
import getpass
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stack.config import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from collections.abc import Callable

    from pipelines.ports import ModelRegistry, ModelVersion
    from pipelines.registry.approval import Outcome
    from pipelines.registry.vertex import VertexModelRegistry

_WHERE = (
    "act on the local stack running from DIR (default: Vertex AI as the environment says — "
    f"GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_REGION, VERTEX_API_ENDPOINT — else the stack in {DEFAULT_STATE_DIR})"
)
_BY = (
    "who decides, recorded on the version (default: the active gcloud account on Vertex AI, "
    "$USER@local on the local stack); on Vertex AI the audit log's principal is authoritative"
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "promote",
        help="approve a model version: move champion to it (its deployment follows)",
        description="Record an approval on VERSION of MODEL (who and why), then move the champion "
        "alias to it. The registry's audit event of that move starts the deployment (rule "
        "deploy-champion). A version that is champion already is left as it is (exit 0).",
    )
    p.add_argument("model", metavar="MODEL", help="the model's registry id or display name")
    p.add_argument("version", metavar="VERSION", help="a version id (2) or an alias (challenger)")
    p.add_argument("--reason", default="", help="why, recorded on the version")
    p.add_argument("--by", default=None, metavar="PRINCIPAL", help=_BY)
    p.add_argument("--force", action="store_true", help="promote a version that was rejected")
    p.add_argument("--state-dir", type=Path, default=None, help=_WHERE)
    p.set_defaults(func=cmd_promote)

    r = sub.add_parser(
        "reject",
        help="record the rejection of a model version (it is not promoted)",
        description="Record a rejection on VERSION of MODEL (who and why). A rejected version is "
        "promoted only with `promote --force`; the champion cannot be rejected.",
    )
    r.add_argument("model", metavar="MODEL", help="the model's registry id or display name")
    r.add_argument("version", metavar="VERSION", help="a version id (2) or an alias (challenger)")
    r.add_argument("--reason", required=True, help="why, recorded on the version (required)")
    r.add_argument("--by", default=None, metavar="PRINCIPAL", help=_BY)
    r.add_argument("--state-dir", type=Path, default=None, help=_WHERE)
    r.set_defaults(func=cmd_reject)


def default_principal(local: bool) -> str:
    """Who runs this command, as honestly as can be told without credentials of our own."""
    user = getpass.getuser()
    if local:
        return f"{user}@local"
    gcloud = shutil.which("gcloud")
    if gcloud:
        try:
            done = subprocess.run(
                [gcloud, "config", "get-value", "account"], capture_output=True, text=True, timeout=15
            )
            account = done.stdout.strip()
            if done.returncode == 0 and "@" in account:
                return account
        except (OSError, subprocess.TimeoutExpired):
            pass
    return f"{user}@{socket.gethostname()}"


def _registry(state_dir: Path | None, command: str) -> tuple[VertexModelRegistry, str, bool] | int:
    from mlops_cli.target import TargetError, resolve_target
    from pipelines.images import BASE_IMAGE
    from pipelines.registry.vertex import VertexModelRegistry
    from pipelines.vertex_api import VertexSettings

    try:
        target = resolve_target(state_dir)
    except TargetError as exc:
        return _fail(command, str(exc))
    settings = VertexSettings(
        project=target.project, location=target.region, api_endpoint=target.api_endpoint
    )
    # No upload happens here: the serving image is never used, the adapter just requires one.
    return VertexModelRegistry(settings, serving_image=BASE_IMAGE), target.where, target.local


def _fail(command: str, message: str) -> int:
    print(f"mlops-events {command}: {message}", file=sys.stderr)
    return 1


def _metrics(version: ModelVersion) -> str:
    metrics = version.metrics
    return ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())) or "no metrics"


def _decide(args: argparse.Namespace, command: str, act: Callable[[ModelRegistry, str], Outcome]) -> int:
    """Find the registry, tell who decides, run ``act(registry, principal)``, report; the exit code."""
    from pipelines.registry import RegistryError

    found = _registry(args.state_dir, command)
    if isinstance(found, int):
        return found
    registry, where, local = found
    principal = args.by or default_principal(local)
    try:
        outcome = act(registry, principal)
    except RegistryError as exc:
        return _fail(command, f"{exc} (on {where})")
    except Exception as exc:  # the service refused or is unreachable: say which call, not a trace
        return _fail(command, f"{type(exc).__name__}: {exc} (on {where})")
    if outcome.action == "already_champion":
        print(f"{outcome.label} is the champion already: nothing changed (on {where})")
    elif outcome.action == "rejected":
        print(f"rejected {outcome.label} by {principal}: {args.reason.strip()} (on {where}); "
              "it is not promoted unless `mlops-events promote --force`")  # fmt: skip
    else:
        before = (
            f"v{outcome.previous.version} ({_metrics(outcome.previous)})"
            if outcome.previous
            else "no champion"
        )
        print(f"approved {outcome.label} by {principal}: champion moved from {before} to "
              f"v{outcome.version.version} ({_metrics(outcome.version)}) on {where}")  # fmt: skip
        print(
            "its deployment follows from the registry's audit event of the alias move "
            "when a model_registry rule matches alias champion (the shipped rules: deploy-champion)"
        )
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from pipelines.registry.approval import promote

    return _decide(
        args,
        "promote",
        lambda registry, principal: promote(
            registry, args.model, args.version, principal=principal, reason=args.reason, force=args.force
        ),
    )


def cmd_reject(args: argparse.Namespace) -> int:
    from pipelines.registry.approval import reject

    return _decide(
        args,
        "reject",
        lambda registry, principal: reject(
            registry, args.model, args.version, principal=principal, reason=args.reason
        ),
    )
