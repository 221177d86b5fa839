"""Formatters turn a Report into text. They only format: deterministic (sorted, no timestamps), and the
only I/O is SARIF's and GitHub's look upwards for ``.git`` to make paths relative to the repository root."""

from __future__ import annotations

import importlib
from collections.abc import Callable

# format name -> module in this package exposing `format(report, *, color=False) -> str`
FORMATS = {
    "text": "text",
    "json": "json_format",
    "sarif": "sarif",
    "github": "github",
    "junit": "junit",
}


def get(name: str) -> Callable[..., str]:
    module = importlib.import_module(f"checker.formatters.{FORMATS[name]}")
    return module.format
