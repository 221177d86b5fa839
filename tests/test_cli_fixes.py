"""Issue 14's smaller items: SEC001's message, the smoke decode rate, no negative KV cache figures, and
`check plan` on a model without a KV cache."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelcheck.cli import main
from modelcheck.smoke.runner import decode_rate
from fixtures import builders


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def invoke(*args: str):
    return CliRunner().invoke(main, [*args, "--no-config"] if args[0] != "plan" else list(args),
                              catch_exceptions=False)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_sec001_says_pickle_once(tmp_path: Path):
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_Payload(), protocol=2))
    doc = json.loads(invoke("model.pkl", "-f", "json").stdout)
    [sec] = [f for f in doc["results"][0]["findings"] if f["rule"] == "SEC001"]
    assert "pickle pickle" not in sec["message"]
    assert sec["message"].startswith("model.pkl is a pickle that imports ")
    assert "posix.system" in sec["message"] or "os.system" in sec["message"]


@pytest.mark.parametrize("tokens,total,ttft,rate", [
    (65, 2.5, 0.5, 32.0),  # 64 decode tokens over the 2 s after the first token
    (64, 0.30, 0.299, None),  # everything arrived in one burst: not measurable
    (1, 1.0, 0.5, None),  # one token: no decode phase
    (None, 1.0, 0.5, None),
    (64, 1.0, None, None),  # no first-token time
])
def test_decode_rate_is_tokens_over_total_minus_ttft(tokens, total, ttft, rate):
    assert decode_rate(tokens, total, ttft) == rate


def test_smoke_text_says_unknown_and_never_a_negative_kv_cache():
    from types import SimpleNamespace

    from modelcheck.formatters.text import smoke_text

    s = SimpleNamespace(skipped_reason=None, passed=False, engine="vllm", answers=(), comparisons=(), log_path=None,
                        metrics={"tokens_per_s": None, "kv_cache_gib": -4.07, "load_s": 12.5})
    [_verdict, figures] = smoke_text(s)
    assert figures == "  ready in 12.5 s, decode unknown (not measurable), KV cache none (4.07 GiB short)"


def test_json_memory_block_has_no_negative_kv_cache(tmp_path: Path):
    builders.make_hf_llm(tmp_path / "qwen7b", "Qwen2.5-7B-Instruct", shards=4)
    r = invoke("qwen7b", "--image", "vllm:0.14.0-gpu", "--gpu", "t4", "-f", "json")
    mem = json.loads(r.stdout)["results"][0]["memory"]
    assert mem["status"] == "fail"
    assert mem["kv_cache_bytes"] == 0 and mem["kv_cache_tokens"] == 0
    assert mem["kv_cache_shortfall_bytes"] > 0
    text = invoke("qwen7b", "--image", "vllm:0.14.0-gpu", "--gpu", "t4").stdout
    assert "KV cache none (" in text and "KV cache -" not in text


def test_plan_on_a_diffusion_model_shows_memory_not_kv_tokens(tmp_path: Path):
    builders.make_diffusers(tmp_path / "sdxl")
    r = invoke("plan", "sdxl", "--limit", "3")
    assert r.exit_code == 0
    head, *rows = r.stdout.split("\n\n")[0].splitlines()
    assert head.split() == ["instance", "cloud", "gpus", "gpu", "needs/gpu", "spare/gpu"]
    assert len(rows) == 3 and all(row.endswith("GiB") for row in rows)
    assert "kv tokens" not in r.stdout and " / ?" not in r.stdout
    doc = json.loads(invoke("plan", "sdxl", "--limit", "3", "-f", "json").stdout)
    assert all(d["kv_cache_tokens"] is None and d["needed_bytes_per_gpu"] > 0 for d in doc)
