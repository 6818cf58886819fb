"""The local stack: ``up``, ``down``, ``demo``, ``drop``, ``publish``, ``status``.

See docs/local-stack.md. Every command takes ``--state-dir`` (default ``.mlops-local``), where the
running stack's ``stack.json`` says what runs where.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from stack.config import (
    DEFAULT_STATE_DIR,
    DEMO_STATE_DIR,
    StackConfig,
    StackError,
    command_hint,
    require_stack,
)


def _state(p: argparse.ArgumentParser, default: Path = DEFAULT_STATE_DIR) -> None:
    p.add_argument(
        "--state-dir",
        type=Path,
        default=default,
        help=f"the stack's state directory (default {default})",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "up",
        help="start the local stack (emulators incl. Vertex AI, the four functions, the bridge)",
        description="Start fake-gcs-server, the Pub/Sub emulator (or the embedded dispatcher when it is not "
        "installed), the Vertex AI emulator (pipeline jobs, model registry, endpoints), the four functions "
        "from the bundle (launching on the emulator, as on Google Cloud) and the bridge that plays "
        "Eventarc. Runs in the foreground until Ctrl-C, unless --detach.",
    )
    _state(p)
    p.add_argument("--rules", type=Path, help="routing rules for the bundle (default: the shipped rules)")
    p.add_argument(
        "--pubsub",
        choices=("auto", "emulator", "embedded"),
        default="auto",
        help="auto: the emulator when installed, else the embedded dispatcher",
    )
    p.add_argument("--port-base", type=int, help="consecutive ports from this one instead of free ports")
    p.add_argument(
        "--detach", action="store_true", help="run in the background; `mlops-events down` stops it"
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser(
        "down", help="stop the local stack (the Vertex AI emulator stops its pipeline workers and models)"
    )
    _state(p)
    p.set_defaults(func=cmd_down)

    p = sub.add_parser(
        "demo",
        help="run the closed loop on a fresh local stack: data -> training -> champion -> deployment -> "
        "drifting traffic -> monitoring alert -> retraining -> champion/challenger",
        description="Starts a fresh stack in --state-dir (the previous demo's state there is removed; a "
        "directory the demo did not create is refused), runs the scripted loop with live progress, prints "
        "the lineage and writes an HTML report. Uses demo/rules.yaml.",
    )
    _state(p, DEMO_STATE_DIR)
    p.add_argument("--pubsub", choices=("auto", "emulator", "embedded"), default="auto", help="as for `up`")
    p.add_argument(
        "--keep-running", action="store_true", help="leave the stack up afterwards (Ctrl-C stops it)"
    )
    p.add_argument(
        "--step-timeout", type=float, default=180.0, help="seconds each step may take (default 180)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("drop", help="upload a file into the running stack's data bucket (a storage event)")
    _state(p)
    p.add_argument("file", type=Path)
    p.add_argument("--prefix", default="incoming/", help="object name prefix (default incoming/)")
    p.add_argument("--name", help="object name below the prefix (default: the file's name)")
    p.set_defaults(func=cmd_drop)

    p = sub.add_parser("publish", help="publish a message on a topic of the running stack")
    _state(p)
    p.add_argument("topic", help="alerts, run-requests, dead-letters, ...")
    p.add_argument("json", help="the message: JSON text, or @FILE")
    p.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE", help="a message attribute")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser(
        "status", help="the stack's emulators, runs, models and aliases, deployments and dead letters"
    )
    _state(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_status)


def _fail(message: str) -> int:
    print(f"mlops-events: {message}", file=sys.stderr)
    return 1


def cmd_up(args: argparse.Namespace) -> int:
    from stack.supervise import describe, run_foreground, start_detached

    config = StackConfig(
        state_dir=args.state_dir, rules=args.rules, pubsub=args.pubsub, port_base=args.port_base
    )
    try:
        if args.detach:
            argv = ["up", "--state-dir", str(config.root), "--pubsub", args.pubsub]
            if args.rules:
                argv += ["--rules", str(args.rules.resolve())]
            if args.port_base:
                argv += ["--port-base", str(args.port_base)]
            info = start_detached(config, argv)
            describe(info)
            print(
                f"stack running in the background (pid {info['pid']}); "
                f"{command_hint('down', args.state_dir)} stops it"
            )
            return 0
        return run_foreground(config)
    except StackError as exc:
        return _fail(str(exc))


def cmd_down(args: argparse.Namespace) -> int:
    from stack.teardown import down

    if not down(args.state_dir):
        print(f"no stack running from {args.state_dir}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from stack.demo import DemoError, run_demo

    started = time.monotonic()
    try:
        run_demo(
            args.state_dir,
            keep_running=args.keep_running,
            pubsub=args.pubsub,
            timeout_per_step=args.step_timeout,
        )
    except (DemoError, StackError) as exc:
        print(f"\ndemo FAILED after {time.monotonic() - started:.1f}s: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_drop(args: argparse.Namespace) -> int:
    from stack.demo import with_stack_env

    try:
        info = require_stack(args.state_dir)
    except StackError as exc:
        return _fail(str(exc))
    if not args.file.is_file():
        return _fail(f"{args.file} is not a file")
    with_stack_env(info)
    from pipelines import storage_io

    prefix = args.prefix if not args.prefix or args.prefix.endswith("/") else args.prefix + "/"
    uri = f"gs://{info['buckets']['data']}/{prefix.lstrip('/')}{args.name or args.file.name}"
    storage_io.write_bytes(uri, args.file.read_bytes())
    print(
        f"dropped {args.file} at {uri}; follow it in {info['state_dir']}/logs/on_new_data.log or `mlops-events status`"
    )
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from stack.dispatch import publish

    try:
        info = require_stack(args.state_dir)
    except StackError as exc:
        return _fail(str(exc))
    text = Path(args.json[1:]).read_text(encoding="utf-8") if args.json.startswith("@") else args.json
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return _fail(f"the message is not JSON ({exc}); publish JSON text or @FILE")
    attributes = {}
    for item in args.attr:
        key, sep, value = item.partition("=")
        if not sep:
            return _fail(f"--attr {item!r}: expected KEY=VALUE")
        attributes[key] = value
    try:
        message_id = publish(info, args.topic, text.encode(), attributes)
    except Exception as exc:  # the emulator's NotFound, a refused connection: say which topic
        return _fail(f"publishing on {args.topic!r} failed: {exc}")
    print(f"published message {message_id} on {args.topic}")
    return 0


def status_document(state_dir: Path) -> dict[str, Any]:
    from stack.config import dead_stack, read_stack
    from stack.lineage_read import build
    from stack.vertex_client import VertexApiError, for_stack

    root = state_dir.resolve()
    info = read_stack(root)
    doc: dict[str, Any] = {"state_dir": str(root), "running": info is not None}
    dead = dead_stack(root)
    if dead is not None:
        doc["dead_supervisor"] = int(dead.get("pid", 0))
    client = None
    if info is not None:
        from stack.demo import with_stack_env

        with_stack_env(info)
        doc["pubsub"] = info["pubsub"]["mode"]
        doc["vertex"] = {"url": info["vertex"]["url"], "state_dir": info["vertex"]["state_dir"]}
        doc["functions"] = {name: fn["url"] for name, fn in info["functions"].items()}
        client = for_stack(info)
    try:
        lineage = build(root, client)
    except VertexApiError as exc:  # the emulator died under a live supervisor: say so, show the rest
        doc["vertex"]["error"] = str(exc)
        lineage = build(root, None)
    doc["runs"] = [
        {
            "job_id": r.job_id,
            "pipeline": r.pipeline,
            "rule": r.rule,
            "state": r.state,
            "attempt": r.attempt,
            "seconds": r.seconds,
            "failed_task": r.failed_task,
            "error": r.error,
        }
        for r in lineage.runs.values()
    ]
    doc["models"] = {
        key: {"aliases": v.aliases, "metrics": v.metrics, "run": v.job_id}
        for key, v in lineage.versions.items()
    }
    doc["deployments"] = {
        name: {"model": e.model, "traffic": e.traffic, "deployed": e.deployed}
        for name, e in lineage.endpoints.items()
    }
    doc["dead_letters"] = read_dead_letters(root / "dead-letters")
    return doc


def read_dead_letters(directory: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                records.append(
                    {
                        "entry_point": record.get("entry_point"),
                        "received_at": record.get("received_at"),
                        "reason": record.get("reason"),
                        "event_id": (record.get("event") or {}).get("attributes", {}).get("id"),
                        "file": str(path),
                    }
                )
    return records


def cmd_status(args: argparse.Namespace) -> int:
    doc = status_document(args.state_dir)
    # A supervisor that was killed leaves stack.json and maybe its children: not "running", exit 1.
    code = 1 if "dead_supervisor" in doc else 0
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return code
    if code:
        print(
            f"stack: NOT RUNNING: its supervisor (pid {doc['dead_supervisor']}) is gone, but "
            f"{doc['state_dir']}/stack.json remains and its processes may still run; clean up with "
            f"{command_hint('down', args.state_dir)}"
        )
    else:
        print(f"stack: {'running' if doc['running'] else 'not running'} ({doc['state_dir']})")
    if doc["running"]:
        print(f"  pubsub: {doc['pubsub']}")
        vertex = doc["vertex"]
        print(f"  vertex: {vertex['url']} (Vertex AI emulator, state {vertex['state_dir']})")
        if vertex.get("error"):
            print(f"    not answering: {vertex['error']}")
        for name, url in doc["functions"].items():
            print(f"  {name:<24} {url}")
        print(f"runs ({len(doc['runs'])}):")
    else:
        print("runs: start the stack to read them from the Vertex AI emulator (`mlops-events up`)")
    for r in doc["runs"]:
        took = f" {r['seconds']:.1f}s" if r["seconds"] is not None else ""
        print(f"  {r['state']:<10} {r['pipeline']:<16} {r['job_id']}{took}")
        if r["state"] in ("FAILED", "CANCELLED"):
            if r["state"] == "FAILED":
                print(f"             task {r['failed_task']}: {str(r['error'])[:200]}")
            print(
                f"             run it again: mlops-events rerun {r['job_id']} --state-dir {doc['state_dir']}"
            )
    if doc["running"]:
        print(f"models ({len(doc['models'])} versions):")
        for key, m in doc["models"].items():
            metrics = ", ".join(f"{k}={v:.3f}" for k, v in sorted(m["metrics"].items()))
            print(f"  {key:<16} [{', '.join(m['aliases'])}] {metrics}")
        print(f"deployments ({len(doc['deployments'])}):")
        for name, d in doc["deployments"].items():
            print(f"  {name:<16} model {d['model']} traffic {d['traffic']}")
    else:
        print(
            f"models, deployments: start the stack to read the registry ({command_hint('up', args.state_dir)})"
        )
    dead = doc["dead_letters"]
    print(f"dead letters ({len(dead)}):")
    for d in dead[-10:]:
        print(f"  {d['received_at']} {d['entry_point']}: {str(d['reason'])[:160]}")
    if dead and doc["running"]:
        targets = " ".join(f"--to {name}={url}" for name, url in doc["functions"].items())
        print(
            f"  after a fix, re-deliver them: mlops-events replay --dir {doc['state_dir']}/dead-letters {targets}"
        )
    return code
