"""Cloud Scheduler jobs for the rules file's ``schedules:`` (part of ``gcp deploy-functions``).

One job per schedule, named ``<prefix>-schedule-<name>``, created or updated in place (so the
deploy can run again), and jobs of ours that the rules no longer have are deleted.

Why an HTTP job to the Pub/Sub API and not a Pub/Sub job: a Pub/Sub-target job
(``gcloud scheduler jobs create pubsub``) takes no service account; it publishes as Google's
Cloud Scheduler service agent, which may publish to any topic of the project. An HTTP-target job
that POSTs the message to ``pubsub.googleapis.com/v1/projects/P/topics/T:publish`` with an OAuth
token of our own scheduler service account publishes as that account, and that account may publish
to the run-requests topic only. The message is the same run request either way: the run-request
function, its rules, guards and lineage handle it like any other (``events.schedules``).

A job's message is the same bytes at every fire (Cloud Scheduler does not template it), so it
carries no idempotency key; the router gives it the tick's key from its publish time. Retries
(``--max-retry-attempts``) stay within that tick's tolerance, and a retried publish that had in
fact succeeded is the same tick, hence the same job.
"""

from __future__ import annotations

import base64
import json
from typing import Final

from deploy.config import DeployConfigError, Deployment, RulesLike
from deploy.plan import Action, Ensure, Prune
from events.schedules import Schedule, message_bytes, routing_problems

PUBSUB_SCOPE: Final = "https://www.googleapis.com/auth/pubsub"
RETRY_FLAGS: Final = ("--max-retry-attempts=3", "--min-backoff=10s", "--max-backoff=60s")


def job_name(d: Deployment, schedule: Schedule) -> str:
    return f"{d.prefix}-schedule-{schedule.name}"


def publish_uri(d: Deployment) -> str:
    return f"https://pubsub.googleapis.com/v1/projects/{d.project}/topics/{d.run_requests_topic}:publish"


def publish_body(schedule: Schedule) -> str:
    """The Pub/Sub ``publish`` request of one fire: the schedule's run request as the message data."""
    data = base64.b64encode(message_bytes(schedule.message())).decode()
    return json.dumps({"messages": [{"data": data}]}, separators=(",", ":"))


def scheduler_job(d: Deployment, schedule: Schedule) -> Ensure:
    name = job_name(d, schedule)
    where = (f"--project={d.project}", f"--location={d.region}")
    common = (
        f"--schedule={schedule.cron.expression}",
        f"--time-zone={schedule.time_zone}",
        f"--uri={publish_uri(d)}",
        "--http-method=post",
        f"--message-body={publish_body(schedule)}",
        f"--oauth-service-account-email={d.scheduler_sa.email}",
        f"--oauth-token-scope={PUBSUB_SCOPE}",
        f"--description={schedule.description or f'mlops-events schedule {schedule.name}'}",
        *RETRY_FLAGS,
    )
    jobs = ("gcloud", "scheduler", "jobs")
    return Ensure(
        check=(*jobs, "describe", name, *where),
        # create takes --headers; update replaces them with --update-headers.
        create=(*jobs, "create", "http", name, *where, *common, "--headers=Content-Type=application/json"),
        update=(
            *jobs,
            "update",
            "http",
            name,
            *where,
            *common,
            "--update-headers=Content-Type=application/json",
        ),
        why=f"schedule {schedule.name}: {schedule.cron.expression} ({schedule.time_zone}) -> "
        f"{schedule.pipeline} on {d.run_requests_topic}",
    )


def prune_jobs(d: Deployment, keep: tuple[str, ...]) -> Prune:
    where = (f"--project={d.project}", f"--location={d.region}")
    return Prune(
        list=(
            "gcloud", "scheduler", "jobs", "list", *where,
            f"--filter=name~/jobs/{d.prefix}-schedule-", "--format=value(name.basename())",
        ),
        delete=("gcloud", "scheduler", "jobs", "delete"),
        delete_flags=(*where, "--quiet"),
        keep=keep,
        why="Cloud Scheduler jobs of schedules no longer in the rules",
    )  # fmt: skip


def schedule_actions(d: Deployment, rules: RulesLike) -> list[Action]:
    """The jobs of the rules' schedules. Raises when a schedule's run request would launch nothing."""
    schedules: tuple[Schedule, ...] = tuple(rules.schedules)
    problems = routing_problems(rules, topic=d.run_requests_topic, project=d.project)
    if problems:
        raise DeployConfigError(problems)
    actions: list[Action] = [scheduler_job(d, s) for s in schedules]
    actions.append(prune_jobs(d, tuple(job_name(d, s) for s in schedules)))
    return actions
