"""``{field}`` substitution for rule parameters: plain field lookup, never code evaluation.

Grammar of one placeholder: ``{path|path|'literal'}`` where a path is ``name(.name|[index])*``
(``{metadata.model}``, ``{parts[1]}``). Alternatives are tried left to right; the first that is
present and not empty wins. A string that is exactly one placeholder keeps the value's type
(``"{size}"`` gives an int, ``"{parameters}"`` a dict); otherwise values are formatted into text.
``{{`` and ``}}`` in the template are literal braces. The template is read in one pass: text that
comes from the event (``a{{b}}.csv``) is inserted as it is and never read as template again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# ``${VAR}`` is a deploy-time variable of the rules file, not a placeholder.
_PLACEHOLDER: Final = re.compile(r"(?<![{$])\{([^{}]+)\}(?!\})")
# One token of a template: ``${VAR}`` (kept), ``{{`` / ``}}`` (a literal brace), ``{expr}``.
_TOKEN: Final = re.compile(r"\$\{[^{}]*\}|\{\{|\}\}|\{([^{}]+)\}")
_STEP: Final = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(-?\d+)\]")
_HEAD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL: Final = re.compile(r"^'([^']*)'$")


class TemplateError(ValueError):
    """A placeholder that cannot be resolved for this event."""


@dataclass(frozen=True)
class Path:
    head: str
    steps: tuple[str | int, ...]

    def lookup(self, fields: Mapping[str, Any]) -> Any:
        value: Any = fields.get(self.head)
        for step in self.steps:
            if value is None:
                return None
            if isinstance(step, int):
                if not isinstance(value, list | tuple) or not -len(value) <= step < len(value):
                    return None
                value = value[step]
            else:
                value = value.get(step) if isinstance(value, Mapping) else None
        return value


def parse_path(text: str) -> Path:
    text = text.strip()
    head = _HEAD.match(text)
    if not head:
        raise TemplateError(f"{text!r} is not a field name")
    steps: list[str | int] = []
    pos = head.end()
    while pos < len(text):
        m = _STEP.match(text, pos)
        if not m:
            raise TemplateError(f"cannot read {text!r} after {text[:pos]!r}")
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    return Path(head.group(0), tuple(steps))


def _alternatives(expr: str) -> list[Path | str]:
    out: list[Path | str] = []
    for part in expr.split("|"):
        lit = _LITERAL.match(part.strip())
        out.append(lit.group(1) if lit else parse_path(part))
    return out


def placeholders(template: Any) -> list[Path]:
    """Every field path a template refers to (to validate rules at load time)."""
    if isinstance(template, str):
        return [
            alt
            for m in _TOKEN.finditer(template)
            if m.group(1) is not None
            for alt in _alternatives(m.group(1))
            if isinstance(alt, Path)
        ]
    if isinstance(template, Mapping):
        return [p for v in template.values() for p in placeholders(v)]
    if isinstance(template, list):
        return [p for v in template for p in placeholders(v)]
    return []


def _resolve(expr: str, fields: Mapping[str, Any]) -> Any:
    for alt in _alternatives(expr):
        value = alt if isinstance(alt, str) else alt.lookup(fields)
        if value is not None and value != "":
            return value
    raise TemplateError(f"{{{expr}}} is empty or missing for this event")


def render(template: Any, fields: Mapping[str, Any]) -> Any:
    """Substitute placeholders in strings, recursively through dicts and lists."""
    if isinstance(template, Mapping):
        return {k: render(v, fields) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, fields) for v in template]
    if not isinstance(template, str):
        return template
    whole = _PLACEHOLDER.fullmatch(template)
    if whole:
        return _resolve(whole.group(1), fields)
    return _TOKEN.sub(lambda m: _token(m, fields), template)


def _token(m: re.Match[str], fields: Mapping[str, Any]) -> str:
    if m.group(1) is not None:
        return str(_resolve(m.group(1), fields))
    token = m.group(0)
    return {"{{": "{", "}}": "}"}.get(token, token)
