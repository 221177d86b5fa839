"""Meta-tests over every built-in rule (refurb-style): documentation shape, one owner per FactError kind,
module size, and a test for each rule. They guard the conventions of DESIGN.md "Rules" as rules are added.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelcheck import catalog as catalog_mod
from modelcheck import linter, registry
from modelcheck.model import FactError
from modelcheck.rule import Context
from modelcheck.testing import make_facts, make_target

ROOT = Path(__file__).resolve().parents[1]
RULES = registry.load(plugins=False).rules
# rule modules allowed past the size limit, each with the reason it cannot be split (none today)
LONG_MODULES: dict[str, str] = {}
MAX_MODULE_LINES = 300


@pytest.mark.parametrize("r", RULES, ids=lambda r: r.code)
def test_docstring_has_summary_why_and_fix(r):
    doc = r.doc
    summary = doc.splitlines()[0] if doc else ""
    assert summary.strip() and not summary.startswith("#"), f"{r.code}: first docstring line must be the summary"
    why, fix = doc.find("\n## Why it matters\n"), doc.find("\n## How to fix\n")
    assert 0 < why < fix, f"{r.code}: needs '## Why it matters' then '## How to fix'"
    assert doc[why + len("\n## Why it matters\n") : fix].strip(), f"{r.code}: empty 'Why it matters'"
    assert doc[fix + len("\n## How to fix\n") :].strip(), f"{r.code}: empty 'How to fix'"


def fact_error_kinds() -> list[str]:
    """Every kind modelcheck.facts writes as a literal FactError("kind", ...)."""
    kinds: set[str] = set()
    for path in sorted((ROOT / "checker" / "facts").glob("*.py")):
        kinds.update(re.findall(r'FactError\(\s*"([a-z][a-z-]*)"', path.read_text(encoding="utf-8")))
    return sorted(kinds)


# where each kind of error typically sits; the default works for kinds without a natural file
ERROR_PATHS = {
    "safetensors": "model.safetensors",
    "gguf": "model.gguf",
    "json": "tokenizer_config.json",
    "yaml": "cosyvoice.yaml",
    "index": "model.safetensors.index.json",
    "pickle": "pytorch_model.bin",
    "onnx": "model.onnx",
    "keras": "model.keras",
    "walk": "loop",
    "unreadable": "generation_config.json",
}


def test_fact_error_kinds_are_found():
    # the grep must see the kinds the facts are known to write, or the test below checks nothing
    assert {"safetensors", "gguf", "json", "yaml", "index", "pickle", "onnx", "keras", "walk", "unreadable"} <= set(
        fact_error_kinds()
    )


@pytest.mark.parametrize("kind", fact_error_kinds())
def test_each_fact_error_kind_is_reported_by_exactly_one_rule(kind):
    path = ERROR_PATHS.get(kind, f"x.{kind}")
    marker = f"broken {kind} marker 7f3a"
    facts = make_facts(
        config={"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16"},
        files={"tokenizer.json": 10, "tokenizer_config.json": 10, path: 100},
        errors=[FactError(kind, path, marker)],
    )
    target = make_target(image="vllm:0.14.0-gpu", gpu="A10")
    result = linter.run(RULES, Context(facts=facts, target=target, catalog=catalog_mod.load()))
    assert not [f for f in result.findings if f.rule.startswith("CHK")], result.findings
    mentions = [
        f.rule
        for f in result.findings
        if marker in f.message or any(isinstance(v, str) and marker in v for v in f.data.values())
    ]
    assert len(mentions) == 1, f"FactError kind {kind!r} is reported by {mentions or 'no rule'}"


def rule_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "rules").glob("*.py") if not p.name.startswith("_"))


def test_rule_modules_are_found():
    assert {"files.py", "engine_arch.py", "security.py", "smoke.py"} <= {p.name for p in rule_modules()}


@pytest.mark.parametrize("path", rule_modules(), ids=lambda p: p.name)
def test_rule_module_is_short(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if path.name in LONG_MODULES:
        pytest.skip(f"allowed: {LONG_MODULES[path.name]}")
    assert lines <= MAX_MODULE_LINES, f"rules/{path.name} has {lines} lines: split the family before it grows"


def _test_sources() -> str:
    me = Path(__file__).resolve()
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests").rglob("*.py")) if p != me)


TEST_SOURCES = _test_sources()


@pytest.mark.parametrize("r", RULES, ids=lambda r: r.code)
def test_every_rule_has_a_test(r):
    func = r.func.__name__
    assert r.code in TEST_SOURCES or re.search(rf"\b{func}\b", TEST_SOURCES), (
        f"{r.code} ({r.name}) is not referenced by any test: add a passing and a failing case"
    )


def test_rule_names_are_unique():
    """Selecting or explaining a rule by name must find exactly one rule."""
    names = [r.name for r in registry.load(plugins=False).rules]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_each_rule_module_names_its_codes_in_its_docstring() -> None:
    """`ls rules/engine_*` finds the family; the module docstring lists the codes it holds."""
    import importlib

    from modelcheck.rule import rules_in

    for path in rule_modules():
        mod = importlib.import_module(f"modelcheck_rules.{path.stem}")
        codes = sorted(r.code for r in rules_in(mod))
        assert codes, path.name
        assert all(c in (mod.__doc__ or "") for c in codes), (path.name, codes)
        # one family per module, and the file name says which (files_*, engine_*, security_* ...)
        families = {c[:3] for c in codes}
        prefix = {"CHP": "chip", "DEP": "deploy", "ENG": "engine", "FIL": "files", "IMG": "image",
                  "KND": "kind", "MEM": "memory", "SEC": "security", "SMK": "smoke"}
        assert len(families) == 1 and path.stem.startswith(prefix[families.pop()]), path.name


def test_rule_tests_mirror_the_rule_families():
    # rules/engine_arch.py, engine_flags.py ... -> tests/rules/test_engine.py; rules/deploy*.py ->
    # tests/rules/test_deploy_rules.py (tests/test_deploy.py tests the spec parser, checker/deploy.py)
    families = {p.stem.split("_")[0] for p in (ROOT / "rules").glob("*.py") if not p.stem.startswith("_")}
    tests = {p.stem.removeprefix("test_").removesuffix("_rules") for p in (ROOT / "tests" / "rules").glob("test_*.py")}
    assert families - tests == set(), "a rule family without tests/rules/test_<family>.py"
