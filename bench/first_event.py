"""First event: a fresh functions-framework process, sent one storage event as soon as it accepts
connections, timed from spawn until the Vertex AI emulator receives CreatePipelineJob."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.common import BenchError, Objects, Subject, TimedVertex, median, object_name, serve


def _first(subject: Subject, work: Path, vertex: TimedVertex, objects: Objects, i: int) -> dict[str, float]:
    vertex.reset()
    event = objects.event(object_name(i), f"first-{uuid.uuid4().hex}")
    child, url = serve(subject, "on_new_data", work)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                response = requests.post(url, data=event.body, headers=dict(event.headers), timeout=120)
                break
            except requests.ConnectionError:  # not listening yet
                if child.process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(
                        f"{subject.name} never served its first event:\n{child.log_tail()}"
                    ) from None
                time.sleep(0.002)
        answered = time.perf_counter() - child.started
        timings = vertex.timings_since(0) if response.status_code == 200 else []
        if not timings:
            raise BenchError(
                f"{subject.name}: first event answered {response.status_code}, "
                f"{len(vertex.timings)} CreatePipelineJob received:\n{child.log_tail()}"
            )
        received = timings[0][0] - child.started
    finally:
        child.stop()
    return {"to_create_s": received, "answered_s": answered}


def measure(
    subjects: list[Subject], work: Path, vertex: TimedVertex, objects: Objects, reps: int
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for subject in subjects:
        runs = [_first(subject, work, vertex, objects, i) for i in range(reps)]
        result[subject.name] = {
            "to_create_s": median([r["to_create_s"] for r in runs]),
            "answered_s": median([r["answered_s"] for r in runs]),
            "runs": runs,
        }
    return result
