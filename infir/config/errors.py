"""The one error type of the config checks."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value or key is invalid; the message names the key (and, for unknown keys, where it was set)."""
