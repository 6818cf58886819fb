"""The bundle that Cloud Build deploys, served over real HTTP by functions-framework."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.bundle import build_bundle
from stack.emulators import free_port
from stack.vertex import VertexEmulator, ephemeral_emulator
from tests import samples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, templates: Path) -> Path:
    return build_bundle(tmp_path_factory.mktemp("bundle") / "bundle", templates)


def test_bundle_layout(bundle: Path, templates: Path) -> None:
    assert (bundle / "main.py").is_file()
    assert (bundle / "rules.yaml").read_text() == (Path("events") / "rules.default.yaml").read_text()
    reqs = (bundle / "requirements.txt").read_text().splitlines()
    names = {line.split("==")[0] for line in reqs if "==" in line}
    assert {"functions-framework", "cloudevents", "google-cloud-pubsub", "pyyaml"} <= names
    assert not names & {"kfp", "google-cloud-aiplatform", "scikit-learn", "pandas"}
    assert json.loads((bundle / "templates" / "manifest.json").read_text()) == json.loads(
        (templates / "manifest.json").read_text()
    )
    for package in ("events", "functions", "pipelines"):
        assert (bundle / package / "__init__.py").is_file()


def post(url: str, headers: dict[str, str], body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def served(bundle: Path, tmp_path: Path) -> Iterator[tuple[str, VertexEmulator, Path]]:
    port = free_port()
    dead = tmp_path / "dead"
    with ephemeral_emulator() as vertex:
        env = {
            **os.environ,
            "GOOGLE_CLOUD_PROJECT": "demo-project",
            "DATA_BUCKET": "demo-data",
            "PIPELINE_SERVICE_ACCOUNT": "pipelines@demo-project.iam.gserviceaccount.com",
            "VERTEX_API_ENDPOINT": vertex.url,
            "MLOPS_DEAD_LETTER_DIR": str(dead),
            "MAX_EVENT_AGE_SECONDS": "0",
        }
        for key in ("MLOPS_TEMPLATES", "MLOPS_CONFIG", "MLOPS_LAUNCHER"):
            env.pop(key, None)  # the bundle's own templates and rules must be used
        cmd = [
            sys.executable,
            "-m",
            "functions_framework",
            "--source",
            str(bundle / "main.py"),
            "--target",
            "on_new_data",
            "--signature-type",
            "cloudevent",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ]
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(url, timeout=1)
                    break
                except urllib.error.HTTPError:
                    break  # it answers: ready
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        out = proc.stdout.read().decode() if proc.stdout and proc.poll() is not None else ""
                        pytest.fail(f"functions-framework did not start: {out}")
                    time.sleep(0.05)
            yield url, vertex, dead
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_served_bundle_launches_once_over_http(served: tuple[str, VertexEmulator, Path]) -> None:
    url, vertex, dead = served
    doc = samples.storage_event("incoming/churn/a.csv", generation=5)
    headers, body = samples.binary_request(doc)
    codes = [post(url, {**headers, "ce-id": f"delivery-{i}"}, body) for i in range(5)]
    assert codes == [200] * 5
    assert len(vertex.created_jobs()) == 1
    (body_sent,) = vertex.created_jobs().values()
    assert body_sent["serviceAccount"] == "pipelines@demo-project.iam.gserviceaccount.com"

    # Not a CloudEvent at all: acknowledged (Eventarc would retry a 4xx) and recorded.
    assert post(url, {"Content-Type": "application/json", "ce-type": "x"}, b'{"a": 1}') == 200
    records = [json.loads(line) for f in dead.glob("*.jsonl") for line in f.read_text().splitlines()]
    assert len(records) == 1
    assert "missing header(s): ce-id, ce-source, ce-specversion" in records[0]["reason"]
    assert len(vertex.created_jobs()) == 1


def test_a_cold_start_reads_the_parsed_copies_and_imports_no_yaml(bundle: Path) -> None:
    # PyYAML (~18 ms to import), cron and zoneinfo are not needed to serve the shipped rules:
    # the bundle's *.parsed.json copies are read instead of its YAML.
    code = (
        "import sys\n"
        "import main\n"
        "from functions.runtime import runtime\n"
        "rt = runtime()\n"
        "rt.warm()\n"
        "specs = [rt.templates.load(name) for name in rt.digests]\n"
        "assert specs and all(s['pipelineInfo']['name'] for s in specs), specs\n"
        "print(sorted(m for m in ('yaml', 'zoneinfo', 'events.cron') if m in sys.modules))\n"
    )
    env = {
        **os.environ,
        "GOOGLE_CLOUD_PROJECT": "demo-project",
        "DATA_BUCKET": "demo-data",
        "PIPELINE_SERVICE_ACCOUNT": "pipelines@demo-project.iam.gserviceaccount.com",
    }
    for key in ("MLOPS_TEMPLATES", "MLOPS_CONFIG", "MLOPS_LAUNCHER"):
        env.pop(key, None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=bundle, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert (bundle / "rules.yaml.parsed.json").is_file()
