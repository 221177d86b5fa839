"""CLI contract: exit codes 0/1/2, one-line errors, the JSON document shape, and golden text/JSON output.

Golden files live in tests/golden/. Regenerate them after an intended output change with
``MODELCHECK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_cli_golden.py`` and review the diff.
Runs use cwd=tmp and relative paths so no absolute temporary path reaches the output, and select only
the FIL/KND/IMG/CHP rules so other families' work does not churn these files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelcheck.cli import main
from fixtures import builders

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MODELCHECK_UPDATE_GOLDEN") == "1"
SCOPE = ["--select", "FIL,KND,IMG,CHP"]


def tokenizer_json(d: Path) -> None:
    (d / "tokenizer.json").write_text(json.dumps(builders.tokenizer_json()))


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/{healthy, broken, sdxl-turbo} built with the real libraries' formats; cwd = tmp."""
    healthy = builders.make_hf_llm(tmp_path / "Qwen2.5-0.5B-Instruct", "Qwen2.5-0.5B-Instruct")
    tokenizer_json(healthy)
    broken = builders.make_hf_llm(
        tmp_path / "broken-qwen", "Qwen2.5-0.5B-Instruct", shards=3, truncate_shard=2, missing_shard=3
    )
    tokenizer_json(broken)
    misnamed = builders.make_hf_llm(tmp_path / "sdxl-turbo", "Qwen2.5-0.5B-Instruct")
    tokenizer_json(misnamed)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"golden file {path} is missing: run with MODELCHECK_UPDATE_GOLDEN=1 to create it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from the golden file (MODELCHECK_UPDATE_GOLDEN=1 to accept)"


# -- exit codes ------------------------------------------------------------------------------------


def test_healthy_model_exits_0(models):
    r = invoke("Qwen2.5-0.5B-Instruct", "--image", "vllm:0.14.0-gpu", *SCOPE)
    assert r.exit_code == 0, r.output
    assert "PASS: 1 path checked, 0 error(s)" in r.stdout
    check_golden("healthy.txt", r.stdout)


def test_broken_model_exits_1_with_grouped_text(models):
    r = invoke("broken-qwen", "sdxl-turbo", "--image", "vllm:0.14.0-gpu", *SCOPE)
    assert r.exit_code == 1
    out = r.stdout
    # one block per path, in input order, each finding followed by its fix line
    assert out.index("broken-qwen\n") < out.index("sdxl-turbo\n")
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("  error", "  warning", "  info")):
            assert lines[i + 1].lstrip().startswith("fix: "), line
    assert "FIL003 [index-shard-missing]" in out and "FIL004 [truncated-weights]" in out
    assert "KND003 [name-contradicts-content]" in out
    assert out.rstrip().endswith("FAIL: 2 paths checked, 2 error(s), 1 warning(s), 0 info (failing at error)")
    check_golden("broken.txt", out)


def test_fail_on_warning_and_exit_zero(models):
    r = invoke("sdxl-turbo", "--image", "vllm:0.14.0-gpu", *SCOPE)
    assert r.exit_code == 0 and "KND003 [name-contradicts-content]" in r.stdout
    assert r.stdout.rstrip().endswith("PASS: 1 path checked, 0 error(s), 1 warning(s), 0 info (failing at error)")
    r = invoke("sdxl-turbo", "--image", "vllm:0.14.0-gpu", "--fail-on", "warning", *SCOPE)
    assert r.exit_code == 1 and "KND003 [name-contradicts-content]" in r.stdout
    assert r.stdout.rstrip().endswith("FAIL: 1 path checked, 0 error(s), 1 warning(s), 0 info (failing at warning)")
    # --exit-zero keeps the verdict in the output but exits 0
    r = invoke("broken-qwen", "--exit-zero", *SCOPE)
    assert r.exit_code == 0 and "FIL003 [index-shard-missing]" in r.stdout and "FIL004 [truncated-weights]" in r.stdout
    assert r.stdout.rstrip().endswith("FAIL: 1 path checked, 2 error(s), 0 warning(s), 0 info (failing at error)")


def test_missing_path_exits_2_with_one_line(models):
    r = invoke("no-such-model", "--image", "vllm:0.14.0-gpu")
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr == "error: path does not exist: no-such-model\n"
    assert "Traceback" not in r.output


