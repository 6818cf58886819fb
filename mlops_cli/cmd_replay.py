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
record older than MAX_EVENT_AGE_SECONDS would be dropped again. Exit 0 when every record was accepted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.dead_letter import SCHEMA, decode_data


@dataclass(frozen=True)
class Record:
    where: str  # file:line or message id
    record: dict[str, Any]
    ack_id: str | None = None


def http_request(record: Mapping[str, Any], *, keep_time: bool = False) -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode CloudEvent rebuilt from a dead-letter record."""
    event = record.get("event") or {}
    attributes: Mapping[str, Any] = event.get("attributes") or {}
    headers: dict[str, str] = {}
    for key, value in attributes.items():
        lower = key.lower()
        if lower in ("content-type", "datacontenttype"):
            headers["content-type"] = str(value)
        elif lower.startswith("ce-"):
            headers[lower] = str(value)  # the record of a request the framework could not read
        elif lower != "data":
            headers[f"ce-{lower}"] = str(value)
    if not keep_time and "ce-time" in headers:
        headers["ce-time"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    data = decode_data(event.get("data"))
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
    files = sorted(directory.glob("*.jsonl")) if directory.is_dir() else [directory]
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                yield _record(f"{path.name}:{n}", line.encode())


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
    counts = {"accepted": 0, "failed": 0, "skipped": 0}
    acks: list[str] = []
    for item in source:
        record = item.record
        if "invalid" in record:
            counts["skipped"] += 1
            print(f"skip     {item.where}: {record['invalid']}")
            continue
        entry_point = str(record.get("entry_point", ""))
        url = target_url(args.to, entry_point)
        if url is None:
            counts["skipped"] += 1
            print(f"skip     {item.where}: no --to for entry point {entry_point!r}")
            continue
        headers, body = http_request(record, keep_time=args.keep_time)
        try:
            status = session.post(url, data=body, headers=headers, timeout=60).status_code
        except requests.RequestException as exc:
            status, detail = 0, str(exc)
        else:
            detail = ""
        ok = 200 <= status < 300
        counts["accepted" if ok else "failed"] += 1
        if ok and item.ack_id:
            acks.append(item.ack_id)
        reason = str(record.get("reason", ""))[:100]
        print(
            f"{'ok' if ok else 'FAILED':8} {item.where} {entry_point} id={headers.get('ce-id', '?')} "
            f"-> {status} {detail}(was: {reason})"
        )
    if subscriber is not None and acks:
        subscriber.acknowledge(subscription=args.subscription, ack_ids=acks)
    total = sum(counts.values())
    print(
        f"replayed {total} record(s): {counts['accepted']} accepted, {counts['failed']} failed, "
        f"{counts['skipped']} skipped"
    )
    return 0 if counts["failed"] == 0 and counts["skipped"] == 0 else 1


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
