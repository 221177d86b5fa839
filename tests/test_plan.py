"""Planning: the catalog instances a model starts on, smallest first, with the TP it needs."""

from __future__ import annotations

from modelcheck.model import GPU, ImageRef, Instance, WeightsSummary
from modelcheck.plan import plan
from modelcheck.testing import make_facts
from fixtures.builders import load_config

GIB = 1 << 30
A10 = GPU(name="A10", memory_bytes=int(22.06 * GIB), nominal_gb=24, compute_capability="8.6", bf16=True, fp8=False)
T4 = GPU(name="Tesla T4", memory_bytes=int(14.56 * GIB), nominal_gb=16, compute_capability="7.5", bf16=False, fp8=False)
H100 = GPU(name="H100 SXM", memory_bytes=int(79.19 * GIB), nominal_gb=80, compute_capability="9.0", bf16=True,
           fp8=True)
IMG = ImageRef(raw="vllm:0.11.0-gpu", engine="vllm", version="0.11.0", chip="GPU", category="llm")


class Catalog:
    def __init__(self, instances):
        self._i = instances

    def instances(self, cloud=None, chip=None):
        return [i for i in self._i if (cloud is None or i.cloud == cloud) and (chip is None or i.chip == chip)]


CAT = Catalog([
    Instance(name="h100-1", cloud="aws", chip="GPU", gpu=H100, gpu_count=1),
    Instance(name="a10-2", cloud="alibaba", chip="GPU", gpu=A10, gpu_count=2),
    Instance(name="a10-1", cloud="alibaba", chip="GPU", gpu=A10, gpu_count=1),
    Instance(name="t4-1", cloud="alibaba", chip="GPU", gpu=T4, gpu_count=1),
    Instance(name="cpu", cloud="alibaba", chip="CPU", gpu=None, gpu_count=0),
])


def facts():
    w = 16_060_522_496
    return make_facts(config=load_config("Llama-3.1-8B-Instruct"),
                      weights=WeightsSummary("safetensors", w, w // 2, {"BF16": w}, "BF16", 1, ("m.safetensors",)))


def test_plan_lists_fitting_instances_smallest_first() -> None:
    rows = plan(facts(), CAT, {"max_model_len": 32768}, IMG)
    assert [r.instance for r in rows] == ["h100-1", "a10-2"]  # 1 GPU before 2; T4 and one A10 too small
    assert rows[1].tensor_parallel_size == 2
    assert rows[0].kv_cache_tokens > rows[1].kv_cache_tokens > 32768
    assert rows[0].max_concurrency >= 1.0
    assert rows[0].as_dict()["gpu"] == "H100 SXM"


def test_plan_filters_clouds_and_small_context() -> None:
    rows = plan(facts(), CAT, {"max_model_len": 4096}, IMG, clouds=["alibaba"])
    assert [r.instance for r in rows] == ["a10-1", "a10-2"]
    assert rows[0].tensor_parallel_size == 1
    assert plan(facts(), None, {}) == []


def test_plan_min_concurrency_filters_and_raises_tp() -> None:
    rows = plan(facts(), CAT, {"max_model_len": 32768}, IMG)
    h100 = rows[0].max_concurrency
    assert [r.instance for r in plan(facts(), CAT, {"max_model_len": 32768}, IMG, min_concurrency=h100 + 1)] == []
    # one A10 starts at 4096 tokens with a low concurrency; asking for more moves to TP 2 on two A10s
    base = {r.instance: r for r in plan(facts(), CAT, {"max_model_len": 4096}, IMG, clouds=["alibaba"])}
    need = base["a10-1"].max_concurrency + 0.5
    rows = plan(facts(), CAT, {"max_model_len": 4096}, IMG, clouds=["alibaba"], min_concurrency=need)
    assert [r.instance for r in rows] == ["a10-2"] and rows[0].tensor_parallel_size == 2
    assert rows[0].max_concurrency >= need
