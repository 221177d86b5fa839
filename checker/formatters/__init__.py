"""Formatters turn a Report into text. They only format: deterministic (sorted, no timestamps), no I/O
(the repository root that SARIF and GitHub paths are relative to is computed once by the run, ``PathReport.repo_root``)."""

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
