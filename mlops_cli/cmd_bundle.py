"""``mlops-events bundle --out DIR``: write the deployable functions source."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from deploy.lockfile import LockError
from events.errors import ConfigError
from functions.bundle import build_bundle


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bundle",
        help="build the functions bundle (main.py, requirements.txt, code, templates, rules)",
        description="Write the source that Cloud Build deploys and `functions-framework --source DIR/main.py` serves.",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory (replaced)")
    p.add_argument("--templates", type=Path, help="compiled templates (default: compile now)")
    p.add_argument("--rules", type=Path, help="routing rules file (default: the shipped rules)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    templates = args.templates
    try:
        if templates is None:
            from pipelines.compile import compile_all

            templates = Path(tempfile.mkdtemp(prefix="mlops-templates-"))
            compile_all(templates)
        out = build_bundle(args.out, templates, args.rules)
    except (OSError, ConfigError, LockError) as exc:
        print(f"mlops-events bundle: {exc}", file=sys.stderr)
        return 2
    print(f"bundle written to {out}")
    print(
        f"  serve one function: functions-framework --source {out}/main.py --target on_new_data --signature-type cloudevent"
    )
    return 0
