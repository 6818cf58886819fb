"""Errors of the pure event layer. Each is also a ``ValueError``: bad input, never a bug.

A ``PermanentError`` can never succeed on redelivery: the function records a dead letter and
acknowledges. Transient failures (Vertex 429/5xx, timeouts) are not defined here: they belong to
the edge (``functions.runtime``), because only the edge talks to the network.
"""

from __future__ import annotations


class PermanentError(ValueError):
    """Input that will never be accepted, however often it is delivered."""


class EnvelopeError(PermanentError):
    """The HTTP request is not a CloudEvent (missing ``ce-id``, bad JSON, bad spec version...)."""


class ParseError(PermanentError):
    """The CloudEvent is well formed but its data is not what its type promises."""


class UnsupportedEventError(PermanentError):
    """A CloudEvent this project does not handle (another type, another service)."""


class ConfigError(ValueError):
    """An invalid routing rules file. ``problems`` lists every problem found, by rule and field."""

    def __init__(self, problems: list[str], source: str = "rules") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
