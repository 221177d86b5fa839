"""Formatters turn a Report into text. They only format: deterministic (sorted, no timestamps), no I/O
(the repository root that SARIF and GitHub paths are relative to is computed once by the run, ``PathReport.repo_root``).

Every format function is ``format(report, *, color=False, width=None, quiet=False) -> str``. How the
output looks is the caller's decision (the CLI reads the flags, the environment and the terminal):
``color`` ANSI colours, ``width`` the column to wrap text at (None: never), ``quiet`` only what fails.
Machine formats accept and ignore them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from modelcheck.report import Report
from modelcheck.rule import Severity

# format name -> module in this package exposing `format(report, *, color=False, ...) -> str`
FORMATS = {
    "text": "text",
    "concise": "concise",
    "json": "json_format",
    "sarif": "sarif",
    "github": "github",
    "junit": "junit",
}

_RED, _GREEN, _RESET = "\033[31m", "\033[32m", "\033[0m"


def get(name: str) -> Callable[..., str]:
    module = importlib.import_module(f"modelcheck.formatters.{FORMATS[name]}")
    return module.format


def summary_line(report: Report, *, color: bool = False) -> str:
    """``PASS: 2 paths checked, 0 error(s), 1 warning(s), 0 info (failing at error)``: the verdict line."""
    counts = report.counts()
    verdict = "FAIL" if report.failed else "PASS"
    if color:
        verdict = f"{_RED if report.failed else _GREEN}{verdict}{_RESET}"
    n = len(report.results)
    fail_on = report.fail_on.label if report.results else Severity.ERROR.label
    return (f"{verdict}: {n} path{'s' if n != 1 else ''} checked, {counts['error']} error(s), "
            f"{counts['warning']} warning(s), {counts['info']} info (failing at {fail_on})")
