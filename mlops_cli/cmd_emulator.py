"""``emulator vertex``: the local Vertex AI emulator on its own (see docs/vertex-emulator.md).

Prints its URL as the only line on stdout (logs go to stderr), keeps its state under
``--state-dir`` and stops cleanly on SIGTERM or Ctrl-C (pipeline workers and serving processes
stopped, exit status 0).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

DEFAULT_STATE_DIR = Path(".mlops-local/vertex")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "emulator",
        help="run a local emulator of a Google Cloud service (vertex: Vertex AI)",
        description="Run a local emulator of a Google Cloud service in the foreground.",
    )
    which = p.add_subparsers(dest="emulator", metavar="SERVICE")
    which.required = True
    v = which.add_parser(
        "vertex",
        help="Vertex AI: pipeline jobs (kfp.local), model registry, endpoints, predictions",
        description="Serve the Vertex AI v1 REST API (PipelineService, ModelService, EndpointService, "
        "PredictionService, operations) on 127.0.0.1. Point clients at the printed URL: "
        "aiplatform.init(api_endpoint=URL, api_transport='rest', credentials=AnonymousCredentials()).",
    )
    v.add_argument("--port", type=int, default=0, help="port to listen on (default: a free port)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    v.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"state directory (default {DEFAULT_STATE_DIR})",
    )
    v.add_argument(
        "--audit-events-url",
        help="where to POST the audit-log CloudEvents of model registry writes (default: not sent)",
    )
    v.add_argument("--project-number", default="123456789012", help="the project number in resource names")
    v.add_argument(
        "--execute",
        choices=("kfp-local", "none"),
        default="kfp-local",
        help="kfp-local: run pipeline jobs with kfp.local; none: record them and mark them SUCCEEDED",
    )
    v.add_argument(
        "--serving-command",
        help="command that serves a deployed model, whatever its image "
        "(default: python -m mlops_cli.main serve)",
    )
    v.add_argument(
        "--principal", help="principal of the audit-log entries (header x-mlops-principal overrides)"
    )
    v.add_argument(
        "--max-parallel-jobs", type=int, default=4, help="pipeline jobs running at once (default 4)"
    )
    v.set_defaults(func=cmd_vertex)


def cmd_vertex(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Before the (slow) imports: a SIGTERM while starting still ends in a clean stop.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    import logging

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from stack.vertex.audit import DEFAULT_PRINCIPAL
    from stack.vertex.emulator import VertexEmulator
    from stack.vertex.serving import DEFAULT_COMMAND

    try:
        emulator = VertexEmulator(
            args.state_dir,
            port=args.port,
            host=args.host,
            audit_events_url=args.audit_events_url,
            execute=args.execute,
            project_number=args.project_number,
            principal=args.principal or DEFAULT_PRINCIPAL,
            serving_command=shlex.split(args.serving_command) if args.serving_command else DEFAULT_COMMAND,
            max_parallel_jobs=args.max_parallel_jobs,
        ).start()
    except (OSError, ValueError) as exc:
        print(f"error: the Vertex AI emulator did not start: {exc}", file=sys.stderr)
        return 2
    print(emulator.url, flush=True)
    print(f"Vertex AI emulator on {emulator.url}, state in {emulator.state_dir}", file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        emulator.stop()
    print("Vertex AI emulator stopped", file=sys.stderr, flush=True)
    return 0
