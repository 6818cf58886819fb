"""``mlops-events gcp setup``: create or verify the project's infrastructure, idempotently.

APIs, the Artifact Registry repository, buckets, topics, service accounts, custom roles and the
IAM bindings of ``Deployment.bindings`` (the set-up phase; invoker bindings on the functions are
made when the functions exist, by the deploy). Run by a project administrator once, and again
whenever the configuration changes: it only creates what is missing.
"""

from __future__ import annotations

from deploy.config import Binding, Deployment
from deploy.plan import Argv, Capture, Ensure, EnsureApi, EnsureBinding, EnsureRole, Plan
from deploy.platform import (
    APIS,
    DEPLOYER_PERMISSIONS,
    DEPLOYER_ROLE_ID,
    LAUNCHER_PERMISSIONS,
    LAUNCHER_ROLE_ID,
)


def project_number(d: Deployment) -> Capture:
    return Capture(
        "PROJECT_NUMBER",
        ("gcloud", "projects", "describe", d.project, "--format=value(projectNumber)"),
        placeholder="PROJECT_NUMBER",
    )


def binding_action(d: Deployment, b: Binding) -> EnsureBinding:
    """The gcloud resource group and flags of one binding's resource."""
    proj = f"--project={d.project}"
    targets: dict[str, tuple[Argv, str, Argv]] = {
        "project": (("gcloud", "projects"), b.resource, ()),
        "bucket": (("gcloud", "storage", "buckets"), f"gs://{b.resource}", (proj,)),
        "topic": (("gcloud", "pubsub", "topics"), b.resource, (proj,)),
        "service_account": (("gcloud", "iam", "service-accounts"), b.resource, (proj,)),
        "repository": (("gcloud", "artifacts", "repositories"), b.resource, (proj, f"--location={d.region}")),
        "function": (("gcloud", "run", "services"), b.resource, (proj, f"--region={d.region}")),
    }
    group, resource, flags = targets[b.resource_type]
    return EnsureBinding(group, resource, flags, b.role, b.member, why=b.why)


def setup_plan(d: Deployment) -> Plan:
    plan = Plan(f"mlops-events infrastructure for project {d.project}, region {d.region}")
    proj = f"--project={d.project}"
    plan.add(*(EnsureApi(api, d.project) for api in APIS))
    plan.add(project_number(d))
    plan.add(
        Ensure(
            ("gcloud", "artifacts", "repositories", "describe", d.image_repo, proj, f"--location={d.region}"),
            ("gcloud", "artifacts", "repositories", "create", d.image_repo, proj, f"--location={d.region}",
             "--repository-format=docker", "--description=mlops-events pipeline components"),
            why="the components image, referenced by digest",
        )
    )  # fmt: skip
    for bucket in d.buckets:
        plan.add(
            Ensure(
                ("gcloud", "storage", "buckets", "describe", f"gs://{bucket}", proj),
                ("gcloud", "storage", "buckets", "create", f"gs://{bucket}", proj, f"--location={d.region}",
                 "--uniform-bucket-level-access", "--public-access-prevention"),
            )
        )  # fmt: skip
    for topic in d.topics:
        plan.add(
            Ensure(
                ("gcloud", "pubsub", "topics", "describe", topic, proj),
                ("gcloud", "pubsub", "topics", "create", topic, proj),
            )
        )
    plan.add(
        Ensure(
            ("gcloud", "pubsub", "subscriptions", "describe", d.dead_letter_subscription, proj),
            ("gcloud", "pubsub", "subscriptions", "create", d.dead_letter_subscription, proj,
             f"--topic={d.dead_letter_topic}", "--message-retention-duration=7d", "--expiration-period=never"),
            why="keep dead letters for a week (a topic alone keeps nothing)",
        )
    )  # fmt: skip
    for sa in d.service_accounts:
        plan.add(
            Ensure(
                ("gcloud", "iam", "service-accounts", "describe", sa.email, proj),
                ("gcloud", "iam", "service-accounts", "create", sa.account_id, proj,
                 f"--display-name={sa.display_name}"),
            )
        )  # fmt: skip
    plan.add(
        EnsureRole(LAUNCHER_ROLE_ID, d.project, "mlops-events pipeline launcher", LAUNCHER_PERMISSIONS),
        EnsureRole(DEPLOYER_ROLE_ID, d.project, "mlops-events deployer", DEPLOYER_PERMISSIONS),
    )
    # Service agents are created lazily by Google; these make sure the ones we bind to exist.
    plan.add(
        Capture("STORAGE_AGENT", ("gcloud", "storage", "service-agent", proj)),
        Capture("PUBSUB_AGENT", ("gcloud", "beta", "services", "identity", "create",
                                 "--service=pubsub.googleapis.com", proj, "--format=value(email)")),
        Capture("SCHEDULER_AGENT", ("gcloud", "beta", "services", "identity", "create",
                                    "--service=cloudscheduler.googleapis.com", proj, "--format=value(email)")),
    )  # fmt: skip
    plan.add(*(binding_action(d, b) for b in d.bindings() if b.phase == "setup"))
    return plan
