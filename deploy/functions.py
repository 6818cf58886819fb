"""``mlops-events gcp deploy-functions``: deploy the four functions, their Eventarc triggers and the
Cloud Scheduler jobs of the rules' schedules (``deploy.schedules``).

The triggers come from ``Deployment.functions_for(rules)``: the same rules file the functions
route with, so every audit method, bucket and topic a rule needs has a trigger. Each function is
deployed from the bundle of ``functions.bundle.build_bundle`` (the directory the local stack
serves with ``functions-framework --source <bundle>/main.py --target <entry point>``).

Delivery guarantees, per trigger: retries on (Eventarc redelivers every non-2xx answer), and a
dead-letter policy on the Pub/Sub subscription behind the trigger, so an event that keeps failing
ends on the dead-letter topic after ``max_delivery_attempts`` instead of being retried for a day.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from deploy.config import (
    AuditTrigger,
    Binding,
    Deployment,
    FunctionSpec,
    RulesLike,
    StorageTrigger,
    TopicTrigger,
    Trigger,
)
from deploy.plan import Argv, Capture, Ensure, EnsureBinding, Plan, Prune, Run
from deploy.platform import AUDIT_WRITTEN, RUNTIME, STORAGE_FINALIZED
from deploy.schedules import schedule_actions
from deploy.setup import binding_action, project_number

PUBSUB_TOPIC_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def serve_command(bundle: Path | str, entry_point: str, port: int = 8080) -> Argv:
    """How the local stack serves the same bundle the deploy ships."""
    return (
        "functions-framework",
        f"--source={Path(bundle) / 'main.py'}",
        f"--target={entry_point}",
        "--signature-type=cloudevent",
        f"--port={port}",
    )


def trigger_name(d: Deployment, trigger: Trigger) -> str:
    """A stable Eventarc trigger name (at most 63 characters) for an extra trigger."""
    if isinstance(trigger, AuditTrigger):
        version = trigger.method.split(".")[3]
        base = (
            f"{d.prefix}-registry-{version}-" + re.sub(r"(?<!^)(?=[A-Z])", "-", trigger.short_method).lower()
        )
    elif isinstance(trigger, StorageTrigger):
        base = f"{d.prefix}-bucket-{trigger.bucket}"
    else:
        base = f"{d.prefix}-topic-{trigger.topic}"
    base = re.sub(r"[^a-z0-9-]", "-", base.lower())
    if len(base) > 63:
        base = base[:54] + "-" + hashlib.sha256(base.encode()).hexdigest()[:8]
    return base


# The Python buildpack runs `compileall -f` on the source and pip-installs requirements.txt, both
# writing timestamp .pyc by default; the image's layers are dated 1980, so every such .pyc is stale
# and each cold start recompiles. With SOURCE_DATE_EPOCH set, both write checked-hash .pyc (PEP 552),
# valid whatever the timestamps. Its value only dates reproducible build outputs.
SOURCE_DATE_EPOCH = 315532800  # 1980-01-01, what the layers are dated anyway


def deploy_command(d: Deployment, fn: FunctionSpec, bundle: Path | str) -> Argv:
    env = ",".join(f"{k}={v}" for k, v in d.env().items())
    argv: list[str] = [
        "gcloud", "functions", "deploy", fn.name, "--gen2",
        f"--project={d.project}", f"--region={d.region}",
        f"--runtime={RUNTIME}", f"--source={bundle}", f"--entry-point={fn.entry_point}",
        f"--service-account={d.function_sa.email}",
        f"--set-env-vars={env}",
        f"--set-build-env-vars=SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}",
        f"--min-instances={fn.min_instances}", f"--max-instances={fn.max_instances}",
        "--concurrency=1", "--memory=512Mi", "--timeout=120s",
        "--ingress-settings=internal-only",
    ]  # fmt: skip
    primary = fn.primary
    if isinstance(primary, StorageTrigger):
        argv += [f"--trigger-bucket={primary.bucket}"]
    elif isinstance(primary, TopicTrigger):
        argv += [f"--trigger-topic={primary.topic}"]
    if primary is None:
        # Fed only by Eventarc triggers created below; nobody else may call it.
        argv += ["--trigger-http", "--no-allow-unauthenticated"]
    else:
        argv += [f"--trigger-service-account={d.trigger_sa.email}", "--retry"]
    return tuple(argv)


def _event_filters(trigger: Trigger) -> tuple[str, ...]:
    if isinstance(trigger, AuditTrigger):
        pairs = [("type", AUDIT_WRITTEN), ("serviceName", trigger.service), ("methodName", trigger.method)]
    elif isinstance(trigger, StorageTrigger):
        pairs = [("type", STORAGE_FINALIZED), ("bucket", trigger.bucket)]
    else:
        pairs = [("type", PUBSUB_TOPIC_PUBLISHED)]
    return tuple(f"--event-filters={k}={v}" for k, v in pairs)


def eventarc_trigger(d: Deployment, fn: FunctionSpec, trigger: Trigger) -> Ensure:
    name = trigger_name(d, trigger)
    common: Argv = (
        name,
        f"--project={d.project}",
        f"--location={d.region}",
        f"--destination-run-service={fn.name}",
        f"--destination-run-region={d.region}",
        f"--service-account={d.trigger_sa.email}",
        *_event_filters(trigger),
    )
    create = ("gcloud", "eventarc", "triggers", "create", *common)
    if isinstance(trigger, TopicTrigger):
        create += (f"--transport-topic=projects/{d.project}/topics/{trigger.topic}",)
    return Ensure(
        check=(
            "gcloud",
            "eventarc",
            "triggers",
            "describe",
            name,
            f"--project={d.project}",
            f"--location={d.region}",
        ),
        create=create,
        update=("gcloud", "eventarc", "triggers", "update", *common),
        why=f"{fn.entry_point} <- {', '.join(f.split('=', 1)[1] for f in _event_filters(trigger)[1:]) or 'topic'}",
    )


def _dead_letter(d: Deployment, var: str) -> list[Run | EnsureBinding]:
    sub = "${" + var + "}"
    return [
        Run(
            (
                "gcloud",
                "pubsub",
                "subscriptions",
                "update",
                sub,
                f"--project={d.project}",
                f"--dead-letter-topic={d.dead_letter_topic_path}",
                f"--max-delivery-attempts={d.max_delivery_attempts}",
                "--min-retry-delay=10s",
                "--max-retry-delay=600s",
            ),
            why="dead-letter policy on the trigger's subscription",
        ),
        EnsureBinding(
            ("gcloud", "pubsub", "subscriptions"),
            sub,
            (f"--project={d.project}",),
            "roles/pubsub.subscriber",
            "serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com",
            why="Pub/Sub must read the subscription to forward dead letters",
        ),
    ]


def deploy_plan(d: Deployment, rules: RulesLike, bundle: Path | str) -> Plan:
    functions = d.functions_for(rules)  # raises when a rule is not covered by a trigger
    plan = Plan(f"mlops-events functions for project {d.project}, region {d.region}, from {bundle}")
    plan.add(project_number(d))
    n = 0
    for fn in functions:
        plan.add(Run(deploy_command(d, fn, bundle), why=f"{fn.entry_point}"))
        # Before any trigger can deliver: the trigger identity may invoke this function, and only it.
        plan.add(*(binding_action(d, b) for b in d.bindings((fn,)) if b.phase == "deploy"))
        if fn.primary is not None:
            n += 1
            plan.add(
                Capture(
                    f"TRIGGER_{n}",
                    (
                        "gcloud",
                        "functions",
                        "describe",
                        fn.name,
                        "--gen2",
                        f"--project={d.project}",
                        f"--region={d.region}",
                        "--format=value(eventTrigger.trigger)",
                    ),
                ),
                Capture(
                    f"SUBSCRIPTION_{n}",
                    (
                        "gcloud",
                        "eventarc",
                        "triggers",
                        "describe",
                        f"${{TRIGGER_{n}}}",
                        f"--project={d.project}",
                        f"--location={d.region}",
                        "--format=value(transport.pubsub.subscription)",
                    ),
                ),
                *_dead_letter(d, f"SUBSCRIPTION_{n}"),
            )
        for trigger in fn.extra_triggers:
            n += 1
            ensure = eventarc_trigger(d, fn, trigger)
            plan.add(
                ensure,
                Capture(
                    f"SUBSCRIPTION_{n}",
                    (
                        "gcloud",
                        "eventarc",
                        "triggers",
                        "describe",
                        trigger_name(d, trigger),
                        f"--project={d.project}",
                        f"--location={d.region}",
                        "--format=value(transport.pubsub.subscription)",
                    ),
                ),
                *_dead_letter(d, f"SUBSCRIPTION_{n}"),
            )
    registry = tuple(trigger_name(d, t) for t in d.audit_triggers(rules))
    plan.add(_prune_registry_triggers(d, registry), *schedule_actions(d, rules))
    return plan


def _prune_registry_triggers(d: Deployment, keep: tuple[str, ...]) -> Prune:
    where = (f"--project={d.project}", f"--location={d.region}")
    return Prune(
        list=(
            "gcloud", "eventarc", "triggers", "list", *where,
            f"--filter=name~/triggers/{d.prefix}-registry-", "--format=value(name.basename())",
        ),
        delete=("gcloud", "eventarc", "triggers", "delete"),
        delete_flags=(*where, "--quiet"),
        keep=keep,
        why="audit-log triggers of methods or spellings no longer delivered",
    )  # fmt: skip


def invoker_bindings(d: Deployment, rules: RulesLike) -> tuple[Binding, ...]:
    return tuple(b for b in d.bindings(d.functions_for(rules)) if b.phase == "deploy")
