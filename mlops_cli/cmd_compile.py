"""``mlops-events compile``: compile every pipeline to a KFP template and write ``manifest.json``.

Every module of ``pipelines/definitions/`` that defines a ``@dsl.pipeline`` is compiled, plus the
pipelines a rules file declares in its ``pipelines:`` section (``--rules``). The manifest carries
each template's digest, source and typed inputs: it is the catalog the router validates against.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile",
        help="compile every pipeline to a KFP template and write manifest.json (the catalog)",
        description="Compile the pipelines (build time, never per request) and write manifest.json "
        "with each template's digest, source and the inputs it declares.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("build/templates"),
        help="output directory (default: build/templates)",
    )
    p.add_argument(
        "--base-image",
        help="image the components run on, also the serving image written into uploads "
        "(default: the one in kfp_components.BASE_IMAGE); give it by digest",
    )
    p.add_argument(
        "--rules",
        type=Path,
        default=Path(os.environ["MLOPS_CONFIG"]) if os.environ.get("MLOPS_CONFIG") else None,
        help="a rules file whose pipelines: section declares more pipelines (default: $MLOPS_CONFIG)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable of every task of our pipelines (repeatable)",
    )
    p.add_argument(
        "--pipeline",
        action="append",
        dest="pipelines",
        metavar="NAME",
        help="compile only these (repeatable)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from events.errors import ConfigError
    from events.rules import declared_pipelines
    from pipelines.compile import MANIFEST, CompileError, compile_all
    from pipelines.discovery import DiscoveryError, referenced

    start = time.perf_counter()
    try:
        env = dict(_pair(item) for item in args.env)
        extra = {}
        if args.rules is not None:
            declared = declared_pipelines(args.rules.read_text(encoding="utf-8"), source=str(args.rules))
            extra = referenced(declared, args.rules.resolve().parent)
        compiled, manifest = compile_all(
            args.out, base_image=args.base_image, names=args.pipelines, extra=extra, env=env
        )
    except (CompileError, ConfigError, DiscoveryError, OSError, ValueError) as exc:
        print(f"mlops-events compile: {exc}", file=sys.stderr)
        return 1
    for c in compiled:
        print(f"  {c.name:<18} {c.source.describe():<44} sha256:{c.sha256[:16]}  {c.seconds * 1000:6.0f} ms")
    print(
        f"compiled {len(compiled)} pipeline(s) with kfp {manifest['kfp_version']} into {args.out} "
        f"({MANIFEST}) in {time.perf_counter() - start:.2f}s"
    )
    return 0


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--env {item!r}: expected KEY=VALUE")
    return key, value
