"""Idempotency keys (run requests with ``idempotency_key``)

A run request's job id derives from its idempotency key. The same key sent again with the same
parameters is a redelivery: the same job, Vertex's 409 is success. The same key with *other*
parameters is a mistake (a client reusing keys, two tools sharing one), and Vertex's 409 would
hide it: the second request would silently never run. So the first request's parameters are
recorded per job id at ``mlops-state/requests/<job id>.json`` (created once, before the launch,
in a compare-and-swap: of two different requests racing, exactly one is first), and a request
whose parameters differ is rejected -- dead-lettered, naming both parameter sets.

Why a state document and not reading the Vertex job back on a 409: it works the same for every
launcher (Vertex, local, dry run), it decides a race between two different requests before
either launches, and it costs one read per keyed run request (plus one write the first time),
nothing on the launch path. The documents are small and never expire by themselves: a bucket
lifecycle rule on ``mlops-state/requests/`` can age them out after the keys' useful life.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from events.decision import Launch, Reject
from events.model import RunRequestMessage
from functions.state import StateStore

_SHOWN = 600  # characters of each parameter set shown in the reason


def check_key(
    decision: Launch, event: RunRequestMessage, *, store: StateStore, clock: Callable[[], float]
) -> Launch | Reject:
    """``decision`` when the key is new or was used with the same parameters, else a Reject."""
    request = decision.request
    key = f"requests/{request.job_id}.json"
    digest = parameters_digest(request.parameters)
    doc = store.read(key)
    if doc is None:
        entry = {
            "job_id": request.job_id,
            "idempotency_key": (event.idempotency_key or "")[:200],
            "parameters": dict(request.parameters),
            "digest": digest,
            "at": clock(),
        }
        doc = store.update(key, lambda current: current or entry)
    if doc.get("digest") == digest:
        return decision
    return Reject(
        f"idempotency key {_show(event.idempotency_key)} was already used with other parameters "
        f"(first {_show(doc.get('parameters'))}, now {_show(dict(request.parameters))}): a reused key "
        "never launches a second run; send a new key for a new run",
        rule=decision.rule,
    )


def parameters_digest(parameters: Mapping[str, Any]) -> str:
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
