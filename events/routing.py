"""The router: typed event + rules -> exactly one Decision. Pure and deterministic.

Rules are tried in file order; the first rule of the event's kind whose ``match`` accepts the
event decides. When none does, the Skip names each rule of that kind and why it did not match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from events import keys
from events.catalog import MODEL_PARAMETER, PipelineSpec
from events.decision import Decision, Launch, Reject, RunRequest, Skip
from events.limits import limit_problems
from events.match import mismatch
from events.model import (
    STORAGE_FINALIZED,
    AuditLogEntry,
    Context,
    Event,
    ModelRegistryEvent,
    RunRequestMessage,
    StorageObject,
)
from events.models import SETTINGS_ONLY
from events.rules import Rule, RuleSet, default_rules_text, load_rules
from events.template import TemplateError, render

__all__ = ["RuleSet", "default_rules_text", "load_rules", "route"]


def route(event: Event, rules: RuleSet, template_digests: Mapping[str, str] | None = None) -> Decision:
    """The one decision for ``event`` under ``rules`` (validated against ``rules.catalog``)."""
    if isinstance(event, ModelRegistryEvent | AuditLogEntry):
        audit = event.audit if isinstance(event, ModelRegistryEvent) else event
        if audit.status_code:
            return Skip(f"the audited call failed (status {audit.status_code}): nothing changed")
    if isinstance(event, RunRequestMessage) and rules.schedules:
        from events.schedules import with_tick_key  # only rules with schedules: need cron

        event = with_tick_key(event, rules.schedules)  # a Cloud Scheduler tick is one run
    candidates = rules.for_kind(event.kind)
    if not candidates:
        return Skip(f"no rule handles {event.kind} events")
    reasons: list[str] = []
    for rule in candidates:
        reason = mismatch(event, rule.match)
        if reason is None:
            return _decide(event, rule, template_digests or {}, rules)
        reasons.append(f"{rule.name}: {reason}")
    return Skip("no rule matched (" + "; ".join(reasons) + ")")


def _decide(event: Event, rule: Rule, digests: Mapping[str, str], rules: RuleSet) -> Decision:
    if rule.launch is None:
        return Skip(rule.skip or "skipped by rule", rule=rule.name)
    catalog = rules.catalog
    fields = event.fields()
    try:
        pipeline = render(rule.launch.pipeline, fields)
        raw_params: Any = render(rule.launch.parameters, fields)
    except TemplateError as exc:
        return Reject(f"rule {rule.name}: {exc}", rule=rule.name)

    if not isinstance(pipeline, str) or pipeline not in catalog:
        return Reject(
            f"pipeline {pipeline!r} is not in the catalog (known: {catalog.known()})", rule=rule.name
        )
    if rule.launch.allow is not None and pipeline not in rule.launch.allow:
        return Reject(
            f"pipeline {pipeline!r} is not allowed by rule {rule.name} (allowed: {', '.join(rule.launch.allow)})",
            rule=rule.name,
        )
    if raw_params is None:
        raw_params = {}
    if not isinstance(raw_params, Mapping):
        return Reject(f"parameters must be an object, got {type(raw_params).__name__}", rule=rule.name)

    spec = catalog[pipeline]
    problems = spec.validate(raw_params)
    settled: dict[str, Any] = {}
    if not problems:
        settled, problems = _apply_settings(spec, dict(raw_params), rules)
    if problems:
        return Reject(f"invalid parameters for {pipeline}: " + "; ".join(problems), rule=rule.name)
    params = spec.resolve(settled)

    identity = event.identity
    digest = digests.get(pipeline)
    request = RunRequest(
        pipeline=pipeline,
        job_id=keys.job_id(pipeline, rule.name, identity),
        parameters=params,
        labels=keys.lineage_labels(
            source_kind=event.kind,
            rule=rule.name,
            pipeline=pipeline,
            identity=identity,
            template_digest=digest,
        ),
        rule=rule.name,
        enable_caching=rule.launch.caching,
        template_digest=digest,
        template_uri=spec.template_uri,
    )
    return Launch(request, reason=f"rule {rule.name} matched {identity}", options=rule.options)


def _apply_settings(
    spec: PipelineSpec, params: dict[str, Any], rules: RuleSet
) -> tuple[dict[str, Any], list[str]]:
    """The parameters with the model's settings applied, and every problem: a setting asked for
    with another value, a settings-only parameter from the event, a limit exceeded."""
    problems = [
        f"parameter {key!r} is set by a model's settings (models: section), never by an event"
        for key in sorted(SETTINGS_ONLY & set(params))
    ]
    model = params.get(MODEL_PARAMETER)
    model = model if isinstance(model, str) else None
    settings = rules.models.for_model(model or "")
    for key, value in settings.parameters.items():
        if spec.parameter(key) is None:
            continue
        if key in params and params[key] != value and key not in SETTINGS_ONLY:
            problems.append(
                f"parameter {key!r} is {params[key]!r}, but model {model!r} fixes it to {value!r} "
                f"({settings.describe()})"
            )
        params[key] = value
    problems += limit_problems(
        params,
        model=model,
        limits=settings.limits,
        where=settings.describe(),
        watched_buckets=rules.buckets_watched(),
        retriggers=lambda uri: _retriggers(uri, rules),
    )
    for key, value in params.items():
        param = spec.parameter(key)
        problem = param.check(value) if param else None
        if problem and problem not in problems:
            problems.append(problem)
    return params, problems


def _retriggers(uri: str, rules: RuleSet) -> str | None:
    """The storage rule that an object written at ``uri`` would start, if any."""
    if not uri.startswith("gs://"):
        return None
    bucket, _, name = uri[5:].partition("/")
    context = Context(
        id="probe", source=f"//storage.googleapis.com/projects/_/buckets/{bucket}", type=STORAGE_FINALIZED
    )
    probe = StorageObject(context, bucket, name or "x", generation=1, metageneration=1, size=1)
    for rule in rules.for_kind(probe.kind):
        if rule.launch is not None and mismatch(probe, rule.match) is None:
            return rule.name
    return None
