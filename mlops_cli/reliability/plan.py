"""What the reliability run sends, and what must come out of it.

``--events N`` is the number of CloudEvents sent: every original delivery, every duplicate with a
new event id, every copy of a delivery sent from several threads at once -- exactly N. The
platform's redeliveries of a non-2xx answer come on top (reported apart). N is shared out:

| share | what | expected |
|---|---|---|
| 30% | objects under ``incoming/``, a third overwritten (both generations sent), each generation 1-3 times | each object in exactly one run (the older generation is stale) |
| 22% | bursts under ``batches/`` (debounced): 6 objects written 0.1 s apart, two bursts per folder 3x quiet apart, each object delivered 1-3 times, some deliveries delayed past the quiet period | one run per burst holding all its objects |
| 4% | pipeline outputs (marked) and empty objects under ``incoming/`` | no run |
| 10% | alert storms: per model 3 incidents, each notified open, open, closed, 1-2 times | one retraining per model |
| 12% | run requests with idempotency keys, redelivered; every 8th key reused with other parameters | one run per key; the reuse rejected (dead letter) |
| 4% | malformed and hostile events (not JSON, missing fields, unknown pipeline, forbidden parameter, garbage, deeply nested JSON, a batch, a structured body that is not UTF-8) | no run, a dead letter each |
| 6% | deliveries sent from three threads at the same moment | nothing extra |
| rest | duplicates (new event ids) of the above | nothing extra |
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from typing import Any

from mlops_cli.reliability.events import Delivery, duplicate, incident, pubsub_event, redeliver, storage_event

SHARES = {
    "incoming": 0.30,
    "bursts": 0.22,
    "hygiene": 0.04,
    "alerts": 0.10,
    "requests": 0.12,
    "malformed": 0.04,
}
CONCURRENT_SHARE = 0.06
BURST_SIZE = 6
BURST_GAP_SECONDS = 0.1  # between two objects of a burst


@dataclass
class Burst:
    """Objects written into one folder close together (one debounce window)."""

    folder: str
    names: list[str]
    start: float  # seconds after the run starts
    copies: list[int]  # deliveries of each object
    delays: list[list[float]]  # for each object, the delay of each delivery after its upload

    @property
    def size(self) -> int:
        return sum(self.copies)


@dataclass
class Plan:
    bucket: str
    events: int
    quiet: float
    deliveries: list[Delivery] = field(default_factory=list)  # sent from the start, in this order
    concurrent: list[Delivery] = field(default_factory=list)  # each sent from three threads at once
    bursts: list[Burst] = field(default_factory=list)
    objects: set[str] = field(default_factory=set)  # URIs, each expected in exactly one run
    models: set[str] = field(default_factory=set)  # each expected to be retrained once
    request_keys: set[str] = field(default_factory=set)  # each expected to run once
    reused_keys: set[str] = field(default_factory=set)  # sent again with other parameters: rejected
    duplicates: int = 0
    malformed: int = 0

    @property
    def planned(self) -> int:
        return len(self.deliveries) + 3 * len(self.concurrent) + sum(b.size for b in self.bursts)


def build_plan(bucket: str, events: int, rng: random.Random, quiet: float, rate: float) -> Plan:
    """Write the objects sent from the start (fake-gcs-server assigns generations), plan the bursts
    (written during the run, spread over the ``events / rate`` seconds the other deliveries take),
    and list exactly ``events`` deliveries."""
    from pipelines import storage_io

    plan = Plan(bucket, events, quiet)
    client = storage_io.storage_client().bucket(bucket)
    budget = {k: int(events * v) for k, v in SHARES.items()}
    used = dict.fromkeys(SHARES, 0)

    def fits(kind: str, n: int) -> bool:
        if used[kind] + n > budget[kind]:
            return False
        used[kind] += n
        return True

    def upload(name: str, data: bytes, metadata: dict[str, str] | None = None) -> tuple[int, str]:
        blob = client.blob(name)
        if metadata:
            blob.metadata = metadata
        blob.upload_from_string(data, content_type="text/csv")
        return int(blob.generation), blob.time_created.isoformat()

    def send(delivery: Delivery, copies: int) -> None:
        plan.deliveries.append(delivery)
        for _ in range(copies - 1):
            plan.deliveries.append(duplicate(delivery))
            plan.duplicates += 1

    # New data, no debounce: a third overwritten (the older generation is stale).
    for i in range(events):
        gens = 2 if i % 3 == 0 else 1
        copies = [rng.choice((1, 2, 2, 3)) for _ in range(gens)]
        if not fits("incoming", sum(copies)):
            break
        name = f"incoming/model-{i % 7}/part-{i:05d}.csv"
        uploaded = [upload(name, b"x,y\n1,2\n" + b"3,4\n" * g) for g in range(gens)]
        plan.objects.add(f"gs://{bucket}/{name}")
        for (gen, created), n in zip(uploaded, copies, strict=True):
            send(storage_event(bucket, name, gen, 8, time_created=created), n)

    # Loops and hygiene: pipeline outputs and empty objects under incoming/ never launch.
    for i in range(events):
        if not fits("hygiene", 3):
            break
        name = f"incoming/model-0/predictions-{i}.csv"
        gen, _ = upload(name, b"p\n1\n", {"mlops-events-output": "true"})
        send(storage_event(bucket, name, gen, 4, metadata={"mlops-events-output": "true"}), 2)
        empty = f"incoming/model-1/empty-{i}.csv"
        gen, _ = upload(empty, b"")
        send(storage_event(bucket, empty, gen, 0), 1)

    _plan_bursts(plan, budget["bursts"], rng, span=events / rate)
    _plan_alerts(plan, lambda n: fits("alerts", n), rng, send)
    _plan_requests(plan, lambda n: fits("requests", n), rng)
    _plan_malformed(plan, lambda n: fits("malformed", n))

    rng.shuffle(plan.deliveries)  # disorder: older generations after newer, closed before open...
    pool = [d for d in plan.deliveries if d.label not in ("malformed", "reused")]
    for _ in range(int(events * CONCURRENT_SHARE) // 3):
        if pool and plan.planned + 3 <= events:
            plan.concurrent.append(rng.choice(pool))
            plan.duplicates += 2
    while pool and plan.planned < events:  # top up with duplicates to exactly `events`
        plan.deliveries.insert(rng.randrange(len(plan.deliveries) + 1), duplicate(rng.choice(pool)))
        plan.duplicates += 1
    while plan.planned < events:  # too few events for any unit: garbage, dead-lettered
        _plan_malformed(plan, lambda n: True, count=1)
    return plan


def _plan_bursts(plan: Plan, budget: int, rng: random.Random, span: float) -> None:
    used, folder = 0, 0
    while used < budget:
        start = rng.uniform(0, span)
        for b in range(2):  # two bursts per folder, 3x quiet apart
            copies = [rng.choice((1, 2, 3)) for _ in range(BURST_SIZE)]
            if used + sum(copies) > budget:
                return
            used += sum(copies)
            names = [f"batches/folder-{folder:03d}/burst-{b}-file-{j}.csv" for j in range(BURST_SIZE)]
            delays = [[_delay(rng, plan.quiet) for _ in range(n)] for n in copies]
            plan.bursts.append(Burst(f"batches/folder-{folder:03d}/", names, start, copies, delays))
            plan.duplicates += sum(copies) - BURST_SIZE
            start += BURST_SIZE * BURST_GAP_SECONDS + 3 * plan.quiet
        folder += 1


def _delay(rng: random.Random, quiet: float) -> float:
    """A delivery's delay after the upload: most soon, some past the quiet period, a few far past."""
    roll = rng.random()
    if roll < 0.7:
        return rng.uniform(0.02, 0.4)
    if roll < 0.9:
        return rng.uniform(quiet, 2.5 * quiet)
    return rng.uniform(2.5 * quiet, 6 * quiet)


