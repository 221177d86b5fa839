"""`--format sarif`: SARIF 2.1.0 for code-scanning viewers (GitHub code scanning, GitLab, VS Code).

One run, one result per finding. Every rule that ran or produced a finding is described in
``tool.driver.rules`` with its docstring as help text. Locations are files inside the model folder,
relative to the repository root (computed once by the run: the nearest folder upwards from the
current directory that holds ``.git``, else the current directory; see checker/repo.py) with ``uriBaseId`` ``%SRCROOT%``: that is what GitHub code scanning
resolves against the checkout, so ``check models/qwen`` run from a sub-folder still lands on
``models/qwen/...`` in the repository. GitHub's extra requirements are met: every result has a
physical location with ``region.startLine`` >= 1 and ``partialFingerprints``; every rule has
``shortDescription``, ``fullDescription``, ``help`` and ``helpUri``; security rules (SEC) carry the
``security`` tag and ``properties.security-severity``.
Deterministic: no timestamps, no absolute paths unless the model lies outside the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelcheck import __version__
from modelcheck.report import PathReport, Report
from modelcheck.rule import Finding, Rule, Severity
from modelcheck.summary import target_summary

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/modelcheck/modelcheck"
SRCROOT = "%SRCROOT%"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
# GitHub maps security-severity to critical (>= 9.0), high (7.0-8.9), medium (4.0-6.9), low (0.1-3.9).
# A code-executing pickle is remote code execution on the serving host: high; a warning (an unknown
# global, a hash that could not be checked) medium; info low.
_SECURITY_SEVERITY = {Severity.ERROR: "8.8", Severity.WARNING: "5.5", Severity.INFO: "2.0"}
_SECURITY_FAMILIES = ("SEC",)


def repo_path(report_path: str, file: str | None, root: str | None = None) -> str:
    """Plain path of ``file`` (relative to the model root) for a model checked as ``report_path``.

    ``config.json:max_position_embeddings`` names a field: the file is the part before the colon. With
    ``root`` the path is made relative to it (forward slashes; ``""`` for the root itself); a path
    outside ``root`` stays absolute. Without ``root`` it stays as the user typed it, joined. Hub
    references (``hf://``) keep their scheme.
    """
    base = report_path.rstrip("/") or "."
    # "config.json:architectures" names a field; a file really named "config.json:evil.pkl" is itself
    if file and not file.startswith(("hf://", "file://")) and not os.path.lexists(os.path.join(base, file)):
        file = file.split(":", 1)[0]
    if base.startswith("hf://"):
        return f"{base}/{file}" if file else base
    joined = posixpath.normpath(posixpath.join(base.replace("\\", "/"), file or ""))
    if root is not None:
        absolute = os.path.abspath(joined)
        rel = os.path.relpath(absolute, root)
        if rel == os.curdir:
            return ""
        if not rel.startswith(os.pardir):
            return Path(rel).as_posix()
        return Path(absolute).as_posix()
    return "" if joined == "." else joined


def artifact_uri(report_path: str, file: str | None, root: str | None = None) -> str:
    """URI of ``file`` for SARIF: relative (to ``root``, percent-encoded) or ``file://`` when absolute."""
    path = repo_path(report_path, file, root)
    if path.startswith(("hf://", "file://")):
        return path
    if path.startswith("/"):
        return Path(path).as_uri()
    return quote(path, safe="/")


def _properties(code: str, severity: Severity) -> dict[str, Any]:
    family = code[:3]
    props: dict[str, Any] = {"tags": [family]}
    if family in _SECURITY_FAMILIES:
        props["tags"] = ["security", family]
        props["security-severity"] = _SECURITY_SEVERITY[severity]
        props["precision"] = "high"  # read from the file's own bytes (opcodes, headers), not guessed
    return props


def _descriptor(code: str, rules: dict[str, Rule], fallback: Finding | None) -> dict[str, Any]:
    spec: Any = rules.get(code)
    help_uri = f"{INFORMATION_URI}/blob/main/docs/rules.md#{code.lower()}"
    if spec is None:  # a code without documentation (e.g. from a smoke stage): describe it from the finding
        name = fallback.name if fallback and fallback.name else code.lower()
        summary = (fallback.message if fallback else code).splitlines()[0] or code
        severity = (fallback.severity if fallback else None) or Severity.ERROR
        text = summary + (f"\n\nHow to fix: {fallback.hint}" if fallback and fallback.hint else "")
        return {
            "id": code,
            "name": name,
            "shortDescription": {"text": summary},
            "fullDescription": {"text": text},
            "help": {"text": text, "markdown": text},
            "helpUri": help_uri,
            "defaultConfiguration": {"level": _LEVEL[severity]},
            "properties": _properties(code, severity),
        }
    doc = spec.doc.strip() or spec.summary
    return {
        "id": code,
        "name": spec.name,
        "shortDescription": {"text": spec.summary or code},
        "fullDescription": {"text": doc},
        "help": {"text": doc, "markdown": doc},
        "helpUri": help_uri,
        "defaultConfiguration": {"level": _LEVEL[spec.severity]},
        "properties": _properties(code, spec.severity),
    }


def anchor_file(r: PathReport) -> str | None:
    """The file a folder-level finding is shown on: config.json, the single file, else the first file."""
    if r.facts.file("config.json"):
        return "config.json"
    if r.facts.single_file:
        return r.facts.single_file
    for entry in r.facts.files:
        if entry.type == "file":
            return entry.path
    return None


def model_base(r: PathReport) -> str:
    if r.facts.single_file and not r.path.startswith("hf://"):
        return posixpath.dirname(r.path.replace("\\", "/")) or "."  # PATH was the file itself
    return r.path


def _location(r: PathReport, f: Finding, root: str | None) -> dict[str, Any]:
    # A finding about the folder as a whole is anchored on a file, so viewers that need one (GitHub
    # code scanning) can show it.
    file = f.path or anchor_file(r)
    uri = artifact_uri(model_base(r), file, root or r.repo_root)
    artifact: dict[str, Any] = {"uri": uri or "."}
    if not uri.startswith(("hf://", "file://")):
        artifact["uriBaseId"] = SRCROOT
    # Code scanning requires a region; findings are about whole files, so line 1.
    loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": 1}}}
    if f.path and ":" in f.path and not f.path.startswith(("hf://", "file://")):
        loc["logicalLocations"] = [{"fullyQualifiedName": f.path, "kind": "member"}]
    return loc


def _fingerprint(rule: str, uri: str, field: str, message: str) -> str:
    # Stable across runs: the figures in a message change (a shard re-downloaded, another GPU), the
    # rule, the file, the field and the words do not; the words keep two findings of one rule on one
    # file (two pickle globals) apart.
    words = re.sub(r"\d+(?:\.\d+)?", "#", message)
    return hashlib.sha256(f"{rule}\0{uri}\0{field}\0{words}".encode()).hexdigest()[:32]


def sarif_dict(report: Report, *, root: str | None = None) -> dict[str, Any]:
    """The SARIF log; artifact URIs relative to ``root`` (default: each path's repository root, as the
    run computed it: ``PathReport.repo_root``)."""
    from modelcheck import registry

    root = os.path.abspath(root) if root else None
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
            loc = _location(r, f, root)
            uri = loc["physicalLocation"]["artifactLocation"]["uri"]
            result: dict[str, Any] = {
                "ruleId": f.rule,
                "ruleIndex": index[f.rule],
                "level": _LEVEL[sev],
                "message": {"text": text},
                "locations": [loc],
                "partialFingerprints": {
                    "modelcheckFinding/v1": _fingerprint(f.rule, uri, f.path or "", f.message)
                },
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


def format(report: Report, *, color: bool = False, **_: object) -> str:
    return json.dumps(sarif_dict(report), indent=2, default=str) + "\n"
