"""Guards against a local state directory and a fake clock: debounce, ordering, hygiene, cooldown,
concurrency. Fast: no servers."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from events.decision import Launch, Reject, Skip
from events.model import (
    Context,
    FeatureScore,
    MonitoringAlert,
    PubSubMessage,
    RunRequestMessage,
    StorageObject,
)
from events.options import OPTION_VALIDATORS, parse_cooldown, parse_duration
from events.routing import route
from functions.guards import Deferred, Guards
from functions.settings import Settings
from functions.state import LocalStateStore
from tests.catalog import load_rules

RULES = """
version: 1
rules:
  - name: data
    on: storage.object.finalized
    match: {prefix: incoming/}
    launch: {pipeline: training, parameters: {data_uri: "{uri}", model_name: "{dataset}", trigger: "{uri}#{generation}"}}
    debounce: {quiet: 60s, max_wait: 10m, marker: _SUCCESS}
  - name: plain
    on: storage.object.finalized
    launch: {pipeline: training, parameters: {data_uri: "{uri}", model_name: "m"}}
  - name: retrain
    on: monitoring.alert
    match: {state: open}
    launch: {pipeline: retraining, parameters: {model_name: "{model}", trigger: "{alert_id}"}}
    cooldown: {period: 6h, after: 2, within: 1h}
    concurrency: skip
