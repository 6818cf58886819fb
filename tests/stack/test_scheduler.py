"""The local stack's Cloud Scheduler: the player fires each schedule at its fire times (a clock the
test moves), publishes the run request with the tick's idempotency key through the stack's own
publish path, and a tick fired twice is one pipeline job."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from events import envelope, parse
from events.decision import Launch
from events.routing import route
from stack.bridge import Deliverer
from stack.config import RetryPolicy
from stack.dispatch import Dispatcher
from stack.emulators import free_port
from stack.scheduler import ManualClock, SchedulePlayer, fire_schedule, stack_publisher
from tests.catalog import load_rules

ROOT = Path(__file__).resolve().parents[2]
RULES = """
version: 1
rules:
  - name: run-request
    on: run.request
    launch: {pipeline: "{pipeline}", parameters: "{parameters}"}
schedules:
  - name: monitor-churn
    cron: "0 */6 * * *"
    pipeline: monitoring
    parameters: {model_name: churn, alerts_topic: alerts}
  - name: paris-night
    cron: "30 2 * * *"
    time_zone: Europe/Paris
    pipeline: batch_prediction
    parameters: {model_name: churn, data_uri: "gs://data/score/"}
"""


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled pipelines, as a bundle carries them (its manifest is the catalog)."""
    from pipelines.compile import compile_all

    out = tmp_path_factory.mktemp("templates")
    compile_all(out)
    return out


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Recorder:
    """A publish path that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail = False

    def __call__(self, data: bytes) -> str:
        if self.fail:
            raise ConnectionRefusedError("the emulator is down")
        self.messages.append(json.loads(data))
        return f"m{len(self.messages)}"


def _player(start: str, rules: str = RULES) -> tuple[SchedulePlayer, ManualClock, Recorder]:
    clock = ManualClock(utc(start))
    publish = Recorder()
    schedules = load_rules(rules, variables={}).schedules
    return SchedulePlayer(schedules, publish, clock=clock), clock, publish


def test_a_schedule_fires_at_its_fire_time_with_the_ticks_key() -> None:
    player, clock, published = _player("2026-12-01T05:59:00Z")
    assert player.next_fires()["monitor-churn"] == utc("2026-12-01T06:00:00Z")
    assert player.run_due() == [] and published.messages == []
    clock.advance(timedelta(minutes=1))
    (fired,) = player.run_due()
    assert (fired.schedule, fired.fire_time, fired.skipped) == (
        "monitor-churn",
        utc("2026-12-01T06:00:00Z"),
        0,
    )
    assert published.messages == [
        {
            "pipeline": "monitoring",
            "parameters": {"model_name": "churn", "alerts_topic": "alerts"},
            "idempotency_key": "monitor-churn-2026-12-01T06:00:00Z",
            "requested_by": "schedule monitor-churn",
        }
    ]
    assert fired.message_id == "m1" and fired.idempotency_key == "monitor-churn-2026-12-01T06:00:00Z"
    assert player.next_fires()["monitor-churn"] == utc("2026-12-01T12:00:00Z")
    assert player.run_due() == []  # nothing twice


def test_the_players_thread_fires_when_the_clock_gets_there() -> None:
    player, clock, published = _player("2026-12-01T11:59:59Z")
    player.start()
    try:
        time.sleep(0.2)
        assert published.messages == []
        clock.set(utc("2026-12-01T12:00:00Z"))
        deadline = time.monotonic() + 5
        while not published.messages and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [m["idempotency_key"] for m in published.messages] == ["monitor-churn-2026-12-01T12:00:00Z"]
    finally:
        player.stop()


def test_missed_ticks_are_not_replayed_the_latest_fires_once() -> None:
    player, clock, published = _player("2026-12-01T05:00:00Z")
    clock.advance(timedelta(days=2))  # 2026-12-03T05:00Z: ticks 06:00 of the 1st ... 00:00 of the 3rd
    fired = {f.schedule: f for f in player.run_due()}
    assert fired["monitor-churn"].fire_time == utc("2026-12-03T00:00:00Z")
    assert fired["monitor-churn"].skipped == 7
    assert fired["paris-night"].fire_time == utc("2026-12-03T01:30:00Z") and fired["paris-night"].skipped == 1
    assert len(published.messages) == 2


def test_a_failed_publish_is_retried_for_the_same_tick() -> None:
    player, clock, published = _player("2026-12-01T05:59:00Z")
    published.fail = True
    clock.advance(timedelta(minutes=1))
    (failed,) = player.run_due()
    assert failed.error == "ConnectionRefusedError: the emulator is down" and failed.message_id is None
    assert player.next_fires()["monitor-churn"] == utc("2026-12-01T06:00:00Z")
    published.fail = False
    clock.advance(timedelta(seconds=2))
    (fired,) = player.run_due()
    assert fired.idempotency_key == "monitor-churn-2026-12-01T06:00:00Z" and fired.error is None


def test_daylight_saving_days_follow_the_wall_clock() -> None:
    """Europe/Paris, 02:30 every night: no fire on 2026-03-29 (02:30 does not exist), two on
    2026-10-25 (it happens twice)."""
    for start, days, expected in (
        ("2026-03-27T12:00:00Z", 3, ["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z"]),
        ("2026-10-24T12:00:00Z", 2, ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"]),
    ):
        player, clock, published = _player(start)
        for _ in range(days * 24 * 4):  # 15-minute steps: each tick is seen on time
            clock.advance(timedelta(minutes=15))
            player.run_due()
        keys = [
            m["idempotency_key"] for m in published.messages if m["requested_by"] == "schedule paris-night"
        ]
        assert keys == [f"paris-night-{t}" for t in expected]


def test_fire_now_and_fire_a_tick() -> None:
    player, _clock, published = _player("2026-12-01T08:15:42.5Z")
    now = player.fire("monitor-churn")
    assert now.manual and now.idempotency_key == "monitor-churn-2026-12-01T08:15:42Z"
    tick = player.fire("monitor-churn", at=utc("2026-12-01T06:00:00Z"))
    assert not tick.manual and tick.idempotency_key == "monitor-churn-2026-12-01T06:00:00Z"
    assert player.next_fires()["monitor-churn"] == utc("2026-12-01T12:00:00Z")  # the schedule goes on
    with pytest.raises(KeyError, match="no schedule 'nope' \\(schedules: monitor-churn, paris-night\\)"):
        player.fire("nope")
    published.fail = True
    with pytest.raises(ConnectionRefusedError):
        player.fire("monitor-churn")


# --- through the stack's publish path ---------------------------------------------------------


class _Function(BaseHTTPRequestHandler):
    """Stands in for on_run_request: keeps each push delivery."""

    received: list[tuple[dict[str, str], bytes, str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).received.append((dict(self.headers), body, self.path))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def dispatcher(tmp_path: Path) -> Iterator[tuple[Dispatcher, list[tuple[dict[str, str], bytes, str]]]]:
    _Function.received = []
    function = ThreadingHTTPServer(("127.0.0.1", 0), _Function)
    threading.Thread(target=function.serve_forever, daemon=True).start()
    deliverer = Deliverer(tmp_path / "logs" / "deliveries.jsonl", RetryPolicy(initial_s=0.1, maximum_s=0.2))
    url = f"http://127.0.0.1:{function.server_address[1]}"
    d = Dispatcher(free_port(), deliverer, "local-project", {"run-requests": "on_run_request"},
                   {"on_run_request": url}, tmp_path / "pubsub")  # fmt: skip
    d.start()
    try:
        yield d, _Function.received
    finally:
        d.stop()
        deliverer.close()
        function.shutdown()
        function.server_close()


def _wait(received: list[Any], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(received) == count


def test_a_tick_reaches_the_run_request_function_and_twice_is_one_job(dispatcher: Any) -> None:
    d, received = dispatcher
    rules = load_rules(RULES, variables={})
    clock = ManualClock(utc("2026-12-01T05:59:59Z"))
    publish = stack_publisher("local-project", {"mode": "embedded", "url": d.url})
    player = SchedulePlayer(rules.schedules, publish, clock=clock)
    clock.advance(timedelta(seconds=1))
    player.run_due()
    player.fire("monitor-churn", at=utc("2026-12-01T06:00:00Z"))  # the same tick, fired again
    _wait(received, 2)
    jobs = []
    for headers, body, path in received:
        event = parse.parse(envelope.from_http(headers, body, path))
        assert event.kind == "run.request" and event.fields()["topic"] == "run-requests"
        decision = route(event, rules)
        assert isinstance(decision, Launch), decision
        assert decision.request.pipeline == "monitoring"
        assert decision.reason.endswith("run-request/key/monitor-churn-2026-12-01T06:00:00Z")
        jobs.append(decision.request.job_id)
    assert len(set(jobs)) == 1  # two deliveries (two message ids), one Vertex job id


def test_fire_schedule_against_a_running_stack(dispatcher: Any, tmp_path: Path, templates: Path) -> None:
    d, received = dispatcher
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "templates").symlink_to(templates)
    (bundle / "rules.yaml").write_text((ROOT / "demo" / "rules.yaml").read_text())
    info = {
        "project": "local-project",
        "state_dir": str(tmp_path),
        "bundle": str(bundle),
        "pubsub": {"mode": "embedded", "url": d.url},
        "env": {"DATA_BUCKET": "mlops-data"},
    }
    fired = fire_schedule(info, "monitor-churn")
    assert fired.message_id is not None and fired.idempotency_key.startswith("monitor-churn-")
    _wait(received, 1)
    (line,) = (tmp_path / "logs" / "schedules.jsonl").read_text().splitlines()
    assert json.loads(line)["idempotency_key"] == fired.idempotency_key
    headers, body, path = received[0]
    event = parse.parse(envelope.from_http(headers, body, path))
    assert event.fields()["parameters"] == {"model_name": "churn", "alerts_topic": "alerts"}
    assert event.fields()["requested_by"] == "schedule monitor-churn"


def test_a_player_that_does_not_play_fires_only_when_asked(
    dispatcher: Any, tmp_path: Path, templates: Path
) -> None:
    """The demo's stack (StackConfig.play_schedules=False): no tick of the clock adds a run."""
    from stack.scheduler import start_player

    d, received = dispatcher
    (tmp_path / "templates").symlink_to(templates)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace('cron: "0 */6 * * *"', 'cron: "* * * * *"'))  # every minute
    player = start_player(rules, {}, project="local-project", pubsub={"mode": "embedded", "url": d.url},
                          log_path=tmp_path / "schedules.jsonl", start=False)  # fmt: skip
    try:
        assert player.describe()["playing"] is False
        assert [s["name"] for s in player.describe()["schedules"]] == ["monitor-churn", "paris-night"]
        player.fire("monitor-churn")
        _wait(received, 1)
    finally:
        player.stop()
    playing = start_player(rules, {}, project="local-project", pubsub={"mode": "embedded", "url": d.url},
                           log_path=tmp_path / "schedules.jsonl")  # fmt: skip
    try:
        assert playing.describe()["playing"] is True
    finally:
        playing.stop()
    assert playing.describe()["playing"] is False
