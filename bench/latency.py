"""Warm latency: event in -> CreatePipelineJob out, over HTTP through functions-framework.

One served instance per run, a few warm-up events, then ``events`` sequential storage events for
new objects (each one a launch). Each event's latency is its HTTP round trip minus the Vertex
AI emulator's own time for the call it caused (recorded server side), so what is left is
functions-framework, our code and the network client. p50 and p99 per run; median over runs.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.common import (
    BenchError,
    Objects,
    Subject,
    TimedVertex,
    median,
    object_name,
    percentile,
    served,
    tree_cpu_seconds,
)

WARMUP = 5


def _calls(vertex: TimedVertex, seen: int, started: float, ended: float) -> list[tuple[float, float]]:
    return [(a, b) for a, b in vertex.timings_since(seen) if started <= a <= ended]


def _run(subject: Subject, work: Path, vertex: TimedVertex, objects: Objects, events: int) -> dict[str, Any]:
    vertex.reset()
    latencies: list[float] = []
    round_trips: list[float] = []
    server: list[float] = []
    cpu_start = 0.0
    with served(subject, "on_new_data", work) as (child, url), requests.Session() as http:
        for i in range(WARMUP + events):
            if i == WARMUP:
                cpu_start = tree_cpu_seconds(child.process.pid)
            event = objects.event(object_name(i % 100), f"lat-{uuid.uuid4().hex}")  # a new generation
            seen = len(vertex.timings)
            started = time.perf_counter()
            response = http.post(url, data=event.body, headers=dict(event.headers), timeout=120)
            ended = time.perf_counter()
            if response.status_code != 200:
                raise BenchError(
                    f"{subject.name}: event answered {response.status_code}:\n{child.log_tail()}"
                )
            calls = _calls(vertex, seen, started, ended)
            if not calls:
                raise BenchError(
                    f"{subject.name}: event {i} caused no CreatePipelineJob:\n{child.log_tail()}"
                )
            vertex_time = sum(b - a for a, b in calls)
            if i >= WARMUP:
                round_trips.append((ended - started) * 1000)
                server.append(vertex_time * 1000)
                latencies.append((ended - started - vertex_time) * 1000)
        cpu = tree_cpu_seconds(child.process.pid) - cpu_start
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "round_trip_p50_ms": percentile(round_trips, 50),
        "round_trip_p99_ms": percentile(round_trips, 99),
        "vertex_emulator_p50_ms": percentile(server, 50),
        "cpu_ms_per_event": cpu * 1000 / max(len(latencies), 1),  # the function's process, any load
        "events": len(latencies),
    }


def measure(
    subjects: list[Subject],
    work: Path,
    vertex: TimedVertex,
    objects: Objects,
    reps: int,
    events: int,
    baseline_events: int,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for subject in subjects:
        n = events if subject.name != "baseline" else baseline_events
        runs = [_run(subject, work, vertex, objects, n) for _ in range(reps)]
        result[subject.name] = {key: median([r[key] for r in runs]) for key in runs[0]} | {"runs": runs}
    return result