"""
_ = FeatureScore  # the model module's alert type is all we need


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def guards(tmp_path: Path) -> tuple[Guards, Clock, dict[str, str]]:
    clock = Clock()
    states: dict[str, str] = {}
    settings = Settings.from_env({"MLOPS_STATE_DIR": str(tmp_path), "PIPELINE_ROOT": "gs://b/pipeline-root"})
    return (
        Guards(settings, LocalStateStore(tmp_path / "state"), clock=clock, run_status=states.get),
        clock,
        states,
    )


RULESET = load_rules(RULES)
CTX = Context(id="e1", source="//storage", type="t")


def obj(
    name: str, generation: int = 1, size: int = 10, created: float | None = None, **kw: Any
) -> StorageObject:
    """A finalize event; ``created``: its timeCreated on the (fake) clock of the test."""
    when = datetime.fromtimestamp(created, UTC) if created is not None else datetime.now(UTC)
    return StorageObject(CTX, "b", name, generation, 1, size, time_created=when, **kw)


def alert(incident: str, model: str = "churn", state: str = "open") -> MonitoringAlert:
    msg = PubSubMessage(CTX, "alerts", "p", f"m-{incident}", None, {}, b"")
    return MonitoringAlert(msg, "cloud_monitoring", incident, state, model=model)  # type: ignore[arg-type]


def decide(g: Guards, event: Any) -> Launch | Skip:
    decision = route(event, RULESET)
    assert isinstance(decision, Launch), decision
    return g.apply(decision, event)


def test_options_are_validated_with_field_names() -> None:
    assert parse_duration("90s") == 90 and parse_duration("6h") == 21600 and parse_duration(5) == 5
    assert OPTION_VALIDATORS["debounce"]({"quiet": "soon"}) == [
        "quiet: 'soon' is not a duration (use e.g. 30s, 10m, 6h)"
    ]
    assert (
        "max_wait: must be at least quiet"
        in OPTION_VALIDATORS["debounce"]({"quiet": "1h", "max_wait": "1m"})[0]
    )
    assert OPTION_VALIDATORS["cooldown"]({"period": "6h", "after": 3}) == [
        "within: required when after > 1 (e.g. within: 1h)"
    ]
    assert OPTION_VALIDATORS["concurrency"]("maybe") == ["mode: 'maybe' must be skip or defer"]
    assert parse_cooldown("6h")[0] is not None and OPTION_VALIDATORS["concurrency"]("defer") == []


def test_hygiene_outputs_temporary_and_empty_objects_never_launch(guards: Any) -> None:
    g, _, _ = guards
    plain = [
        obj("x/out.csv", metadata={"mlops-events-output": "true"}),
        obj("pipeline-root/run/model.csv"),
        obj("x/a.csv.tmp"),
        obj("x/a.csv._COPYING_"),
        obj("x/_temporary/0/part-0.csv"),
        obj("x/a.csv~"),
        obj("x/empty.csv", size=0),
    ]
    for event in plain:
        verdict = decide(g, event)
        assert isinstance(verdict, Skip), event.name
    assert "written by a pipeline" in decide(g, plain[0]).reason
    assert isinstance(decide(g, obj("x/a.csv")), Launch)


def test_stale_generation_after_a_newer_one_is_skipped(guards: Any) -> None:
    g, _, _ = guards
    assert isinstance(decide(g, obj("x/a.csv", generation=20)), Launch)
    stale = decide(g, obj("x/a.csv", generation=10))
    assert isinstance(stale, Skip) and "stale" in stale.reason
    newer = decide(g, obj("x/a.csv", generation=30))  # an overwrite is new data: its own job
    assert isinstance(newer, Launch)


def test_debounce_defers_until_quiet_then_every_delivery_gets_one_job(guards: Any) -> None:
    g, clock, _ = guards
    files = []
    for i in range(3):
        files.append(obj(f"incoming/churn/part-{i}.csv", generation=100 + i, created=clock.now))
        with pytest.raises(Deferred, match="debounce: window"):
            decide(g, files[-1])
        clock.now += 20  # each file arrives inside the quiet period
    with pytest.raises(Deferred):  # a redelivery does not extend the window, but it is not quiet yet
        decide(g, files[0])
    clock.now += 60
    launches = [decide(g, f) for f in files + files]  # the first releases; all converge on it
    assert all(isinstance(x, Launch) for x in launches)
    job_ids = {x.request.job_id for x in launches if isinstance(x, Launch)}
    assert len(job_ids) == 1
    first = launches[0]
    assert isinstance(first, Launch)
    assert first.request.parameters["data_uri"] == ",".join(f.uri for f in files)
    assert first.request.parameters["trigger"].startswith("window/b/incoming/churn/#")
    # A new file after the release opens a new window (another job, later).
    with pytest.raises(Deferred):
        decide(g, obj("incoming/churn/part-9.csv", generation=200, created=clock.now))


def test_debounce_max_wait_and_marker_release(guards: Any) -> None:
    g, clock, _ = guards
    for i in range(12):  # a steady trickle never goes quiet: max_wait releases it
        try:
            decide(g, obj(f"incoming/big/p-{i}.csv", generation=i + 1, created=clock.now))
        except Deferred:
            clock.now += 55
            continue
        break
    else:
        pytest.fail("max_wait did not release the window")
    assert clock.now - 1_000_000.0 >= 600
    with pytest.raises(Deferred):
        decide(g, obj("incoming/m/a.csv", generation=5, created=clock.now))
    released = decide(
        g, obj("incoming/m/_SUCCESS", generation=6, size=0, created=clock.now)
    )  # the marker releases at once
    assert (
        isinstance(released, Launch) and released.request.parameters["data_uri"] == "gs://b/incoming/m/a.csv"
    )


def test_alert_storm_one_incident_counts_once_and_cooldown_holds(guards: Any) -> None:
    g, clock, _ = guards
    first = decide(g, alert("inc-1"))
    assert isinstance(first, Skip) and "1 of 2 incident(s)" in first.reason
    again = decide(g, alert("inc-1"))  # a repeated notification of the same incident
    assert isinstance(again, Skip) and "1 of 2" in again.reason
    assert isinstance(route(alert("inc-1", state="closed"), RULESET), Skip)  # closed: the rule does not match
    clock.now += 60
    launched = decide(g, alert("inc-2"))
    assert isinstance(launched, Launch)
    assert decide(g, alert("inc-2")) == launched  # redelivery: the same job again (409 = success)
    clock.now += 60
    storm = [decide(g, alert(f"inc-{i}")) for i in range(3, 8)]
    assert all(isinstance(x, Skip) and "concurrency" in x.reason for x in storm)
    assert decide(g, alert("other", model="fraud")).decision == "skip"  # other models count apart


def test_concurrency_skips_while_active_then_cooldown(guards: Any) -> None:
    g, clock, states = guards
    decide(g, alert("a"))
    launched = decide(g, alert("b"))
    assert isinstance(launched, Launch)
    states[launched.request.job_id] = "PIPELINE_STATE_RUNNING"
    busy = decide(g, alert("c"))
    assert isinstance(busy, Skip) and "still running" in busy.reason
    states[launched.request.job_id] = "PIPELINE_STATE_SUCCEEDED"
    clock.now += 60
    cooled = decide(g, alert("d"))  # the run ended, but the cooldown (6h) still holds
    assert isinstance(cooled, Skip) and "cooldown" in cooled.reason
    clock.now += 7 * 3600
    decide(g, alert("e"))
    assert isinstance(decide(g, alert("f")), Launch)


def test_concurrency_defer_raises_so_the_platform_redelivers(tmp_path: Path) -> None:
    rules = load_rules(
        RULES.replace("concurrency: skip", "concurrency: defer").replace("after: 2, within: 1h", "after: 1")
    )
    settings = Settings.from_env({"MLOPS_STATE_DIR": str(tmp_path)})
    g = Guards(settings, LocalStateStore(tmp_path / "s"), run_status=lambda job: "PIPELINE_STATE_RUNNING")
    first = route(alert("a"), rules)
    assert isinstance(first, Launch) and isinstance(g.apply(first, alert("a")), Launch)
    other = route(alert("b", model="churn"), rules)
    assert isinstance(other, Launch)
    with pytest.raises(Deferred, match="still running"):
        g.apply(replace(other, options={"concurrency": "defer"}), alert("b"))


def test_debounce_idempotency_outlives_any_number_of_windows(guards: Any) -> None:
    """A late duplicate of the first window's object, after more windows than the folder document
    keeps, launches the first window's job again (409 = success), never a second run."""
    g, clock, _ = guards
    n = 53  # more than the folder document keeps (50): the late duplicate came after 52
    first_job = None
    for w in range(n):
        f = obj(f"incoming/many/w{w}.csv", generation=w + 1, created=clock.now)
        with pytest.raises(Deferred):
            decide(g, f)
        clock.now += 61
        released = decide(g, f)
        assert isinstance(released, Launch)
        first_job = first_job or released.request.job_id
        clock.now += 1
    late = decide(g, obj("incoming/many/w0.csv", generation=1, created=1_000_000.0))
    assert isinstance(late, Launch) and late.request.job_id == first_job
    assert late.request.parameters["data_uri"] == "gs://b/incoming/many/w0.csv"


