"""Fake ``gcloud`` (and ``docker``, ``make``) executables for the deploy tests.

The fake gcloud is a small simulator: it appends its argv (JSON) to a log, keeps the resources it
created and the IAM bindings it added in a JSON state file, and answers ``describe`` (exit 1 when
missing, like the real one), ``get-iam-policy``, ``services list`` and the few ``--format=value(...)``
reads the plans capture. So a plan run twice against it shows exactly what is created when.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

FAKE_GCLOUD = r"""#!{python}
import json, os, sys

argv = sys.argv[1:]
with open(os.environ["FAKE_GCLOUD_LOG"], "a") as f:
    f.write(json.dumps(argv) + "\n")
state_path = os.environ["FAKE_GCLOUD_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {{}}
resources = state.setdefault("resources", {{}})
policies = state.setdefault("policies", {{}})
services = state.setdefault("services", [])
flags = {{}}
for a in argv:
    if a.startswith("--"):
        k, _, v = a[2:].partition("=")
        flags[k] = v
words = [a for a in argv if not a.startswith("-") and a != "beta"]
VERBS = ("describe", "create", "update", "get-iam-policy", "add-iam-policy-binding", "enable", "list",
         "deploy", "cp", "service-agent", "delete")
i = next((k for k, w in enumerate(words) if w in VERBS), len(words) - 1)
group, verb = " ".join(words[:i]), words[i]
if words[i + 1:i + 2] in (["http"], ["pubsub"]):  # scheduler jobs create|update http|pubsub NAME
    i += 1
target = words[i + 1] if len(words) > i + 1 else ""
project = flags.get("project", "fake-project")
if group == "iam service-accounts" and verb == "create":
    target = f"{{target}}@{{project}}.iam.gserviceaccount.com"
key = f"{{group}}:{{target}}"
fmt = flags.get("format", "")
code, out = 0, ""

def save():
    with open(state_path, "w") as f:
        json.dump(state, f)

if group == "services" and verb == "list":
    out = "\n".join(services)
elif verb == "list" and fmt == "value(name.basename())":
    # Names as the API spells them (.../<collection>/<id>), filtered by a `name~TEXT` filter.
    kind = group.split()[-1]
    names = [k.split(":", 1)[1].rsplit("/", 1)[-1] for k in resources if k.startswith(group + ":")]
    wanted = flags.get("filter", "").removeprefix("name~")
    out = "\n".join(n for n in names if wanted in f"projects/{{project}}/{{kind}}/{{n}}")
elif verb == "delete":
    if resources.pop(key, None) is None:
        code, out = 1, f"ERROR: NOT_FOUND: {{key}}"
elif group == "services" and verb == "enable":
    services.append(target)
elif group == "services identity":
    out = f"service-123456789@gcp-sa-{{flags['service'].split('.')[0]}}.iam.gserviceaccount.com"
elif group == "projects" and verb == "describe":
    out = "123456789"
elif verb == "service-agent":
    out = "service-123456789@gs-project-accounts.iam.gserviceaccount.com"
elif verb == "describe":
    if key not in resources:
        code, out = 1, f"ERROR: NOT_FOUND: {{key}}"
    elif fmt.startswith("value("):
        field = fmt[len("value("):-1]
        name = target.rsplit("/", 1)[-1]
        out = {{
            "registryUri": f"registry.invalid/{{project}}/{{target}}",
            "transport.pubsub.subscription": f"projects/{{project}}/subscriptions/eventarc-{{name}}",
            "eventTrigger.trigger": f"projects/{{project}}/locations/r/triggers/{{name}}-trigger",
        }}.get(field, "")
    else:
        out = json.dumps(resources[key])
elif verb == "create":
    if key in resources:
        code, out = 1, f"ERROR: ALREADY_EXISTS: {{key}}"
    else:
        resources[key] = {{"includedPermissions": flags["permissions"].split(",")}} if "permissions" in flags else flags
elif verb == "update":
    if "permissions" in flags:
        resources[key] = {{"includedPermissions": flags["permissions"].split(",")}}
    elif key in resources:
        resources[key] = {{**resources[key], **flags}}
elif group == "functions" and verb == "deploy":
    resources[key] = flags
    if "trigger-http" not in flags:
        trigger = f"projects/{{project}}/locations/r/triggers/{{target}}-trigger"
        resources[f"eventarc triggers:{{trigger}}"] = {{}}
elif verb == "get-iam-policy":
    bindings = {{}}
    for role, member in policies.get(key, []):
        bindings.setdefault(role, []).append(member)
    out = json.dumps({{"bindings": [{{"role": r, "members": m}} for r, m in bindings.items()]}})
elif verb == "add-iam-policy-binding":
    pair = [flags["role"], flags["member"]]
    if pair not in policies.setdefault(key, []):
        policies[key].append(pair)
save()
if out:
    (sys.stderr if code else sys.stdout).write(out + "\n")
sys.exit(code)
"""

FAKE_RECORDER = r"""#!{python}
import json, os, sys

with open(os.environ["FAKE_GCLOUD_LOG"], "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\n")
if os.path.basename(sys.argv[0]) == "docker" and sys.argv[1:2] == ["inspect"]:
    print(sys.argv[-1].rsplit(":", 1)[0] + "@sha256:" + "ab" * 32)
"""


@dataclass
class FakeCloud:
    bin_dir: Path
    log: Path
    state: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_GCLOUD_LOG": str(self.log),
            "FAKE_GCLOUD_STATE": str(self.state),
        }

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def gcloud_calls(self) -> list[list[str]]:
        return [c for c in self.calls() if c[:1] != ["docker"] and c[:1] != ["make"]]

    def reset_log(self) -> None:
        self.log.write_text("")


MUTATING = ("create", "enable", "add-iam-policy-binding", "update", "deploy", "delete")


def mutations(calls: list[list[str]]) -> list[list[str]]:
    """Calls that change something. ``services identity create`` only returns a service agent's
    email (creating it the first time Google needs it), so it is a read here."""
    return [c for c in calls if any(v in c for v in MUTATING) and c[:3] != ["beta", "services", "identity"]]


def _write_exe(path: Path, text: str) -> None:
    path.write_text(text.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def install_fakes(root: Path, *, recorders: tuple[str, ...] = ()) -> FakeCloud:
    bin_dir = root / "fake-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    _write_exe(bin_dir / "gcloud", FAKE_GCLOUD)
    for name in recorders:
        _write_exe(bin_dir / name, FAKE_RECORDER)
    return FakeCloud(bin_dir, root / "gcloud-calls.jsonl", root / "gcloud-state.json")
