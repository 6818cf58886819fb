"""``mlops-events reliability``: exactly-once effects under duplicates, disorder, storms, faults,
crashes, storage restarts and clock skew.

It starts real parts on loopback: fake-gcs-server (data and state), a Vertex AI stand-in that fails
a share of create calls (``reliability.vertex``: 429, 503, a stall past the client's timeout, a
stall *after* the job was created), and the functions served by functions-framework (gunicorn,
as deployed): ``--instances`` processes per entry point, each with its own clock skew. It sends
exactly ``--events`` CloudEvents (``reliability.plan``) the way Eventarc would, writes debounced
bursts while it runs, kills random instances with SIGKILL and restarts the storage emulator, and
redelivers every non-2xx answer with back-off until the function accepts it. Then it counts, per
object, per burst, per model and per request key, what the created jobs hold (``reliability.report``).

Exit status 0 only when nothing is lost or doubled, no burst is split or merged, every event was
accepted, every malformed event and reused key left a dead letter. Pipelines are not run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from mlops_cli.reliability.delivery import Redeliveries, Tally, run_workers
from mlops_cli.reliability.events import PROJECT
from mlops_cli.reliability.instances import Instances
from mlops_cli.reliability.plan import Plan, build_plan
from mlops_cli.reliability.report import count, lines
from mlops_cli.reliability.timeline import Chaos, Uploader
from mlops_cli.reliability.vertex import FaultPlan, start_vertex

ENTRY_POINTS = ("on_new_data", "on_monitoring_alert", "on_run_request")

RULES = """\
version: 1
rules:
  - name: new-training-data
    on: storage.object.finalized
    match: {bucket: "${DATA_BUCKET}", prefix: incoming/, suffix: [.csv, .jsonl, .parquet], min_size: 1}
    launch:
      pipeline: training
      parameters: {data_uri: "{uri}", model_name: "{dataset|'default'}", trigger: "{uri}#{generation}"}
      caching: false
  - name: batched-data
    on: storage.object.finalized
    match: {bucket: "${DATA_BUCKET}", prefix: batches/, suffix: [.csv], min_size: 1}
    launch:
      pipeline: training
      parameters: {data_uri: "{uri}", model_name: "{dataset|'default'}", trigger: "{uri}#{generation}"}
      caching: false
    debounce: {quiet: "${RELIABILITY_QUIET:-2s}", max_wait: 60s}
  - name: drift-retrain
    on: monitoring.alert
    match: {state: open}
    launch:
      pipeline: retraining
      parameters: {model_name: "{model|'default'}", alert_id: "{alert_id}", trigger: "{source}:{alert_id}"}
      caching: false
    cooldown: 6h
  - name: run-request
    on: run.request
    launch: {pipeline: "{pipeline}", parameters: "{parameters}"}
