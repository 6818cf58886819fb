"""``python -m bench.run`` (``make bench``): every figure of issue 6, ours beside the naive baseline,
printed as a table and written to ``bench/results/latest.json``.

Stand-ins for the cloud: the project's Vertex AI emulator in a process of its own
(``bench.vertex_server``: jobs recorded, not run; timed per request so its own time is
subtracted), fake-gcs-server (the guards' state store and the objects the
events are about), and a storage stub for the bucket checks the baseline's ``submit()`` makes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import burst, cold_start, compile_bench, first_event, latency
from bench.common import REPO, Objects, StorageStub, prepare_subjects, timed_vertex

RESULTS = REPO / "bench" / "results" / "latest.json"


@dataclass(frozen=True)
class Config:
    reps: int = 5
    latency_events: int = 300
    baseline_latency_events: int = 30
    burst_events: int = 10_000
    burst_objects: int = 100
    burst_reps: int = 3
    baseline_burst_events: int = 200
    duplicate_share: float = 0.2


QUICK = Config(
    reps=1, latency_events=30, baseline_latency_events=3, burst_events=200, burst_objects=20, burst_reps=1,
    baseline_burst_events=20,
)  # fmt: skip


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "memory_mb": mem_mb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run(config: Config, work: Path) -> dict[str, Any]:
    from stack.emulators import start_fake_gcs

    started = time.time()
    load_before = os.getloadavg()
    figures: dict[str, Any] = {}
    with timed_vertex() as vertex, StorageStub() as stub, start_fake_gcs(work / "fake-gcs") as gcs:
        subjects = prepare_subjects(work, vertex.url, gcs.host, stub.url)
        objects = Objects(gcs.host)
        print(f"bench: work dir {work}", file=sys.stderr)
        steps = [
            ("cold_start", lambda: cold_start.measure(subjects, work, config.reps)),
            ("first_event", lambda: first_event.measure(subjects, work, vertex, objects, config.reps)),
            ("warm_latency", lambda: latency.measure(
                subjects, work, vertex, objects, config.reps, config.latency_events, config.baseline_latency_events)),
            ("burst", lambda: burst.measure(
                subjects, work, vertex, objects, config.burst_reps, config.burst_events,
                config.baseline_burst_events, config.burst_objects, config.duplicate_share)),
            ("compile", lambda: compile_bench.measure(work, config.reps)),
        ]  # fmt: skip
        for name, step in steps:
            t = time.perf_counter()
            figures[name] = step()
            print(f"bench: {name} done in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "machine": machine(),
        # Other work on the machine skews every figure (p99 most): recorded, not corrected for.
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "config": config.__dict__,
        "figures": figures,
    }
    result["summary"] = summarize(figures)
    return result


def summarize(f: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers and whether each target of issue 6 is met."""
    ours, base = f["cold_start"]["mlops-events"], f["cold_start"]["baseline"]
    ready = max(r["ready_s"] for r in ours["ready"].values())
    base_ready = max(r["ready_s"] for r in base["ready"].values())
    rss = max([r["peak_rss_mb"] for r in ours["ready"].values()] + [ours["import"]["peak_rss_mb"]])
    b = f["burst"]["mlops-events"]
    s = {
        "cold_start_ready_s": ready,
        "cold_start_speedup": base_ready / ready,
        "cold_start_peak_rss_mb": rss,
        "floor_ready_s": f["cold_start"]["floor"]["ready_s"],
        "cold_start_above_floor_s": f["cold_start"]["floor"]["above_floor_s"],
        "first_event_s": f["first_event"]["mlops-events"]["to_create_s"],
        "warm_p50_ms": f["warm_latency"]["mlops-events"]["p50_ms"],
        "warm_p99_ms": f["warm_latency"]["mlops-events"]["p99_ms"],
        "burst_events_per_s": b["events_per_s"],
        "burst_runs_created": b["runs_created"],
        "burst_runs_expected": b["runs_expected"],
        "burst_exactly_once": b["exactly_once"],
        "compile_all_s": f["compile"]["wall_s"],
    }
    s["targets"] = {
        "cold_start_ready <= 0.2 s": s["cold_start_ready_s"] <= 0.2,
        "cold_start >= 8x faster than baseline": s["cold_start_speedup"] >= 8,
        "peak RSS <= 100 MB": s["cold_start_peak_rss_mb"] <= 100,
        "first event <= 0.35 s": s["first_event_s"] <= 0.35,
        "warm p99 <= 20 ms": s["warm_p99_ms"] <= 20,
        "burst >= 300 events/s, exactly once": s["burst_events_per_s"] >= 300
        and bool(s["burst_exactly_once"]),
        "compile all <= 3 s": s["compile_all_s"] <= 3.0,
    }
    return s


