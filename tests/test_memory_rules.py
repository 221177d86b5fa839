"""MEM rules: one passing and one failing case each, on in-memory facts and a constructed GPU."""

from __future__ import annotations

from checker.estimate import compute
from checker.model import GPU, ImageRef, Instance, Target, WeightsSummary
from checker.testing import make_facts, run_rule
from fixtures.builders import load_config
from rules.memory import (
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


def target(gpu=A10, n=1, name="a10-1", **args) -> Target:
    img = ImageRef(raw="vllm:0.11.0-gpu", engine="vllm", version="0.11.0", chip="GPU", category="llm")
    return Target(image=img, instance=Instance(name=name, cloud="alibaba", chip="GPU", gpu=gpu, gpu_count=n),
                  chip="GPU", engine_args=args)


def run(func, f, t, **opts):
    # what the run puts on the Context once: the estimate and the catalog alternatives (checker.api)
    from checker.plan import alternatives

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
    from rules.memory import round_max_model_len

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
