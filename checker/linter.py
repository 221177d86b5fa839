"""The linter: runs the selected rules over one Context and owns what happens around them.

Applicability (a rule's ``kinds`` / ``needs`` become a skip with a reason), option defaults, severity
overrides, suppressions from the config (an unused one is CHK003), and crashes (a rule that raises is
CHK001: the gate fails closed). Its own codes are declared below with ``@rule`` like any other, so
``check rules``, ``explain``, the docs and SARIF need no special case; their functions never run.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

from modelcheck.model import ModelFacts
from modelcheck.record import field, record
from modelcheck.rule import NEEDS, Context, Finding, Rule, Severity, rule

INTERNAL_FAMILY = "CHK"  # codes the linter stamps itself; never run as rules


@rule("CHK001", severity=Severity.ERROR)
def rule_crashed(ctx: Context) -> Iterator[Finding]:
    """A rule raised an exception while checking this model.

    ## Why it matters
    A crashing rule could hide a real problem, so the gate fails closed: the run fails instead of passing
    silently.

    ## How to fix
    Report it as a modelcheck bug (or to the plugin's author) with the `--debug` traceback. Meanwhile
    `--ignore CODE` skips the crashing rule.
    """
    return iter(())


@rule("CHK002", severity=Severity.WARNING)
def plugin_load_failed(ctx: Context) -> Iterator[Finding]:
    """A third-party rule plugin (entry point group `modelcheck.rules`) could not be imported.

    ## Why it matters
    Its rules did not run, so the check is weaker than the configuration suggests. List the plugin under
    `plugins-required` in the config to turn this into a hard failure (exit 2).

    ## How to fix
    Fix or reinstall the plugin (`pip install -U PACKAGE`), or uninstall it.
    """
    return iter(())


@rule("CHK003", severity=Severity.WARNING)
def unused_suppression(ctx: Context) -> Iterator[Finding]:
    """A suppression in the config matched no finding.

    ## Why it matters
    Stale suppressions pile up and later hide a real problem that appears under the same rule and path.

    ## How to fix
    Delete the `[[tool.modelcheck.suppress]]` entry, or correct its `rule` / `paths`.
    """
    return iter(())


CRASH = rule_crashed.__modelcheck_rule__  # type: ignore[attr-defined]
PLUGIN_LOAD = plugin_load_failed.__modelcheck_rule__  # type: ignore[attr-defined]
UNUSED_SUPPRESSION = unused_suppression.__modelcheck_rule__  # type: ignore[attr-defined]
ENGINE_CRASH_CODE = CRASH.code
PLUGIN_LOAD_CODE = PLUGIN_LOAD.code


@record
class Skip:
    rule: str
    name: str
    reason: str


@record
class Result:
    findings: tuple[Finding, ...]
    skipped: tuple[Skip, ...]
    ran: tuple[str, ...]


@record
class Settings:
    severity_overrides: dict[str, Severity] = field(default_factory=dict)  # code -> severity
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> option overrides
    suppressions: tuple[Any, ...] = ()  # modelcheck.config.Suppression covering this model
    selected: tuple[Rule, ...] = ()  # the selected rules, internal codes included (decides CHK003)
    extra_findings: tuple[Finding, ...] = ()  # stamped by the caller (CHK002 plugin load failures)


def missing_need(need: str, ctx: Context) -> bool:
    """Whether the Context lacks what a rule declared it needs (rule.NEEDS names each with its reason)."""
    target = ctx.target
    missing = {
        "image": lambda: target.image is None,
        "instance": lambda: target.instance is None,
        "gpu": lambda: target.instance is None or target.instance.gpu is None or target.gpu_count == 0,
        "vram": lambda: target.gpu is None or target.gpu.memory_bytes <= 0,
        "estimate": lambda: ctx.estimate is None,
        "config": lambda: ctx.facts.config is None,
        "deployment": lambda: target.deployment is None,
        "observation": lambda: ctx.observation is None,  # only the smoke stage supplies one
    }
    return missing[need]()


def skip_reason(r: Rule, ctx: Context) -> str | None:
    if r.kinds is not None and ctx.facts.kind not in r.kinds:
        return f"applies to {', '.join(sorted(r.kinds))}; this is {ctx.facts.kind}"
    for need in sorted(r.needs):
        if missing_need(need, ctx):
            return NEEDS[need]
    return None


def run(rules: tuple[Rule, ...], ctx: Context, settings: Settings | None = None) -> Result:
    """Run ``rules`` (internal CHK codes are skipped: the linter stamps them itself) over ``ctx``."""
    settings = settings or Settings()
    findings: list[Finding] = list(settings.extra_findings)
    skipped: list[Skip] = []
    ran: list[str] = []
    for r in rules:
        if r.family == INTERNAL_FAMILY:
            continue
        rule_ctx = Context(
            facts=ctx.facts, target=ctx.target, estimate=ctx.estimate, view=ctx.view,
            options={**r.options, **settings.options.get(r.code, {})}, catalog=ctx.catalog,
            alternatives=ctx.alternatives, observation=ctx.observation,
        )
        reason = skip_reason(r, rule_ctx)
        if reason:
            skipped.append(Skip(r.code, r.name, reason))
            continue
        ran.append(r.code)
        try:
            produced = list(r.func(rule_ctx) or ())
        except Exception as exc:  # fail closed: a crashing rule is an error, never a silent pass
            findings.append(_stamp(CRASH, settings, Finding(
                f"rule {r.code} ({r.name}) crashed: {type(exc).__name__}: {exc}".splitlines()[0],
                hint="report this as a modelcheck bug; run with --debug for the traceback",
                data={"crashed_rule": r.code},
            )))
            continue
        for f in produced:
            # a per-finding severity is the rule's own up/downgrade; a configured override wins over both
            sev = settings.severity_overrides.get(r.code) or f.severity or r.severity
            findings.append(f.stamped(r.code, r.name, sev))
    findings = _suppress(findings, settings, ctx.facts)
    findings.sort(key=lambda f: (-int(f.severity or 0), f.rule, f.path or "", f.message))
    return Result(findings=tuple(findings), skipped=tuple(skipped), ran=tuple(ran))


def _stamp(r: Rule, settings: Settings, f: Finding) -> Finding:
    return f.stamped(r.code, r.name, settings.severity_overrides.get(r.code) or r.severity)


def plugin_load_findings(load_errors: tuple[tuple[str, str], ...], settings: Settings) -> tuple[Finding, ...]:
    return tuple(
        _stamp(PLUGIN_LOAD, settings, Finding(
            f"rule plugin {name!r} failed to load: {reason}",
            hint="fix or uninstall the plugin; its rules did not run",
            data={"plugin": name},
        ))
        for name, reason in load_errors
    )


def _suppress(findings: list[Finding], settings: Settings, facts: ModelFacts) -> list[Finding]:
    """Drop suppressed findings; report (CHK003) each suppression that matched none, when selected."""
    from modelcheck.registry import matches

    if not settings.suppressions:
        return findings
    used: set[int] = set()
    kept = []
    for f in findings:
        hit = next((i for i, s in enumerate(settings.suppressions) if _suppresses(s, f, matches, facts)), None)
        if hit is None:
            kept.append(f)
        else:
            used.add(hit)
    if UNUSED_SUPPRESSION in settings.selected:
        for i, s in enumerate(settings.suppressions):
            if i in used:
                continue
            scope = f", paths {', '.join(s.paths)}" if s.paths else ""
            kept.append(_stamp(UNUSED_SUPPRESSION, settings, Finding(
                f"suppression {s.key} in {s.config} (rule {s.rule}{scope}) matched no finding for {facts.input_path}",
                hint=f"delete it from {s.config} or fix its rule/paths (reason given: {s.reason})",
                data={"config": s.config, "key": s.key, "rule": s.rule, "reason": s.reason},
            )))
    return kept


def _suppresses(s: Any, f: Finding, matches: Any, facts: ModelFacts) -> bool:
    if not matches(f.rule, f.name, s.rule):
        return False
    if not s.files:
        return True
    where = f.path or ""
    # A finding path is a file, or "file:field". The file is the whole path when the folder has a file of
    # that name (it may be called "config.json:evil.pkl"), else the longest ':'-prefix that is a file.
    file = where
    if facts.file(where) is None:
        prefixes = [where[:i] for i, ch in enumerate(where) if ch == ":" and facts.file(where[:i]) is not None]
        file = prefixes[-1] if prefixes else where.split(":", 1)[0]
    return any(fnmatch.fnmatchcase(file, g) for g in s.files)
