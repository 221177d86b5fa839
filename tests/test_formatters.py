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

from checker import registry
from checker.engine import Result, Skip
from checker.formatters import github, junit, sarif
from checker.model import GPU, ImageRef, Instance, Target
from checker.report import PathReport, Report
from checker.rule import Finding, Severity, rule, rules_in
from checker.testing import make_facts

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
    monkeypatch.setattr(registry, "_CACHE", registry.Registry(rules=tuple(rules_in(_Rules))))


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
            PathReport(path="models/qwen", facts=facts, target=_target(), estimate=None, result=res),
            PathReport(path="models/small", facts=ok_facts, target=_target(), estimate=None, result=ok),
        ),
        fail_on=fail_on,
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
    cmd = [sys.executable, "-c", "from checker.cli import main; main()", "broken", "--no-config"]
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
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("6", "1", "1")
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
