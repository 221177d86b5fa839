"""`--format json`: one JSON document, shape fixed by DESIGN.md "Contracts" (schema_version 1)."""

from __future__ import annotations

import json
from typing import Any

from modelcheck import __version__
from modelcheck.report import Report
from modelcheck.summary import (
    finding_dict,
    memory_block,
    model_summary,
    not_checked,
    smoke_block,
    target_summary,
)


def report_dict(report: Report) -> dict[str, Any]:
    results = []
    for r in report.results:
        entry: dict[str, Any] = {
            "path": r.path,
            "kind": r.facts.kind,
            "kind_confidence": round(r.facts.classification.confidence, 2),
            "kind_evidence": list(r.facts.classification.evidence),
            "model": model_summary(r.facts),
            "target": target_summary(r.target),
            "memory": memory_block(r.estimate),
            "findings": [finding_dict(f) for f in r.findings],
            "skipped": [{"rule": s.rule, "name": s.name, "reason": s.reason} for s in r.skipped],
            "not_checked": not_checked(r.skipped),
        }
        if r.smoke is not None and hasattr(r.smoke, "to_dict"):
            entry["smoke"] = smoke_block(r.smoke)
        results.append(entry)
    counts = report.counts()
    return {
        "schema_version": 1,
        "tool": {"name": "modelcheck", "version": __version__},
        "results": results,
        "summary": {
            "paths": len(report.results),
            **counts,
            "fail_on": report.fail_on.label,
            "failed": report.failed,
            "exit_code": report.exit_code,
        },
    }


def format(report: Report, *, color: bool = False, **_: object) -> str:
    return json.dumps(report_dict(report), indent=2, sort_keys=False, default=str) + "\n"
