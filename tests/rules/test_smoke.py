"""Each SMK rule on an in-memory observation: one failing and one passing case (no server involved)."""

from __future__ import annotations

from modelcheck.record import replace

import pytest

import modelcheck_rules.smoke as smk
from modelcheck.smoke.logparse import LogFacts, LogFailure
from modelcheck.smoke.types import CaseResult, Comparison, SmokeObservation
from modelcheck.rule import Severity
from modelcheck.testing import RuleSkipped, make_facts, make_target, run_rule
from modelcheck_rules import smoke_log

OK = SmokeObservation(
    engine="vllm",
    started=True,
    ready=True,
    log_path="/tmp/s.log",
    cases=(CaseResult("What is 2+2?", r"\b4\b", "/v1/chat/completions", "4", True),),
)


def _run(func, obs):
    # run_rule stamps each finding with its rule's code and severity, so tests can assert them
    facts = make_facts(config={"architectures": ["LlamaForCausalLM"]}, files={"tokenizer.json": 10})
    return run_rule(func, facts, make_target(), observation=obs)


def _failed(kind: str, line: str, **data) -> SmokeObservation:
    return replace(
        OK, ready=False, cases=(), exit_code=1, log=LogFacts(failures=(LogFailure(kind, line, data),))
    )


ALL = [getattr(smk, n) for n in dir(smk) if hasattr(getattr(smk, n), "__modelcheck_rule__")]


@pytest.mark.parametrize("func", ALL, ids=lambda f: f.__modelcheck_rule__.code)
def test_every_rule_passes_a_good_run_and_a_static_only_run(func) -> None:
    assert _run(func, OK) == []
    with pytest.raises(RuleSkipped, match="no smoke run"):  # static run: the linter skips it, with the reason
        _run(func, None)
    doc = func.__doc__
    assert "## Why it matters" in doc and "## How to fix" in doc


def test_answer_wrong() -> None:
    obs = replace(
        OK,
        cases=(CaseResult("What is 2+2?", r"\b4\b", "/v1/completions", "five", False, finish_reason="stop"),),
    )
    (f,) = _run(smk.smoke_answer_wrong, obs)
    assert (
        f.message
        == "asked 'What is 2+2?' through /v1/completions (greedy) and got 'five', which does not match /\\b4\\b/"
    )
    assert f.data["answer"] == "five" and f.path == "/tmp/s.log"
    assert f.rule == "SMK001" and f.severity == Severity.ERROR and "chat template" in f.hint
    assert (f.data["expect"], f.data["endpoint"], f.data["finish_reason"]) == (r"\b4\b", "/v1/completions", "stop")
    empty = replace(
        OK,
        cases=(
            CaseResult(
                "Q", "4", "/v1/chat/completions", "", False, completion_tokens=16, raw_answer="<unk><unk>"
            ),
        ),
    )
    (f,) = _run(smk.smoke_answer_wrong, empty)
    assert "got an empty answer (16 tokens of special tokens only: '<unk><unk>')" in f.message
    assert f.rule == "SMK001" and f.data["raw_answer"] == "<unk><unk>" and f.data["completion_tokens"] == 16
    eos = replace(
        OK,
        cases=(
            CaseResult(
                "Q", "4", "/v1/chat/completions", "", False, completion_tokens=1, finish_reason="stop"
            ),
        ),
    )
    (f,) = _run(smk.smoke_answer_wrong, eos)
    assert "got an empty answer (end-of-sequence as its first token)" in f.message
    assert f.rule == "SMK001" and f.data["answer"] == "" and f.data["completion_tokens"] == 1


def test_request_failed() -> None:
    obs = replace(
        OK,
        cases=(
            CaseResult("Q", "4", "/v1/chat/completions", None, False, error="HTTP 400: no chat template"),
        ),
    )
    (f,) = _run(smk.smoke_request_failed, obs)
    assert f.message == "the smoke request 'Q' to /v1/chat/completions failed: HTTP 400: no chat template"
    assert f.rule == "SMK002" and f.severity == Severity.ERROR and f.path == "/tmp/s.log"
    assert f.data == {"prompt": "Q", "endpoint": "/v1/chat/completions", "error": "HTTP 400: no chat template"}
    assert "chat template" in f.hint


def test_kv_cache_no_memory() -> None:
    (f,) = _run(
        smoke_log.kv_cache_no_memory,
        _failed("kv-no-memory", "ValueError: No available memory for the cache blocks."),
    )
    assert f.message == (
        "vLLM stopped: no memory for the KV cache blocks (ValueError: No available memory for the cache blocks.)"
    )
    assert f.rule == "SMK003" and f.severity == Severity.ERROR and f.path == "/tmp/s.log"
    assert "--gpu-memory-utilization" in f.hint
    assert f.data == {"log_line": "ValueError: No available memory for the cache blocks."}


def test_max_model_len_exceeds_kv_cache() -> None:
    obs = _failed(
        "kv-too-small",
        "ValueError: ...",
        max_model_len=8000000,
        needed_gib=3.81,
        available_gib=1.0,
        fits_len=2097024,
    )
    (f,) = _run(smoke_log.served_max_model_len_exceeds_kv_cache, obs)
    assert (
        f.message
        == "vLLM stopped: max_model_len 8000000 does not fit in the KV cache (3.81 GiB needed, 1.0 GiB available)"
    )
    assert f.hint.startswith("--max-model-len 2097024")
    assert f.rule == "SMK004" and f.severity == Severity.ERROR and f.path == "/tmp/s.log"
    assert f.data["fits_len"] == 2097024 and f.data["max_model_len"] == 8000000


