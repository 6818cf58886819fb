"""The routing rules file: loading and validation.

A rules file is a table of "when X, run Y with Z" (documented in README, "Routing rules").
Validation happens once, at load time, and reports every problem at once, each named by rule
and field, so a bad deploy fails in CI rather than at the first event:

- unknown keys, unknown event kinds, match criteria that do not apply to the rule's kind;
- unknown pipelines, parameters the pipeline does not declare or that carry authority
  (service account, pipeline root, project, region, template), constants of the wrong type;
- placeholders that name fields the event kind does not have;
- ``${VAR}`` references to variables that are not set;
- ``models:`` settings (``events.models``) and ``pipelines:`` references to templates from
  elsewhere (``declared_pipelines``).

The catalog (``events.catalog.Catalog``, read from the compiled templates' manifest) is given as
a value: this module imports nothing from ``pipelines/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from events.catalog import PIPELINE_NAME_RE, REGISTRY_TEMPLATE_RE, RESERVED_PARAMETERS, Catalog, PipelineSpec
from events.errors import ConfigError
from events.model import EVENT_KINDS, REGISTRY_METHODS
from events.models import SETTINGS_ONLY, ModelsSection, load_models
from events.options import OPTION_VALIDATORS
from events.rule_tables import KIND_FIELDS, MATCH_KEYS
from events.template import TemplateError, placeholders

if TYPE_CHECKING:
    from events.schedules import Schedule

_TOP_KEYS: Final = frozenset({"version", "rules", "models", "pipelines", "schedules"})
_RULE_KEYS: Final = frozenset({"name", "description", "on", "match", "launch", "skip"})
_FUNCTION_RE: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_LAUNCH_KEYS: Final = frozenset({"pipeline", "parameters", "allow", "caching"})
_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_VAR_RE: Final = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class LaunchSpec:
    pipeline: str  # a catalog name, or a placeholder such as "{pipeline}" (then ``allow`` limits it)
    parameters: Mapping[str, Any] | str  # a mapping of templates, or one placeholder giving a mapping
    allow: tuple[str, ...] | None = None
    caching: bool | None = None

    @property
    def pipeline_from_event(self) -> bool:
        return "{" in self.pipeline


@dataclass(frozen=True)
class Rule:
    name: str
    on: str
    match: Mapping[str, Any] = field(default_factory=dict)
    launch: LaunchSpec | None = None
    skip: str | None = None
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pipeline(self) -> str | None:
        if self.launch is None or self.launch.pipeline_from_event:
            return None
        return self.launch.pipeline


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    source: str = "rules"
    catalog: Catalog = field(default_factory=Catalog)
    models: ModelsSection = field(default_factory=ModelsSection)
    declared: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # the pipelines: section
    schedules: tuple[Schedule, ...] = ()  # the schedules: section (events.schedules)

    def pipelines_of(self, rule: Rule) -> tuple[str, ...]:
        """Every pipeline ``rule`` can launch."""
        if rule.launch is None:
            return ()
        if rule.launch.pipeline_from_event:
            return rule.launch.allow or tuple(self.catalog)
        return (rule.launch.pipeline,)

    def for_kind(self, kind: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.on == kind)

    def audit_methods(self) -> frozenset[str]:
        """ModelService methods that model_registry rules need delivered (canonical names)."""
        methods: set[str] = set()
        for rule in self.for_kind("model_registry"):
            wanted = rule.match.get("method")
            if wanted is None:
                # An alias criterion can only be met by calls that set aliases.
                wanted = (
                    ["UploadModel", "MergeVersionAliases", "UpdateModel"]
                    if "alias" in rule.match
                    else REGISTRY_METHODS
                )
            methods.update(_as_list(wanted))
        return frozenset(methods)

    def buckets_watched(self) -> frozenset[str]:
        """Buckets a storage rule that launches watches: where runs may read and write by default."""
        return frozenset(
            b
            for r in self.for_kind("storage.object.finalized")
            if r.launch is not None
            for b in _as_list(r.match.get("bucket", []))
            if isinstance(b, str) and "*" not in b and "${" not in b
        )

    def buckets(self) -> frozenset[str]:
        return frozenset(
            b for r in self.for_kind("storage.object.finalized") for b in _as_list(r.match.get("bucket", []))
        )

    def topics(self) -> frozenset[str]:
        return frozenset(t for r in self.rules for t in _as_list(r.match.get("topic", [])))


@cache
def _loader() -> type[Any]:
    """A SafeLoader with YAML 1.2 booleans: ``on``, ``yes`` and ``no`` stay strings (a rule's
    ``on:`` is a key). Built on first use: PyYAML is not imported on a cold start that reads the
    bundle's pre-parsed rules."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    return Loader


