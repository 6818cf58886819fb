"""``mlops-events``: the command line. Each subcommand lives in its own module with ``register``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Modules under mlops_cli that define subcommands (each exposes ``register(subparsers)``).
COMMAND_MODULES: tuple[str, ...] = (
    "cmd_route",
    "cmd_bundle",
    "cmd_gcp",
    "cmd_run",
    "cmd_compile",
    "cmd_pipelines",
    "cmd_replay",
    "cmd_reliability",
    "cmd_stack",
    "cmd_serve",
    "cmd_emulator",
    "cmd_rerun",
    "cmd_promote",
    "cmd_schedules",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-events",
        description="Event-driven MLOps on Google Cloud: route events to Vertex AI pipelines, locally or in the cloud.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"mlops_cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe can be handled, not at interpreter exit
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `mlops-events status | head`: the reader has gone, which is not an error to report.
        # Point stdout at /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it
    return code


if __name__ == "__main__":
    sys.exit(main())
