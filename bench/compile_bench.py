"""Compile: every catalog pipeline, in a fresh process (``mlops-events compile --out DIR``), as the
build does it. The baseline compiles one pipeline inside every request instead: its cost shows in
its warm latency."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, BenchError, base_env, median, spawn

CLI = str(Path(PYTHON).with_name("mlops-events"))


def _once(out: Path) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    child = spawn(
        [CLI, "compile", "--out", str(out)], base_env(), out.parent, out.parent / "logs" / "compile.log"
    )
    code, rss = child.wait()
    wall = time.perf_counter() - child.started
    if code != 0:
        raise BenchError(f"mlops-events compile exited with {code}:\n{child.log_tail()}")
    return wall, rss


def measure(work: Path, reps: int) -> dict[str, Any]:
    out = work / "compile-out"
    _once(out)  # bytecode caches
    runs = [_once(out) for _ in range(reps)]
    pipelines = sorted(p.stem for p in out.glob("*.yaml"))
    return {
        "wall_s": median([w for w, _ in runs]),
        "peak_rss_mb": median([r for _, r in runs]),
        "pipelines": pipelines,
        "runs": [{"wall_s": w, "peak_rss_mb": r} for w, r in runs],
    }