def _plan_alerts(plan: Plan, fits: Any, rng: random.Random, send: Any) -> None:
    for m in range(plan.events):
        copies = [[rng.choice((1, 2)) for _ in range(3)] for _ in range(3)]
        if not fits(sum(map(sum, copies))):
            return
        model = f"churn-{m}"
        plan.models.add(model)
        for k in range(3):
            inc = f"inc-{m}-{k}"
            for n, state in enumerate(("open", "open", "closed")):
                d = pubsub_event(
                    "on_monitoring_alert", "alerts", incident(inc, state, model), message_id=f"{inc}-{n}"
                )
                send(d, copies[k][n])


def _plan_requests(plan: Plan, fits: Any, rng: random.Random) -> None:
    for r in range(plan.events):
        again = rng.choice((0, 1, 2))
        reused = r % 8 == 7
        if not fits(1 + again + int(reused)):
            return
        key = f"req-{r}"
        parameters = {"data_uri": f"gs://{plan.bucket}/requests/{key}.csv", "model_name": "requested"}
        payload = {"pipeline": "training", "parameters": parameters, "idempotency_key": key}
        plan.request_keys.add(key)
        d = pubsub_event("on_run_request", "run-requests", payload, message_id=f"msg-{r}")
        plan.deliveries.append(d)
        for c in range(again):
            plan.deliveries.append(redeliver(d, **{"ce-id": f"msg-{r}-again-{c}"}))
            plan.duplicates += 1
        if reused:  # the same key, other parameters: whichever comes second is rejected
            other = {**payload, "parameters": {**parameters, "model_name": "other"}}
            plan.reused_keys.add(key)
            again_other = pubsub_event("on_run_request", "run-requests", other, message_id=f"re-{r}")
            plan.deliveries.append(replace(again_other, label="reused"))


