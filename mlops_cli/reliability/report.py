"""Counting, per object and per burst, what the created Vertex jobs hold.

Each created job is read back from its parameters: a training run holds the objects of its
``data_uri`` (one URI, or a debounced window's comma-separated URIs), a retraining its model, a
run request's run its key (``.../requests/<key>.csv``). Then:

- an object is *lost* when no run holds it, *doubled* when more than one does;
- a burst is *split* when its objects are held by more than one run, and *merged* when a run
  holds objects of more than one burst. Bursts are the sessions of the objects' actual creation
  times (a gap of ``quiet`` or more starts a new one), so an upload that stalled (the storage
  emulator restarting) is judged by what really happened, not by the plan;
- a model or a request key is lost or doubled likewise; a run that holds nothing expected is
  doubled too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_cli.reliability.plan import Plan
from mlops_cli.reliability.timeline import Written


@dataclass
class Counts:
    objects: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    bursts: int = 0
    split: list[int] = field(default_factory=list)
    merged: int = 0
    models_lost: list[str] = field(default_factory=list)
    models_doubled: list[str] = field(default_factory=list)
    keys_lost: list[str] = field(default_factory=list)
    keys_doubled: list[str] = field(default_factory=list)
    unexpected: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.doubled
            or self.split
            or self.merged
            or self.models_lost
            or self.models_doubled
            or self.keys_lost
            or self.keys_doubled
            or self.unexpected
        )


def sessions(written: Iterable[Written], quiet: float) -> list[set[str]]:
    """The bursts as written: per folder, objects whose creation times are less than ``quiet`` apart."""
    by_folder: dict[str, list[Written]] = defaultdict(list)
    for w in written:
        by_folder[w.uri.rsplit("/", 1)[0]].append(w)
    out: list[set[str]] = []
    for items in by_folder.values():
        items.sort(key=lambda w: w.created)
        current: set[str] = set()
        last: float | None = None
        for w in items:
            if last is not None and w.created - last >= quiet:
                out.append(current)
                current = set()
            current.add(w.uri)
            last = w.created
        out.append(current)
    return out


def count(plan: Plan, jobs: Mapping[str, Mapping[str, Any]], written: list[Written]) -> Counts:
    runs_of: dict[str, list[str]] = defaultdict(list)  # object URI -> job ids holding it
    models: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    unexpected = 0
    request_prefix = f"gs://{plan.bucket}/requests/"
    expected_objects = set(plan.objects) | {w.uri for w in written}
    for job_id, job in jobs.items():
        params = job.get("runtimeConfig", {}).get("parameterValues", {})
        if job.get("labels", {}).get("mlops-pipeline") == "retraining":
            model = str(params.get("model_name"))
            models[model] += 1
            unexpected += model not in plan.models
            continue
        uris = [u for u in str(params.get("data_uri", "")).split(",") if u]
        if len(uris) == 1 and uris[0].startswith(request_prefix):
            key = uris[0][len(request_prefix) :].removesuffix(".csv")
            keys[key] += 1
            unexpected += key not in plan.request_keys
            continue
        held = [u for u in uris if u in expected_objects]
        unexpected += not held
        for uri in held:
            runs_of[uri].append(job_id)
    c = Counts(objects=len(expected_objects), unexpected=unexpected)
    c.lost = sorted(u for u in expected_objects if not runs_of[u])
    c.doubled = sorted(u for u in expected_objects if len(runs_of[u]) > 1)
    bursts = sessions(written, plan.quiet)
    c.bursts = len(bursts)
    c.split = [i for i, b in enumerate(bursts) if len({j for u in b for j in runs_of[u]}) > 1]
    burst_of = {u: i for i, b in enumerate(bursts) for u in b}
    by_job: dict[str, set[int]] = defaultdict(set)
    for uri, job_ids in runs_of.items():
        if uri in burst_of:
            for j in job_ids:
                by_job[j].add(burst_of[uri])
    c.merged = sum(1 for held in by_job.values() if len(held) > 1)
    c.models_lost = sorted(m for m in plan.models if models[m] == 0)
    c.models_doubled = sorted(m for m in plan.models if models[m] > 1)
    c.keys_lost = sorted(k for k in plan.request_keys if keys[k] == 0)
    c.keys_doubled = sorted(k for k in plan.request_keys if keys[k] > 1)
    return c


def lines(plan: Plan, c: Counts) -> list[str]:
    def few(items: list[Any]) -> str:
        return f" {[str(x)[-60:] for x in items[:4]]}" if items else ""

    return [
        f"objects:            {c.objects} expected in one run each: lost {len(c.lost)}, doubled {len(c.doubled)}"
        + few(c.lost + c.doubled),
        f"bursts:             {c.bursts} (debounce quiet {plan.quiet:g}s): split {len(c.split)}, merged {c.merged}",
        f"models:             {len(plan.models)} retrained once each: lost {len(c.models_lost)}, "
        f"doubled {len(c.models_doubled)}" + few(c.models_lost + c.models_doubled),
        f"run requests:       {len(plan.request_keys)} keys run once each: lost {len(c.keys_lost)}, "
        f"doubled {len(c.keys_doubled)}" + few(c.keys_lost + c.keys_doubled),
        f"runs of nothing expected: {c.unexpected}",
    ]
