"""Delivery as Eventarc does it: every non-2xx answer (or a dead connection) is redelivered after a
back-off, to any live instance, without holding up the other deliveries."""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_cli.reliability.events import Delivery


@dataclass
class Tally:
    sent: int = 0  # first deliveries (what --events counts)
    attempts: int = 0  # HTTP requests, redeliveries included
    not_accepted: int = 0
    deferred: int = 0  # 500s of a debounce window still open (the redelivery is the timer)
    status: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Redeliveries:
    """Deliveries due at a time. ``hold`` keeps the queue open while a producer may still add
    (the burst uploader); workers stop when nothing is pending and nobody holds it."""

    def __init__(self, max_attempts: int = 400) -> None:
        self.max_attempts = max_attempts
        self._heap: list[tuple[float, int, Delivery, int]] = []
        self._seq = 0
        self._pending = 0
        self._cond = threading.Condition()

    def put(self, d: Delivery, due: float = 0.0, attempt: int = 0) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, d, attempt))
            self._pending += 1
            self._cond.notify()

    def hold(self) -> None:
        with self._cond:
            self._pending += 1

    def release(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def take(self) -> tuple[Delivery, int] | None:
        with self._cond:
            while True:
                if self._pending == 0:
                    self._cond.notify_all()
                    return None
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    _, _, d, attempt = heapq.heappop(self._heap)
                    return d, attempt
                self._cond.wait(timeout=(self._heap[0][0] - now) if self._heap else 0.1)

    def done(self, d: Delivery, attempt: int, accepted: bool, tally: Tally) -> None:
        if not accepted and attempt + 1 < self.max_attempts:
            delay = min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.5)
            self.put(d, time.monotonic() + delay, attempt + 1)
        elif not accepted:
            with tally.lock:
                tally.not_accepted += 1
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()


def post(session: Any, url: str, d: Delivery, tally: Tally, first: bool) -> bool:
    deferred = False
    try:
        response = session.post(url, data=d.body, headers=d.headers, timeout=30)
        status = response.status_code
        deferred = status == 500 and response.content.startswith(b"debounce:")
    except Exception:
        status = 599  # connection refused or reset: the instance died
    with tally.lock:
        tally.deferred += int(deferred)
        tally.attempts += 1
        tally.sent += int(first)
        tally.status[status] += 1
    return 200 <= status < 300


def run_workers(
    queue: Redeliveries, url_for: Callable[[str, random.Random], str], tally: Tally, threads: int
) -> None:
    """Deliver until the queue is drained, from ``threads`` workers."""
    import requests

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        while (item := queue.take()) is not None:
            d, attempt = item
            ok = post(session, url_for(d.entry_point, rng), d, tally, attempt == 0)
            if not ok:
                session.close()  # a killed instance leaves dead keep-alive connections behind
                session = requests.Session()
            queue.done(d, attempt, ok, tally)

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
