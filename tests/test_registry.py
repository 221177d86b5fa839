"""The rule registry: built-ins, entry-point plugins, selection."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from modelcheck import registry
from modelcheck.rule import Severity, rule


def test_fast_entry_point_scan_matches_importlib_metadata():
    ours = sorted(registry.plugin_entry_points())
    theirs = sorted((ep.name, ep.value) for ep in entry_points(group=registry.ENTRY_POINT_GROUP))
    assert ours == theirs


def test_fast_entry_point_scan_reads_a_distribution(tmp_path, monkeypatch):
    dist = tmp_path / "acme_rules-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text(
        "[console_scripts]\nacme = acme:main\n\n[modelcheck.rules]\nacme = acme_rules.checks\nextra = acme_rules:mod [x]\n"
    )
    monkeypatch.setattr("sys.path", [str(tmp_path)])
    assert registry.plugin_entry_points() == [("acme", "acme_rules.checks"), ("extra", "acme_rules:mod")]


def test_builtin_codes_are_unique_and_well_formed():
    reg = registry.load(plugins=False)
    codes = [r.code for r in reg.rules]
    assert len(codes) == len(set(codes))
    for r in reg.rules:
        assert r.summary, f"{r.code} has no docstring summary"
        assert "## How to fix" in r.doc, f"{r.code} docstring lacks '## How to fix'"
        assert r.name == r.func.__name__.replace("_", "-")


def test_select_by_code_prefix_name_and_all():
    reg = registry.load(plugins=False)
    by_prefix = registry.select(reg.rules, ["MEM"], None)
    assert by_prefix and all(r.code.startswith("MEM") for r in by_prefix)
    one = registry.select(reg.rules, ["weights-exceed-vram"], None)
    assert [r.code for r in one] == ["MEM001"]
    everything = registry.select(reg.rules, ["ALL"], ["MEM001"])
    assert "MEM001" not in {r.code for r in everything} and len(everything) == len(reg.rules) - 1
    assert registry.unknown_selectors(reg.rules, ["MEM", "NOPE9", "all"]) == ["NOPE9"]


def test_rule_decorator_rejects_bad_codes_and_needs():
    with pytest.raises(ValueError, match="three capitals"):
        rule("mem1")
    with pytest.raises(ValueError, match="unknown needs"):
        rule("ABC001", needs={"quantum"})
    assert Severity.parse("Warning") is Severity.WARNING