"""


_compiled: Path | None = None


def stub_templates(directory: Path) -> Path:
    """The real compiled templates (their manifest is the catalog the functions route with),
    compiled once per process and copied into ``directory``. The Vertex stand-in runs nothing."""
    global _compiled
    if _compiled is None:
        from pipelines.compile import compile_all

        _compiled = Path(tempfile.mkdtemp(prefix="mlops-templates-"))
        compile_all(_compiled)
    shutil.copytree(_compiled, directory, dirs_exist_ok=True)
    return directory


def run(args: argparse.Namespace) -> int:
    from pipelines import storage_io
    from stack.emulators import start_fake_gcs

    rng = random.Random(args.seed)
    started = time.monotonic()
    with ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlops-reliability-")))
        gcs_root = workdir / "gcs"
        gcs = [start_fake_gcs(gcs_root)]
        stack.callback(lambda: gcs[0].stop())
        vertex = start_vertex(FaultPlan(rate=args.fault_rate, seed=args.seed))
        stack.callback(vertex.stop)
        bucket = f"reliability-{uuid.uuid4().hex[:8]}"
        # The storage client reads these; put them back afterwards (the emulator dies with this run).
        saved = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")}
        stack.callback(_restore_environ, saved)
        os.environ.update({"STORAGE_EMULATOR_HOST": gcs[0].host, "GOOGLE_CLOUD_PROJECT": PROJECT})
        storage_io.ensure_bucket(bucket)
        rules = workdir / "rules.yaml"
        rules.write_text(RULES, encoding="utf-8")
        env = {
            **os.environ,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "DATA_BUCKET": bucket,
            "MLOPS_STATE_BUCKET": bucket,
            "MLOPS_CONFIG": str(rules),
            "MLOPS_TEMPLATES": str(stub_templates(workdir / "templates")),
            "MLOPS_LAUNCHER": "vertex",
            "VERTEX_API_ENDPOINT": vertex.url,
            "VERTEX_TIMEOUT_SECONDS": "1.0",  # the injected stalls (1.5 s) become client time-outs
            "MLOPS_DEAD_LETTER_DIR": str(workdir / "dead-letters"),
            "RELIABILITY_QUIET": f"{args.quiet:g}s",
        }
        env.pop("DEAD_LETTER_TOPIC", None)
        plan = build_plan(bucket, args.events, rng, args.quiet, args.rate)
        # Instance i runs i-th skew: +S, -S, +S/2, -S/2, ... (what the guards' clock must absorb).
        skews = [
            {"MLOPS_CLOCK_SKEW_SECONDS": f"{_skew(i, args.clock_skew):g}"} for i in range(args.instances)
        ]
        instances = Instances.start(ENTRY_POINTS, args.instances, env, workdir, per_instance_env=skews)
        stack.callback(instances.stop)
        print(
            f"sending {plan.planned} events to {len(ENTRY_POINTS)} functions x {args.instances} instance(s) "
            f"(fault rate {args.fault_rate:.0%}, seed {args.seed}, clock skew +-{args.clock_skew:g}s, "
            f"kill every ~{args.kill_every:g}s, storage restart every ~{args.gcs_restart_every:g}s)",
            flush=True,
        )

        def restart_gcs() -> Any:
            port = gcs[0].port
            gcs[0].stop()
            time.sleep(rng.uniform(0.1, 0.4))
            gcs[0] = start_fake_gcs(gcs_root, port)
            return gcs[0]

        tally = Tally()
        queue = Redeliveries(args.max_attempts)
        t0 = time.monotonic()
        for k, d in enumerate(plan.deliveries):  # paced: the bursts are written meanwhile
            queue.put(d, t0 + k / args.rate)
        for d in plan.concurrent:  # the same delivery from three workers at the same moment
            due = t0 + rng.uniform(0, args.events / args.rate)
            for _ in range(3):
                queue.put(d, due)
        queue.hold()  # until every burst is written
        deliver_later = lambda d, delay: queue.put(d, time.monotonic() + delay)  # noqa: E731
        uploader = Uploader(plan, deliver_later, time.monotonic(), done=queue.release)
        uploader.start()
        chaos = Chaos(instances, gcs[0], restart_gcs, args.kill_every, args.gcs_restart_every, rng).start()
        run_workers(queue, instances.url_for, tally, args.threads)
        chaos.stop()
        counts = count(plan, vertex.jobs(), uploader.written)
        dead = _dead_letters(workdir / "dead-letters")
        if args.verbose:
            for reason, n in Counter(str(r["reason"])[:110] for r in dead).most_common():
                print(f"  dead letter x{n}: {reason}")
        rejected = {k for k in plan.reused_keys if any(f'"{k}"' in str(r["reason"]) for r in dead)}
        # A delivery of data that must run is never a dead letter (but a reused key's first comer may be).
        normal = {
            d.headers.get("ce-id")
            for d in plan.deliveries + plan.concurrent
            if d.label not in ("malformed", "reused")
        }
        unexplained = [
            r
            for r in dead
            if (r.get("event") or {}).get("attributes", {}).get("id") in normal | uploader.event_ids
            and "already used with other parameters" not in str(r["reason"])
        ]
        stats = vertex.stats()
        report = [
            f"events sent:        {tally.sent} ({tally.attempts} HTTP deliveries including redeliveries)",
            f"instances:          {args.instances} per entry point; {chaos.kills} killed (SIGKILL) and restarted, "
            f"{chaos.restarts} storage-emulator restarts, clock skew +-{args.clock_skew:g}s",
            f"duplicates:         {plan.duplicates}",
            f"malformed:          {plan.malformed}; reused keys {len(plan.reused_keys)} "
            f"(rejected: {len(rejected)}); dead-letter records: {len(dead)} (of events that must run: {len(unexplained)})",
            f"faults injected:    {sum(stats['faults'].values())} {stats['faults']}",
            f"answers:            {dict(sorted(tally.status.items()))} ({tally.deferred} debounce deferrals)",
            *lines(plan, counts),
            f"runs created:       {len(vertex.jobs())} (create calls: {stats['create_calls']}, 409s: {stats['conflicts']})",
            f"lost:               {len(counts.lost) + len(counts.models_lost) + len(counts.keys_lost)}",
            f"doubled:            {len(counts.doubled) + len(counts.models_doubled) + len(counts.keys_doubled) + counts.unexpected}",
            f"bursts split:       {len(counts.split)}",
            f"not accepted:       {tally.not_accepted}",
            f"elapsed:            {time.monotonic() - started:.1f}s",
        ]
        problems = _problems(plan, tally, counts.ok, rejected, len(dead), uploader.error)
        problems += [f"dead letter of an event that must run: {r['reason'][:200]}" for r in unexplained[:5]]
    for line in report + [f"problem: {p}" for p in problems]:
        print(line)
    print("result: " + ("FAILED" if problems else "OK (exactly once)"))
    return 1 if problems else 0


def _problems(
    plan: Plan,
    tally: Tally,
    counts_ok: bool,
    rejected: set[str],
    dead: int,
    upload_error: BaseException | None,
) -> list[str]:
    problems = []
    if tally.sent != plan.events:
        problems.append(f"{tally.sent} events sent, {plan.events} planned")
    if tally.not_accepted:
        problems.append(f"{tally.not_accepted} events never accepted")
    if not counts_ok:
        problems.append("a run is lost, doubled, split or merged (see above)")
    if rejected != plan.reused_keys:
        problems.append(f"reused keys not rejected: {sorted(plan.reused_keys - rejected)[:5]}")
    if dead < plan.malformed + len(plan.reused_keys):
        problems.append(
            f"{dead} dead letters for {plan.malformed} malformed events and {len(plan.reused_keys)} reused keys"
        )
    if upload_error is not None:
        problems.append(f"writing the bursts failed: {upload_error!r}")
    return problems


def _skew(i: int, skew: float) -> float:
    return (1 if i % 2 == 0 else -1) * skew / (1 + i // 2)


def _dead_letters(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(directory.glob("*.jsonl")) for line in f.open()]


def _restore_environ(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reliability",
        help="send N events with duplicates, disorder, faults, crashes and clock skew; check exactly-once runs",
        description="Start fake-gcs-server, a fault-injecting Vertex stand-in and several instances of each "
        "function (functions-framework), send events with duplicates, disorder, alert storms, debounced bursts, "
        "malformed input and concurrent deliveries while killing instances, restarting the storage emulator "
        "and skewing the instances' clocks; redeliver every non-2xx, then count runs per object and per burst. "
        "Exit 1 when anything is lost, doubled or split.",
    )
    p.add_argument(
        "--events", type=int, default=1000,
        help="CloudEvents to send, duplicates and concurrent copies included; redeliveries of non-2xx answers "
        "come on top (default 1000)",
    )  # fmt: skip
    p.add_argument(
        "--fault-rate", type=float, default=0.2, help="share of Vertex create calls that fail (0.2)"
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (plan, faults, chaos)")
    p.add_argument("--threads", type=int, default=16, help="concurrent deliveries (16)")
    p.add_argument("--rate", type=float, default=25.0, help="first deliveries per second, at most (25)")
    p.add_argument("--instances", type=int, default=2, help="function instances per entry point (2)")
    p.add_argument(
        "--kill-every",
        type=float,
        default=5.0,
        help="SIGKILL a random instance about every S seconds (5; 0: never)",
    )
    p.add_argument(
        "--gcs-restart-every",
        type=float,
        default=20.0,
        help="restart the storage emulator about every S seconds (20; 0: never)",
    )
    p.add_argument(
        "--clock-skew", type=float, default=30.0, help="instances' clocks differ by up to +-S seconds (30)"
    )
    p.add_argument(
        "--quiet", type=float, default=2.0, help="debounce quiet period of the bursts, seconds (2)"
    )
    p.add_argument(
        "--max-attempts",
        type=int,
        default=400,
        help="deliveries of one event before it counts as not accepted (400)",
    )
    p.add_argument("--verbose", action="store_true", help="list the dead-letter reasons")
    p.add_argument(
        "--workdir",
        help="keep the functions' logs, dead letters and storage here (default: a temporary directory)",
    )
    p.set_defaults(func=run)
