"""One-line rule tests with modelcheck's helpers: a passing and a failing case per rule."""

from modelcheck_example_plugin.rules import missing_model_card, too_many_files

from modelcheck.testing import make_facts, run_rule


def test_missing_model_card() -> None:
    assert run_rule(missing_model_card, make_facts(files={"README.md": 10})) == []
    (finding,) = run_rule(missing_model_card, make_facts(name="qwen", files={"config.json": 10}))
    assert finding.rule == "EXA001" and finding.message.startswith("qwen has no model card")


def test_too_many_files() -> None:
    facts = make_facts(files={f"f{i}.txt": 1 for i in range(3)})
    assert run_rule(too_many_files, facts) == []
    (finding,) = run_rule(too_many_files, facts, options={"max_files": 2})
    assert finding.data == {"files": 3, "max_files": 2}
