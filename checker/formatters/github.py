"""`--format github`: GitHub Actions workflow commands, one annotation per finding.

Chosen automatically when ``GITHUB_ACTIONS=true``. Annotations appear on the pull request's files:
``::error file=models/qwen/config.json,line=1,title=MEM001 weights-exceed-vram::message``. Values are
escaped the way the Actions runner unescapes them (``%``, CR, LF, and in properties also ``:`` and ``,``).
"""

from __future__ import annotations

import posixpath

from checker.report import Report
from checker.rule import Severity

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format(report: Report, *, color: bool = False) -> str:  # noqa: A001 - formatter protocol name
    from checker.formatters.sarif import artifact_uri

    lines: list[str] = []
    for r in report.results:
        base = r.path
        if r.facts.single_file and not r.path.startswith("hf://"):
            base = posixpath.dirname(r.path) or "."
        for f in r.findings:
            sev = f.severity or Severity.ERROR
            file = f.path or ("config.json" if r.facts.file("config.json") else r.facts.single_file)
            props = []
            uri = artifact_uri(base, file) if file else artifact_uri(base, None)
            if uri and not uri.startswith(("hf://", "file://")):
                props.append(f"file={escape_property(uri)}")
                if file:
                    props.append("line=1")
            props.append(f"title={escape_property(f'{f.rule} {f.name}'.strip())}")
            where = "" if uri and not uri.startswith("hf://") else f"{r.path}: "
            field = f" ({f.path})" if f.path and ":" in f.path else ""
            body = f"{where}{f.message}{field}" + (f"\nFix: {f.hint}" if f.hint else "")
            lines.append(f"::{_COMMAND[sev]} {','.join(props)}::{escape_data(body)}")
    counts = report.counts()
    n = len(report.results)
    verdict = "FAIL" if report.failed else "PASS"
    lines.append(
        f"modelcheck {verdict}: {n} path{'s' if n != 1 else ''} checked, {counts['error']} error(s), "
        f"{counts['warning']} warning(s), {counts['info']} info (failing at {report.fail_on.label})"
    )
    return "\n".join(lines) + "\n"