def parse_document(text: str) -> Any:
    """The YAML document of a rules file, as plain data (what ``load_rules`` also accepts)."""
    import yaml

    return yaml.load(text, Loader=_loader())


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def default_rules_text() -> str:
    return resources.files("events").joinpath("rules.default.yaml").read_text(encoding="utf-8")


def load_rules(
    text: str | Mapping[str, Any],
    *,
    catalog: Catalog,
    variables: Mapping[str, str] | None = None,
    source: str = "rules",
) -> RuleSet:
    """Parse and validate a rules file against ``catalog``. Raises ConfigError listing every problem.
    ``text`` is the file's YAML, or its document already parsed (``parse_document``).

    ``variables=None`` checks a file before its deploy-time ``${VARIABLES}`` are known: they stay
    unresolved instead of being reported.
    """
    problems: list[str] = []
    doc = _document(text, source)
    unknown_top = set(doc) - _TOP_KEYS
    if unknown_top:
        problems.append(f"unknown top-level key(s): {', '.join(sorted(unknown_top))}")
    if doc.get("version", 1) != 1:
        problems.append(f"version {doc.get('version')!r} is not supported (expected 1)")
    declared = _declared(doc.get("pipelines"), problems)
    for name in declared:
        if name not in catalog:
            problems.append(
                f"pipelines.{name}: declared here but not in the compiled templates "
                f"(run `mlops-events compile --rules {source}`)"
            )
    models = load_models(_substitute_vars(doc.get("models"), variables, problems, "models"), problems)

    rules: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(doc["rules"]):
        label = raw.get("name", f"rules[{index}]") if isinstance(raw, dict) else f"rules[{index}]"
        if label in seen:
            problems.append(f"rule {label}: the name is used twice")
        seen.add(label)
        raw = _substitute_vars(raw, variables, problems, f"rule {label}")
        rule = _load_rule(raw, index, catalog, problems)
        if rule is not None:
            rules.append(rule)
    schedules: tuple[Schedule, ...] = ()
    if doc.get("schedules") is not None:  # cron and zoneinfo only for rules that schedule
        from events.schedules import parse_schedules

        schedules = parse_schedules(
            doc.get("schedules"),
            catalog,
            problems,
            substitute=lambda raw, where: _substitute_vars(raw, variables, problems, where),
            check_parameters=_check_parameters,
        )
    if problems:
        raise ConfigError(problems, source)
    return RuleSet(tuple(rules), source, catalog, models, declared, schedules)


def declared_pipelines(text: str, *, source: str = "rules") -> dict[str, dict[str, str]]:
    """The ``pipelines:`` section alone (what ``mlops-events compile --rules`` must build), checked
    for shape; needs no catalog."""
    problems: list[str] = []
    declared = _declared(_document(text, source).get("pipelines"), problems)
    if problems:
        raise ConfigError(problems, source)
    return declared


def _document(text: str | Mapping[str, Any], source: str) -> dict[str, Any]:
    if isinstance(text, Mapping):
        doc: Any = dict(text)  # already parsed (the bundle's copy of its rules.yaml)
    else:
        import yaml

        try:
            doc = parse_document(text)
        except yaml.YAMLError as exc:
            raise ConfigError([f"not valid YAML: {exc}"], source) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise ConfigError(["the file must be a mapping with a 'rules' list"], source)
    return doc


