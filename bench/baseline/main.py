"""The naive baseline: a storage-triggered function written the way the common tutorials do it.

Deliberately NOT how mlops-events works (that is the point of the comparison):
- ``google.cloud.aiplatform`` and ``kfp`` are imported at module level (every cold start pays them);
- the pipeline is compiled on every request;
- ``aiplatform.PipelineJob(...).submit()`` per event, without a deterministic job id, so a
  redelivered event creates another run.

Pointed at local stand-ins: ``VERTEX_API_ENDPOINT`` (the Vertex AI emulator, anonymous
credentials) and ``STORAGE_EMULATOR_HOST`` (the bucket checks ``submit()`` makes first).
"""

import os
import tempfile
import uuid

import functions_framework
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform
from kfp import compiler

from pipelines.definitions.training import pipeline

PROJECT = os.environ["GOOGLE_CLOUD_PROJECT"]
REGION = os.environ.get("GOOGLE_CLOUD_REGION", "us-central1")
BUCKET = os.environ["DATA_BUCKET"]
PIPELINE_ROOT = os.environ.get("PIPELINE_ROOT", f"gs://{BUCKET}/pipeline-root")
SERVICE_ACCOUNT = os.environ.get("PIPELINE_SERVICE_ACCOUNT")

aiplatform.init(
    project=PROJECT,
    location=REGION,
    credentials=AnonymousCredentials(),
    api_endpoint=os.environ.get("VERTEX_API_ENDPOINT"),
    api_transport="rest",
)


@functions_framework.cloud_event
def on_new_data(cloud_event):  # type: ignore[no-untyped-def]  # as the tutorials write it
    data = cloud_event.data
    name = data["name"]
    if not name.startswith("incoming/") or not name.endswith((".csv", ".jsonl", ".parquet")):
        print(f"skipping {name}")
        return
    uri = f"gs://{data['bucket']}/{name}"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "training.yaml")
        compiler.Compiler().compile(pipeline, path)
        job = aiplatform.PipelineJob(
            display_name="training",
            # The SDK's default id is training-<timestamp to the second>: two events in one second
            # collide (409, then endless retries). Tutorials that hit that add a random suffix.
            job_id=f"training-{uuid.uuid4().hex}",
            template_path=path,
            pipeline_root=PIPELINE_ROOT,
            parameter_values={
                "data_uri": uri,
                "model_name": name.split("/")[1] if name.count("/") > 1 else "default",
                "trigger": f"{uri}#{data['generation']}",
            },
            enable_caching=False,
        )
        job.submit(service_account=SERVICE_ACCOUNT)
    print(f"submitted {job.resource_name}")
