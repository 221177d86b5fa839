"""Rule documentation from the rule docstrings: ``docs/rules.md`` and the engine's own CHK codes.

    python -m checker.docs > docs/rules.md      # regenerate (tests/test_docs.py fails when stale)

The docstring is the documentation (DESIGN.md "Rules"): first line = summary, then ``## Why it matters``
and ``## How to fix``. The CHK codes are produced by the engine itself, not by ``@rule`` functions, so
their documentation lives here, where the formatters (SARIF rule help) and the docs page find it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from checker.registry import Registry
from checker.rule import Rule, Severity

REGENERATE = "python -m checker.docs > docs/rules.md"


@dataclass(frozen=True, slots=True)
class EngineCode:
    """A code the engine emits on its own (not a registered rule); documented like a rule."""

    code: str
    name: str
    severity: Severity
    doc: str

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0]


ENGINE_CODES: dict[str, EngineCode] = {
    c.code: c
    for c in (
        EngineCode(
            "CHK001",
            "rule-crashed",
            Severity.ERROR,
            "A rule raised an exception while checking this model.\n\n"
            "## Why it matters\n"
            "A crashing rule could hide a real problem, so the gate fails closed: the run fails instead of "
            "passing silently.\n\n"
            "## How to fix\n"
            "Report it as a modelcheck bug (or to the plugin's author) with the `--debug` traceback. "
            "Meanwhile `--ignore CODE` skips the crashing rule.",
        ),
        EngineCode(
            "CHK002",
            "plugin-load-failed",
            Severity.WARNING,
            "A third-party rule plugin (entry point group `modelcheck.rules`) could not be imported.\n\n"
            "## Why it matters\n"
            "Its rules did not run, so the check is weaker than the configuration suggests. List the "
            "plugin under `plugins-required` in the config to turn this into a hard failure (exit 2).\n\n"
            "## How to fix\n"
            "Fix or reinstall the plugin (`pip install -U PACKAGE`), or uninstall it.",
        ),
        EngineCode(
            "CHK003",
            "unused-suppression",
            Severity.WARNING,
            "A suppression in the config matched no finding.\n\n"
            "## Why it matters\n"
            "Stale suppressions pile up and later hide a real problem that appears under the same rule "
            "and path.\n\n"
            "## How to fix\n"
            "Delete the `[[tool.modelcheck.suppress]]` entry, or correct its `rule` / `paths`.",
        ),
    )
}


def describe(code: str, registry: Registry | None = None) -> Rule | EngineCode | None:
    """A registered rule or an engine code, by code."""
    code = code.strip().upper()
    if code in ENGINE_CODES:
        return ENGINE_CODES[code]
    if registry is None:
        from checker import registry as registry_mod

        registry = registry_mod.load()
    return registry.by_code().get(code)


def find(query: str, registry: Registry | None = None) -> Rule | EngineCode | None:
    """A registered rule or an engine code, by code (``MEM003``, ``mem003``) or name (``weights-exceed-vram``)."""
    if registry is None:
        from checker import registry as registry_mod

        registry = registry_mod.load()
    q = query.strip()
    hit = describe(q, registry)
    if hit is not None:
        return hit
    for item in (*registry.rules, *ENGINE_CODES.values()):
        if item.name == q.lower():
            return item
    return None


def suggest(query: str, registry: Registry | None = None) -> str | None:
    """The closest code or name to a mistyped one (``MEM03`` -> ``MEM003``), or None."""
    import difflib

    if registry is None:
        from checker import registry as registry_mod

        registry = registry_mod.load()
    items = (*registry.rules, *ENGINE_CODES.values())
    q = query.strip()
    close = difflib.get_close_matches(q.upper(), [i.code for i in items], n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(q.lower(), [i.name for i in items], n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_selectors(selectors: list[str] | tuple[str, ...], registry: Registry | None = None) -> list[str]:
    """Selectors (code, prefix, name or ALL, as ``--select``/``--ignore`` take them) that name nothing:
    neither a rule nor an engine code (CHK003 can be ignored like a rule)."""
    if registry is None:
        from checker import registry as registry_mod

        registry = registry_mod.load()
    items = (*registry.rules, *ENGINE_CODES.values())
    bad = []
    for s in selectors:
        s = s.strip()
        if not s or s.upper() == "ALL":
            continue
        if not any(i.code.startswith(s.upper()) or i.name == s.lower() for i in items):
            bad.append(s)
    return bad


def explain_text(item: Rule | EngineCode) -> str:
    """What ``check explain CODE`` prints: code, name, default severity, scope, then the full doc."""
    lines = [f"{item.code} ({item.name}) - default severity: {item.severity.label}"]
    if isinstance(item, Rule):
        if item.kinds:
            lines.append(f"applies to: {', '.join(sorted(item.kinds))}")
        if item.options:
            lines.append("options: " + ", ".join(f"{k}={v!r}" for k, v in sorted(item.options.items())))
    else:
        lines.append("emitted by the engine itself (not a rule function)")
    return "\n".join([*lines, "", item.doc.strip()]) + "\n"


def _anchor(code: str) -> str:
    return code.lower()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _demote_headings(doc: str) -> str:
    # Docstring sections are "## ..."; under a "### CODE" heading they become "#### ...".
    return re.sub(r"^(#{1,4}) ", lambda m: "#" * min(6, len(m.group(1)) + 2) + " ", doc, flags=re.MULTILINE)


def render_rules_markdown(registry: Registry, *, plugins: bool = False) -> str:
    """docs/rules.md: a table of every rule, then each rule's full documentation.

    Only built-in rules (module ``rules.*``) unless ``plugins``: installed plugins differ per machine
    and must not make the committed page stale.
    """
    items: list[Rule | EngineCode] = [
        r for r in registry.rules if plugins or r.module == "rules" or r.module.startswith("rules.")
    ]
    items.extend(ENGINE_CODES.values())
    items.sort(key=lambda r: r.code)
    lines = [
        "# Rules",
        "",
        f"<!-- Generated from the rule docstrings by `{REGENERATE}`. Do not edit by hand. -->",
        "",
        (
            f"{len(items)} rules. `check rules` lists them, `check rules --format json` as JSON, "
            "`check explain CODE` shows one."
        ),
        "",
        "| Code | Name | Severity | Applies to | Summary |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in items:
        kinds = ", ".join(sorted(r.kinds)) if isinstance(r, Rule) and r.kinds else "all"
        lines.append(
            f"| [{r.code}](#{_anchor(r.code)}) | `{r.name}` | {r.severity.label} | {_cell(kinds)} | "
            f"{_cell(r.summary)} |"
        )
    lines.append("")
    family = None
    for r in items:
        if r.code[:3] != family:
            family = r.code[:3]
            lines.extend([f"## {family}", ""])
        lines.extend([f"### {r.code}", "", f"`{r.name}`, default severity **{r.severity.label}**."])
        if isinstance(r, Rule):
            if r.kinds:
                lines.append(f"Applies to: {', '.join(sorted(r.kinds))}.")
            if r.needs:
                lines.append(f"Needs: {', '.join(sorted(r.needs))}.")
            if r.options:
                opts = ", ".join(f"`{k}` = `{v!r}`" for k, v in sorted(r.options.items()))
                lines.append(f"Options (`[tool.modelcheck.rule-options.{r.code}]`): {opts}.")
        lines.append("")
        body = _demote_headings(r.doc.strip())
        lines.extend([body, ""])
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    from checker import registry as registry_mod

    sys.stdout.write(render_rules_markdown(registry_mod.load(plugins=False)))


if __name__ == "__main__":  # pragma: no cover
    main()
