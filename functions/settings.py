"""Settings: the one module that reads ``os.environ``. Read once per instance, then frozen.

| variable | meaning | default |
|---|---|---|
| GOOGLE_CLOUD_PROJECT | project of the pipeline jobs | (required for the vertex launcher) |
| GOOGLE_CLOUD_REGION | Vertex region | us-central1 |
| DATA_BUCKET | bucket the default storage rule watches | (required by the default rules) |
| PIPELINE_ROOT | gs:// root of pipeline outputs | gs://$DATA_BUCKET/pipeline-root |
| PIPELINE_SERVICE_ACCOUNT | service account the pipelines run as | (Vertex default) |
| MLOPS_CONFIG | routing rules file | rules.yaml of the bundle, else the shipped rules |
| VERTEX_API_ENDPOINT | override, e.g. a private endpoint or http://127.0.0.1:P | regional endpoint |
| DEAD_LETTER_TOPIC | Pub/Sub topic for dead letters (short name or full path) | log only |
| MLOPS_DEAD_LETTER_DIR | also append dead letters as JSONL here (the local stack) | unset |
| MLOPS_LAUNCHER | vertex or dry-run (locally: vertex with VERTEX_API_ENDPOINT = the emulator) | vertex |
| MLOPS_TEMPLATES | directory of compiled templates + manifest.json | templates/ beside the code |
| MLOPS_STATE_DIR | guards' state files when no state bucket is reachable | .mlops-local |
| MAX_EVENT_AGE_SECONDS | older events are dropped with a dead-letter record (0: no limit) | 86400 |
| MAX_MESSAGE_BYTES | largest Pub/Sub message data accepted | 262144 |
| VERTEX_TIMEOUT_SECONDS | how long the launcher waits for Vertex to answer a create call | 30 |
| MLOPS_STATE_BUCKET | bucket of the guards' state (debounce, cooldown, active runs), under mlops-state/ | DATA_BUCKET when deployed (K_SERVICE set) or STORAGE_EMULATOR_HOST is set; else files under MLOPS_STATE_DIR/state |
| MLOPS_DEAD_LETTER_BUCKET | bucket for the whole record of a dead letter too large to carry (under mlops-dead-letters/) | the state bucket, else files under MLOPS_DEAD_LETTER_DIR/events |
| MAX_EVENT_FUTURE_SECONDS | events dated further ahead than this (clock skew allowance) are dropped with a dead-letter record (0: no limit) | 300 |
| MLOPS_CLOCK_SKEW_SECONDS | added to this instance's clock, to test clock skew between instances (the reliability run); never set it in a deployment | 0 |
| MLOPS_ORDERING | stale-generation check for storage events: storage (read the object's live generation), memory (per instance only) or off | storage when a state bucket is in use, else memory |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

LauncherName = Literal["vertex", "dry-run"]
_LAUNCHERS = ("vertex", "dry-run")
OrderingMode = Literal["storage", "memory", "off"]
_ORDERING = ("storage", "memory", "off")
BUNDLE_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting that makes the function unable to work at all (a deploy problem)."""


@dataclass(frozen=True)
class Settings:
    project: str | None
    region: str
    data_bucket: str | None
    pipeline_root: str | None
    pipeline_service_account: str | None
    config_path: Path | None
    vertex_api_endpoint: str | None
    dead_letter_topic: str | None
    dead_letter_dir: Path | None
    launcher: LauncherName
    templates_dir: Path
    state_dir: Path
    max_event_age_seconds: float
    max_message_bytes: int
    variables: Mapping[str, str]  # what ${VAR} in the rules file may refer to
    vertex_timeout_seconds: float = 30.0
    state_bucket: str | None = None  # None: guards keep state under state_dir/state
    ordering: OrderingMode = "memory"
    dead_letter_bucket: str | None = None
    max_event_future_seconds: float = 300.0
    clock_skew_seconds: float = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        launcher = env.get("MLOPS_LAUNCHER", "vertex")
        if launcher not in _LAUNCHERS:
            raise SettingsError(f"MLOPS_LAUNCHER={launcher!r}: expected one of {', '.join(_LAUNCHERS)}")
        bucket = env.get("DATA_BUCKET") or None
        # Storage is reachable when deployed (Cloud Run sets K_SERVICE) or with the emulator.
        storage_reachable = bool(env.get("K_SERVICE") or env.get("STORAGE_EMULATOR_HOST"))
        state_bucket = env.get("MLOPS_STATE_BUCKET") or (bucket if storage_reachable else None)
        ordering = env.get("MLOPS_ORDERING") or ("storage" if state_bucket else "memory")
        if ordering not in _ORDERING:
            raise SettingsError(f"MLOPS_ORDERING={ordering!r}: expected one of {', '.join(_ORDERING)}")
        root = env.get("PIPELINE_ROOT") or (f"gs://{bucket}/pipeline-root" if bucket else None)
        return cls(
            project=env.get("GOOGLE_CLOUD_PROJECT") or None,
            region=env.get("GOOGLE_CLOUD_REGION") or "us-central1",
            data_bucket=bucket,
            pipeline_root=root,
            pipeline_service_account=env.get("PIPELINE_SERVICE_ACCOUNT") or None,
            config_path=Path(env["MLOPS_CONFIG"]) if env.get("MLOPS_CONFIG") else _bundled_rules(),
            vertex_api_endpoint=env.get("VERTEX_API_ENDPOINT") or None,
            dead_letter_topic=env.get("DEAD_LETTER_TOPIC") or None,
            dead_letter_dir=Path(env["MLOPS_DEAD_LETTER_DIR"]) if env.get("MLOPS_DEAD_LETTER_DIR") else None,
            launcher=cast(LauncherName, launcher),
            templates_dir=Path(env.get("MLOPS_TEMPLATES") or _default_templates()),
            state_dir=Path(env.get("MLOPS_STATE_DIR") or ".mlops-local"),
            max_event_age_seconds=_number(env, "MAX_EVENT_AGE_SECONDS", 86400.0),
            max_message_bytes=int(_number(env, "MAX_MESSAGE_BYTES", 262144)),
            variables={k: v for k, v in env.items() if k.isupper()},
            vertex_timeout_seconds=_number(env, "VERTEX_TIMEOUT_SECONDS", 30.0),
            state_bucket=state_bucket,
            ordering=cast(OrderingMode, ordering),
            dead_letter_bucket=env.get("MLOPS_DEAD_LETTER_BUCKET") or state_bucket,
            max_event_future_seconds=_number(env, "MAX_EVENT_FUTURE_SECONDS", 300.0),
            clock_skew_seconds=_number(env, "MLOPS_CLOCK_SKEW_SECONDS", 0.0),
        )

    def dead_letter_topic_path(self) -> str | None:
        topic = self.dead_letter_topic
        if not topic or topic.startswith("projects/"):
            return topic
        if not self.project:
            raise SettingsError("DEAD_LETTER_TOPIC is a short name but GOOGLE_CLOUD_PROJECT is not set")
        return f"projects/{self.project}/topics/{topic}"


def _bundled_rules() -> Path | None:
    # A bundle carries its rules beside main.py; a checkout uses the shipped default rules.
    path = BUNDLE_ROOT / "rules.yaml"
    return path if path.is_file() else None


def _default_templates() -> Path:
    # In the deployed bundle the templates sit beside the code; in a checkout, `make compile` output.
    bundled = BUNDLE_ROOT / "templates"
    return bundled if bundled.is_dir() else BUNDLE_ROOT / "build" / "templates"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
