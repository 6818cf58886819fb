"""Deterministic Vertex job ids and lineage labels, derived from what an event is about.

The job id is the idempotency key: a redelivered event (same object generation, same message,
same incident state, same audit operation) maps to the same id, so Vertex answers "already
exists" and nothing launches twice (ARCHITECTURE decision 1).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Final

# https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.pipelineJobs/create
JOB_ID_RE: Final = re.compile(r"^[a-z][-a-z0-9]{0,127}$")
# Label keys and values: at most 63 characters of lowercase letters, digits, '_' and '-'; keys
# start with a letter. (Vertex also allows international letters; we never produce them.)
LABEL_KEY_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE: Final = re.compile(r"^[a-z0-9_-]{0,63}$")
MAX_LABELS: Final = 64
LABEL_PREFIX: Final = "mlops-"

_DIGEST_CHARS: Final = 20  # 80 bits: collisions are not a practical concern


def digest(text: str, length: int = _DIGEST_CHARS) -> str:
    """Hex SHA-256 prefix of ``text``. Any str hashes, including one with a lone UTF-16 surrogate
    (``"\\ud800"`` from JSON, a client that cut a string inside an emoji): ``surrogatepass`` gives such a
    string bytes that no valid string has, so it neither crashes nor collides."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def slug(text: str, max_len: int) -> str:
    """Lowercase letters, digits and single dashes; never empty, never ends with a dash."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    s = s[:max_len].rstrip("-")
    return s or "x"


def job_id(pipeline: str, rule: str, identity: str) -> str:
    """``<pipeline>-<rule>-<digest(rule, identity)>``, valid for Vertex.

    The rule is part of the digest so two rules reacting to one fact never share a job, and the
    readable prefix lets an operator see in the console why a run exists.
    """
    head = slug(pipeline, 40)
    if not head[0].isalpha():
        head = "p-" + head
    readable = f"{head}-{slug(rule, 40)}"
    key = f"{rule}\n{identity}"
    value = f"{readable}-{digest(key)}"
    assert JOB_ID_RE.match(value), value  # by construction; a failure here is a bug
    return value


def label_value(text: str) -> str:
    s = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")
    return s[:63].rstrip("-")


def lineage_labels(
    *, source_kind: str, rule: str, pipeline: str, identity: str, template_digest: str | None
) -> dict[str, str]:
    labels = {
        f"{LABEL_PREFIX}source": label_value(source_kind.replace(".", "_")),
        f"{LABEL_PREFIX}rule": label_value(rule),
        f"{LABEL_PREFIX}pipeline": label_value(pipeline),
        f"{LABEL_PREFIX}event": digest(identity),
    }
    if template_digest:
        labels[f"{LABEL_PREFIX}template"] = label_value(template_digest[:20])
    return labels


def label_problems(labels: Mapping[str, str]) -> list[str]:
    problems = [
        f"label key {k!r} is not a valid Vertex label key" for k in labels if not LABEL_KEY_RE.match(k)
    ]
    problems += [
        f"label {k!r} value {v!r} is not valid" for k, v in labels.items() if not LABEL_VALUE_RE.match(v)
    ]
    if len(labels) > MAX_LABELS:
        problems.append(f"{len(labels)} labels: Vertex allows {MAX_LABELS}")
    return problems
