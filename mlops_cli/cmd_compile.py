"""``mlops-events compile [--out DIR] [--base-image IMAGE]``: compile every pipeline + manifest."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile",
        help="compile every pipeline to a KFP template and write manifest.json with their digests",
        description="Compile the catalog's pipelines (build time, never per request); each template's "
        "inputs are checked against the catalog.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("build/templates"),
        help="output directory (default: build/templates)",
    )
    p.add_argument(
        "--base-image", help="image the components run on (default: the one in kfp_components.BASE_IMAGE)"
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
    from pipelines.catalog import PIPELINES
    from pipelines.compile import MANIFEST, CompileError, compile_all

    unknown = [n for n in args.pipelines or [] if n not in PIPELINES]
    if unknown:
        print(
            f"mlops-events compile: unknown pipeline(s) {', '.join(unknown)} (known: {', '.join(PIPELINES)})",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    try:
        compiled, manifest = compile_all(args.out, base_image=args.base_image, names=args.pipelines)
    except CompileError as exc:
        print(f"mlops-events compile: {exc}", file=sys.stderr)
        return 1
    for c in compiled:
        print(f"  {c.name:<18} {c.path.name:<22} sha256:{c.sha256[:16]}  {c.seconds * 1000:6.0f} ms")
    print(
        f"compiled {len(compiled)} pipeline(s) with kfp {manifest['kfp_version']} into {args.out} "
        f"({MANIFEST}) in {time.perf_counter() - start:.2f}s"
    )
    return 0
