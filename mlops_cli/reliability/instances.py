"""Function instances: functions-framework subprocesses (gunicorn, as deployed), several per entry
point, that the run can kill with SIGKILL and start again on the same port (a crashed Cloud Run
instance: its in-flight requests fail, the platform redelivers them to another instance)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"


@dataclass
class Instance:
    entry_point: str
    index: int
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    kills: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--target", self.entry_point, "--source", str(MAIN),
             "--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=MAIN.parent.parent,
            start_new_session=True,  # SIGKILL of the group takes gunicorn's worker with it
        )  # fmt: skip
        out.close()

    def kill(self) -> None:
        """SIGKILL, no clean-up: in-flight requests die with the process."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.kills += 1

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Instances:
    """Every instance of every entry point; ``url_for`` picks a live one at random."""

    by_entry_point: dict[str, list[Instance]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _down: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def start(
        cls,
        entry_points: Sequence[str],
        count: int,
        env: Mapping[str, str],
        workdir: Path,
        *,
        per_instance_env: Sequence[Mapping[str, str]] = (),
    ) -> Instances:
        from stack.emulators import free_port

        out = cls()
        for entry_point in entry_points:
            out.by_entry_point[entry_point] = []
            for i in range(count):
                extra = dict(per_instance_env[i]) if i < len(per_instance_env) else {}
                inst = Instance(
                    entry_point, i, free_port(), {**env, **extra}, workdir / f"{entry_point}-{i}.log"
                )
                inst.start()
                out.by_entry_point[entry_point].append(inst)
        out.wait_ready()
        return out

    def all(self) -> list[Instance]:
        return [i for group in self.by_entry_point.values() for i in group]

    def url_for(self, entry_point: str, rng: random.Random) -> str:
        group = self.by_entry_point[entry_point]
        with self._lock:
            live = [i for i in group if (i.entry_point, i.index) not in self._down] or group
            return rng.choice(live).url

    def kill_and_restart(self, inst: Instance, downtime: float) -> None:
        """SIGKILL ``inst``; requests routed to it meanwhile fail (as on a dead instance); start it
        again after ``downtime`` seconds on the same port."""
        with self._lock:
            self._down.add((inst.entry_point, inst.index))
        inst.kill()
        time.sleep(downtime)
        inst.start()
        wait_ready([inst.url])
        with self._lock:
            self._down.discard((inst.entry_point, inst.index))

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_ready([i.url for i in self.all()], timeout)

    def stop(self) -> None:
        for inst in self.all():
            inst.stop()


def wait_ready(urls: Sequence[str], timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"functions-framework did not start at {url}") from None
                time.sleep(0.1)
