"""`--format sarif`: SARIF 2.1.0 for code-scanning viewers (GitHub code scanning, GitLab, VS Code).

One run, one result per finding. Every rule that ran or produced a finding is described in
``tool.driver.rules`` with its docstring as help text. Locations are files inside the model folder,
relative to where the user ran the check (what a repository checkout's code-scanning upload expects).
Deterministic: no timestamps, no absolute paths unless the user typed one.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Any

from checker import __version__
from checker.report import PathReport, Report
from checker.rule import Finding, Rule, Severity
from checker.summary import target_summary

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/modelcheck/modelcheck"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def artifact_uri(report_path: str, file: str | None) -> str:
    """URI of ``file`` (relative to the model root) for a model checked as ``report_path``.

    ``config.json:max_position_embeddings`` names a field: the file is the part before the colon.
    Relative paths stay relative (code scanning resolves them against the checkout); absolute paths
    become ``file://`` URIs; hub references keep their scheme.
    """
    base = report_path.rstrip("/") or "."
    if file:
        file = file.split(":", 1)[0] if not file.startswith(("hf://", "file://")) else file
    if base.startswith("hf://"):
        return f"{base}/{file}" if file else base
    joined = posixpath.normpath(posixpath.join(base.replace("\\", "/"), file or ""))
    if joined.startswith("/"):
        return "file://" + joined
    return "" if joined == "." else joined


def _descriptor(code: str, rules: dict[str, Rule], fallback: Finding | None) -> dict[str, Any]:
    from checker.docs import ENGINE_CODES

    spec: Any = rules.get(code) or ENGINE_CODES.get(code)
    if spec is None:  # a code without documentation (e.g. from a smoke stage): describe it minimally
        name = fallback.name if fallback and fallback.name else code.lower()
        summary = fallback.message if fallback else code
        return {
            "id": code,
            "name": name,
            "shortDescription": {"text": summary.splitlines()[0]},
            "helpUri": f"{INFORMATION_URI}/blob/main/docs/rules.md#{code.lower()}",
            "defaultConfiguration": {
                "level": _LEVEL[(fallback.severity if fallback else None) or Severity.ERROR]
            },
        }
    doc = spec.doc.strip() or spec.summary
    return {
        "id": code,
        "name": spec.name,
        "shortDescription": {"text": spec.summary or code},
        "fullDescription": {"text": doc},
        "help": {"text": doc, "markdown": doc},
        "helpUri": f"{INFORMATION_URI}/blob/main/docs/rules.md#{code.lower()}",
        "defaultConfiguration": {"level": _LEVEL[spec.severity]},
        "properties": {"tags": [code[:3]]},
    }


def _location(r: PathReport, f: Finding) -> dict[str, Any]:
    file = f.path
    if not file:
        # A finding about the folder as a whole: anchor it on config.json when there is one, so
        # viewers that need a file (GitHub code scanning) can show it.
        file = "config.json" if r.facts.file("config.json") else (r.facts.single_file or None)
    base = r.path
    if r.facts.single_file and not r.path.startswith("hf://"):
        base = posixpath.dirname(r.path.replace("\\", "/")) or "."  # PATH was the file itself
    uri = artifact_uri(base, file)
    loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": uri or "."}}}
    if file:
        # Code scanning requires a region; findings are about whole files, so line 1.
        loc["physicalLocation"]["region"] = {"startLine": 1}
    if f.path and ":" in f.path and not f.path.startswith(("hf://", "file://")):
        loc["logicalLocations"] = [{"fullyQualifiedName": f.path, "kind": "member"}]
    return loc


def _fingerprint(rule: str, uri: str, message: str) -> str:
    return hashlib.sha256(f"{rule}\0{uri}\0{message}".encode()).hexdigest()[:32]


def sarif_dict(report: Report) -> dict[str, Any]:
    from checker import registry

    rules = registry.load().by_code()
    # Rules described: every rule that ran plus every code a finding carries, sorted by code.
    codes: dict[str, Finding | None] = {}
    for r in report.results:
        for code in r.result.ran:
            codes.setdefault(code, None)
        for f in r.findings:
            if codes.get(f.rule) is None:
                codes[f.rule] = f
    ordered = sorted(codes)
    index = {code: i for i, code in enumerate(ordered)}
    results = []
    for r in report.results:
        for f in r.findings:
            sev = f.severity or Severity.ERROR
            text = f.message + (f"\nFix: {f.hint}" if f.hint else "")
            loc = _location(r, f)
            uri = loc["physicalLocation"]["artifactLocation"]["uri"]
            result: dict[str, Any] = {
                "ruleId": f.rule,
                "ruleIndex": index[f.rule],
                "level": _LEVEL[sev],
                "message": {"text": text},
                "locations": [loc],
                "partialFingerprints": {"modelcheckFinding/v1": _fingerprint(f.rule, uri, f.message)},
                "properties": {"modelPath": r.path, "kind": r.facts.kind, "severity": sev.label},
            }
            if f.hint:
                result["properties"]["hint"] = f.hint
            if f.data:
                result["properties"]["data"] = f.data
            results.append(result)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "modelcheck",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_descriptor(code, rules, codes[code]) for code in ordered],
            }
        },
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": {
            "targets": [{"path": r.path, **target_summary(r.target)} for r in report.results],
            "failOn": report.fail_on.label,
            "failed": report.failed,
        },
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def format(report: Report, *, color: bool = False) -> str:  # noqa: A001 - formatter protocol name
    return json.dumps(sarif_dict(report), indent=2, default=str) + "\n"
