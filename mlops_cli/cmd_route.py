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
from events.catalog import Catalog
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
    p.add_argument(
        "--templates",
        type=Path,
        help="compiled templates: their manifest is the catalog (default: compile the pipelines now)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="also explain the launch against the catalog: every parameter, its value and where it "
        "comes from (route never launches)",
    )
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


def _rules_path(args: argparse.Namespace) -> Path | None:
    return args.config or (Path(os.environ["MLOPS_CONFIG"]) if os.environ.get("MLOPS_CONFIG") else None)


def _rules(path: Path | None, variables: dict[str, str], catalog: Catalog) -> RuleSet:
    text = path.read_text(encoding="utf-8") if path else default_rules_text()
    return load_rules(text, catalog=catalog, variables=variables, source=str(path or "default rules"))


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
    from pipelines.catalog import compiled_templates
    from pipelines.compile import CompileError
    from pipelines.launch.base import Templates

    try:
        variables = _variables(args.var)
        templates = Templates(compiled_templates(args.templates, _rules_path(args)))
        rules = _rules(_rules_path(args), variables, templates.catalog)
        doc = json.loads(args.event_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, ConfigError, CompileError) as exc:
        print(f"mlops-events route: {exc}", file=sys.stderr)
        return 2
    digests = templates.digests()

    event: Event | None = None
    decision: Decision
    try:
        event = parse.parse(envelope.from_json_document(doc, type_=args.ce_type, source=args.ce_source))
        decision = route(event, rules, digests)
    except PermanentError as exc:
        decision = Reject(str(exc))

    out = result_document(event, decision)
    if args.dry_run and isinstance(decision, Launch):
        out["explain"] = explain(decision, rules)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(f"{out['decision'].upper()}: {out['reason']}")
        if event:
            print(f"  event:    {event.kind} {event.identity}")
        for key in ("rule", "pipeline", "job_id", "parameters", "labels"):
            if out.get(key):
                print(f"  {key + ':':<9} {json.dumps(out[key]) if isinstance(out[key], dict) else out[key]}")
        for line in out.get("explain", {}).get("lines", []):
            print(line)
    return 1 if isinstance(decision, Reject) else 0


def explain(decision: Launch, rules: RuleSet) -> dict[str, Any]:
    """Every parameter of the launched pipeline: the value sent and where it comes from (the event
    and rule, the model's settings, or the template's default)."""
    request = decision.request
    spec = rules.catalog[request.pipeline]
    model = request.parameters.get("model_name")
    settings = rules.models.for_model(model) if isinstance(model, str) else None
    rows = []
    for param in spec.parameters:
        if param.name in request.parameters:
            value = request.parameters[param.name]
            fixed = settings is not None and param.name in settings.parameters
            origin = settings.describe() if fixed and settings else f"rule {request.rule}"
        else:
            value, origin = param.default, "template default"
        rows.append({"parameter": param.name, "type": param.type, "value": value, "from": origin})
    lines = [f"  explain: pipeline {spec.name} ({spec.source}); catalog of the compiled templates"]
    lines += [f"    {r['parameter']:<18} {json.dumps(r['value'], default=str):<40} {r['from']}" for r in rows]
    return {"pipeline": spec.name, "source": spec.source, "parameters": rows, "lines": lines}
