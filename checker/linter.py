"""Runs the selected rules over one Context: applicability, options, severity overrides, crashes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checker.model import Estimate, ModelFacts, Target
from checker.rule import NEEDS, Context, Finding, Rule, Severity

ENGINE_CRASH_CODE = "CHK001"  # a rule raised: the gate fails closed
PLUGIN_LOAD_CODE = "CHK002"  # a plugin could not be loaded


@dataclass(frozen=True, slots=True)
class Skip:
    rule: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Result:
    findings: tuple[Finding, ...]
    skipped: tuple[Skip, ...]
    ran: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Settings:
    severity_overrides: dict[str, Severity] = field(default_factory=dict)  # code -> severity
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> option overrides


def missing_need(need: str, facts: ModelFacts, target: Target, estimate: Estimate | None) -> bool:
    if need == "image":
        return target.image is None
    if need == "instance":
        return target.instance is None
    if need == "gpu":
        return target.instance is None or target.instance.gpu is None or target.gpu_count == 0
    if need == "vram":
        return target.gpu is None or target.gpu.memory_bytes <= 0
    if need == "estimate":
        return estimate is None
    if need == "config":
        return facts.config is None
    return False


def _skip_reason(r: Rule, facts: ModelFacts, target: Target, estimate: Estimate | None) -> str | None:
    if r.kinds is not None and facts.kind not in r.kinds:
        return f"applies to {', '.join(sorted(r.kinds))}; this is {facts.kind}"
    for need in sorted(r.needs):
        if missing_need(need, facts, target, estimate):
            return NEEDS[need]
    return None


def run(
    rules: tuple[Rule, ...],
    facts: ModelFacts,
    target: Target,
    estimate: Estimate | None = None,
    settings: Settings | None = None,
    catalog: Any = None,
    view: Any = None,
) -> Result:
    settings = settings or Settings()
    findings: list[Finding] = []
    skipped: list[Skip] = []
    ran: list[str] = []
    for r in rules:
        reason = _skip_reason(r, facts, target, estimate)
        if reason:
            skipped.append(Skip(r.code, r.name, reason))
            continue
        options = {**r.options, **settings.options.get(r.code, {})}
        ctx = Context(facts=facts, target=target, estimate=estimate, options=options, catalog=catalog, view=view)
        default = settings.severity_overrides.get(r.code, r.severity)
        ran.append(r.code)
        try:
            produced = list(r.func(ctx) or ())
        except Exception as exc:  # fail closed: a crashing rule is an error, never a silent pass
            findings.append(
                Finding(
                    f"rule {r.code} ({r.name}) crashed: {type(exc).__name__}: {exc}".splitlines()[0],
                    hint="report this as a modelcheck bug; run with --debug for the traceback",
                    data={"crashed_rule": r.code},
                ).stamped(ENGINE_CRASH_CODE, "rule-crashed", Severity.ERROR)
            )
            continue
        for f in produced:
            # An explicit per-finding severity is a downgrade/upgrade inside the rule; a config
            # override of the rule wins over both.
            sev = settings.severity_overrides.get(r.code) or f.severity or default
            findings.append(f.stamped(r.code, r.name, sev))
    findings.sort(key=lambda f: (-int(f.severity or 0), f.rule, f.path or "", f.message))
    return Result(findings=tuple(findings), skipped=tuple(skipped), ran=tuple(ran))
