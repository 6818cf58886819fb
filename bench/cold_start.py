"""Cold start: a fresh process from spawn until the function can serve.

Two views, both fresh processes, each a median over ``reps`` runs (after one discarded import that
writes the bytecode caches, as a deployed image has them):
- import: ``python -c "import main"`` in the source directory (for our bundle, plus loading the
  rules and the manifest, which the first request would otherwise do): wall time and peak RSS;
- ready: ``functions-framework --target T`` from spawn until its first HTTP answer, per entry point;
  peak RSS of the server (gunicorn's arbiter and its worker) read when it stops.

The floor (``bench/floor``, an empty function) is measured too, its runs alternating with ours for
``on_new_data``, so that "above the floor" compares runs made under the same load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import Subject, floor_subject, median, run_python, serve, wait_ready

_IMPORT = {
    "mlops-events": "import main\nfrom functions.runtime import runtime\nruntime().warm()",
    "baseline": "import main",  # its setup (aiplatform.init) runs at import
}


def measure_import(subject: Subject, reps: int) -> dict[str, Any]:
    code = _IMPORT[subject.name]
    run_python(code, subject.env, subject.directory)  # warm the bytecode cache
    runs = [run_python(code, subject.env, subject.directory) for _ in range(reps)]
    return {
        "wall_s": median([w for w, _ in runs]),
        "peak_rss_mb": median([r for _, r in runs]),
        "runs": [{"wall_s": w, "peak_rss_mb": r} for w, r in runs],
    }


def measure_ready(subject: Subject, target: str, work: Path, reps: int) -> dict[str, Any]:
    # measure_import ran first: the bytecode caches are written
    runs = [
        dict(zip(("ready_s", "peak_rss_mb"), _ready_once(subject, target, work), strict=True))
        for _ in range(reps)
    ]
    return {
        "ready_s": median([r["ready_s"] for r in runs]),
        "peak_rss_mb": median([r["peak_rss_mb"] for r in runs]),
        "runs": runs,
    }


def _ready_once(subject: Subject, target: str, work: Path) -> tuple[float, float]:
    """One fresh server: (seconds from spawn to its first answer, peak RSS MB read when it stops)."""
    child, url = serve(subject, target, work)
    try:
        ready = wait_ready(child, url)
    finally:
        rss = child.stop()
    return ready, rss


def measure_floor(ours: Subject, work: Path, reps: int) -> dict[str, Any]:
    """The empty function and ours (on_new_data), run in turn: floor, ours, floor, ours ..."""
    floor = floor_subject()
    _ready_once(floor, "on_new_data", work)  # writes the floor's bytecode cache
    pairs = [
        (_ready_once(floor, "on_new_data", work)[0], _ready_once(ours, "on_new_data", work)[0])
        for _ in range(reps)
    ]
    return {
        "ready_s": median([f for f, _ in pairs]),
        "ours_ready_s": median([o for _, o in pairs]),
        "above_floor_s": median([o - f for f, o in pairs]),
        "runs": [{"floor_s": f, "ours_s": o} for f, o in pairs],
    }


def measure(subjects: list[Subject], work: Path, reps: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for subject in subjects:
        result[subject.name] = {
            "import": measure_import(subject, reps),
            "ready": {target: measure_ready(subject, target, work, reps) for target in subject.targets},
        }
    ours = next(s for s in subjects if s.name == "mlops-events")
    result["floor"] = measure_floor(ours, work, reps)
    return result