def table(result: dict[str, Any], markdown: bool = False) -> str:
    f, s = result["figures"], result["summary"]
    cs = f["cold_start"]
    rows: list[tuple[str, str, str, str, str]] = []

    def both(key: str, fmt: str, get: Any, target: str = "", higher_is_better: bool | None = False) -> None:
        ours, base = get("mlops-events"), get("baseline")
        # How many times better than the baseline (below 1: worse), for a time, a size or a rate.
        ratio = "-"
        if higher_is_better is not None and isinstance(base, float | int) and isinstance(ours, float | int):
            ratio = f"{(ours / base) if higher_is_better else (base / ours):.1f}x" if base and ours else "-"
        rows.append((key, fmt.format(ours), fmt.format(base) if base is not None else "-", ratio, target))

    both("cold start: import + setup (s)", "{:.3f}", lambda n: cs[n]["import"]["wall_s"])
    both("cold start: import peak RSS (MB)", "{:.0f}", lambda n: cs[n]["import"]["peak_rss_mb"])
    for target in cs["mlops-events"]["ready"]:
        both(
            f"ready to serve, {target} (s)",
            "{:.3f}",
            lambda n, t=target: cs[n]["ready"].get(t, {}).get("ready_s"),
            "<= 0.2, >= 8x" if target == "on_new_data" else "",
        )
    fl = cs["floor"]
    rows.append(("ready, empty function: the floor (s)", f"{fl['ready_s']:.3f}", "-", "-", "(this machine)"))
    rows.append(("ready, ours above the floor (s)", f"{fl['above_floor_s']:.3f}", "-", "-", "in turn"))
    both(
        "ready: peak RSS (MB)",
        "{:.0f}",
        lambda n: max(r["peak_rss_mb"] for r in cs[n]["ready"].values()),
        "<= 100",
    )
    both(
        "first event -> CreatePipelineJob (s)",
        "{:.3f}",
        lambda n: f["first_event"][n]["to_create_s"],
        "<= 0.35",
    )
    both("warm latency p50 (ms, minus Vertex)", "{:.2f}", lambda n: f["warm_latency"][n]["p50_ms"])
    both("warm latency p99 (ms, minus Vertex)", "{:.2f}", lambda n: f["warm_latency"][n]["p99_ms"], "<= 20")
    both(
        "warm round trip p50 (ms, with Vertex)", "{:.2f}", lambda n: f["warm_latency"][n]["round_trip_p50_ms"]
    )
    both("warm: function CPU per event (ms)", "{:.2f}", lambda n: f["warm_latency"][n]["cpu_ms_per_event"])
    both("burst: events", "{:.0f}", lambda n: f["burst"][n]["events"], higher_is_better=None)
    both(
        "burst: events/s", "{:.0f}", lambda n: f["burst"][n]["events_per_s"], ">= 300", higher_is_better=True
    )
    both(
        "burst: runs created / expected",
        "{}",
        lambda n: f"{f['burst'][n]['runs_created']:.0f} / {f['burst'][n]['runs_expected']:.0f}",
        "equal",
    )
    both("burst: function CPU per event (ms)", "{:.2f}", lambda n: f["burst"][n]["cpu_ms_per_event"])
    both("burst: peak RSS (MB)", "{:.0f}", lambda n: f["burst"][n]["peak_rss_mb"])
    rows.append(
        (
            "compile all pipelines, fresh process (s)",
            f"{f['compile']['wall_s']:.2f}",
            "per request",
            "-",
            "<= 3",
        )
    )
    header = ("figure", "mlops-events", "baseline", "vs baseline", "target")
    if markdown:
        md = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---|"]
        return "\n".join(md + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(len(header))]
    lines = [
        " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    m = result["machine"]
    load = result["load_average"]
    lines.append(
        f"\nmachine: {m['cpus']} cpus ({m['cpu']}), {m['memory_mb']} MB, Python {m['python']}; "
        f"load average {load['before'][0]:.1f} before, {load['after'][0]:.1f} after"
    )
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in s["targets"].items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    p.add_argument(
        "--quick", action="store_true", help="a tiny configuration (smoke test; figures not meaningful)"
    )
    p.add_argument("--reps", type=int, help="fresh processes per figure (median)")
    p.add_argument("--burst-events", type=int)
    p.add_argument("--latency-events", type=int)
    p.add_argument(
        "--out", type=Path, default=RESULTS, help=f"result JSON (default {RESULTS.relative_to(REPO)})"
    )
    p.add_argument("--work", type=Path, help="scratch directory (default: a temporary one, removed)")
    p.add_argument(
        "--markdown",
        type=Path,
        metavar="JSON",
        help="print the table of a result file as Markdown, run nothing",
    )
    args = p.parse_args(argv)
    if args.markdown:
        print(table(json.loads(args.markdown.read_text(encoding="utf-8")), markdown=True))
        return 0
    config = QUICK if args.quick else Config()
    overrides = {"reps": args.reps, "burst_events": args.burst_events, "latency_events": args.latency_events}
    config = Config(**(config.__dict__ | {k: v for k, v in overrides.items() if v is not None}))
    work = args.work or Path(tempfile.mkdtemp(prefix="mlops-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = run(config, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
