"""SARIF (validated against the official 2.1.0 schema), GitHub annotations, JUnit XML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from modelcheck import registry
from modelcheck.linter import Result, Skip
from modelcheck.formatters import github, junit, sarif
from modelcheck.model import GPU, ImageRef, Instance, Target
from modelcheck.report import PathReport, Report
from modelcheck.rule import Finding, Severity, rule, rules_in
from modelcheck.testing import make_facts

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


@rule("MEM901", severity=Severity.ERROR)
def weights_too_big(ctx):
    """Weights alone do not fit in GPU memory.

    ## Why it matters
    vLLM fails at start-up with CUDA out of memory.

    ## How to fix
    Use a bigger GPU or a quantized model.
    """
    yield from ()


@rule("ENG901", severity=Severity.WARNING)
def context_too_long(ctx):
    """max_model_len exceeds the model's limit.

    ## Why it matters
    vLLM refuses to start.

    ## How to fix
    Lower --max-model-len.
    """
    yield from ()


class _Rules:
    weights_too_big = weights_too_big
    context_too_long = context_too_long


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch):
    from modelcheck import linter

    monkeypatch.setattr(registry, "_CACHE", registry.Registry(rules=(*rules_in(linter), *rules_in(_Rules))))


def _target() -> Target:
    gpu = GPU(
        name="A10", memory_bytes=23_827_000_000, nominal_gb=24, compute_capability="8.6", bf16=True, fp8=False
    )
    return Target(
        image=ImageRef(raw="vllm:0.14.0-gpu", engine="vllm", version="0.14.0", chip="GPU", category="llm"),
        instance=Instance(name="ecs.gn7i-c8g1.2xlarge", cloud="alibaba", chip="GPU", gpu=gpu, gpu_count=1),
        chip="GPU",
        engine_args={"max_model_len": 32768},
    )


def _report(fail_on: Severity = Severity.ERROR) -> Report:
    facts = make_facts(
        name="qwen", config={"architectures": ["Qwen2ForCausalLM"]}, files={"model.safetensors": 10}
    )
    mem = Finding(
        "weights need 15.23 GiB per GPU but only 21.4 GiB, of which 90% usable",
        path="model.safetensors",
        hint="use --instance ecs.gn7i-c16g1.4xlarge",
        data={"weights_bytes": 16_000_000_000},
    ).stamped("MEM901", "weights-too-big", Severity.ERROR)
    eng = Finding(
        "--max-model-len 32768 > max_position_embeddings 8192, with a comma, and 100%",
        path="config.json:max_position_embeddings",
        hint="pass --max-model-len 8192",
    ).stamped("ENG901", "context-too-long", Severity.WARNING)
    plugin = Finding("rule plugin 'broken' failed to load: ImportError: boom").stamped(
        "CHK002", "plugin-load-failed", Severity.WARNING
    )
    res = Result(
        findings=(mem, eng, plugin),
        skipped=(Skip("SMK901", "smoke-thing", "no --image declared"),),
        ran=("ENG901", "MEM901"),
    )
    ok_facts = make_facts(name="small", config={"architectures": ["LlamaForCausalLM"]})
    ok = Result(findings=(), skipped=(), ran=("ENG901", "MEM901"))
    return Report(
        results=(
            PathReport(path="models/qwen", facts=facts, target=_target(), estimate=None, result=res,
                       fail_on=fail_on),
            PathReport(path="models/small", facts=ok_facts, target=_target(), estimate=None, result=ok,
                       fail_on=fail_on),
        ),
    )


# -- SARIF ------------------------------------------------------------------------------------


def test_sarif_validates_against_official_schema() -> None:
    doc = json.loads(sarif.format(_report()))
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(doc), key=str)
    assert errors == []
    assert doc["version"] == "2.1.0"


def test_sarif_rules_carry_help_text_and_results_point_into_model_folder() -> None:
    doc = json.loads(sarif.format(_report()))
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["CHK002", "ENG901", "MEM901"]
    mem = rules[2]
    assert mem["name"] == "weights-too-big"
    assert mem["shortDescription"]["text"] == "Weights alone do not fit in GPU memory."
    assert "## How to fix" in mem["help"]["markdown"] and "bigger GPU" in mem["help"]["text"]
    assert mem["defaultConfiguration"]["level"] == "error"
    assert rules[0]["name"] == "plugin-load-failed" and "plugins-required" in rules[0]["help"]["text"]

    by_rule = {r["ruleId"]: r for r in run["results"]}
    m = by_rule["MEM901"]
    assert m["level"] == "error" and m["ruleIndex"] == 2
    assert m["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/qwen/model.safetensors"
    assert m["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}
    assert m["message"]["text"].endswith("Fix: use --instance ecs.gn7i-c16g1.4xlarge")
    assert m["properties"]["data"] == {"weights_bytes": 16_000_000_000}
    e = by_rule["ENG901"]
    assert e["level"] == "warning"
    assert e["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/qwen/config.json"
    assert (
        e["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        == "config.json:max_position_embeddings"
    )
    # a folder-level finding is anchored on the folder's config.json
    c = by_rule["CHK002"]
    assert c["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/qwen/config.json"


def test_sarif_is_deterministic_and_uris() -> None:
    assert sarif.format(_report()) == sarif.format(_report())
    assert sarif.artifact_uri("./models/qwen/", "config.json:x") == "models/qwen/config.json"
    assert sarif.artifact_uri("/abs/qwen", "a.safetensors") == "file:///abs/qwen/a.safetensors"
    assert (
        sarif.artifact_uri("hf://Qwen/Qwen2.5-7B-Instruct", "config.json")
        == "hf://Qwen/Qwen2.5-7B-Instruct/config.json"
    )
    # URIs are URI references: a space or a '#' in a file name is percent-encoded
    assert sarif.artifact_uri("models/my model", "a#1.safetensors") == "models/my%20model/a%231.safetensors"


def _code_scanning_problems(doc: dict) -> list[str]:
    """GitHub code scanning's requirements on top of the SARIF schema (docs.github.com, "SARIF support
    for code scanning"): what an upload needs to become alerts on the right files."""
    problems = []
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    for key in ("name", "version", "semanticVersion", "informationUri"):
        if not driver.get(key):
            problems.append(f"tool.driver.{key} missing")
    rules = {r["id"]: r for r in driver["rules"]}
    for rid, r in rules.items():
        for key in ("shortDescription", "fullDescription", "help"):
            if not (r.get(key) or {}).get("text"):
                problems.append(f"rule {rid}: {key}.text missing")
        if not r.get("helpUri"):
            problems.append(f"rule {rid}: helpUri missing")
        props = r.get("properties") or {}
        if rid.startswith("SEC"):
            if "security" not in props.get("tags", []):
                problems.append(f"rule {rid}: no 'security' tag")
            score = props.get("security-severity")
            if not isinstance(score, str) or not 0.0 < float(score) <= 10.0:
                problems.append(f"rule {rid}: security-severity {score!r} is not a score in (0, 10]")
    for i, res in enumerate(run["results"]):
        if res.get("ruleId") not in rules:
            problems.append(f"result {i}: ruleId {res.get('ruleId')!r} not described")
        if not res.get("message", {}).get("text"):
            problems.append(f"result {i}: message.text missing")
        if not res.get("partialFingerprints"):
            problems.append(f"result {i}: no partialFingerprints")
        locs = res.get("locations") or []
        if not 1 <= len(locs) <= 10:
            problems.append(f"result {i}: {len(locs)} locations")
        for loc in locs:
            art = loc["physicalLocation"]["artifactLocation"]
            uri = art["uri"]
            if uri.startswith(("/", "..", "file:")) or "://" in uri or uri in ("", "."):
                problems.append(f"result {i}: uri {uri!r} is not relative to the repository root")
            if art.get("uriBaseId") != "%SRCROOT%":
                problems.append(f"result {i}: uriBaseId {art.get('uriBaseId')!r}")
            if loc["physicalLocation"].get("region", {}).get("startLine", 0) < 1:
                problems.append(f"result {i}: region.startLine missing or < 1")
    return problems


