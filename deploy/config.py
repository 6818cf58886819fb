"""One typed description of a deployment: names, identities, functions, triggers and IAM.

Everything the set-up command, the function deploy and the README's IAM table say comes from
here, and the triggers are derived from the routing rules (``functions_for``), so the events a
function receives and the events its rules expect cannot drift apart: a rule that needs an audit
method, a bucket or a topic that no trigger delivers is an error at deploy time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from deploy.platform import (
    AIPLATFORM_SERVICE,
    AUDIT_API_VERSIONS,
    DEFAULT_AUDIT_VERSIONS,
    DEPLOYER_ROLE_ID,
    LAUNCHER_ROLE_ID,
    VERTEX_SUBMISSIONS_PER_MINUTE,
)
from events.model import REGISTRY_METHODS

ResourceType = Literal["project", "bucket", "topic", "service_account", "repository", "function"]
Phase = Literal["setup", "deploy"]
_NAME_RE: Final = re.compile(r"^[a-z][-a-z0-9]{0,62}$")


class RulesLike(Protocol):
    """What deploy needs from ``events.rules.RuleSet``."""

    def audit_methods(self) -> frozenset[str]: ...
    def buckets(self) -> frozenset[str]: ...
    def topics(self) -> frozenset[str]: ...
    @property
    def schedules(self) -> tuple[Any, ...]: ...


class DeployConfigError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("deployment configuration: " + "; ".join(problems))


@dataclass(frozen=True)
class ServiceAccount:
    account_id: str
    project: str
    display_name: str

    @property
    def email(self) -> str:
        return f"{self.account_id}@{self.project}.iam.gserviceaccount.com"

    @property
    def member(self) -> str:
        return f"serviceAccount:{self.email}"


@dataclass(frozen=True)
class Binding:
    resource_type: ResourceType
    resource: str
    role: str
    member: str
    why: str
    phase: Phase = "setup"


# --- triggers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageTrigger:
    bucket: str


@dataclass(frozen=True)
class TopicTrigger:
    topic: str


@dataclass(frozen=True)
class AuditTrigger:
    service: str
    method: str  # full methodName, e.g. google.cloud.aiplatform.v1.ModelService.UploadModel

    @property
    def short_method(self) -> str:
        return self.method.rsplit(".", 1)[-1]


Trigger = StorageTrigger | TopicTrigger | AuditTrigger


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # Cloud Run functions name (= the Cloud Run service name)
    entry_point: str
    triggers: tuple[Trigger, ...]
    max_instances: int
    min_instances: int

    @property
    def primary(self) -> StorageTrigger | TopicTrigger | None:
        """The trigger ``gcloud functions deploy`` sets; None for an HTTP function fed by Eventarc."""
        first = self.triggers[0] if self.triggers else None
        return first if isinstance(first, StorageTrigger | TopicTrigger) else None

    @property
    def extra_triggers(self) -> tuple[Trigger, ...]:
        return self.triggers[1:] if self.primary is not None else self.triggers


def model_service_method(method: str, api_version: str = "v1") -> str:
    return f"google.cloud.aiplatform.{api_version}.ModelService.{method}"


# --- the deployment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    project: str
    region: str
    prefix: str = "mlops"
    data_bucket: str = ""
    pipeline_root_bucket: str = ""
    templates_bucket: str = ""
    models_bucket: str = ""
    alerts_topic: str = ""
    run_requests_topic: str = ""
    dead_letter_topic: str = ""
    image_repo: str = ""  # Artifact Registry Docker repository id, in ``region``
    min_instances: int = 0
    max_instances: int = 10  # per function; all four together stay under the Vertex quota
    max_delivery_attempts: int = 10  # then the trigger's subscription dead-letters the event
    # Cloud Run functions put the deployed source (the bundle) at /workspace.
    rules_file: str = "/workspace/rules.yaml"  # MLOPS_CONFIG
    templates: str = "/workspace/templates"  # MLOPS_TEMPLATES
    # When set, the audit-log triggers are these ModelService methods, whatever the rules say
    # (then a rule needing another method is an error rather than a silent gap).
    fixed_audit_methods: tuple[str, ...] | None = None
    # None: per method, the spellings of DEFAULT_AUDIT_VERSIONS; else exactly these for every method.
    audit_api_versions: tuple[str, ...] | None = None
    pipeline_root: str = ""  # gs://<pipeline_root_bucket>/runs unless given
    # Service account ids (or emails in this project); default <prefix>-functions, ...
    function_sa_id: str = ""
    pipeline_sa_id: str = ""
    trigger_sa_id: str = ""
    build_sa_id: str = ""
    scheduler_sa_id: str = ""
    function_sa: ServiceAccount = field(init=False)
    pipeline_sa: ServiceAccount = field(init=False)
    trigger_sa: ServiceAccount = field(init=False)
    build_sa: ServiceAccount = field(init=False)
    scheduler_sa: ServiceAccount = field(init=False)

    def __post_init__(self) -> None:
        p, pre = self.project, self.prefix
        if self.pipeline_root and not self.pipeline_root_bucket:
            bucket = self.pipeline_root.removeprefix("gs://").split("/", 1)[0]
            object.__setattr__(self, "pipeline_root_bucket", bucket)
        defaults = {
            "data_bucket": f"{p}-{pre}-data",
            "pipeline_root_bucket": f"{p}-{pre}-pipeline-root",
            "templates_bucket": f"{p}-{pre}-templates",
            "models_bucket": f"{p}-{pre}-models",
            "alerts_topic": f"{pre}-alerts",
            "run_requests_topic": f"{pre}-run-requests",
            "dead_letter_topic": f"{pre}-dead-letters",
            "image_repo": pre,
        }
        for name, value in defaults.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        accounts = {
            "function_sa": ("functions", "mlops-events functions (launch pipelines)"),
            "pipeline_sa": ("pipelines", "mlops-events pipelines (run on Vertex AI)"),
            "trigger_sa": ("triggers", "mlops-events Eventarc triggers (invoke functions)"),
            "build_sa": ("build", "mlops-events Cloud Build (test, compile, deploy)"),
            "scheduler_sa": ("scheduler", "mlops-events Cloud Scheduler jobs (publish run requests)"),
        }
        for attr, (suffix, title) in accounts.items():
            given = getattr(self, f"{attr}_id") or f"{pre}-{suffix}"
            object.__setattr__(self, attr, ServiceAccount(given.split("@", 1)[0], p, title))
        if not self.pipeline_root:
            object.__setattr__(self, "pipeline_root", f"gs://{self.pipeline_root_bucket}/runs")
        problems = self.problems()
        if problems:
            raise DeployConfigError(problems)

    def problems(self) -> list[str]:
        out: list[str] = []
        if not re.match(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$", self.project):
            out.append(f"project {self.project!r} is not a project id")
        if not re.match(r"^[a-z]+-[a-z]+[0-9]$", self.region):
            out.append(f"region {self.region!r} is not a region (for example europe-west1)")
        if not 0 <= self.min_instances <= self.max_instances:
            out.append(f"min_instances {self.min_instances} must be between 0 and max_instances")
        if self.max_instances < 1 or 4 * self.max_instances > VERTEX_SUBMISSIONS_PER_MINUTE:
            out.append(
                f"max_instances {self.max_instances} per function: the four functions together must stay "
                f"within Vertex AI's {VERTEX_SUBMISSIONS_PER_MINUTE} submissions per minute (at most 15 each)"
            )
        if not 5 <= self.max_delivery_attempts <= 100:
            out.append("max_delivery_attempts must be between 5 and 100 (a Pub/Sub limit)")
        for attr in ("alerts_topic", "run_requests_topic", "dead_letter_topic", "prefix", "image_repo"):
            if not _NAME_RE.match(getattr(self, attr)):
                out.append(f"{attr} {getattr(self, attr)!r} must be lowercase letters, digits and dashes")
        if not self.pipeline_root.startswith(f"gs://{self.pipeline_root_bucket}/"):
            out.append(
                f"pipeline_root {self.pipeline_root!r} must be a gs:// path in {self.pipeline_root_bucket!r}"
            )
        for attr in ("function_sa_id", "pipeline_sa_id", "trigger_sa_id", "build_sa_id", "scheduler_sa_id"):
            value = getattr(self, attr)
            if "@" in value and not value.endswith(f"@{self.project}.iam.gserviceaccount.com"):
                out.append(f"{attr} {value!r} must be a service account of project {self.project}")
        for sa in self.service_accounts:
            if not re.match(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$", sa.account_id):
                out.append(
                    f"service account id {sa.account_id!r} must be 6-30 lowercase letters, digits, dashes"
                )
        for method in self.fixed_audit_methods or ():
            if method not in REGISTRY_METHODS:
                out.append(f"fixed_audit_methods: {method!r} is not a ModelService method we parse")
        for version in self.audit_api_versions or ():
            if version not in AUDIT_API_VERSIONS:
                out.append(f"audit_api_versions: {version!r} is not one of {', '.join(AUDIT_API_VERSIONS)}")
        if self.audit_api_versions == ():
            out.append("audit_api_versions: name at least one of " + ", ".join(AUDIT_API_VERSIONS))
        for key, value in self.env().items():
            if "," in value:  # --set-env-vars separates with commas
                out.append(f"{key}={value!r} must not contain a comma")
        return out

    # Derived names.
    @property
    def buckets(self) -> tuple[str, ...]:
        return (self.data_bucket, self.pipeline_root_bucket, self.templates_bucket, self.models_bucket)

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.alerts_topic, self.run_requests_topic, self.dead_letter_topic)

    @property
    def service_accounts(self) -> tuple[ServiceAccount, ...]:
        return (self.function_sa, self.pipeline_sa, self.trigger_sa, self.build_sa, self.scheduler_sa)

    @property
    def dead_letter_topic_path(self) -> str:
        return f"projects/{self.project}/topics/{self.dead_letter_topic}"

    @property
    def dead_letter_subscription(self) -> str:
        """Keeps dead letters (a topic without a subscription drops what is published to it)."""
        return f"{self.dead_letter_topic}-hold"

    def function_name(self, entry_point: str) -> str:
        return f"{self.prefix}-{entry_point.replace('_', '-')}"

    def custom_role(self, role_id: str) -> str:
        return f"projects/{self.project}/roles/{role_id}"

    def rule_variables(self) -> dict[str, str]:
        """The ``${VAR}``s a rules file may use, as the functions see them at run time."""
        return self.env()

    def env(self) -> dict[str, str]:
        """Every environment variable the functions read (functions/settings.py)."""
        return {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "GOOGLE_CLOUD_REGION": self.region,
            "DATA_BUCKET": self.data_bucket,
            "PIPELINE_ROOT": self.pipeline_root,
            "PIPELINE_SERVICE_ACCOUNT": self.pipeline_sa.email,
            "MLOPS_CONFIG": self.rules_file,
            "DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "MLOPS_TEMPLATES": self.templates,
            "MLOPS_LAUNCHER": "vertex",
            "ALERTS_TOPIC": self.alerts_topic,
            "RUN_REQUESTS_TOPIC": self.run_requests_topic,
        }

    # --- functions and triggers, from the rules -----------------------------------------------

    def audit_triggers(self, rules: RulesLike) -> tuple[AuditTrigger, ...]:
        methods = self.fixed_audit_methods if self.fixed_audit_methods is not None else rules.audit_methods()
        return tuple(
            AuditTrigger(AIPLATFORM_SERVICE, model_service_method(m, v))
            for m in sorted(methods)
            for v in (self.audit_api_versions or DEFAULT_AUDIT_VERSIONS[m])
        )

    def functions_for(self, rules: RulesLike) -> tuple[FunctionSpec, ...]:
        """The four functions with the triggers the rules need. Raises when a rule is not covered."""
        extra_topics = sorted(rules.topics() - {self.alerts_topic, self.run_requests_topic})
        storage = [StorageTrigger(b) for b in sorted(rules.buckets() | {self.data_bucket})]
        specs = (
            ("on_new_data", tuple(storage)),
            ("on_monitoring_alert", (TopicTrigger(self.alerts_topic),)),
            # Run requests and any other topic a rule names (pubsub.message rules) share this entry.
            ("on_run_request", (TopicTrigger(self.run_requests_topic), *map(TopicTrigger, extra_topics))),
            ("on_model_registry_event", self.audit_triggers(rules)),
        )
        functions = tuple(
            FunctionSpec(self.function_name(entry), entry, triggers, self.max_instances, self.min_instances)
            for entry, triggers in specs
        )
        problems = coverage_problems(rules, functions)
        if problems:
            raise DeployConfigError(problems)
        return functions

    # --- IAM ------------------------------------------------------------------------------------

    def bindings(self, functions: tuple[FunctionSpec, ...] = ()) -> tuple[Binding, ...]:
        """Every grant, least privilege: each on the one resource that needs it."""
        f, pl, t, b, sch = (sa.member for sa in self.service_accounts)
        pn = "${PROJECT_NUMBER}"
        gcs_agent = f"serviceAccount:service-{pn}@gs-project-accounts.iam.gserviceaccount.com"
        pubsub_agent = f"serviceAccount:service-{pn}@gcp-sa-pubsub.iam.gserviceaccount.com"
        monitoring_agent = (
            f"serviceAccount:service-{pn}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
        )
        scheduler_agent = f"serviceAccount:service-{pn}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
        P = self.project
        out = [
            # Function identity: launch pipelines as the pipeline SA, keep state, dead-letter.
            Binding("project", P, self.custom_role(LAUNCHER_ROLE_ID), f,
                    "create and read Vertex AI pipeline jobs, nothing else"),
            Binding("service_account", self.pipeline_sa.email, "roles/iam.serviceAccountUser", f,
                    "submit jobs that run as the pipeline service account (and no other)"),
            Binding("bucket", self.data_bucket, "roles/storage.objectAdmin", f,
                    "debounce/cooldown state objects (compare-and-swap on generation)"),
            Binding("bucket", self.templates_bucket, "roles/storage.objectViewer", f,
                    "read compiled pipeline templates"),
            Binding("topic", self.dead_letter_topic, "roles/pubsub.publisher", f,
                    "record permanent failures as dead letters"),
            # Pipeline identity: its buckets, the registry/endpoints, alerts.
            Binding("project", P, "roles/aiplatform.user", pl,
                    "components upload models, move aliases, deploy to endpoints, run batch predictions"),
            Binding("bucket", self.pipeline_root_bucket, "roles/storage.objectAdmin", pl,
                    "pipeline root: KFP artifacts and metadata"),
            Binding("bucket", self.models_bucket, "roles/storage.objectAdmin", pl,
                    "model artifacts referenced by the model registry"),
            Binding("bucket", self.data_bucket, "roles/storage.objectViewer", pl, "read training data"),
            Binding("topic", self.alerts_topic, "roles/pubsub.publisher", pl,
                    "drift checks publish alerts (the loop closes)"),
            Binding("service_account", self.pipeline_sa.email, "roles/iam.serviceAccountUser", pl,
                    "deployed models and batch predictions run as the pipeline service account"),
            # Trigger identity.
            Binding("project", P, "roles/eventarc.eventReceiver", t,
                    "receive events from Eventarc (project-level by design of the role)"),
            # Scheduler identity: the Cloud Scheduler jobs of the rules' schedules publish as it.
            Binding("topic", self.run_requests_topic, "roles/pubsub.publisher", sch,
                    "scheduled run requests (its only grant)"),
            # Cloud Build identity (no Owner/Editor).
            Binding("project", P, "roles/cloudfunctions.developer", b, "deploy the four functions"),
            Binding("project", P, "roles/eventarc.developer", b, "create the audit-log triggers"),
            Binding("project", P, self.custom_role(DEPLOYER_ROLE_ID), b,
                    "dead-letter policy on trigger subscriptions; run.invoker on each function; "
                    "the schedules' Cloud Scheduler jobs"),
            Binding("project", P, "roles/logging.logWriter", b, "write build logs (CLOUD_LOGGING_ONLY)"),
            Binding("service_account", self.function_sa.email, "roles/iam.serviceAccountUser", b,
                    "deploy functions that run as the function service account"),
            Binding("service_account", self.trigger_sa.email, "roles/iam.serviceAccountUser", b,
                    "create triggers that invoke as the trigger service account"),
            Binding("service_account", self.scheduler_sa.email, "roles/iam.serviceAccountUser", b,
                    "create Cloud Scheduler jobs that run as the scheduler service account"),
            Binding("repository", self.image_repo, "roles/artifactregistry.writer", b,
                    "push the components image"),
            Binding("bucket", self.templates_bucket, "roles/storage.objectCreator", b,
                    "upload compiled templates (content-addressed, never overwritten)"),
            Binding("bucket", self.templates_bucket, "roles/storage.objectViewer", b,
                    "--no-clobber upload checks what exists"),
            # Google service agents.
            Binding("project", P, "roles/pubsub.publisher", gcs_agent,
                    "Cloud Storage publishes object events to Eventarc's topics"),
            Binding("topic", self.dead_letter_topic, "roles/pubsub.publisher", pubsub_agent,
                    "Pub/Sub forwards undeliverable trigger messages to the dead-letter topic"),
            Binding("topic", self.alerts_topic, "roles/pubsub.publisher", monitoring_agent,
                    "Cloud Monitoring alert policies notify through a Pub/Sub channel"),
            Binding("service_account", self.scheduler_sa.email, "roles/iam.serviceAccountTokenCreator",
                    scheduler_agent, "Cloud Scheduler mints the scheduler account's token for each job run"),
        ]  # fmt: skip
        for fn in functions:
            out.append(
                Binding("function", fn.name, "roles/run.invoker", t, f"invoke {fn.name} only", phase="deploy")
            )
        return tuple(out)


def coverage_problems(rules: RulesLike, functions: tuple[FunctionSpec, ...]) -> list[str]:
    """What a rule needs delivered that no trigger delivers, one line each."""
    triggers = {t for fn in functions for t in fn.triggers}
    methods = {
        t.short_method for t in triggers if isinstance(t, AuditTrigger) and t.service == AIPLATFORM_SERVICE
    }
    buckets = {t.bucket for t in triggers if isinstance(t, StorageTrigger)}
    topics = {t.topic for t in triggers if isinstance(t, TopicTrigger)}
    out = [
        f"rules need ModelService.{m} audit logs but no trigger delivers them"
        for m in sorted(rules.audit_methods() - methods)
    ]
    out += [
        f"rules match bucket {b!r} but no storage trigger watches it"
        for b in sorted(rules.buckets() - buckets)
    ]
    out += [
        f"rules match topic {t!r} but no Pub/Sub trigger delivers it" for t in sorted(rules.topics() - topics)
    ]
    return out


def deployment_from_args(project: str, region: str, overrides: Mapping[str, object]) -> Deployment:
    """A Deployment from CLI options; options left unset (None) keep the naming convention."""
    return Deployment(project, region, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
