"""MEM rules: one passing and one failing case each, on in-memory facts and a constructed GPU."""

from __future__ import annotations

from modelcheck.estimate import compute
from modelcheck.model import GPU, ImageRef, Instance, Target, WeightsSummary
from modelcheck.testing import make_facts, run_rule
from fixtures.builders import load_config
from modelcheck_rules.memory import (
    instance_oversized,
    low_concurrency,
    max_model_len_exceeds_kv_cache,
    no_kv_cache_memory,
    weights_exceed_vram,
)

GIB = 1 << 30
A10 = GPU(name="A10", memory_bytes=int(22.06 * GIB), nominal_gb=24, compute_capability="8.6", bf16=True, fp8=False)
H100 = GPU(name="H100 SXM", memory_bytes=int(79.19 * GIB), nominal_gb=80, compute_capability="9.0", bf16=True,
           fp8=True)
LLAMA8B = 16_060_522_496


class Catalog:
    def __init__(self, instances):
        self._instances = instances

    def instances(self, cloud=None, chip=None):
        return [i for i in self._instances if (cloud is None or i.cloud == cloud) and (chip is None or i.chip == chip)]


CAT = Catalog([
    Instance(name="a10-1", cloud="alibaba", chip="GPU", gpu=A10, gpu_count=1),
    Instance(name="a10-2", cloud="alibaba", chip="GPU", gpu=A10, gpu_count=2),
    Instance(name="h100-8", cloud="alibaba", chip="GPU", gpu=H100, gpu_count=8),
])