def test_cuda_out_of_memory() -> None:
    (f,) = _run(
        smoke_log.cuda_out_of_memory,
        _failed("oom", "CUDA out of memory. Tried to allocate 2.00 GiB.", tried="2.00 GiB"),
    )
    assert (
        f.message
        == "the GPU ran out of memory during start-up: CUDA out of memory. Tried to allocate 2.00 GiB."
    )
    assert f.data["tried"] == "2.00 GiB"
    assert f.rule == "SMK005" and f.severity == Severity.ERROR and "--tensor-parallel-size" in f.hint


def test_architecture_unsupported() -> None:
    (f,) = _run(smoke_log.architecture_unsupported, _failed("arch-unsupported", "x", archs="['FooForCausalLM']"))
    assert (
        f.message == "vLLM does not support the architecture ['FooForCausalLM'] (config.json architectures)"
    )
    assert f.path == "config.json"
    assert f.rule == "SMK006" and f.severity == Severity.ERROR and "--model-impl transformers" in f.hint
    assert f.data == {"architectures": "['FooForCausalLM']", "log_line": "x"}


def test_bf16_unsupported_gpu() -> None:
    (f,) = _run(
        smoke_log.bf16_unsupported_gpu, _failed("bf16-unsupported", "x", needed="8.0", gpu="Tesla T4", cc="7.5")
    )
    assert (
        f.message
        == "vLLM refused bfloat16 on Tesla T4 (compute capability 7.5): it needs compute capability 8.0"
    )
    assert f.rule == "SMK007" and f.severity == Severity.ERROR and f.hint == "--dtype half"
    assert f.data == {"needed": "8.0", "gpu": "Tesla T4", "cc": "7.5", "log_line": "x"}


def test_gated_repo_without_token() -> None:
    (f,) = _run(smoke_log.gated_repo_without_token, _failed("gated", "x", repo="meta-llama/Llama-3.1-8B"))
    assert (
        f.message
        == "access to the gated repository meta-llama/Llama-3.1-8B was refused (no or unauthorised token)"
    )
    assert f.rule == "SMK008" and f.severity == Severity.ERROR and "HF_TOKEN" in f.hint
    assert f.data["repo"] == "meta-llama/Llama-3.1-8B"


def test_tokenizer_load_failed() -> None:
    (f,) = _run(
        smoke_log.tokenizer_load_failed, _failed("tokenizer", "json.decoder.JSONDecodeError: Expecting ','")
    )
    assert f.message == "vLLM could not load the tokenizer: json.decoder.JSONDecodeError: Expecting ','"
    assert f.path == "tokenizer.json"
    assert f.rule == "SMK009" and f.severity == Severity.ERROR and "--tokenizer" in f.hint


def test_server_start_timeout() -> None:
    obs = replace(OK, ready=False, cases=(), timed_out=True, timeout_s=600, log_tail=("Loading weights",))
    (f,) = _run(smk.server_start_timeout, obs)
    assert f.message == "the server was not ready after 600 s (stopped it); last log line: Loading weights"
    assert f.rule == "SMK010" and f.severity == Severity.ERROR and "--smoke-timeout" in f.hint
    assert f.data == {"timeout_s": 600, "log_tail": ["Loading weights"]}


def test_server_exited_only_without_a_known_cause() -> None:
    obs = replace(
        OK,
        ready=False,
        cases=(),
        exit_code=1,
        log=LogFacts(error_lines=("RuntimeError: Engine core initialization failed.",)),
    )
    (f,) = _run(smk.server_exited, obs)
    assert (
        f.message
        == "the server exited with code 1 before serving: RuntimeError: Engine core initialization failed."
    )
    assert f.rule == "SMK011" and f.severity == Severity.ERROR and f.path == "/tmp/s.log"
    assert f.data["exit_code"] == 1 and f.data["errors"] == ["RuntimeError: Engine core initialization failed."]
    assert _run(smk.server_exited, _failed("oom", "CUDA out of memory.")) == []


def test_prediction_disagrees() -> None:
    obs = replace(
        OK,
        comparisons=(
            Comparison("kv_cache_tokens", 40000, 400000, "tokens", True),
            Comparison("kv_cache_gib", 2.0, 2.1, "GiB", False),
        ),
    )
    (f,) = _run(smk.prediction_disagrees, obs)
    assert (
        f.message
        == "vLLM reported kv_cache_tokens = 40,000 tokens, the static prediction was 400,000 tokens (0.10x)"
    )
    # only the disagreeing comparison is reported, not the kv_cache_gib one that agrees
    assert f.rule == "SMK012" and f.severity == Severity.WARNING
    assert f.data == {"figure": "kv_cache_tokens", "measured": 40000, "predicted": 400000, "unit": "tokens"}


def test_smoke_engine_unavailable() -> None:
    obs = SmokeObservation(engine="", unavailable="no smoke engine for a tts model")
    (f,) = _run(smk.smoke_engine_unavailable, obs)
    assert f.message == "smoke test not run: no smoke engine for a tts model"
    assert f.rule == "SMK013" and "--smoke-python" in f.hint and f.data["engine"] == ""


def test_host_memory_too_small() -> None:
    obs = SmokeObservation(engine="vllm", host_memory=(812 * 1024**3, 22 * 1024**3))
    (f,) = _run(smk.host_memory_too_small, obs)
    assert f.message == (
        "vLLM was not started: the model needs about 812.00 GiB of RAM (weights + KV cache) and "
        "this machine has 22.00 GiB available"
    )
    assert f.rule == "SMK014" and f.severity == Severity.ERROR and "--force-smoke" in f.hint
    assert f.data == {"needed_bytes": 812 * 1024**3, "available_bytes": 22 * 1024**3}