def _declared(raw: Any, problems: list[str]) -> dict[str, dict[str, str]]:
    """``pipelines: {name: {function: "pkg.mod:fn"} | {template: PATH_OR_REGISTRY_URI}}``."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append("pipelines: must be a mapping of pipeline name to {function: ...} or {template: ...}")
        return {}
    out: dict[str, dict[str, str]] = {}
    for name, entry in raw.items():
        where = f"pipelines.{name}"
        if not isinstance(name, str) or not PIPELINE_NAME_RE.match(name):
            problems.append(f"{where}: the name must be lowercase letters, digits and '_' (at most 40)")
            continue
        if not isinstance(entry, Mapping) or len(entry) != 1 or set(entry) - {"function", "template"}:
            problems.append(
                f"{where}: give exactly one of function: MODULE:FUNCTION or template: PATH_OR_URI"
            )
            continue
        kind, ref = next(iter(entry.items()))
        if not isinstance(ref, str) or not ref:
            problems.append(f"{where}.{kind}: must be text")
        elif kind == "function" and not _FUNCTION_RE.match(ref):
            problems.append(
                f"{where}.function: {ref!r} is not MODULE:FUNCTION (e.g. my_pipelines.churn:pipeline)"
            )
        elif kind == "template" and ref.startswith("https://") and not REGISTRY_TEMPLATE_RE.match(ref):
            problems.append(
                f"{where}.template: {ref!r}: an Artifact Registry template must be pinned by digest "
                "(https://REGION-kfp.pkg.dev/PROJECT/REPO/PACKAGE/sha256:DIGEST), never a tag that can move"
            )
        else:
            out[name] = {kind: ref}
    return out


def _substitute_vars(value: Any, variables: Mapping[str, str] | None, problems: list[str], where: str) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}``. With ``variables=None`` (checking a file before
    deploy), a variable without a default stays as written and is not a problem."""
    if isinstance(value, dict):
        return {k: _substitute_vars(v, variables, problems, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_vars(v, variables, problems, where) for v in value]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if variables and variables.get(name):
            return variables[name]
        if default is not None:
            return default
        if variables is None:
            return m.group(0)
        problems.append(f"{where}: variable ${{{name}}} is not set (set it, or write ${{{name}:-default}})")
        return m.group(0)

    return _VAR_RE.sub(repl, value)


def _load_rule(raw: Any, index: int, catalog: Catalog, problems: list[str]) -> Rule | None:
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        problems.append(f"{where}: name {name!r} must be lowercase letters, digits and dashes (at most 40)")
        name = where
    else:
        where = f"rule {name}"
    before = len(problems)

    options = {k: raw[k] for k in raw if k in OPTION_VALIDATORS}
    unknown = set(raw) - _RULE_KEYS - set(OPTION_VALIDATORS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key, value in options.items():
        problems.extend(f"{where}: {key}: {p}" for p in OPTION_VALIDATORS[key](value))

    on = raw.get("on")
    if on not in EVENT_KINDS:
        problems.append(f"{where}: on: {on!r} is not an event kind (one of: {', '.join(EVENT_KINDS)})")
        return None
    match = raw.get("match") or {}
    if not isinstance(match, dict):
        problems.append(f"{where}: match: must be a mapping")
        match = {}
    _check_match(where, on, match, problems)

    launch_raw, skip = raw.get("launch"), raw.get("skip")
    if (launch_raw is None) == (skip is None):
        problems.append(f"{where}: needs exactly one of 'launch' or 'skip'")
    if skip is not None and not isinstance(skip, str):
        problems.append(f"{where}: skip: must be a reason (text)")
    launch = _load_launch(where, on, launch_raw, catalog, problems) if launch_raw is not None else None
    if len(problems) > before:
        return None
    return Rule(name, on, match, launch, skip, str(raw.get("description", "")), options)


def _check_match(where: str, on: str, match: Mapping[str, Any], problems: list[str]) -> None:
    allowed = MATCH_KEYS[on]
    for key, value in match.items():
        if key not in allowed:
            problems.append(
                f"{where}: match.{key} does not apply to {on} events (use: {', '.join(sorted(allowed))})"
            )
            continue
        if key in ("min_size", "max_size") and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            problems.append(f"{where}: match.{key} must be a non-negative integer")
        elif key == "is_test" and not isinstance(value, bool):
            problems.append(f"{where}: match.is_test must be true or false")
        elif key in ("attributes", "policy_labels", "metadata"):
            if not isinstance(value, dict):
                problems.append(f"{where}: match.{key} must be a mapping of name to value")
        elif key == "state" and any(str(v).lower() not in ("open", "closed") for v in _as_list(value)):
            problems.append(f"{where}: match.state must be open or closed")
        elif key == "method" and on == "model_registry":
            bad = [m for m in _as_list(value) if m not in REGISTRY_METHODS]
            if bad:
                problems.append(
                    f"{where}: match.method {bad} unknown (one of: {', '.join(REGISTRY_METHODS)})"
                )
        elif not isinstance(value, str | list | int):
            problems.append(f"{where}: match.{key} must be a value or a list of values")


def _load_launch(where: str, on: str, raw: Any, catalog: Catalog, problems: list[str]) -> LaunchSpec | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: launch: must be a mapping")
        return None
    unknown = set(raw) - _LAUNCH_KEYS
    if unknown:
        problems.append(f"{where}: launch: unknown key(s) {', '.join(sorted(unknown))}")
    pipeline = raw.get("pipeline")
    params = raw.get("parameters", {})
    allow = raw.get("allow")
    caching = raw.get("caching")
    if caching is not None and not isinstance(caching, bool):
        problems.append(f"{where}: launch.caching must be true or false")
    if allow is not None and (not isinstance(allow, list) or not all(isinstance(a, str) for a in allow)):
        problems.append(f"{where}: launch.allow must be a list of pipeline names")
        allow = None
    for name in allow or []:
        if name not in catalog:
            problems.append(f"{where}: launch.allow: unknown pipeline {name!r} (known: {catalog.known()})")
    if not isinstance(pipeline, str) or not pipeline:
        problems.append(f"{where}: launch.pipeline is required")
        return None

    known_fields = KIND_FIELDS[on]
    try:
        paths = placeholders([pipeline, params])
    except TemplateError as exc:
        problems.append(f"{where}: launch: {exc}")
        paths = []
    for path in paths:
        if path.head not in known_fields:
            problems.append(
                f"{where}: placeholder {{{path.head}}} is not a field of {on} events "
                f"(fields: {', '.join(sorted(known_fields))})"
            )

    spec = LaunchSpec(pipeline, params, tuple(allow) if allow else None, caching)
    if spec.pipeline_from_event:
        if not isinstance(params, str | dict):
            problems.append(f"{where}: launch.parameters must be a mapping or a placeholder")
        return spec
    if pipeline not in catalog:
        problems.append(f"{where}: launch.pipeline: unknown pipeline {pipeline!r} (known: {catalog.known()})")
        return spec
    if not isinstance(params, dict):
        problems.append(f"{where}: launch.parameters must be a mapping for a fixed pipeline")
        return spec
    _check_parameters(where, catalog[pipeline], params, problems)
    return spec


def _check_parameters(where: str, spec: PipelineSpec, params: Mapping[str, Any], problems: list[str]) -> None:
    for key, value in params.items():
        param = spec.parameter(key)
        if key in RESERVED_PARAMETERS:
            problems.append(
                f"{where}: launch.parameters.{key}: not allowed: rules choose data, never authority"
            )
        elif key in SETTINGS_ONLY:
            problems.append(
                f"{where}: launch.parameters.{key}: set it in the models: section (it is policy or "
                "cost, which only a model's settings choose)"
            )
        elif param is None:
            problems.append(
                f"{where}: launch.parameters.{key}: pipeline {spec.name!r} has no such parameter "
                f"(it takes: {', '.join(p.name for p in spec.parameters)})"
            )
        elif not placeholders(value):
            problem = param.check(value)
            if problem:
                problems.append(f"{where}: launch.parameters.{key}: {problem}")
    missing = [p.name for p in spec.parameters if p.required and p.name not in params]
    if missing:
        problems.append(f"{where}: launch.parameters: pipeline {spec.name!r} requires {', '.join(missing)}")
