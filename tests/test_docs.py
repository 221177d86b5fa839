"""docs/rules.md is generated from the rule docstrings and must be current."""

from __future__ import annotations

from pathlib import Path

from modelcheck import docs, registry

ROOT = Path(__file__).resolve().parent.parent


def test_rules_md_is_current() -> None:
    expected = docs.render_rules_markdown(registry.load(plugins=False))
    actual = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert actual == expected, f"docs/rules.md is stale: regenerate it with `{docs.REGENERATE}`"


def test_every_rule_and_engine_code_is_documented() -> None:
    text = docs.render_rules_markdown(registry.load(plugins=False))
    reg = registry.load(plugins=False)
    for r in reg.rules:
        assert f"### {r.code}\n" in text
        assert f"| [{r.code}](#{r.code.lower()}) | `{r.name}` | {r.severity.label} |" in text
    for code in ("CHK001", "CHK002", "CHK003"):
        assert f"### {code}\n" in text
    assert "#### Why it matters" in text and "#### How to fix" in text


def test_engine_codes_are_described() -> None:
    chk = docs.find("chk003")
    assert chk is not None and chk.name == "unused-suppression" and chk.severity.label == "warning"
    assert "## How to fix" in chk.doc
