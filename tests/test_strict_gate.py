"""The gate lets nothing unknown through: misspelled engine flags from every source, what a run did not
check, `require` in the config, and user mistakes that are exit 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import builders

A10 = ["--instance", "ecs.gn7i-c8g1.2xlarge"]


@pytest.fixture(scope="module")
def qwen(tmp_path_factory) -> Path:
    return builders.make_hf_llm(tmp_path_factory.mktemp("m") / "Qwen2.5-0.5B-Instruct", "Qwen2.5-0.5B-Instruct")


def check(*args: str, cwd: Path | None = None) -> tuple[int, dict | None, str]:
    p = subprocess.run([sys.executable, "-m", "modelcheck", *args, "--format", "json"], capture_output=True,
                       text=True, cwd=cwd, timeout=120)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip().startswith("{") else None), p.stderr


def eng020(doc: dict) -> list[dict]:
    return [f for f in doc["results"][0]["findings"] if f["rule"] == "ENG020"]


@pytest.mark.parametrize(
    ("image", "cmd", "flag", "suggestion"),
    [
        ("vllm:0.14.0-gpu", "vllm serve /m --max-model-lenn 2048", "--max-model-lenn", "--max-model-len"),
        ("vllm:0.14.0-gpu", "python -m vllm.entrypoints.openai.api_server --model /m --gpu-memory-utilisation 0.8",
         "--gpu-memory-utilisation", "--gpu-memory-utilization"),
        ("sglang:0.5.8-gpu", "python -m sglang.launch_server --model-path /m --mem-fraction-statc 0.8",
         "--mem-fraction-statc", "--mem-fraction-static"),
    ],
)
def test_misspelled_flags_in_a_start_command_fail(qwen: Path, image: str, cmd: str, flag: str, suggestion: str) -> None:
    rc, doc, err = check(str(qwen), "--image", image, *A10, "--no-config", "--serve-cmd", cmd)
    assert rc == 1, err
    [f] = eng020(doc)
    assert f["severity"] == "error" and f["data"]["flag"] == flag and f["data"]["suggestion"] == suggestion
    assert f["path"] == "--serve-cmd" and f"use {suggestion}" == f["hint"]
    assert "unrecognized arguments" in f["message"]


def test_misspelled_engine_arg_and_config_key_fail(qwen: Path, tmp_path: Path) -> None:
    rc, doc, _ = check(str(qwen), "--image", "vllm:0.14.0-gpu", *A10, "--no-config",
                       "--engine-arg", "enable_prefix_cachng=true")
    assert rc == 1 and eng020(doc)[0]["data"]["suggestion"] == "--enable-prefix-caching"
    cfg = tmp_path / "mc.toml"
    cfg.write_text('[tool.modelcheck]\nengine-args = { enable-chunkd-prefill = false }\n')
    rc, doc, _ = check(str(qwen), "--image", "vllm:0.14.0-gpu", *A10, "--config", str(cfg))
    assert rc == 1 and eng020(doc)[0]["data"]["suggestion"] == "--enable-chunked-prefill"


def test_real_flags_of_that_release_pass_and_removed_ones_do_not(qwen: Path) -> None:
    ok = "vllm serve /m --max-model-len 2048 -tp 1 --enable-prefix-caching --no-enable-log-requests"
    rc, doc, err = check(str(qwen), "--image", "vllm:0.14.0-gpu", *A10, "--no-config", "--serve-cmd", ok)
    assert eng020(doc) == [], err
    # --num-scheduler-steps was removed from vLLM with the V0 engine: 0.6.4 knows it, 0.14.0 does not
    old = "vllm serve /m --num-scheduler-steps 8"
    _, doc_old, _ = check(str(qwen), "--image", "vllm:0.6.4-gpu", *A10, "--no-config", "--serve-cmd", old)
    _, doc_new, _ = check(str(qwen), "--image", "vllm:0.14.0-gpu", *A10, "--no-config", "--serve-cmd", old)
    assert eng020(doc_old) == [] and [f["data"]["flag"] for f in eng020(doc_new)] == ["--num-scheduler-steps"]


def test_a_run_says_what_it_did_not_check(qwen: Path) -> None:
    rc, doc, _ = check(str(qwen), "--no-config")
    gaps = {g["what"]: g for g in doc["results"][0]["not_checked"]}
    assert rc == 0 and set(gaps) == {"image", "instance"}
    assert gaps["image"]["families"] == ["CHP", "ENG", "IMG"] and "MEM" in gaps["instance"]["families"]
    text = subprocess.run([sys.executable, "-m", "modelcheck", str(qwen), "--no-config"], capture_output=True,
                          text=True, timeout=120).stdout
    assert "not checked: CHP, ENG, IMG rules (no --image declared)" in text
    _, cpu, _ = check(str(qwen), "--image", "vllm:0.14.0-gpu", "--instance", "ecs.c7.xlarge", "--no-config")
    assert [g["what"] for g in cpu["results"][0]["not_checked"]] == ["gpu", "estimate"]


def test_require_in_the_config_fails_a_run_without_a_target(qwen: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "mc.toml"
    cfg.write_text('[tool.modelcheck]\nrequire = ["image", "instance"]\n')
    rc, _, err = check(str(qwen), "--config", str(cfg))
    assert rc == 2 and err.count("\n") == 1 and "require" in err and "has no image declared" in err
    rc, _, err = check(str(qwen), "--config", str(cfg), "--image", "vllm:0.14.0-gpu", *A10)
    assert rc == 0, err


def test_output_into_a_missing_folder_is_a_usage_error(qwen: Path, tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "modelcheck", str(qwen), "--no-config", "-o",
                        str(tmp_path / "missing" / "r.json")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("error: --output") and "No such file" in p.stderr
    assert "internal error" not in p.stderr and "Traceback" not in p.stderr


def test_plan_without_an_image_uses_the_newest_vllm_known(qwen: Path) -> None:
    from modelcheck import catalog, target

    newest = target.parse_image("vllm", catalog.load()).version
    p = subprocess.run([sys.executable, "-m", "modelcheck.cli", "plan", str(qwen), "--limit", "1"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and f"in vLLM {newest}" in p.stdout and "version unknown" not in p.stdout
