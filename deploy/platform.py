"""What Google Cloud needs from a deployment, whatever the rules say: the APIs, the custom roles
and their permissions, Vertex AI's quota on submissions, and which spelling of a registry method's
audit-log ``methodName`` each client writes."""

from __future__ import annotations

from typing import Final

AIPLATFORM_SERVICE: Final = "aiplatform.googleapis.com"
STORAGE_FINALIZED: Final = "google.cloud.storage.object.v1.finalized"
AUDIT_WRITTEN: Final = "google.cloud.audit.log.v1.written"
RUNTIME: Final = "python311"
# Vertex AI accepts 60 pipeline-job submissions per minute per region by default. Each function
# instance handles one event at a time and submits at most one job per event, so the instances
# of all functions together are capped below that.
VERTEX_SUBMISSIONS_PER_MINUTE: Final = 60

APIS: Final[tuple[str, ...]] = (
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "eventarc.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
)

# Creating a PipelineJob checks aiplatform.pipelineJobs.create and reads the project's default
# metadata store (aiplatform.metadataStores.get). No predefined role grants only these:
# roles/aiplatform.user also lets its holder deploy endpoints, upload models, run custom jobs...
LAUNCHER_ROLE_ID: Final = "mlopsPipelineLauncher"
LAUNCHER_PERMISSIONS: Final = (
    "aiplatform.metadataStores.get",
    "aiplatform.pipelineJobs.create",
    "aiplatform.pipelineJobs.get",
)
# What the Cloud Build identity needs beyond predefined roles: attach a dead-letter policy to the
# subscriptions Eventarc creates, grant the trigger identity run.invoker on each function's
# Cloud Run service (roles/run.admin would be the only predefined role with setIamPolicy), and
# keep the Cloud Scheduler jobs of the rules' schedules in step (roles/cloudscheduler.admin would
# also let it run, pause and resume any job).
DEPLOYER_ROLE_ID: Final = "mlopsDeployer"
DEPLOYER_PERMISSIONS: Final = (
    "cloudscheduler.jobs.create",
    "cloudscheduler.jobs.delete",
    "cloudscheduler.jobs.get",
    "cloudscheduler.jobs.list",
    "cloudscheduler.jobs.update",
    "pubsub.subscriptions.get",
    "pubsub.subscriptions.getIamPolicy",
    "pubsub.subscriptions.setIamPolicy",
    "pubsub.subscriptions.update",
    "run.services.get",
    "run.services.getIamPolicy",
    "run.services.setIamPolicy",
)

# Who writes which methodName spelling of a registry method (one Eventarc trigger matches one exact
# methodName): the Python SDK (Model.upload, ModelRegistry, Model.copy/update), google-cloud-
# pipeline-components and `gcloud ai models` call v1; `gcloud beta|alpha ai models upload|copy|
# delete-version` call v1beta1 (the SDK calls no registry method over v1beta1); the Cloud console
# is logged as `ui`.
AUDIT_API_VERSIONS: Final = ("v1", "v1beta1", "ui")
DEFAULT_AUDIT_VERSIONS: Final[dict[str, tuple[str, ...]]] = {
    "UploadModel": ("v1", "v1beta1", "ui"),
    "MergeVersionAliases": ("v1", "ui"),
    "UpdateModel": ("v1", "ui"),
    "DeleteModelVersion": ("v1", "v1beta1", "ui"),
    "CopyModel": ("v1", "v1beta1", "ui"),
}
