"""`--format concise`: one line per finding, like ruff's concise output, for grep, editors and CI logs:

    models/qwen/model-00002-of-00002.safetensors: FIL004 [truncated-weights] model-00002-of-00002...
    models/qwen/config.json:max_position_embeddings: CFG003 [...] ...

``PATH[:LOCATION]: CODE [name] message``: PATH is the file the finding is about, joined to the path as
the user typed it (the model path itself for a finding about the whole folder), LOCATION the field
inside it when the finding names one. No hints, no summary: the exit code is the verdict (the CLI prints
the summary line on a terminal's stderr). ``quiet``: only the findings of failing paths.
"""

from __future__ import annotations

import posixpath
from typing import Any

from modelcheck.report import PathReport, Report
from modelcheck.rule import Finding, Severity

_COLORS = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.INFO: "\033[36m"}
_BOLD, _RESET = "\033[1m", "\033[0m"


def _base(r: PathReport) -> str:
    from modelcheck.formatters.sarif import model_base

    return model_base(r)


def location(r: PathReport, f: Finding) -> str:
    """``models/qwen/config.json:max_position_embeddings`` for a finding at ``config.json:max_...``."""
    if not f.path:
        return r.path
    if f.path.startswith(("hf://", "file://", "/")):
        return f.path
    file, sep, field = f.path.partition(":")
    base = _base(r)
    joined = file if base in ("", ".") else posixpath.join(base.rstrip("/"), file)
    if r.facts.single_file and file == posixpath.basename(r.path.replace("\\", "/")):
        joined = r.path  # the path the user typed was the file itself
    return joined + (sep + field if sep else "")


def line(r: PathReport, f: Finding, color: bool = False) -> str:
    sev = f.severity or Severity.ERROR
    where = location(r, f)
    code = f.rule
    message = " ".join(part.strip() for part in f.message.splitlines() if part.strip())
    if color:
        where = f"{_BOLD}{where}{_RESET}"
        code = f"{_COLORS[sev]}{code}{_RESET}"
    name = f" [{f.name}]" if f.name else ""
    return f"{where}: {code}{name} {message}"


def format(report: Report, *, color: bool = False, quiet: bool = False, **_: Any) -> str:
    lines = []
    for r in report.results:
        if quiet and not r.failed:
            continue
        lines.extend(line(r, f, color) for f in r.findings)
    return "".join(x + "\n" for x in lines)
