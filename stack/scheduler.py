"""The local stack plays Cloud Scheduler from the rules file's ``schedules:``, as the bridge plays
Eventarc.

``SchedulePlayer`` is a thread of the ``up`` process: for each schedule it computes the next fire
time with the cron evaluator (``events.cron``, wall clock of the schedule's zone), and when that
time comes it publishes the schedule's run request on the run-requests topic through the stack's
own publish path (``stack.dispatch.publish``: the Pub/Sub emulator, or the embedded dispatcher),
with ``idempotency_key = "<name>-<fire time>"`` (``Schedule.run_request``). From there it is a run
request like any other: the function routes it, the guards and the lineage apply, and a tick that
is published twice is one pipeline job.

Like Cloud Scheduler, missed ticks are not replayed: when the clock jumps over several (a laptop
that slept), the latest one fires and the others are counted as skipped. Every fire is one JSON
line in ``<state>/logs/schedules.jsonl``.

``fire(name)`` publishes a schedule's run request now (what ``mlops-events schedules fire NAME``
and the demo do, like ``gcloud scheduler jobs run``): its key is the current second, so it is a
run of its own. The clock is injectable: tests drive the player with ``ManualClock``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from events.schedules import Schedule, message_bytes

Publish = Callable[[bytes], str]  # the message's data -> its message id
RUN_REQUESTS_TOPIC = "run-requests"  # the local stack's topic (stack.config.TOPICS)
MAX_WAIT_S = 5.0  # re-read the clock at least this often (a wall clock can jump)
RETRY_S = 2.0  # after a failed publish


class Clock(Protocol):
    def now(self) -> datetime: ...
    def wait(self, seconds: float, stop: threading.Event) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(seconds)


class ManualClock:
    """A clock that only moves when told to; ``advance`` and ``set`` wake a waiting player at once."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._moved:
            self._now = when.astimezone(UTC)
            self._moved.notify_all()

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        # However long the schedule says, only a move of the clock (or a stop) ends the wait.
        del seconds
        with self._moved:
            self._moved.wait(timeout=0.05)


@dataclass(frozen=True)
class Fired:
    schedule: str
    fire_time: datetime
    idempotency_key: str
    message_id: str | None
    skipped: int = 0  # missed ticks that were not fired (the clock jumped over them)
    error: str | None = None
    manual: bool = False

    def document(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "fire_time": self.fire_time.isoformat(),
            "idempotency_key": self.idempotency_key,
            "message_id": self.message_id,
            "skipped": self.skipped,
            "error": self.error,
            "manual": self.manual,
        }