def test_debounce_agrees_across_instances_whose_clocks_differ_by_a_minute(tmp_path: Path) -> None:
    """Two instances 30 s ahead and 30 s behind, sharing one state store. Reading their own clocks,
    the one ahead finds every window quiet at once and releases each object alone (the burst splits);
    corrected to the store's clock, neither releases before the burst is quiet."""
    rules = load_rules(RULES.replace("quiet: 60s", "quiet: 1s"))
    settings = Settings.from_env({"MLOPS_STATE_DIR": str(tmp_path)})

    def ahead() -> float:
        return time.time() + 30

    def behind() -> float:
        return time.time() - 30

    def burst(instances: list[Guards], folder: str) -> set[str]:
        now = time.time()
        files = [obj(f"incoming/{folder}/p{i}.csv", generation=i + 1, created=now) for i in range(4)]
        job_ids = set()
        for i, f in enumerate(files):  # alternately to each instance, as a load balancer would
            try:
                out = instances[i % 2].apply(route(f, rules), f)  # type: ignore[arg-type]
                job_ids.add(out.request.job_id)  # type: ignore[union-attr]
            except Deferred:
                pass
        time.sleep(1.1)
        for g in instances:
            for f in files:
                job_ids.add(g.apply(route(f, rules), f).request.job_id)  # type: ignore[arg-type, union-attr]
        return job_ids

    store = LocalStateStore(tmp_path / "state")
    uncorrected = [Guards(settings, store, clock=c) for c in (behind, ahead)]
    assert len(burst(uncorrected, "raw")) > 1  # the defect: one burst, several runs
    corrected = [Guards(settings, store, local_clock=c) for c in (behind, ahead)]
    assert len(burst(corrected, "store-time")) == 1


def test_a_reused_idempotency_key_is_rejected_by_the_guards(guards: Any) -> None:
    g, _, _ = guards
    rules = load_rules(
        'version: 1\nrules:\n- name: r\n  on: run.request\n  launch: {pipeline: "{pipeline}", parameters: "{parameters}"}\n'
    )

    def request(data_uri: str) -> RunRequestMessage:
        msg = PubSubMessage(CTX, "run-requests", "p", "m", None, {}, b"")
        return RunRequestMessage(
            msg, "training", {"data_uri": data_uri, "model_name": "m"}, idempotency_key="k-1"
        )

    same = [g.apply(route(request("gs://b/a.csv"), rules), request("gs://b/a.csv")) for _ in range(2)]  # type: ignore[arg-type]
    assert all(isinstance(x, Launch) for x in same)
    other = g.apply(route(request("gs://b/b.csv"), rules), request("gs://b/b.csv"))  # type: ignore[arg-type]
    assert isinstance(other, Reject)
    assert (
        '"k-1" was already used' in other.reason
        and "gs://b/a.csv" in other.reason
        and "gs://b/b.csv" in other.reason
    )


def test_a_failed_launch_never_holds_the_cooldown(guards: Any) -> None:
    g, clock, _ = guards
    decide(g, alert("a"))
    failed = decide(g, alert("b"))
    assert isinstance(failed, Launch)
    g.release((failed,), alert("b"))  # Vertex rejected it: the job will never exist
    clock.now += 60
    again = decide(g, alert("c"))
    assert isinstance(again, Launch) and again.request.job_id != failed.request.job_id
    clock.now += 60
    held = decide(g, alert("d"))
    assert isinstance(held, Skip) and again.request.job_id in held.reason
    assert failed.request.job_id not in held.reason