def facts(weights: int = LLAMA8B):
    w = WeightsSummary("safetensors", weights, weights // 2, {"BF16": weights}, "BF16", 1, ("model.safetensors",))
    return make_facts(config=load_config("Llama-3.1-8B-Instruct"), weights=w)


def target(gpu=A10, n=1, name="a10-1", image="vllm:0.11.0", **args) -> Target:
    engine, version = image.split(":")
    img = ImageRef(raw=f"{image}-gpu", engine=engine, version=version, chip="GPU", category="llm")
    return Target(image=img, instance=Instance(name=name, cloud="alibaba", chip="GPU", gpu=gpu, gpu_count=n),
                  chip="GPU", engine_args=args)


def run(func, f, t, **opts):
    # what the run puts on the Context once: the estimate and the catalog alternatives (modelcheck.api)
    from modelcheck.plan import alternatives

    return run_rule(func, f, t, compute(f, t), options=opts or None, catalog=CAT,
                    alternatives=alternatives(f, t, CAT))


def test_mem001_weights_exceed() -> None:
    out = run(weights_exceed_vram, facts(LLAMA8B * 2), target(max_model_len=4096))
    assert len(out) == 1 and out[0].rule == "MEM001" and out[0].severity.label == "error"
    assert "weights take 29.95 GiB per GPU but vllm may use only 19.85 GiB" in out[0].message
    assert "(22.06 GiB x 0.9) on 1x A10" in out[0].message and out[0].path == "model.safetensors"
    assert out[0].data["failure"] == "weights-exceed" and out[0].data["fit_tensor_parallel_size"] == 2
    assert "--tensor-parallel-size 2" in out[0].hint and "a10-2" in out[0].hint
    assert out[0].data["weights_bytes"] == LLAMA8B * 2
    assert run(weights_exceed_vram, facts(), target(max_model_len=4096)) == []


def test_mem002_no_kv_memory() -> None:
    # 18.5 GiB of weights fit in 19.85 GiB usable but leave nothing after the 1.2 GiB profiling peak
    out = run(no_kv_cache_memory, facts(int(18.5 * GIB)), target(max_model_len=4096))
    assert len(out) == 1 and "no memory left for the KV cache on 1x A10" in out[0].message
    assert out[0].rule == "MEM002" and out[0].severity.label == "error"
    assert "19.85 GiB usable - weights 18.53 GiB" in out[0].message and out[0].message.endswith("= -0.09 GiB")
    assert out[0].data["failure"] == "no-kv-memory" and out[0].data["min_gpu_memory_utilization"] == 0.93
    assert "--gpu-memory-utilization 0.93" in out[0].hint and out[0].data["kv_cache_tokens"] == 0
    assert "--gpu-memory-utilization 0.9" in out[0].hint
    assert out[0].data["kv_cache_bytes"] <= 0
    assert run(no_kv_cache_memory, facts(), target(max_model_len=4096)) == []


def test_mem003_max_model_len_exceeds_kv() -> None:
    out = run(max_model_len_exceeds_kv_cache, facts(), target())
    assert len(out) == 1 and out[0].rule == "MEM003" and out[0].severity.label == "error"
    assert out[0].message.startswith("max_model_len 131072 is larger than the ")
    assert "28320 tokens the KV cache holds on 1x A10" in out[0].message
    assert out[0].data["failure"] == "max-model-len-exceeds-kv" and out[0].data["kv_cache_tokens"] == 28320
    assert out[0].data["max_model_len"] == 131072
    assert out[0].path == "config.json:max_position_embeddings"
    exact = out[0].data["fit_max_model_len"]
    fit = out[0].data["suggested_max_model_len"]
    # users get a round length: the largest multiple of 1024 that starts; the exact maximum stays in data
    assert fit % 1024 == 0 and exact - 1024 < fit <= exact and out[0].data["exact_max_model_len"] == exact
    assert f"--max-model-len {fit}" in out[0].hint and f"--max-model-len {exact}" not in out[0].hint or fit == exact
    assert run(max_model_len_exceeds_kv_cache, facts(), target(max_model_len=fit)) == []


def test_round_max_model_len() -> None:
    from modelcheck_rules._memory import round_max_model_len

    assert round_max_model_len(28432) == 27648  # 27 x 1024
    assert round_max_model_len(3900) == 3840  # 15 x 256 below 4096
    assert round_max_model_len(4096) == 4096 and round_max_model_len(200) == 200


def test_mem004_low_concurrency() -> None:
    out = run(low_concurrency, facts(), target(max_model_len=20000))
    assert len(out) == 1 and "below the floor of 2" in out[0].message
    assert out[0].rule == "MEM004" and out[0].severity.label == "warning"
    assert "1.42 concurrent requests of 20000 tokens on 1x A10" in out[0].message
    assert "--max-model-len 14160" in out[0].hint and out[0].data["max_concurrency"] == 1.42
    assert out[0].data["min_concurrency"] == 2.0
    assert run(low_concurrency, facts(), target(max_model_len=8192)) == []
    assert run(low_concurrency, facts(), target(max_model_len=20000), min_concurrency=1.0) == []


def test_mem005_instance_oversized() -> None:
    t = target(H100, 8, "h100-8", max_model_len=8192, tensor_parallel_size=8)
    out = run(instance_oversized, facts(), t)
    assert len(out) == 1 and "a10-1" in out[0].message
    assert out[0].rule == "MEM005" and out[0].severity.label == "info"
    assert out[0].message == "h100-8 gives 515x concurrency at max_model_len 8192; a10-1 (1x A10) already gives 3.5x"
    assert out[0].hint.startswith("consider a10-1 (3.5x)")
    assert out[0].data["smaller_instances"][0]["instance"] == "a10-1"
    assert run(instance_oversized, facts(), target(max_model_len=8192)) == []


# -- SGLang: its own accounting (checker/engines/sglang.py); the pool clamps the request length -----------------


def test_mem003_sglang_clamps_instead_of_failing() -> None:
    # Llama-3.1-8B (131072 context) on an A10: vLLM refuses to start (above), SGLang 0.5.8 starts with the longest
    # request clamped to its KV pool: (22.06 - 0.5) GiB x 0.834 - 14.96 GiB weights = 3.02 GiB / 128 KiB per token
    # (0.834 = (22589 MiB - 3760 MiB reserved) / 22589 MiB: server_args.py@0.5.8 on a < 35 GB GPU)
    t = target(image="sglang:0.5.8")
    est = compute(facts(), t)
    assert est.engine == "sglang" and est.status == "ok" and est.gpu_memory_utilization == 0.834
    out = run(max_model_len_exceeds_kv_cache, facts(), t)
    assert len(out) == 1 and out[0].rule == "MEM003" and out[0].severity.label == "warning"
    clamped = est.kv_cache_tokens - 1
    assert out[0].message.startswith(f"context length 131072 is larger than SGLang's KV pool of {est.kv_cache_tokens}")
    assert out[0].message.endswith(f"SGLang starts but clamps the longest request to {clamped} tokens")
    assert out[0].data["clamped_max_req_len"] == clamped and 20000 < clamped < 30000
    # the hint speaks SGLang: --context-length, never vLLM's --max-model-len / --gpu-memory-utilization
    assert f"--context-length {clamped // 1024 * 1024}" in out[0].hint
    assert "--max-model-len" not in out[0].hint and "--gpu-memory-utilization" not in out[0].hint
    # the full context needs 16 GiB of KV: no --mem-fraction-static <= 0.95 gives it; TP 2 does (re-estimated:
    # half the KV heads and weights per GPU)
    assert "--mem-fraction-static" not in out[0].hint
    assert "--tp-size 2 on an instance with 2 GPUs for the full 131072 tokens" in out[0].hint
    assert compute(facts(), target(image="sglang:0.5.8", tensor_parallel_size=2)).kv_cache_tokens >= 131072
    assert compute(facts(), target(image="sglang:0.5.8", mem_fraction_static=0.95)).kv_cache_tokens < 131072
    # an explicit --context-length that fits: nothing to say
    assert run(max_model_len_exceeds_kv_cache, facts(), target(image="sglang:0.5.8", context_length=16384)) == []


def test_mem001_mem002_sglang_fail_with_sglang_fixes() -> None:
    out = run(weights_exceed_vram, facts(LLAMA8B * 2), target(image="sglang:0.5.8"))
    assert len(out) == 1 and out[0].severity.label == "error"
    assert "SGLang's --mem-fraction-static 0.834 leaves" in out[0].message
    assert "Not enough memory. Please try to increase --mem-fraction-static" in out[0].message
    assert "--tp-size 2" in out[0].hint and "--tensor-parallel-size" not in out[0].hint
    assert "--context-length" not in out[0].hint  # SGLang's pool does not depend on the context length
    # weights that fit the fraction but leave less than one token (128 KiB) for the pool: SGLang stops;
    # --mem-fraction-static one step up is re-estimated to start
    usable = compute(facts(), target(image="sglang:0.5.8")).usable_bytes
    f = facts(usable - 65536)
    out = run(no_kv_cache_memory, f, target(image="sglang:0.5.8"))
    assert len(out) == 1 and out[0].rule == "MEM002" and "no memory left for SGLang's KV pool" in out[0].message
    frac = compute(f, target(image="sglang:0.5.8")).fixes.gpu_memory_utilization
    assert f"--mem-fraction-static {frac:.2f}" in out[0].hint
    assert compute(f, target(image="sglang:0.5.8", mem_fraction_static=frac)).status == "ok"
    assert compute(f, target(image="sglang:0.5.8", mem_fraction_static=frac - 0.01)).status == "fail"


def test_mem004_hint_in_engine_syntax() -> None:
    out = run(low_concurrency, facts(), target(image="sglang:0.5.8", context_length=20000))
    assert len(out) == 1 and out[0].hint.startswith("use --context-length ")
    shorter = int(out[0].hint.split()[2])
    again = compute(facts(), target(image="sglang:0.5.8", context_length=shorter))
    assert again.max_concurrency >= 2.0  # the offered length passes the floor


# -- llama.cpp: --fit reduces the context or offloads fewer layers; pinned -c / -ngl fail -------------------------


def _gguf_facts(weights: int = 4_900_000_000):
    from modelcheck.model import GGUFInfo

    meta = {"general.architecture": "llama", "llama.block_count": 32, "llama.embedding_length": 4096,
            "llama.attention.head_count": 32, "llama.attention.head_count_kv": 8, "llama.context_length": 131072,
            "llama.feed_forward_length": 14336, "tokenizer.ggml.tokens": {"type": "string", "length": 128256}}
    info = GGUFInfo(path="m.gguf", version=3, tensor_count=291, kv_count=len(meta), metadata=meta, tensors=(),
                    file_size=weights + 9_000_000, data_offset=0, expected_file_size=weights + 9_000_000)
    w = WeightsSummary("gguf", weights, 0, {"Q4_K": weights}, "Q4_K", 291, ("m.gguf",))
    return make_facts(kind="gguf", gguf=[info], weights=w)


def test_llama_cpp_context_reduced_is_a_warning_with_c_flag() -> None:
    t = target(image="llama.cpp:server-cuda")
    out = run(max_model_len_exceeds_kv_cache, _gguf_facts(), t)
    est = compute(_gguf_facts(), t)
    assert est.status == "ok" and est.extra["offload"] == "context-reduced"
    assert len(out) == 1 and out[0].severity.label == "warning" and out[0].path == "m.gguf"
    assert out[0].message.startswith(f"--fit reduces the context from 131072 to {est.max_model_len}")
    assert f"-c {est.max_model_len // 1024 * 1024}" in out[0].hint and "--max-model-len" not in out[0].hint
    assert run(low_concurrency, _gguf_facts(), t) == [] and run(no_kv_cache_memory, _gguf_facts(), t) == []


def test_llama_cpp_pinned_flags_fail_with_replanned_fixes() -> None:
    # 7.45 GiB of Q8 weights + a 16 GiB KV cache for -c 131072 exceed the A10's 21.76 GiB
    q8 = _gguf_facts(8_000_000_000)
    t = target(image="llama.cpp:server-cuda", ctx_size=131072, n_gpu_layers=99)
    out = run(max_model_len_exceeds_kv_cache, q8, t)
    assert len(out) == 1 and out[0].severity.label == "error"
    assert "the CUDA allocation fails at load" in out[0].message
    fit = compute(q8, t).fixes.max_model_len
    assert f"-c {fit // 1024 * 1024}" in out[0].hint and "-ngl " in out[0].hint
    ok = compute(q8, target(image="llama.cpp:server-cuda", ctx_size=fit // 1024 * 1024, n_gpu_layers=99))
    assert ok.status == "ok"
    # a model larger than the GPU without -ngl: --fit moves layers to the CPU, it starts (warning)
    big = run(weights_exceed_vram, _gguf_facts(40 * GIB), target(image="llama.cpp:server-cuda"))
    assert len(big) == 1 and big[0].severity.label == "warning" and "layers on the GPU and runs the rest on the CPU" \
        in big[0].message


def test_fp8_kv_cache_is_a_re_estimated_fix() -> None:
    from modelcheck.record import replace

    # Llama 3.1 8B on one A10 at 32K: the BF16 KV cache holds ~20K tokens, an FP8 one twice that
    t = target(max_model_len=32768)
    est = compute(facts(), t)
    assert est.status == "fail" and est.fixes.kv_cache_dtype == "fp8"
    with_fix = replace(t, engine_args={**t.engine_args, "kv_cache_dtype": est.fixes.kv_cache_dtype})
    assert compute(facts(), with_fix).status == "ok"  # the fix was re-checked: it really starts
    assert run(max_model_len_exceeds_kv_cache, facts(), with_fix) == []
    # not where it would not help (a 128K context needs more than twice the tokens) ...
    assert compute(facts(), target(max_model_len=131072)).fixes.kv_cache_dtype is None
    # ... nor before Ampere (no fp8 KV path there), nor when the cache is FP8 already
    t4 = GPU(name="T4", memory_bytes=int(22.06 * GIB), nominal_gb=24, compute_capability="7.5", bf16=False, fp8=False)
    assert compute(facts(), target(gpu=t4, max_model_len=32768)).fixes.kv_cache_dtype is None
    assert compute(facts(), target(max_model_len=65536, kv_cache_dtype="fp8")).fixes.kv_cache_dtype is None
