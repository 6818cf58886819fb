"""Burst: ``events`` storage events for ``objects`` objects, ``duplicates`` of them redeliveries,
against one served instance with the state store on fake-gcs-server.

Each object exists in the bucket (written once: its live generation); the storm carries events
for that generation and for older ones (the object was overwritten ``events / objects`` times
before the events arrived), in shuffled order, and a share of redeliveries (half with the same
event id, half with a new event id for the same generation, as Eventarc and GCS both do).
Exactly once means one run per object: older generations are stale, redeliveries map to the
same job id. Non-2xx answers are redelivered after a short back-off, as Eventarc does.

Figures: events per second (deliveries answered 2xx / wall time), runs created (jobs at the
Vertex AI emulator) against the runs expected, and the server's peak RSS.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import requests

from bench.common import (
    BenchError,
    Objects,
    StorageEvent,
    Subject,
    TimedVertex,
    median,
    object_name,
    serve,
    storage_event,
    tree_cpu_seconds,
    wait_ready,
)

CONCURRENCY = 16  # in-flight deliveries (functions-framework serves 4 threads per core)
MAX_ATTEMPTS = 20


def storm(
    objects: Objects, n_events: int, n_objects: int, duplicate_share: float, seed: int
) -> list[StorageEvent]:
    rng = random.Random(seed)
    n_dupes = round(n_events * duplicate_share)
    n_unique = n_events - n_dupes
    live = {object_name(i): objects.put(object_name(i)) for i in range(n_objects)}
    unique: list[StorageEvent] = []
    names = list(live)
    for k in range(n_unique):
        name = names[k % n_objects]
        age = k // n_objects  # 0 = the live generation, then older ones
        generation = live[name] - age * 1000
        unique.append(storage_event(name, generation, f"burst-{uuid.uuid4().hex}"))
    rng.shuffle(unique)
    stream = list(unique)
    for _ in range(n_dupes):
        original = unique[rng.randrange(len(unique))]
        copy = (
            original
            if rng.random() < 0.5
            else storage_event(original.name, original.generation, f"re-{uuid.uuid4().hex}")
        )
        stream.insert(rng.randrange(len(stream) + 1), copy)
    return stream


def _send(url: str, stream: list[StorageEvent], concurrency: int) -> dict[str, Any]:
    queue: deque[tuple[StorageEvent, int]] = deque((e, 1) for e in stream)
    lock = threading.Lock()
    counts = {"ok": 0, "retried": 0, "failed": 0}
    pending = [len(stream)]

    def worker() -> None:
        with requests.Session() as http:
            while True:
                with lock:
                    if not pending[0]:
                        return
                    item = queue.popleft() if queue else None
                if item is None:
                    time.sleep(0.005)
                    continue
                event, attempt = item
                try:
                    status = http.post(
                        url, data=event.body, headers=dict(event.headers), timeout=60
                    ).status_code
                except requests.RequestException:
                    status = 599
                with lock:
                    if 200 <= status < 300:
                        counts["ok"] += 1
                        pending[0] -= 1
                    elif attempt < MAX_ATTEMPTS:
                        counts["retried"] += 1
                        queue.append((event, attempt + 1))  # redelivered later, as Eventarc does
                    else:
                        counts["failed"] += 1
                        pending[0] -= 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {**counts, "seconds": time.perf_counter() - started}


def _run(
    subject: Subject, work: Path, vertex: TimedVertex, objects: Objects, n_events: int, n_objects: int,
    duplicate_share: float, seed: int,
) -> dict[str, Any]:  # fmt: skip
    vertex.reset()
    stream = storm(objects, n_events, n_objects, duplicate_share, seed)
    child, url = serve(subject, "on_new_data", work)
    try:
        wait_ready(child, url)
        cpu_start = tree_cpu_seconds(child.process.pid)
        sent = _send(url, stream, CONCURRENCY)
        cpu = tree_cpu_seconds(child.process.pid) - cpu_start
    finally:
        rss = child.stop()
    if sent["ok"] == 0:
        raise BenchError(f"{subject.name}: no event of the burst was accepted:\n{child.log_tail()}")
    created = vertex.stats.created
    expected = len({e.name for e in stream})  # each object's live generation is in the stream
    return {
        "events": len(stream),
        "objects": expected,
        "duplicates": len(stream) - len({(e.name, e.generation) for e in stream}),
        "events_per_s": len(stream) / sent["seconds"],
        "seconds": sent["seconds"],
        "runs_created": created,
        "runs_expected": expected,
        "exactly_once": created == expected and sent["failed"] == 0,
        "create_calls": vertex.stats.create_calls,
        "redeliveries": sent["retried"],
        "failed": sent["failed"],
        "peak_rss_mb": rss,
        "cpu_ms_per_event": cpu * 1000 / len(stream),
    }


def measure(
    subjects: list[Subject], work: Path, vertex: TimedVertex, objects: Objects, reps: int, events: int,
    baseline_events: int, n_objects: int = 100, duplicate_share: float = 0.2,
) -> dict[str, Any]:  # fmt: skip
    result: dict[str, Any] = {}
    for subject in subjects:
        n = events if subject.name != "baseline" else baseline_events
        runs = [
            _run(subject, work, vertex, objects, n, min(n_objects, n), duplicate_share, seed)
            for seed in range(reps if subject.name != "baseline" else 1)
        ]
        numeric = [k for k, v in runs[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
        result[subject.name] = {k: median([r[k] for r in runs]) for k in numeric} | {
            "exactly_once": all(r["exactly_once"] for r in runs),
            "runs": runs,
        }
    return result
