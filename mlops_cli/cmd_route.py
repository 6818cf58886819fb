"""``mlops-events route EVENT_FILE``: explain what the router decides for one event.

Exit codes: 0 launch or skip, 1 reject, 2 usage errors (bad arguments, unreadable file, bad rules).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from events import envelope, parse
from events.decision import Decision, Launch, Reject
from events.errors import ConfigError, PermanentError
from events.model import Event
from events.routing import RuleSet, default_rules_text, load_rules, route


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "route",
        help="decide what one event would launch, and why",
        description="Parse one event, apply the routing rules and print the decision. "
        "EVENT_FILE is a structured CloudEvent (JSON), or a binary-mode body with --type and --source.",
    )
    p.add_argument("event_file", metavar="EVENT_FILE", type=Path)
    p.add_argument("--config", type=Path, help="rules file (default: $MLOPS_CONFIG, else the shipped rules)")
    p.add_argument("--type", dest="ce_type", help="CloudEvent type, for a binary-mode body")
    p.add_argument("--source", dest="ce_source", help="CloudEvent source, for a binary-mode body")
    p.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="set a ${NAME} of the rules file"
    )
    p.add_argument("--templates", type=Path, help="compiled templates dir (adds template digests to labels)")
    p.add_argument("--dry-run", action="store_true", help="decide only; never launch (route never launches)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _variables(pairs: list[str]) -> dict[str, str]:
    variables = dict(os.environ)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--var {pair!r}: expected NAME=VALUE")
        variables[name] = value
    return variables


def _rules(args: argparse.Namespace, variables: dict[str, str]) -> RuleSet:
    path = args.config or (Path(os.environ["MLOPS_CONFIG"]) if os.environ.get("MLOPS_CONFIG") else None)
    text = path.read_text(encoding="utf-8") if path else default_rules_text()
    return load_rules(text, variables=variables, source=str(path or "default rules"))


def result_document(event: Event | None, decision: Decision) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "decision": decision.decision,
        "event": event.fields() if event else None,
        "identity": event.identity if event else None,
        "rule": decision.rule,
        "pipeline": None,
        "job_id": None,
        "parameters": None,
        "labels": None,
        "reason": decision.reason,
    }
    if isinstance(decision, Launch):
        r = decision.request
        doc.update(
            pipeline=r.pipeline,
            job_id=r.job_id,
            parameters=dict(r.parameters),
            labels=dict(r.labels),
            enable_caching=r.enable_caching,
        )
        if decision.options:
            doc["options"] = dict(decision.options)
    return doc


def run(args: argparse.Namespace) -> int:
    try:
        variables = _variables(args.var)
        rules = _rules(args, variables)
        doc = json.loads(args.event_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, ConfigError) as exc:
        print(f"mlops-events route: {exc}", file=sys.stderr)
        return 2
    digests: dict[str, str] = {}
    if args.templates:
        from pipelines.launch.base import Templates

        digests = Templates(args.templates).digests()

    event: Event | None = None
    decision: Decision
    try:
        event = parse.parse(envelope.from_json_document(doc, type_=args.ce_type, source=args.ce_source))
        decision = route(event, rules, digests)
    except PermanentError as exc:
        decision = Reject(str(exc))

    out = result_document(event, decision)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(f"{out['decision'].upper()}: {out['reason']}")
        if event:
            print(f"  event:    {event.kind} {event.identity}")
        for key in ("rule", "pipeline", "job_id", "parameters", "labels"):
            if out.get(key):
                print(f"  {key + ':':<9} {json.dumps(out[key]) if isinstance(out[key], dict) else out[key]}")
    return 1 if isinstance(decision, Reject) else 0