def test_unknown_instance_exits_2_with_did_you_mean(models):
    r = invoke("Qwen2.5-0.5B-Instruct", "--instance", "ecs.gn7i-c8g1.2xlarg")
    assert r.exit_code == 2
    [line] = r.stderr.splitlines()
    assert line.startswith(
        "error: unknown instance 'ecs.gn7i-c8g1.2xlarg'; did you mean ecs.gn7i-c8g1.2xlarge"
    )


def test_unknown_rule_selector_exits_2(models):
    r = invoke("Qwen2.5-0.5B-Instruct", "--select", "NOPE999")
    assert r.exit_code == 2 and r.stderr == "error: unknown rule selector(s): NOPE999 (see `check rules`)\n"
    assert r.stdout == ""


# -- JSON contract ---------------------------------------------------------------------------------


def test_json_is_one_document_with_contract_keys(models):
    r = invoke("broken-qwen", "--image", "vllm:0.14.0-gpu", "--format", "json", *SCOPE)
    assert r.exit_code == 1
    doc = json.loads(r.stdout)  # stdout holds exactly one JSON document
    assert {"schema_version", "tool", "results", "summary"} <= doc.keys() and doc["schema_version"] == 1
    [res] = doc["results"]
    assert {"path", "kind", "kind_evidence", "target", "memory", "findings", "skipped"} <= res.keys()
    assert res["path"] == "broken-qwen" and res["kind"] == "hf-llm"
    for f in res["findings"]:
        assert set(f) == {"rule", "name", "severity", "message", "path", "hint", "data"}
        assert f["severity"] in ("error", "warning", "info")
    assert [f["rule"] for f in res["findings"]] == ["FIL003", "FIL004"]
    assert doc["summary"]["exit_code"] == 1 and doc["summary"]["error"] == 2
    check_golden("broken.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")


def test_json_memory_block_with_an_instance(models):
    r = invoke(
        "Qwen2.5-0.5B-Instruct",
        "--image",
        "vllm:0.14.0-gpu",
        "--instance",
        "ecs.gn7i-c8g1.2xlarge",
        "--format",
        "json",
        *SCOPE,
    )
    assert r.exit_code == 0
    mem = json.loads(r.stdout)["results"][0]["memory"]
    for key in (
        "weights_bytes",
        "kv_cache_bytes_per_token",
        "kv_cache_tokens",
        "max_concurrency",
        "max_model_len",
        "gpu_memory_utilization",
        "total_vram_bytes",
    ):
        assert key in mem, key
    # Qwen2.5-0.5B in BF16 on one A10 (the driver's 22.06 GiB), vLLM 0.14 defaults
    assert mem["engine"] == "vllm" and mem["engine_version"] == "0.14.0" and mem["status"] == "ok"
    assert mem["weights_bytes"] == 988_065_536  # 494,032,768 BF16 parameters
    assert mem["kv_cache_bytes_per_token"] == 24 * 2 * 2 * 64 * 2  # layers x K,V x kv heads x head dim x bytes
    assert mem["max_model_len"] == 32768 and mem["gpu_memory_utilization"] == 0.9
    assert mem["tensor_parallel_size"] == 1 and mem["failure"] is None
    assert 22.0 < mem["total_vram_bytes"] / 2**30 < 22.1
    assert mem["kv_cache_tokens"] > 32768 and mem["max_concurrency"] == round(mem["kv_cache_tokens"] / 32768, 1)


# -- the installed console script --------------------------------------------------------------------


def test_console_script_subprocess(models):
    script = Path(sys.executable).parent / "check"
    if not script.exists():
        pytest.skip(f"console script not installed at {script}")
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "MODELCHECK_UPDATE_GOLDEN")}
    p = subprocess.run(
        [str(script), "broken-qwen", "--image", "vllm:0.14.0-gpu", *SCOPE],
        cwd=models,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert p.returncode == 1, p.stderr
    assert "FIL004 [truncated-weights] model-00002-of-00003.safetensors" in p.stdout
    missing = subprocess.run(
        [str(script), "nowhere"], cwd=models, capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert missing.returncode == 2 and missing.stderr == "error: path does not exist: nowhere\n"
    assert missing.stdout == ""