def _plan_malformed(plan: Plan, fits: Any, count: int | None = None) -> None:
    base_headers = storage_event(plan.bucket, "incoming/model-0/bad.csv", 1, 3).headers
    for _ in range(count if count is not None else plan.events):
        if not fits(1):
            return
        n = plan.malformed
        kind = n % 8
        if kind == 0:
            d = Delivery("on_new_data", {**base_headers, "ce-id": f"bad-{n}"}, b"\x00not json{", "malformed")
        elif kind == 1:
            body = json.dumps({"bucket": plan.bucket}).encode()
            d = Delivery("on_new_data", {**base_headers, "ce-id": f"bad-{n}"}, body, "malformed")
        elif kind == 2:
            d = pubsub_event("on_run_request", "run-requests", {"pipeline": "no-such"}, message_id=f"bad-{n}")
        elif kind == 3:
            evil = {
                "pipeline": "training",
                "parameters": {"data_uri": "gs://x/y", "model_name": "m", "service_account": "evil@x"},
            }
            d = pubsub_event("on_run_request", "run-requests", evil, message_id=f"evil-{n}")
        elif kind == 4:
            d = pubsub_event("on_monitoring_alert", "alerts", b"\xff\xfe garbage", message_id=f"junk-{n}")
        elif kind == 5:  # nested deeper than any JSON reader goes: RecursionError in the framework
            deep = b"[" * 50_000 + b"]" * 50_000
            d = Delivery("on_new_data", {**base_headers, "ce-id": f"deep-{n}"}, deep, "malformed")
        elif kind == 6:
            body = json.dumps([{"specversion": "1.0", "id": f"b-{n}", "type": "t", "source": "s"}]).encode()
            d = Delivery(
                "on_run_request", {"content-type": "application/cloudevents-batch+json"}, body, "malformed"
            )
        else:
            body = b'{"specversion": "1.0", "id": "u-%d", "type": "t", "source": "s", "data": "\xff"}' % n
            d = Delivery(
                "on_monitoring_alert", {"content-type": "application/cloudevents+json"}, body, "malformed"
            )
        plan.deliveries.append(Delivery(d.entry_point, d.headers, d.body, "malformed"))
        plan.malformed += 1
