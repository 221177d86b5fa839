"""`--format junit`: JUnit XML that CI systems ingest (GitLab ``artifacts:reports:junit``, Jenkins,
Azure Pipelines, GitHub test-report actions).

One ``<testsuite>`` per model path; one ``<testcase>`` per rule that ran (classname = the path, name =
``CODE name``). Findings at or above the fail level are ``<failure>``s; findings below it are listed in
``<system-out>`` of a passing case; rules that did not apply to this model or target are ``<skipped>``
with the reason. Rules of a stage that was not asked for (SMK without ``--smoke``, DEP without a
deployment spec) are no test cases at all, so a report never shows a smoke test that did not happen. Codes that are not rules (engine CHK codes, smoke results) get a case
of their own. No timestamps: output is deterministic.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from modelcheck.report import PathReport, Report
from modelcheck.rule import NEEDS, Finding, Severity

# skip reasons that mean "this stage was not requested", not "this rule did not apply"
_NOT_REQUESTED = (NEEDS["observation"], NEEDS["deployment"])


def _finding_text(f: Finding) -> str:
    sev = (f.severity or Severity.ERROR).label
    where = f"{f.path}: " if f.path else ""
    text = f"{sev} {f.rule} [{f.name}] {where}{f.message}"
    if f.hint:
        text += f"\nfix: {f.hint}"
    return text


def _suite(r: PathReport, fail_on: Severity, rule_names: dict[str, str]) -> tuple[ET.Element, int, int, int]:
    suite = ET.Element("testsuite", name=r.path)
    by_rule: dict[str, list[Finding]] = {}
    for f in r.findings:
        by_rule.setdefault(f.rule, []).append(f)
        rule_names.setdefault(f.rule, f.name)
    codes = list(r.result.ran) + [c for c in by_rule if c not in r.result.ran]
    tests = failures = skipped = 0
    for code in sorted(codes):
        found = by_rule.get(code, [])
        name = rule_names.get(code) or (found[0].name if found else "")
        case = ET.SubElement(suite, "testcase", classname=r.path, name=f"{code} {name}".strip())
        tests += 1
        failing = [f for f in found if (f.severity or Severity.ERROR) >= fail_on]
        passing = [f for f in found if (f.severity or Severity.ERROR) < fail_on]
        if failing:
            failures += 1
            worst = max((f.severity or Severity.ERROR) for f in failing)
            first = failing[0]
            el = ET.SubElement(case, "failure", message=first.message.splitlines()[0], type=worst.label)
            el.text = "\n\n".join(_finding_text(f) for f in failing)
        if passing:
            ET.SubElement(case, "system-out").text = "\n\n".join(_finding_text(f) for f in passing)
    for s in sorted(r.skipped, key=lambda s: s.rule):
        if s.reason in _NOT_REQUESTED:
            continue
        case = ET.SubElement(suite, "testcase", classname=r.path, name=f"{s.rule} {s.name}")
        ET.SubElement(case, "skipped", message=s.reason)
        tests += 1
        skipped += 1
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    return suite, tests, failures, skipped


def format(report: Report, *, color: bool = False, **_: object) -> str:
    from modelcheck import registry

    rule_names = {code: r.name for code, r in registry.load().by_code().items()}
    root = ET.Element("testsuites", name="modelcheck")
    total = fails = 0
    for r in report.results:
        suite, tests, failures, _skipped = _suite(r, report.fail_on, rule_names)
        root.append(suite)
        total += tests
        fails += failures
    root.set("tests", str(total))
    root.set("failures", str(fails))
    root.set("errors", "0")
    # No "skipped" on <testsuites>: Jenkins' junit-10.xsd (xunit plugin) allows only name, time,
    # tests, failures, disabled and errors there; each <testsuite> carries its own skipped count.
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
