"""``mlops-events replay``: re-deliver dead-letter records to their function after a fix.

Records (``functions.dead_letter``, schema ``mlops-events/dead-letter/v1``) carry the original
CloudEvent attributes and data; each is POSTed in binary mode (``ce-*`` headers, the data as the
body) to the function named by its ``entry_point``. Replaying is safe to repeat: the function derives
the Vertex job id from what the event is about, so a record replayed twice still leads to one run.

    mlops-events replay --dir .mlops-local/dead-letters --to http://127.0.0.1:8080
    mlops-events replay --dir DIR --to on_new_data=http://127.0.0.1:8081 --to on_run_request=http://...
    mlops-events replay --subscription projects/P/subscriptions/dead-letters --to https://{entry_point}-xyz.run.app

``--to`` is one URL for every record, ``ENTRY_POINT=URL`` per entry point, or a URL with an
``{entry_point}`` placeholder. The event time is set to now (``--keep-time`` keeps it), otherwise a
record older than MAX_EVENT_AGE_SECONDS would be dropped again.

Attribute values travel as they were recorded. Binary mode carries them as sent, as Eventarc does
(it does not percent-encode: an audit event's id holds ``%2F`` literally, and the function reads
header values as sent). A record with a value no HTTP header can carry (non-ASCII, a line break:
legal in structured mode) is sent in structured mode instead, so it arrives unchanged.

Each record is reported with what the function did, read from its ``Mlops-Events-Outcome`` answer
header (a permanent error is answered 200 too): ``launched``, ``skipped`` (both accepted),
``dead-lettered`` again (with the new reason) or ``FAILED`` (non-2xx, or no answer). The records
replayed are those present when the replay started: copies the replay itself causes are never
replayed in the same run. Exit 0 only when every record was accepted.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from events.envelope import STRUCTURED_CONTENT_TYPE
from functions.dead_letter import SCHEMA, decode_data


@dataclass(frozen=True)
class Record:
    where: str  # file:line or message id
    record: dict[str, Any]
    ack_id: str | None = None


def header_safe(value: str) -> bool:
    """Printable ASCII (space included): what an HTTP header carries exactly as it is."""
    return all(" " <= c <= "~" for c in value)


def http_request(record: Mapping[str, Any], *, keep_time: bool = False) -> tuple[dict[str, str], bytes]:
    """Headers and body of the CloudEvent rebuilt from a dead-letter record: binary mode, or
    structured mode when an attribute value cannot travel in a header."""
    event = record.get("event") or {}
    raw: dict[str, str] = {}  # the headers of a request the framework could not read: as they came
    attributes: dict[str, str] = {}
    content_type: str | None = None
    for key, value in (event.get("attributes") or {}).items():
        lower = str(key).lower()
        if lower in ("content-type", "datacontenttype"):
            content_type = str(value)
        elif lower.startswith("ce-"):
            raw[lower] = str(value)
        elif lower != "data":
            attributes[lower] = str(value)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if not keep_time:
        for where, name in ((attributes, "time"), (raw, "ce-time")):
            if name in where:
                where[name] = now
    data = decode_data(event.get("data"))
    if not raw and not all(header_safe(v) for v in [*attributes.values(), content_type or ""]):
        doc: dict[str, Any] = dict(attributes)
        if content_type:
            doc["datacontenttype"] = content_type
        if isinstance(data, bytes | str):
            raw_data = data if isinstance(data, bytes) else data.encode("utf-8")
            doc["data_base64"] = base64.b64encode(raw_data).decode("ascii")
        elif data is not None:
            doc["data"] = data
        return {"content-type": STRUCTURED_CONTENT_TYPE}, json.dumps(doc, ensure_ascii=False).encode("utf-8")
    headers = {f"ce-{k}": v for k, v in attributes.items()} | raw
    if content_type:
        headers["content-type"] = content_type
    if isinstance(data, bytes):
        body = data
    elif isinstance(data, str):
        body = data.encode("utf-8")
    else:
        body = json.dumps(data).encode("utf-8")
        headers.setdefault("content-type", "application/json")
    return headers, body


def target_url(targets: list[str], entry_point: str) -> str | None:
    mapped = dict(t.split("=", 1) for t in targets if "=" in t.split("://", 1)[0])
    if entry_point in mapped:
        return mapped[entry_point]
    plain = [t for t in targets if "=" not in t.split("://", 1)[0]]
    if not plain:
        return None
    return plain[0].replace("{entry_point}", entry_point)


def records_from_dir(directory: Path) -> Iterator[Record]:
    """The records present now. The functions append to these files while the replay runs (a record
    dead-lettered again): what they append is not replayed in this run, so one run cannot feed itself."""
    files = sorted(directory.glob("*.jsonl")) if directory.is_dir() else [directory]
    snapshot = [(path, path.read_bytes()) for path in files]
    for path, content in snapshot:
        for n, line in enumerate(content.splitlines(), 1):
            if line.strip():
                yield _record(f"{path.name}:{n}", line)


def _record(where: str, raw: bytes, ack_id: str | None = None) -> Record:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or value.get("schema") != SCHEMA:
        return Record(where, {"invalid": f"not a {SCHEMA} record"}, ack_id)
    return Record(where, value, ack_id)


def run(args: argparse.Namespace) -> int:
    import requests

    if bool(args.dir) == bool(args.subscription):
        print("replay: give exactly one of --dir or --subscription", file=sys.stderr)
        return 2
    subscriber: Any = None
    if args.dir:
        source: Iterator[Record] = records_from_dir(Path(args.dir))
    else:
        from google.cloud import pubsub_v1

        subscriber = pubsub_v1.SubscriberClient()
        response = subscriber.pull(subscription=args.subscription, max_messages=args.max, timeout=30)
        source = iter(
            _record(m.message.message_id, m.message.data, m.ack_id) for m in response.received_messages
        )

    session = requests.Session()
    counts = {"launched": 0, "skipped": 0, "dead-lettered": 0, "failed": 0, "not sent": 0}
    acks: list[str] = []
    for item in source:
        try:
            kind, line = replay_one(session, item, args.to, keep_time=args.keep_time)
        except Exception as exc:  # one bad record must not stop the others
            kind, line = "failed", f"{item.where}: {type(exc).__name__}: {exc}"
        counts[kind] += 1
        if item.ack_id and kind in ("launched", "skipped", "dead-lettered"):
            acks.append(item.ack_id)  # handled; a new dead-letter record carries the new reason
        print(f"{kind if kind in ACCEPTED else kind.upper():14} {line}")
    if subscriber is not None and acks:
        subscriber.acknowledge(subscription=args.subscription, ack_ids=acks)
    total = sum(counts.values())
    accepted = sum(counts[k] for k in ACCEPTED)
    print(
        f"replayed {total} record(s): {accepted} accepted ({counts['launched']} launched, "
        f"{counts['skipped']} skipped), {counts['dead-lettered']} dead-lettered again, "
        f"{counts['failed']} failed, {counts['not sent']} not sent"
    )
    return 0 if accepted == total else 1


ACCEPTED = ("launched", "skipped")


def replay_one(session: Any, item: Record, targets: list[str], *, keep_time: bool) -> tuple[str, str]:
    """Send one record; return (launched | skipped | dead-lettered | failed | not sent, report line)."""
    import requests

    from functions.runtime import OUTCOME_HEADER

    record = item.record
    if "invalid" in record:
        return "not sent", f"{item.where}: {record['invalid']}"
    entry_point = str(record.get("entry_point", ""))
    url = target_url(targets, entry_point)
    if url is None:
        return "not sent", f"{item.where}: no --to for entry point {entry_point!r}"
    headers, body = http_request(record, keep_time=keep_time)
    event_id = ((record.get("event") or {}).get("attributes") or {}).get("id") or headers.get("ce-id", "?")
    what = f"{item.where} {entry_point} id={event_id}"
    was = str(record.get("reason", ""))[:100]
    try:
        response = session.post(url, data=body, headers=headers, timeout=60)
    except requests.RequestException as exc:
        return "failed", f"{what} -> {exc} (was: {was})"
    if not 200 <= response.status_code < 300:
        return "failed", f"{what} -> HTTP {response.status_code}: {response.text[:200].strip()} (was: {was})"
    outcome = urllib.parse.unquote(response.headers.get(OUTCOME_HEADER, ""))
    kind, _, detail = outcome.partition(": ")
    if kind not in ("launched", "skipped", "dead-lettered"):
        return (
            "failed",
            f"{what} -> HTTP {response.status_code} without an {OUTCOME_HEADER} header: not an mlops-events function?",
        )
    if kind == "dead-lettered":
        return kind, f"{what}: {detail[:200]} (was: {was})"
    return kind, f"{what}: {detail[:200]}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="re-deliver dead-letter records to their functions (safe to repeat)",
        description="Re-deliver dead-letter records, in binary mode, to the function of each record's "
        "entry point. Job ids make a replay idempotent.",
    )
    p.add_argument(
        "--dir", help="directory of dead-letters-*.jsonl files (MLOPS_DEAD_LETTER_DIR), or one file"
    )
    p.add_argument(
        "--subscription", help="Pub/Sub subscription of the dead-letter topic (pulled, acked when accepted)"
    )
    p.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="URL | ENTRY_POINT=URL",
        help="where to send: one URL, ENTRY_POINT=URL (repeatable), or a URL with {entry_point}",
    )
    p.add_argument("--keep-time", action="store_true", help="keep the original event time (default: now)")
    p.add_argument(
        "--max", type=int, default=100, help="at most this many messages from --subscription (100)"
    )
    p.set_defaults(func=run)