def test_sarif_meets_github_code_scanning_requirements() -> None:
    doc = json.loads(sarif.format(_report()))
    assert _code_scanning_problems(doc) == []
    driver = doc["runs"][0]["tool"]["driver"]
    assert (driver["name"], driver["semanticVersion"]) == ("modelcheck", driver["version"])
    # a security rule carries the tag and a score GitHub maps to "high"
    sec = Finding("pickle imports os.system", path="model.bin").stamped("SEC901", "dangerous", Severity.ERROR)
    facts = make_facts(name="m", files={"model.bin": 10})
    rep = Report(
        results=(
            PathReport(
                path="m",
                facts=facts,
                target=_target(),
                estimate=None,
                result=Result(findings=(sec,), skipped=(), ran=()),
            ),
        ),
    )
    doc = json.loads(sarif.format(rep))
    assert _code_scanning_problems(doc) == []
    rule_desc = doc["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule_desc["properties"]["tags"] == ["security", "SEC"]
    assert rule_desc["properties"]["security-severity"] == "8.8"
    # an undocumented code (no @rule) is still described with the texts GitHub shows
    assert rule_desc["fullDescription"]["text"] == "pickle imports os.system"


def test_sarif_uris_are_relative_to_the_repository_root(tmp_path: Path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "models").mkdir()
    facts = make_facts(
        name="qwen", config={"architectures": ["Qwen2ForCausalLM"]}, files={"model.safetensors": 1}
    )
    f = Finding("truncated", path="model.safetensors").stamped("MEM901", "weights-too-big", Severity.ERROR)

    def uris(path: str) -> list[str]:
        from modelcheck import repo as repo_mod

        # the run computes each path's root once (modelcheck.api); the formatters only read it
        pr = PathReport(
            path=path,
            facts=facts,
            target=_target(),
            estimate=None,
            result=Result(findings=(f,), skipped=(), ran=()),
            repo_root=repo_mod.root_for(path, repo_mod.source_root()),
        )
        doc = json.loads(sarif.format(Report(results=(pr,))))
        return [
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in doc["runs"][0]["results"]
        ]

    # `cd models && check qwen`, an absolute path, and the repo root all land on the same file
    monkeypatch.chdir(repo / "models")
    assert uris("qwen") == ["models/qwen/model.safetensors"]
    assert uris(str(repo / "models" / "qwen")) == ["models/qwen/model.safetensors"]
    monkeypatch.chdir(repo)
    assert uris("./models/qwen/") == ["models/qwen/model.safetensors"]
    # GitHub annotations use the same repository-relative path
    monkeypatch.chdir(repo / "models")
    from modelcheck import repo as repo_mod

    pr = PathReport(
        path="qwen",
        facts=facts,
        target=_target(),
        estimate=None,
        result=Result(findings=(f,), skipped=(), ran=()),
        repo_root=repo_mod.root_for("qwen", repo_mod.source_root()),
    )
    assert github.format(Report(results=(pr,))).startswith(
        "::error file=models/qwen/model.safetensors,line=1,title=MEM901 weights-too-big::truncated"
    )
    # run from outside any repository: the model's own repository is the root
    outside = tmp_path / "loose"
    outside.mkdir()
    monkeypatch.chdir(outside)
    assert repo_mod.source_root() == str(outside)
    assert uris(str(repo / "models" / "qwen")) == ["models/qwen/model.safetensors"]
    # a model in no repository at all: relative to the current directory, or a file:// URI outside it
    (outside / "m").mkdir()
    assert uris("m") == ["m/model.safetensors"]
    assert uris(str(tmp_path / "elsewhere")) == [(tmp_path / "elsewhere" / "model.safetensors").as_uri()]


def test_sarif_fingerprints_survive_changed_figures() -> None:
    def fp(message: str) -> str:
        f = Finding(message, path="model-00002.safetensors").stamped("FIL904", "truncated", Severity.ERROR)
        pr = PathReport(
            path="models/q",
            facts=make_facts(name="q"),
            target=_target(),
            estimate=None,
            result=Result(findings=(f,), skipped=(), ran=()),
        )
        doc = json.loads(sarif.format(Report(results=(pr,))))
        return doc["runs"][0]["results"][0]["partialFingerprints"]["modelcheckFinding/v1"]

    assert fp("is 182128 bytes but its header describes 362864 bytes") == fp(
        "is 1000 bytes but its header describes 2.5 bytes"
    )
    assert fp("pickle imports os.system") != fp("pickle imports builtins.exec")


# -- GitHub -----------------------------------------------------------------------------------


def test_github_annotations_escape_and_point_at_files() -> None:
    out = github.format(_report()).splitlines()
    assert out[0] == (
        "::error file=models/qwen/model.safetensors,line=1,title=MEM901 weights-too-big::"
        "weights need 15.23 GiB per GPU but only 21.4 GiB, of which 90%25 usable"
        "%0AFix: use --instance ecs.gn7i-c16g1.4xlarge"
    )
    assert out[1].startswith("::warning file=models/qwen/config.json,line=1,title=ENG901 context-too-long::")
    assert (
        "with a comma, and 100%25 (config.json:max_position_embeddings)%0AFix: pass --max-model-len 8192"
        in out[1]
    )
    assert out[2].startswith(
        "::warning file=models/qwen/config.json,line=1,title=CHK002 plugin-load-failed::rule plugin"
    )
    assert out[-1] == "modelcheck FAIL: 2 paths checked, 1 error(s), 2 warning(s), 0 info (failing at error)"
    assert github.escape_property("a:b,c%") == "a%3Ab%2Cc%25"


def test_github_format_is_chosen_on_actions_and_output_file_still_gates(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_precommit import write_model

    write_model(tmp_path / "broken", truncated=True)
    env = {**os.environ, "GITHUB_ACTIONS": "true"}
    cmd = [sys.executable, "-c", "from modelcheck.cli import main; main()", "broken", "--no-config"]
    proc = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 1
    assert "::error file=broken/model.safetensors,line=1,title=FIL004 truncated-weights::" in proc.stdout
    # --output FILE writes the report; the exit code still gates; --exit-zero lets a rollout pass
    out = tmp_path / "report.sarif"
    proc = subprocess.run(
        [*cmd, "--format", "sarif", "--output", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("FAIL: 1 path checked")
    doc = json.loads(out.read_text())
    assert "FIL004" in {r["ruleId"] for r in doc["runs"][0]["results"]}
    errors = list(jsonschema.Draft4Validator(json.loads(SCHEMA.read_text())).iter_errors(doc))
    assert errors == []
    proc = subprocess.run(
        [*cmd, "--exit-zero"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0 and "title=FIL004" in proc.stdout


# -- JUnit ------------------------------------------------------------------------------------


def test_junit_xml_cases_failures_and_skips() -> None:
    text = junit.format(_report())
    root = ET.fromstring(text.split("\n", 1)[1])
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "1", "0")
    # Jenkins' junit-10.xsd allows only these attributes on <testsuites>
    assert set(root.attrib) <= {"name", "time", "tests", "failures", "disabled", "errors"}
    qwen, small = root.findall("testsuite")
    assert qwen.get("name") == "models/qwen" and small.get("failures") == "0"
    cases = {c.get("name"): c for c in qwen.findall("testcase")}
    assert sorted(cases) == [
        "CHK002 plugin-load-failed",
        "ENG901 context-too-long",
        "MEM901 weights-too-big",
        "SMK901 smoke-thing",
    ]
    failure = cases["MEM901 weights-too-big"].find("failure")
    assert failure.get("type") == "error"
    assert failure.get("message").startswith("weights need 15.23 GiB")
    assert "fix: use --instance ecs.gn7i-c16g1.4xlarge" in failure.text
    # below the fail level: a passing case whose output lists the warning
    eng = cases["ENG901 context-too-long"]
    assert eng.find("failure") is None and "context-too-long" in eng.find("system-out").text
    assert cases["SMK901 smoke-thing"].find("skipped").get("message") == "no --image declared"


def test_junit_fail_on_warning_turns_warnings_into_failures() -> None:
    root = ET.fromstring(junit.format(_report(Severity.WARNING)).split("\n", 1)[1])
    assert root.get("failures") == "3"
    assert junit.format(_report()) == junit.format(_report())


def test_junit_parses_with_junitparser() -> None:
    junitparser = pytest.importorskip("junitparser")
    xml = junitparser.JUnitXml.fromstring(junit.format(_report()).encode())
    suites = {s.name: s for s in xml}
    assert sorted(suites) == ["models/qwen", "models/small"]
    qwen = suites["models/qwen"]
    assert (qwen.tests, qwen.failures, qwen.errors, qwen.skipped) == (4, 1, 0, 1)
    outcome = {c.name: [type(r).__name__ for r in c.result] for c in qwen}
    assert outcome == {
        "CHK002 plugin-load-failed": [],
        "ENG901 context-too-long": [],
        "MEM901 weights-too-big": ["Failure"],
        "SMK901 smoke-thing": ["Skipped"],
    }
    failure = next(iter(c for c in qwen if c.name == "MEM901 weights-too-big")).result[0]
    assert failure.type == "error" and failure.message.startswith("weights need 15.23 GiB per GPU")
