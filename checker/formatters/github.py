"""`--format github`: GitHub Actions workflow commands, one annotation per finding.

Chosen automatically when ``GITHUB_ACTIONS=true``. Annotations appear on the pull request's files:
``::error file=models/qwen/config.json,line=1,title=MEM001 weights-exceed-vram::message``. Values are
escaped the way the Actions runner unescapes them (``%``, CR, LF, and in properties also ``:`` and ``,``).
"""

from __future__ import annotations

from modelcheck.escape import for_terminal
from modelcheck.report import Report
from modelcheck.rule import Severity

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format(report: Report, *, color: bool = False, **_: object) -> str:
    from modelcheck.formatters.sarif import anchor_file, model_base, repo_path

    # GitHub puts an annotation on a file given relative to the repository root (the checkout),
    # whatever folder the check ran in: PathReport.repo_root, computed once by the run.
    lines: list[str] = []
    for r in report.results:
        base = model_base(r)
        for f in r.findings:
            sev = f.severity or Severity.ERROR
            file = f.path or anchor_file(r)
            path = repo_path(base, file, r.repo_root)
            props = []
            local = bool(path) and not path.startswith(("hf://", "file://", "/"))
            if local:
                props.append(f"file={escape_property(path)}")
                props.append("line=1")
            props.append(f"title={escape_property(f'{f.rule} {f.name}'.strip())}")
            where = "" if local else f"{r.path}: "
            field = f" ({f.path})" if f.path and ":" in f.path else ""
            body = for_terminal(f"{where}{f.message}{field}") + (f"\nFix: {for_terminal(f.hint)}" if f.hint else "")
            lines.append(f"::{_COMMAND[sev]} {','.join(props)}::{escape_data(body)}")
    counts = report.counts()
    n = len(report.results)
    verdict = "FAIL" if report.failed else "PASS"
    lines.append(
        f"modelcheck {verdict}: {n} path{'s' if n != 1 else ''} checked, {counts['error']} error(s), "
        f"{counts['warning']} warning(s), {counts['info']} info (failing at {report.fail_on.label})"
    )
    return "\n".join(lines) + "\n"
