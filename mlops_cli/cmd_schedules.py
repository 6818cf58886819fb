"""``mlops-events schedules``: the rules file's schedules, their next fire times and what they publish;
``mlops-events schedules fire NAME``: fire one now on the running local stack.

Exit codes: 0 listed (or fired); 1 a schedule whose run request the rules would not launch;
2 usage errors (bad arguments, unreadable or invalid rules, no stack, unknown schedule).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from events.cron import time_zone

DEFAULT_TOPIC = "run-requests"  # the local stack's; set $RUN_REQUESTS_TOPIC (or --topic) for a deployment
_VAR_RE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(:-[^}]*)?\}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schedules",
        help="list the rules file's schedules with their next fire times; `schedules fire NAME` fires one",
        description="List each schedule of the rules file (schedules:) with its next fire times, in its "
        "time zone and in UTC, the run request it publishes, the daylight-saving days it skips or doubles, "
        "and whether the rules launch it. `schedules fire NAME` publishes a schedule's run request now on "
        "the running local stack.",
    )
    p.add_argument("--config", type=Path, help="rules file (default: $MLOPS_CONFIG, else the shipped rules)")
    p.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="set a ${NAME} of the rules file"
    )
    p.add_argument(
        "--templates",
        type=Path,
        help="compiled templates: their manifest is the catalog (default: compile the pipelines now)",
    )
    p.add_argument("--count", type=int, default=5, help="fire times to list per schedule (default 5)")
    p.add_argument("--after", help="list fire times after this RFC 3339 time (default: now)")
    p.add_argument(
        "--topic",
        default=os.environ.get("RUN_REQUESTS_TOPIC") or DEFAULT_TOPIC,
        help="topic the run requests arrive on, for the routing check (default: $RUN_REQUESTS_TOPIC, "
        f"else {DEFAULT_TOPIC})",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_list)
    actions = p.add_subparsers(dest="schedules_command", metavar="{fire}")
    fire = actions.add_parser("fire", help="publish a schedule's run request now on the running local stack")
    fire.add_argument("name", metavar="NAME")
    from stack.config import DEFAULT_STATE_DIR

    fire.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"the stack's state directory (default {DEFAULT_STATE_DIR})",
    )
    fire.add_argument(
        "--at",
        help="fire as the tick at this RFC 3339 time (its idempotency key: a tick that already ran "
        "is not run again); default: now, a run of its own",
    )
    fire.set_defaults(func=run_fire)


def _variables(text: str, pairs: list[str]) -> dict[str, str]:
    # A ${NAME} set nowhere stays as written (shown, not an error): listing needs no deployment.
    variables = {name: f"${{{name}}}" for name, default in _VAR_RE.findall(text) if not default}
    variables.update({k: v for k, v in os.environ.items() if v})
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--var {pair!r}: expected NAME=VALUE")
        variables[name] = value
    return variables


def _load(args: argparse.Namespace) -> Any:
    from events.routing import default_rules_text, load_rules
    from pipelines.catalog import compiled_templates, load_catalog

    path = args.config or (Path(os.environ["MLOPS_CONFIG"]) if os.environ.get("MLOPS_CONFIG") else None)
    text = path.read_text(encoding="utf-8") if path else default_rules_text()
    catalog = load_catalog(compiled_templates(args.templates, path))
    return load_rules(
        text, catalog=catalog, variables=_variables(text, args.var), source=str(path or "default rules")
    )


def schedules_document(rules: Any, *, after: datetime, count: int, topic: str) -> dict[str, Any]:
    from events.schedules import routing_problems

    problems = {}
    for problem in routing_problems(rules, topic=topic):
        head, _, why = problem.partition(": ")
        problems[head.removeprefix("schedule ")] = why
    out = []
    for s in rules.schedules:
        fires = s.next_fires(after, count)
        out.append(
            {
                "name": s.name,
                "description": s.description,
                "cron": s.cron.expression,
                "time_zone": s.time_zone,
                "pipeline": s.pipeline,
                "parameters": dict(s.parameters),
                "run_request": s.message() | {"idempotency_key": f"{s.name}-<fire time, UTC>"},
                "next_fires": [
                    {
                        "local": t.astimezone(s.zone).isoformat(),
                        "utc": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "idempotency_key": s.idempotency_key(t),
                    }
                    for t in fires
                ],
                "daylight_saving": s.cron.dst_effects(s.zone, after),
                "launches": s.name not in problems,
                "problem": problems.get(s.name),
            }
        )
    return {"source": rules.source, "topic": topic, "after": after.isoformat(), "schedules": out}


def _time(text: str, flag: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{flag} {text!r}: give a time zone (e.g. 2026-12-01T00:00:00Z)")
    return value


def run_list(args: argparse.Namespace) -> int:
    from events.catalog import CatalogError
    from events.errors import ConfigError
    from pipelines.compile import CompileError

    try:
        rules = _load(args)
        after = _time(args.after, "--after") if args.after else datetime.now(UTC)
        if args.count < 1:
            raise ValueError("--count must be at least 1")
    except (OSError, ValueError, ConfigError, CatalogError, CompileError) as exc:
        print(f"mlops-events schedules: {exc}", file=sys.stderr)
        return 2
    doc = schedules_document(rules, after=after, count=args.count, topic=args.topic)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print(doc)
    return 0 if all(s["launches"] for s in doc["schedules"]) else 1


def _print(doc: dict[str, Any]) -> None:
    if not doc["schedules"]:
        print(f"{doc['source']}: no schedules")
        return
    for s in doc["schedules"]:
        print(f"{s['name']}: {s['cron']} ({s['time_zone']}) -> {s['pipeline']}")
        if s["description"]:
            print(f"  {s['description']}")
        print(f"  publishes: {json.dumps(s['run_request'], sort_keys=True)}")
        for f in s["next_fires"]:
            local = datetime.fromisoformat(f["local"]).astimezone(time_zone(s["time_zone"]))
            print(f"  next: {local:%Y-%m-%d %H:%M %Z (%z)}  = {f['utc']}")
        for note in s["daylight_saving"]:
            print(f"  daylight saving: {note}")
        print(
            f"  routing: {'launches ' + s['pipeline'] if s['launches'] else 'WOULD NOT LAUNCH: ' + s['problem']}"
        )


def run_fire(args: argparse.Namespace) -> int:
    from events.errors import ConfigError
    from stack.config import StackError, require_stack
    from stack.scheduler import fire_schedule

    try:
        at = _time(args.at, "--at") if args.at else None
        info = require_stack(args.state_dir)
        fired = fire_schedule(info, args.name, at=at)
    except (StackError, KeyError, ConfigError, OSError, ValueError) as exc:
        print(
            f"mlops-events schedules fire: {exc.args[0] if isinstance(exc, KeyError) else exc}",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # the publish path: a refused connection, the emulator's errors
        print(f"mlops-events schedules fire: publishing failed: {exc}", file=sys.stderr)
        return 2
    print(
        f"fired schedule {fired.schedule}: message {fired.message_id} on run-requests, "
        f"idempotency key {fired.idempotency_key}"
    )
    return 0
