"""The router: typed event + rules -> exactly one Decision. Pure and deterministic.

Rules are tried in file order; the first rule of the event's kind whose ``match`` accepts the
event decides. When none does, the Skip names each rule of that kind and why it did not match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from events import keys
from events.decision import Decision, Launch, Reject, RunRequest, Skip
from events.match import mismatch
from events.model import AuditLogEntry, Event, ModelRegistryEvent, RunRequestMessage
from events.rules import Rule, RuleSet, default_rules_text, load_rules
from events.schedules import with_tick_key
from events.template import TemplateError, render
from pipelines.catalog import PIPELINES, PipelineSpec

__all__ = ["RuleSet", "default_rules_text", "load_rules", "route"]


def route(
    event: Event,
    rules: RuleSet,
    template_digests: Mapping[str, str] | None = None,
    catalog: Mapping[str, PipelineSpec] = PIPELINES,
) -> Decision:
    if isinstance(event, ModelRegistryEvent | AuditLogEntry):
        audit = event.audit if isinstance(event, ModelRegistryEvent) else event
        if audit.status_code:
            return Skip(f"the audited call failed (status {audit.status_code}): nothing changed")
    if isinstance(event, RunRequestMessage) and rules.schedules:
        event = with_tick_key(event, rules.schedules)  # a Cloud Scheduler tick is one run
    candidates = rules.for_kind(event.kind)
    if not candidates:
        return Skip(f"no rule handles {event.kind} events")
    reasons: list[str] = []
    for rule in candidates:
        reason = mismatch(event, rule.match)
        if reason is None:
            return _decide(event, rule, template_digests or {}, catalog)
        reasons.append(f"{rule.name}: {reason}")
    return Skip("no rule matched (" + "; ".join(reasons) + ")")


def _decide(
    event: Event, rule: Rule, digests: Mapping[str, str], catalog: Mapping[str, PipelineSpec]
) -> Decision:
    if rule.launch is None:
        return Skip(rule.skip or "skipped by rule", rule=rule.name)
    fields = event.fields()
    try:
        pipeline = render(rule.launch.pipeline, fields)
        raw_params: Any = render(rule.launch.parameters, fields)
    except TemplateError as exc:
        return Reject(f"rule {rule.name}: {exc}", rule=rule.name)

    if not isinstance(pipeline, str) or pipeline not in catalog:
        return Reject(
            f"pipeline {pipeline!r} is not in the catalog (known: {', '.join(catalog)})", rule=rule.name
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
    if problems:
        return Reject(f"invalid parameters for {pipeline}: " + "; ".join(problems), rule=rule.name)
    params = spec.resolve(raw_params)

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
    )
    return Launch(request, reason=f"rule {rule.name} matched {identity}", options=rule.options)
