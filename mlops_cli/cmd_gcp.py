"""``mlops-events gcp setup | deploy-functions | iam-table``: Google Cloud deployment commands.

``setup`` and ``deploy-functions`` check before they create, so they can run again at any time;
with ``--dry-run`` they print the bash script of every command they would run (the same script
``--script FILE`` writes, which the Cloud Build deploy step runs) and run nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

# deploy/ is imported when a gcp command runs, so the rest of the CLI never depends on it.
if TYPE_CHECKING:
    from deploy.config import Deployment
    from deploy.plan import Plan

_OVERRIDES = (
    ("prefix", "name prefix of every resource (default: mlops)"),
    ("data-bucket", "bucket the storage rules watch (default: <project>-<prefix>-data)"),
    ("pipeline-root", "gs:// pipeline root (default: gs://<project>-<prefix>-pipeline-root/runs)"),
    ("templates-bucket", "bucket of compiled templates (default: <project>-<prefix>-templates)"),
    ("models-bucket", "bucket of model artifacts (default: <project>-<prefix>-models)"),
    ("alerts-topic", "monitoring alerts topic (default: <prefix>-alerts)"),
    ("run-requests-topic", "run requests topic (default: <prefix>-run-requests)"),
    ("dead-letter-topic", "dead-letter topic (default: <prefix>-dead-letters)"),
    ("image-repo", "Artifact Registry Docker repository id (default: <prefix>)"),
    ("function-sa", "function service account id (default: <prefix>-functions)"),
    ("pipeline-sa", "pipeline service account id (default: <prefix>-pipelines)"),
    ("trigger-sa", "trigger service account id (default: <prefix>-triggers)"),
    ("build-sa", "Cloud Build service account id (default: <prefix>-build)"),
    ("scheduler-sa", "service account the Cloud Scheduler jobs publish as (default: <prefix>-scheduler)"),
)
_INTS = (
    ("min-instances", "minimum instances per function (default: 0)"),
    ("max-instances", "maximum instances per function, at most 15 (default: 10)"),
    ("max-delivery-attempts", "deliveries before an event is dead-lettered (default: 10)"),
)


def _add_deployment_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--project", required=required, default=None if required else "my-project")
    p.add_argument("--region", required=required, default=None if required else "europe-west1")
    for name, help_ in _OVERRIDES:
        p.add_argument(f"--{name}", help=help_)
    for name, help_ in _INTS:
        p.add_argument(f"--{name}", type=int, help=help_)
    p.add_argument(
        "--audit-methods",
        help="fix the audit-log triggers to these ModelService methods (comma-separated) instead of "
        "deriving them from the rules; a rule needing another method is then an error",
    )
    p.add_argument(
        "--audit-api-versions",
        help="deliver exactly these methodName spellings (v1, v1beta1, ui; comma-separated) for every "
        "audit method (default, per method: v1, the console's ui, and v1beta1 where gcloud beta calls it)",
    )


def deployment(args: argparse.Namespace) -> Deployment:
    from deploy.config import deployment_from_args

    def split(value: str | None) -> tuple[str, ...] | None:
        return tuple(x.strip() for x in value.split(",") if x.strip()) if value is not None else None

    overrides: dict[str, Any] = {
        n.replace("-", "_"): getattr(args, n.replace("-", "_")) for n, _ in _OVERRIDES
    }
    for sa in ("function", "pipeline", "trigger", "build", "scheduler"):
        overrides[f"{sa}_sa_id"] = overrides.pop(f"{sa}_sa")
    overrides.update({n.replace("-", "_"): getattr(args, n.replace("-", "_")) for n, _ in _INTS})
    overrides["fixed_audit_methods"] = split(args.audit_methods)
    overrides["audit_api_versions"] = split(args.audit_api_versions)
    return deployment_from_args(args.project, args.region, overrides)


def register(subparsers: Any) -> None:
    gcp = subparsers.add_parser("gcp", help="set up Google Cloud and deploy the functions")
    sub = gcp.add_subparsers(dest="gcp_command", required=True, metavar="{setup,deploy-functions,iam-table}")

    setup = sub.add_parser("setup", help="create or verify APIs, buckets, topics, service accounts, IAM")
    _add_deployment_args(setup)
    setup.add_argument("--dry-run", action="store_true", help="print the commands as a script, run nothing")
    setup.set_defaults(func=run_setup)

    deploy = sub.add_parser(
        "deploy-functions",
        help="deploy the four functions, their triggers and the Cloud Scheduler jobs of the schedules",
    )
    _add_deployment_args(deploy)
    deploy.add_argument(
        "--bundle", type=Path, default=Path("build/bundle"), help="from `mlops-events bundle`"
    )
    deploy.add_argument("--rules", type=Path, help="rules file (default: the bundle's rules.yaml)")
    deploy.add_argument("--dry-run", action="store_true", help="print the commands as a script, run nothing")
    deploy.add_argument("--script", type=Path, help="write the commands as a bash script to this file")
    deploy.set_defaults(func=run_deploy_functions)

    table = sub.add_parser("iam-table", help="print the IAM table (markdown) of a deployment")
    _add_deployment_args(table, required=False)
    table.set_defaults(func=run_iam_table)


def _carry_out(plan: Plan, dry_run: bool, script: Path | None = None) -> int:
    from deploy.plan import CommandError, Executor, render_script

    if script is not None:
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(render_script(plan), encoding="utf-8")
        script.chmod(0o755)
        print(f"wrote {script}", file=sys.stderr)
        return 0
    if dry_run:
        sys.stdout.write(render_script(plan))
        return 0
    try:
        changed = Executor().execute(plan)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{plan.title}: {len(changed)} change(s)", file=sys.stderr)
    return 0


def run_setup(args: argparse.Namespace) -> int:
    from deploy.config import DeployConfigError
    from deploy.setup import setup_plan

    try:
        return _carry_out(setup_plan(deployment(args)), args.dry_run)
    except DeployConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def deploy_catalog(bundle: Path | None, rules: Path | None = None) -> Any:
    """The bundle's catalog (its templates' manifest); before any bundle, the pipelines compiled now."""
    from pipelines.catalog import compiled_templates, load_catalog

    bundled = bundle / "templates" if bundle is not None else None
    if bundled is not None and (bundled / "manifest.json").is_file():
        return load_catalog(bundled)
    return load_catalog(compiled_templates(None, rules))


def load_deploy_rules(d: Deployment, bundle: Path, rules: Path | None) -> Any:
    from events.routing import default_rules_text, load_rules

    # An explicit --rules must exist; else the bundle's rules.yaml (what the functions will load),
    # else (a dry run before any bundle) the shipped rules, which the bundle copies by default.
    path = rules or (bundle / "rules.yaml")
    catalog = deploy_catalog(bundle, rules)
    if rules is None and not path.is_file():
        return load_rules(
            default_rules_text(), catalog=catalog, variables=d.rule_variables(), source="default rules"
        )
    return load_rules(
        path.read_text(encoding="utf-8"), catalog=catalog, variables=d.rule_variables(), source=str(path)
    )


def run_deploy_functions(args: argparse.Namespace) -> int:
    from deploy.config import DeployConfigError
    from deploy.functions import deploy_plan
    from events.errors import ConfigError

    try:
        d = deployment(args)
        if not args.dry_run and args.script is None and not (args.bundle / "main.py").is_file():
            print(
                f"error: {args.bundle}/main.py not found: run `mlops-events bundle --out {args.bundle}`",
                file=sys.stderr,
            )
            return 2
        plan = deploy_plan(d, load_deploy_rules(d, args.bundle, args.rules), args.bundle)
    except (DeployConfigError, ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _carry_out(plan, args.dry_run, args.script)


def iam_table(d: Deployment, rules: Any = None) -> str:
    """The README's IAM table: who gets which role on what, and why."""
    from deploy.functions import invoker_bindings
    from events.routing import default_rules_text, load_rules

    rules = rules or load_rules(
        default_rules_text(), catalog=deploy_catalog(None), variables=d.rule_variables()
    )
    names = {sa.member: f"`{sa.account_id}`" for sa in d.service_accounts}
    rows = ["| principal | role | on | why |", "|---|---|---|---|"]
    for b in (*d.bindings(), *invoker_bindings(d, rules)):
        who = names.get(b.member) or "`" + b.member.removeprefix("serviceAccount:") + "`"
        where = {"project": "project", "bucket": f"bucket `{b.resource}`"}.get(
            b.resource_type, f"{b.resource_type.replace('_', ' ')} `{b.resource}`"
        )
        rows.append(f"| {who} | `{b.role}` | {where} | {b.why} |")
    return "\n".join(rows) + "\n"


def run_iam_table(args: argparse.Namespace) -> int:
    from deploy.config import DeployConfigError

    try:
        sys.stdout.write(iam_table(deployment(args)))
    except DeployConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m mlops_cli.cmd_gcp``), the same as ``mlops-events gcp``."""
    parser = argparse.ArgumentParser(prog="mlops-events")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
