"""Formatters turn a Report into text. They only format: no I/O, deterministic (sorted, no timestamps)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from checker.report import Report

# format name -> module in this package exposing `format(report, *, color=False) -> str`
FORMATS = {
    "text": "text",
    "json": "json_format",
    "sarif": "sarif",
    "github": "github",
    "junit": "junit",
}


def available() -> list[str]:
    out = []
    for name, module in FORMATS.items():
        try:
            importlib.util.find_spec(f"checker.formatters.{module}")  # type: ignore[attr-defined]
        except ModuleNotFoundError:
            continue
        if importlib.util.find_spec(f"checker.formatters.{module}") is not None:  # type: ignore[attr-defined]
            out.append(name)
    return out


def get(name: str) -> Callable[..., str]:
    module = importlib.import_module(f"checker.formatters.{FORMATS[name]}")
    return module.format
