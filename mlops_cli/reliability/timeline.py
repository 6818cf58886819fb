"""What happens while the events are delivered: bursts being written, instances killed, the
storage emulator restarted."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_cli.reliability.events import Delivery, storage_event
from mlops_cli.reliability.instances import Instances
from mlops_cli.reliability.plan import BURST_GAP_SECONDS, Plan


@dataclass
class Written:
    """An object written during the run: its URI, its creation time (the bucket's) and its burst."""

    uri: str
    created: float
    burst: int


class Uploader(threading.Thread):
    """Writes each burst's objects at its time, ``BURST_GAP_SECONDS`` apart, and hands each object's
    deliveries to ``deliver(delivery, delay)`` as Eventarc would send them: after a delay."""

    def __init__(
        self,
        plan: Plan,
        deliver: Callable[[Delivery, float], None],
        started: float,
        done: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(daemon=True, name="uploader")
        self.plan = plan
        self.done = done
        self.deliver = deliver
        self.started = started  # monotonic
        self.written: list[Written] = []
        self.event_ids: set[str] = set()  # of every delivery it handed over
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            steps = sorted(
                (burst.start + j * BURST_GAP_SECONDS, b, j)
                for b, burst in enumerate(self.plan.bursts)
                for j in range(len(burst.names))
            )
            for at, b, j in steps:
                time.sleep(max(0.0, self.started + at - time.monotonic()))
                self._write(b, j)
        except BaseException as exc:  # reported by the run: a failed upload invalidates the plan
            self.error = exc
        finally:
            self.done()

    def _write(self, b: int, j: int) -> None:
        from pipelines import storage_io

        burst = self.plan.bursts[b]
        name = burst.names[j]
        blob = storage_io.storage_client().bucket(self.plan.bucket).blob(name)
        for attempt in range(60):  # the storage emulator may be restarting
            try:
                blob.upload_from_string(b"x\n1\n", content_type="text/csv", if_generation_match=0)
                break
            except Exception as exc:
                if "PreconditionFailed" in type(exc).__name__ or "412" in str(exc):
                    blob.reload()  # written by the attempt that seemed to fail
                    break
                if attempt == 59:
                    raise
                time.sleep(0.1)
        created = blob.time_created
        self.written.append(Written(f"gs://{self.plan.bucket}/{name}", created.timestamp(), b))
        event = storage_event(
            self.plan.bucket, name, int(blob.generation), 4, time_created=created.isoformat()
        )
        for delay in burst.delays[j]:
            d = _new_id(event)
            self.event_ids.add(d.headers["ce-id"])
            self.deliver(d, delay)


def _new_id(d: Delivery) -> Delivery:
    import uuid

    return Delivery(d.entry_point, {**d.headers, "ce-id": uuid.uuid4().hex}, d.body, d.label, d.subject)


@dataclass
class Chaos:
    """Kills a random function instance (SIGKILL) every ``kill_every`` seconds and restarts the
    storage emulator every ``restart_every`` seconds, until stopped."""

    instances: Instances
    gcs: Any  # stack.emulators.FakeGcs, restarted in place
    restart_gcs: Callable[[], Any]
    kill_every: float
    restart_every: float
    rng: random.Random
    kills: int = 0
    restarts: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Chaos:
        if self.kill_every > 0:
            self._threads.append(threading.Thread(target=self._kills, daemon=True, name="kills"))
        if self.restart_every > 0:
            self._threads.append(threading.Thread(target=self._restarts, daemon=True, name="gcs-restarts"))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _kills(self) -> None:
        while not self._stop.wait(self.kill_every * self.rng.uniform(0.5, 1.5)):
            inst = self.rng.choice(self.instances.all())
            self.instances.kill_and_restart(inst, downtime=self.rng.uniform(0.2, 1.0))
            self.kills += 1

    def _restarts(self) -> None:
        while not self._stop.wait(self.restart_every * self.rng.uniform(0.5, 1.5)):
            self.gcs = self.restart_gcs()
            self.restarts += 1
