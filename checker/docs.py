"""Rule documentation from the rule docstrings: ``docs/rules.md`` and ``check explain``.

    python -m modelcheck.docs > docs/rules.md      # regenerate (tests/test_docs.py fails when stale)

The docstring is the documentation (DESIGN.md "Rules"): first line = summary, then ``## Why it matters``
and ``## How to fix``. The linter's own CHK codes are declared with ``@rule`` in checker/linter.py.
"""

from __future__ import annotations

import re
import sys

from modelcheck.registry import Registry
from modelcheck.rule import Rule

REGENERATE = "python -m modelcheck.docs > docs/rules.md"


def find(query: str, registry: Registry | None = None) -> Rule | None:
    """A rule (the linter's own CHK codes included) by code (``MEM003``, ``mem003``) or name."""
    if registry is None:
        from modelcheck import registry as registry_mod

        registry = registry_mod.load()
    return registry.find(query)


def explain_text(item: Rule) -> str:
    """What ``check explain CODE`` prints: code, name, default severity, scope, then the full doc."""
    lines = [f"{item.code} ({item.name}) - default severity: {item.severity.label}"]
    if item.kinds:
        lines.append(f"applies to: {', '.join(sorted(item.kinds))}")
    if item.options:
        lines.append("options: " + ", ".join(f"{k}={v!r}" for k, v in sorted(item.options.items())))
    if item.module == "modelcheck.linter":
        lines.append("emitted by the linter itself")
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
    items = [
        r for r in registry.rules
        if plugins or r.module in ("modelcheck_rules", "modelcheck.linter") or r.module.startswith("modelcheck_rules.")
    ]
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
        kinds = ", ".join(sorted(r.kinds)) if r.kinds else "all"
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
    from modelcheck import registry as registry_mod

    sys.stdout.write(render_rules_markdown(registry_mod.load(plugins=False)))


if __name__ == "__main__":  # pragma: no cover
    main()
