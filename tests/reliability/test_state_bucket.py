"""State in a real bucket (fake-gcs-server): compare-and-swap under concurrent writers, ordering
from the object's live generation, debounce converging from many threads, marker in storage."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from events.decision import Launch, Skip
from events.model import Context, StorageObject
from events.routing import route
from functions.guards import Deferred, Guards
from functions.settings import Settings
from functions.state import BucketStateStore
from pipelines import storage_io
from tests.catalog import load_rules

pytestmark = pytest.mark.slow

RULES = """
version: 1
rules:
  - name: data
    on: storage.object.finalized
    match: {prefix: incoming/}
    launch: {pipeline: training, parameters: {data_uri: "{uri}", model_name: "{dataset}"}}
    debounce: {quiet: 30s, max_wait: 5m, marker: _SUCCESS}
  - name: plain
    on: storage.object.finalized
    launch: {pipeline: training, parameters: {data_uri: "{uri}", model_name: "m"}}
"""
RULESET = load_rules(RULES)


def upload(bucket: str, name: str, data: bytes = b"a,b\n1,2\n") -> StorageObject:
    blob = storage_io.storage_client().bucket(bucket).blob(name)
    blob.upload_from_string(data)
    ctx = Context(id=f"id-{name}", source="//storage", type="t")
    return StorageObject(
        ctx, bucket, name, int(blob.generation), 1, len(data), time_created=blob.time_created
    )


def make_guards(bucket: str, clock: Any = None) -> Guards:
    settings = Settings.from_env({"DATA_BUCKET": bucket, "STORAGE_EMULATOR_HOST": "set"})
    assert settings.state_bucket == bucket and settings.ordering == "storage"
    return Guards(settings, clock=clock)  # None: the instance's clock corrected to the bucket's


def test_compare_and_swap_never_loses_a_concurrent_update(gcs_env: str) -> None:
    store = BucketStateStore(gcs_env)

    def bump(_: int) -> None:
        store.update("counter.json", lambda doc: {"n": (doc or {"n": 0})["n"] + 1})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bump, range(40)))
    assert store.read("counter.json") == {"n": 40}
    assert store.read("missing.json") is None


def test_ordering_reads_the_live_generation(gcs_env: str) -> None:
    g = make_guards(gcs_env)
    old = upload(gcs_env, "other/a.csv")
    new = upload(gcs_env, "other/a.csv", b"x\n2\n")
    assert new.generation > old.generation
    for event in (old, new):  # the older one is stale whichever arrives first
        decision = route(event, RULESET)
        assert isinstance(decision, Launch)
        verdict = g.apply(decision, event)
        assert isinstance(verdict, Skip if event is old else Launch), verdict


def test_debounce_from_many_threads_converges_on_one_run(gcs_env: str) -> None:
    now = [time.time()]  # the objects' creation times are the bucket's: the same epoch
    files = [upload(gcs_env, f"incoming/churn/p{i}.csv") for i in range(5)]
    guards = [make_guards(gcs_env, lambda: now[0]) for _ in range(3)]  # three "instances"
    results: list[Any] = []
    lock = threading.Lock()

    def deliver(i: int) -> None:
        event = files[i % len(files)]
        try:
            out: Any = guards[i % 3].apply(route(event, RULESET), event)  # type: ignore[arg-type]
        except Deferred as exc:
            out = exc
        with lock:
            results.append(out)

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(deliver, range(20)))
    assert all(isinstance(r, Deferred) for r in results)
    now[0] += 31
    results.clear()
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(deliver, range(20)))
    assert all(isinstance(r, Launch) for r in results)
    assert len({r.request.job_id for r in results}) == 1
    assert results[0].request.parameters["data_uri"] == ",".join(f.uri for f in files)


def test_marker_object_in_storage_releases_the_window(gcs_env: str) -> None:
    g = make_guards(gcs_env)
    a = upload(gcs_env, "incoming/m2/a.csv")
    with pytest.raises(Deferred, match="marker _SUCCESS"):
        g.apply(route(a, RULESET), a)  # type: ignore[arg-type]
    storage_io.write_bytes(f"gs://{gcs_env}/incoming/m2/_SUCCESS", b"")
    released = g.apply(route(a, RULESET), a)  # type: ignore[arg-type]
    assert isinstance(released, Launch) and released.request.parameters["data_uri"] == a.uri
    _ = datetime.now(UTC)


QUIET_1S = load_rules(RULES.replace("quiet: 30s", "quiet: 1s"))


def test_a_delayed_delivery_cannot_split_a_burst(gcs_env: str) -> None:
    """Three objects written together; only the first one's event arrives in time. At release the
    folder is listed: the window holds all three, and the late deliveries find their run."""
    settings = Settings.from_env({"DATA_BUCKET": gcs_env, "STORAGE_EMULATOR_HOST": "set"})
    g = Guards(settings)  # the instance's clock, corrected to the bucket's
    files = [upload(gcs_env, f"incoming/late/p{i}.csv") for i in range(3)]
    with pytest.raises(Deferred):
        g.apply(route(files[0], QUIET_1S), files[0])  # type: ignore[arg-type]
    time.sleep(1.2)  # quiet, by the objects' creation times
    released = g.apply(route(files[0], QUIET_1S), files[0])  # type: ignore[arg-type]
    assert isinstance(released, Launch)
    assert released.request.parameters["data_uri"] == ",".join(f.uri for f in files)
    for late in files[1:]:  # delivered long after the release
        again = g.apply(route(late, QUIET_1S), late)  # type: ignore[arg-type]
        assert isinstance(again, Launch) and again.request.job_id == released.request.job_id


def test_the_listing_keeps_the_window_open_while_the_burst_goes_on(gcs_env: str) -> None:
    settings = Settings.from_env({"DATA_BUCKET": gcs_env, "STORAGE_EMULATOR_HOST": "set"})
    g = Guards(settings)
    first = upload(gcs_env, "incoming/going/p0.csv")
    with pytest.raises(Deferred):
        g.apply(route(first, QUIET_1S), first)  # type: ignore[arg-type]
    time.sleep(0.7)
    upload(gcs_env, "incoming/going/p1.csv")  # its event is late; the object is there
    time.sleep(0.5)  # quiet since p0, not since p1
    with pytest.raises(Deferred, match="holds 2 object"):
        g.apply(route(first, QUIET_1S), first)  # type: ignore[arg-type]
