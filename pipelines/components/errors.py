"""Errors a component raises for a reason a person must fix (bad data, bad parameters).

Each is a ValueError so callers that only know built-ins still catch them; the message names the
problem, because under kfp.local and on Vertex it is what the operator reads first.
"""

from __future__ import annotations


class ComponentError(ValueError):
    """A component cannot do its job for a reason stated in the message."""


class DataError(ComponentError):
    """A dataset cannot be read (missing, empty, unknown format)."""


class DataValidationError(ComponentError):
    """A dataset was read but fails validation; the message is the readable report."""


class ModelNotFoundError(ComponentError):
    """The registry has no such model version or alias."""


class SmokeTestFailed(ComponentError):
    """The version failed its smoke test; it never reached the real endpoint."""


class CanaryFailed(ComponentError):
    """The canary failed on the real endpoint; the deployment was rolled back."""
