"""Errors that stop a run before any finding can be made: they exit 2 with one line, no traceback."""

from __future__ import annotations


class CheckError(Exception):
    """Base: the run cannot proceed. ``str(err)`` is the one line shown to the user."""

    exit_code = 2


class UsageError(CheckError):
    """Bad flags, missing path, unknown image / instance / GPU."""


class ConfigError(CheckError):
    """Invalid config or deployment spec; the message names the key path."""


class PluginError(CheckError):
    """A required rule plugin failed to load."""


class CatalogError(CheckError):
    """A catalog file (built-in or user) is invalid."""
