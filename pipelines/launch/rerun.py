"""A new attempt of a pipeline job that FAILED or was CANCELLED: ``mlops-events rerun JOB_ID``.

Job ids are derived from events, so a redelivered event never runs twice — and an event whose job
failed can never run again by itself. A rerun is the explicit way: attempt ``<job id>-r2`` (then
``-r3``...) with the same template and parameters, the same lineage labels (so it joins the same
event), and ``mlops-attempt`` / ``mlops-first-attempt`` labels. Idempotent: while the latest
attempt is pending, running or succeeded, a rerun starts nothing and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from events.keys import JOB_ID_RE, label_value
from pipelines.launch.base import PermanentLaunchError
from pipelines.launch.vertex import FAILED_STATES, JobNotFoundError, VertexLauncher

MAX_ATTEMPTS: Final = 20
# What a new attempt keeps of the first one (output-only fields are dropped).
_KEPT: Final = ("pipelineSpec", "runtimeConfig", "labels", "serviceAccount", "network", "templateUri")


@dataclass(frozen=True)
class Rerun:
    job_id: str  # the attempt that now stands for the event
    attempt: int
    created: bool  # False: an attempt was already pending, running or done
    state: str  # the state of that attempt when we looked


def attempt_id(first: str, attempt: int) -> str:
    return first if attempt == 1 else f"{first[: 128 - 4]}-r{attempt}"


def rerun(launcher: VertexLauncher, job_id: str, *, reason: str = "") -> Rerun:
    """Start the next attempt of ``job_id`` if every attempt so far failed or was cancelled."""
    if not JOB_ID_RE.match(job_id):
        raise PermanentLaunchError(f"{job_id!r} is not a Vertex pipeline job id")
    first_id = job_id.rsplit("-r", 1)[0] if _is_attempt(job_id) else job_id
    first = _get(launcher, first_id)
    if first is None:
        raise PermanentLaunchError(
            f"no pipeline job {first_id!r} in {launcher.config.project}/{launcher.config.region}"
        )
    latest, attempt = first, 1
    for n in range(2, MAX_ATTEMPTS + 1):
        found = _get(launcher, attempt_id(first_id, n))
        if found is None:
            break
        latest, attempt = found, n
    state = str(latest.get("state") or "")
    if state not in FAILED_STATES:
        return Rerun(attempt_id(first_id, attempt), attempt, False, state)
    if attempt >= MAX_ATTEMPTS:
        raise PermanentLaunchError(f"{first_id} failed {attempt} times; look at why before trying again")
    body = new_attempt(first, first_id, attempt + 1, reason)
    status = launcher.create(attempt_id(first_id, attempt + 1), body)
    return Rerun(
        attempt_id(first_id, attempt + 1), attempt + 1, status == "created", "PIPELINE_STATE_PENDING"
    )


def new_attempt(first: dict[str, Any], first_id: str, attempt: int, reason: str) -> dict[str, Any]:
    """The body of attempt ``attempt``: the first attempt's template, parameters and labels."""
    body: dict[str, Any] = {k: first[k] for k in _KEPT if k in first}
    body["labels"] = {
        **dict(first.get("labels") or {}),
        "mlops-attempt": str(attempt),
        "mlops-first-attempt": label_value(first_id),
    }
    shown = f"{first_id} attempt {attempt}" + (f": {reason}" if reason else "")
    body["displayName"] = shown[:128]
    return body


def _is_attempt(job_id: str) -> bool:
    head, sep, tail = job_id.rpartition("-r")
    return bool(sep and head and tail.isdigit())


def _get(launcher: VertexLauncher, job_id: str) -> dict[str, Any] | None:
    try:
        return launcher.get_job(job_id)
    except JobNotFoundError:
        return None


def describe(result: Rerun) -> str:
    if result.created:
        return f"started {result.job_id} (attempt {result.attempt})"
    return f"{result.job_id} (attempt {result.attempt}) is {result.state}: nothing to rerun"
