"""``python -m bench.vertex_server``: the Vertex AI emulator for the benchmarks, in a process of its
own, timing each POST it serves; prints its URL, then serves until stdin closes or SIGTERM.

Why a process of its own: the emulator loads the aiplatform_v1 protos (~70 MB), and a child's peak
RSS as ``wait4`` reports it is at least the spawning process's RSS (exec keeps the old image's
high-water mark), so an in-process emulator would inflate every RSS figure of our functions.

Extra routes (GET, not Vertex's): ``/_bench/timings`` (the (start, end) perf_counter of every POST,
CLOCK_MONOTONIC: comparable across processes on Linux), ``/_bench/stats``, ``/_bench/reset``.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from typing import Any

from stack.json_http import JsonHandler
from stack.vertex.emulator import VertexEmulator
from stack.vertex.ephemeral import ephemeral


class TimedEmulator(VertexEmulator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.timings: list[tuple[float, float]] = []
        self._timings_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def handler_class(self) -> type[JsonHandler]:
        base = super().handler_class()
        emulator = self

        # (The emulator sets TCP_NODELAY itself: without it every launch measured 40 ms of Nagle.)
        class Timed(base):  # type: ignore[valid-type,misc]
            def do_POST(self) -> None:
                started = time.perf_counter()
                super().do_POST()
                with emulator._timings_lock:
                    emulator.timings.append((started, time.perf_counter()))

            def do_GET(self) -> None:
                if not self.path.startswith("/_bench/"):
                    super().do_GET()
                elif self.path == "/_bench/timings":
                    with emulator._timings_lock:
                        self.answer(200, {"timings": list(emulator.timings)})
                elif self.path == "/_bench/stats":
                    self.answer(200, dataclasses.asdict(emulator.stats))
                elif self.path == "/_bench/reset":
                    emulator.forget_pipeline_jobs()
                    with emulator._timings_lock:
                        emulator.timings.clear()
                    self.answer(200, {})
                else:
                    self.answer(404, {"error": {"code": 404, "message": self.path}})

        return Timed


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ephemeral(TimedEmulator) as vertex:
        print(vertex.url, flush=True)

        def until_stdin_closes() -> None:  # the harness closes it to stop us, or died
            sys.stdin.read()
            stop.set()

        threading.Thread(target=until_stdin_closes, daemon=True).start()
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