class SchedulePlayer:
    def __init__(
        self,
        schedules: Sequence[Schedule],
        publish: Publish,
        *,
        clock: Clock | None = None,
        log_path: Path | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.schedules = {s.name: s for s in schedules}
        self._publish = publish
        self.clock: Clock = clock or SystemClock()
        self.log_path = log_path
        self._echo = echo
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired: list[Fired] = []
        now = self.clock.now()
        self._next: dict[str, datetime] = {
            s.name: fires[0] for s in schedules if (fires := s.next_fires(now, 1))
        }

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None and self.schedules:
            self._thread = threading.Thread(target=self._loop, name="schedule-player", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def next_fires(self) -> dict[str, datetime]:
        with self._lock:
            return dict(self._next)

    def fire(self, name: str, at: datetime | None = None) -> Fired:
        """Publish schedule ``name``'s run request now (or as the tick ``at``). Raises KeyError for
        an unknown name, and what the publish path raises."""
        schedule = self.schedules.get(name)
        if schedule is None:
            raise KeyError(f"no schedule {name!r} (schedules: {', '.join(self.schedules) or 'none'})")
        when = (at or self.clock.now()).astimezone(UTC).replace(microsecond=0)
        fired = self._send(schedule, when, skipped=0, manual=at is None, raise_errors=True)
        return fired

    def run_due(self) -> list[Fired]:
        """Fire every schedule whose next fire time has come (the player's thread calls this)."""
        now = self.clock.now()
        out: list[Fired] = []
        for name, schedule in self.schedules.items():
            with self._lock:
                due = self._next.get(name)
            if due is None or due > now:
                continue
            ticks = [due, *schedule.cron.between(schedule.zone, due, now)]
            fired = self._send(schedule, ticks[-1], skipped=len(ticks) - 1, manual=False, raise_errors=False)
            out.append(fired)
            if fired.error is None:
                following = schedule.next_fires(now, 1)
                with self._lock:
                    if following:
                        self._next[name] = following[0]
                    else:
                        self._next.pop(name, None)
        return out

    def describe(self) -> dict[str, Any]:
        """What ``stack.json`` says about the player."""
        nxt = self.next_fires()
        return {
            "playing": self._thread is not None,
            "topic": RUN_REQUESTS_TOPIC,
            "log": str(self.log_path) if self.log_path else None,
            "schedules": [
                {
                    "name": s.name,
                    "cron": s.cron.expression,
                    "time_zone": s.time_zone,
                    "pipeline": s.pipeline,
                    "next": nxt[s.name].isoformat() if s.name in nxt else None,
                }
                for s in self.schedules.values()
            ],
        }

    # --- internals -----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            fired = self.run_due()
            failed = any(f.error for f in fired)
            nxt = self.next_fires()
            if failed:
                wait = RETRY_S
            elif nxt:
                wait = max(0.0, min(MAX_WAIT_S, (min(nxt.values()) - self.clock.now()).total_seconds()))
            else:
                wait = MAX_WAIT_S
            self.clock.wait(wait, self._stop)

    def _send(
        self, schedule: Schedule, when: datetime, *, skipped: int, manual: bool, raise_errors: bool
    ) -> Fired:
        key = schedule.idempotency_key(when)
        try:
            message_id: str | None = self._publish(message_bytes(schedule.run_request(when)))
            error = None
        except Exception as exc:  # the emulator is down, a refused publish: logged, retried by the loop
            if raise_errors:
                raise
            message_id, error = None, f"{type(exc).__name__}: {exc}"
        fired = Fired(schedule.name, when, key, message_id, skipped, error, manual)
        with self._lock:
            self.fired.append(fired)
        self._log(fired)
        return fired

    def _log(self, fired: Fired) -> None:
        if self._echo is not None:
            what = f"published {fired.message_id}" if fired.error is None else f"FAILED ({fired.error})"
            extra = f", {fired.skipped} missed tick(s) skipped" if fired.skipped else ""
            self._echo(f"schedule {fired.schedule}: tick {fired.fire_time:%Y-%m-%dT%H:%M:%SZ} {what}{extra}")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"at": time.time(), **fired.document()}) + "\n")


# --- the stack's player, and firing against a running stack --------------------------------------


def stack_publisher(project: str, pubsub: Mapping[str, Any], topic: str = RUN_REQUESTS_TOPIC) -> Publish:
    """Publish on ``topic`` of the stack whose Pub/Sub is ``pubsub`` (stack.json's ``pubsub``)."""
    from stack.dispatch import publish

    info = {"project": project, "pubsub": dict(pubsub)}
    return lambda data: publish(info, topic, data)


def load_schedules(rules_file: Path, variables: Mapping[str, str]) -> tuple[Schedule, ...]:
    """The schedules of a bundle's ``rules.yaml``, checked against the bundle's ``templates/``."""
    from events.routing import load_rules
    from pipelines.catalog import load_catalog

    catalog = load_catalog(rules_file.parent / "templates")
    return load_rules(
        rules_file.read_text(encoding="utf-8"),
        catalog=catalog,
        variables=dict(variables),
        source=str(rules_file),
    ).schedules


def start_player(
    rules_file: Path,
    variables: Mapping[str, str],
    *,
    project: str,
    pubsub: Mapping[str, Any],
    log_path: Path,
    echo: Callable[[str], None] | None = None,
    start: bool = True,
) -> SchedulePlayer:
    """The player of ``mlops-events up``: the bundle's rules (what the functions route with),
    resolved with the functions' variables, publishing through the stack's Pub/Sub. With
    ``start=False`` its clock does not run: schedules fire only through ``fire``/``fire_schedule``."""
    player = SchedulePlayer(
        load_schedules(rules_file, variables),
        stack_publisher(project, pubsub),
        log_path=log_path,
        echo=echo,
    )
    if start:
        player.start()
    return player


def fire_schedule(info: Mapping[str, Any], name: str, *, at: datetime | None = None) -> Fired:
    """Fire schedule ``name`` of the running stack described by ``info`` (stack.json) now: the same
    run request its player publishes, through the same path. For the demo and ``schedules fire``."""
    import os

    bundle = Path(str(info["bundle"]))
    variables = {**os.environ, **dict(info.get("env", {}))}
    player = SchedulePlayer(
        load_schedules(bundle / "rules.yaml", variables),
        stack_publisher(str(info["project"]), info["pubsub"]),
        log_path=Path(str(info["state_dir"])) / "logs" / "schedules.jsonl",
    )
    return player.fire(name, at)
