"""The memory estimator: KV geometry, vLLM's per-version defaults, calibration rows, output blocks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from modelcheck.estimate import compute
from modelcheck.formatters.text import memory_text as format_memory_text
from modelcheck.summary import memory_block as estimate_memory_block
from modelcheck.estimate.geometry import geometry_from_config, layer_kv_bytes_per_token
from modelcheck.model import GPU, GGUFInfo, ImageRef, Instance, Target, WeightsSummary
from modelcheck.testing import make_facts
from fixtures.builders import load_config

GIB = 1 << 30
ROOT = Path(__file__).resolve().parents[1]


def gpu(name: str = "A10", gib: float = 22.06, cc: str = "8.6") -> GPU:
    return GPU(name=name, memory_bytes=int(gib * GIB), nominal_gb=24, compute_capability=cc, bf16=True, fp8=False)


def target(version: str | None = "0.11.0", g: GPU | None = None, n: int = 1, engine: str = "vllm", **args) -> Target:
    img = ImageRef(raw=f"{engine}:{version}-gpu", engine=engine, version=version, chip="GPU", category="llm")
    g = g or gpu()
    return Target(image=img, instance=Instance(name="t", cloud="user", chip="GPU", gpu=g, gpu_count=n), chip="GPU",
                  engine_args=args)


def llm(config: str | dict, weights_bytes: int) -> object:
    cfg = load_config(config) if isinstance(config, str) else config
    w = WeightsSummary("safetensors", weights_bytes, weights_bytes // 2, {"BF16": weights_bytes}, "BF16", 1,
                       ("model.safetensors",))
    return make_facts(config=cfg, weights=w)


LLAMA8B = 16_060_522_496  # Llama-3.1-8B bf16 header total


@pytest.mark.parametrize(("config", "tp", "expected"), [
    ("Llama-3.1-8B-Instruct", 1, 131072),  # 2 * 32 layers * 8 kv * 128 * 2
    ("Qwen2.5-7B-Instruct", 1, 57344),     # 2 * 28 * 4 * 128 * 2
    ("Qwen2.5-7B-Instruct", 8, 28 * 2 * 1 * 128 * 2),  # 4 kv heads over 8 ranks: replicated, 1 per GPU
    ("DeepSeek-V2-Lite", 1, 27 * (512 + 64) * 2),       # MLA latent, not split by TP
    ("DeepSeek-V2-Lite", 4, 27 * (512 + 64) * 2),
])
def test_kv_bytes_per_token(config: str, tp: int, expected: int) -> None:
    cfg = load_config(config)
    geo = geometry_from_config(cfg, cfg)
    assert geo is not None
    assert layer_kv_bytes_per_token(geo, tp, 2) * geo.num_layers == expected


def test_no_gpu_means_no_estimate() -> None:
    facts = llm("Llama-3.1-8B-Instruct", LLAMA8B)
    assert compute(facts, Target(image=None, instance=None, chip=None)) is None


def test_llama8b_default_len_fails_on_a10_with_fix() -> None:
    est = compute(llm("Llama-3.1-8B-Instruct", LLAMA8B), target("0.11.0"))
    assert est is not None and est.status == "fail"
    assert est.failure == "max-model-len-exceeds-kv"
    assert est.max_model_len == 131072  # the model's own limit (llama3 rope type keeps it)
    assert est.gpu_memory_utilization == 0.9
    assert 25_000 < est.kv_cache_tokens < 40_000
    fit = est.fixes.max_model_len
    assert fit % 16 == 0 and fit <= est.kv_cache_tokens
    ok = compute(llm("Llama-3.1-8B-Instruct", LLAMA8B), target("0.11.0", max_model_len=fit))
    assert ok.status == "ok" and ok.max_concurrency >= 1.0


def test_version_defaults_util_and_cuda_graphs() -> None:
    facts = llm("Qwen2.5-7B-Instruct", 15_231_233_024)
    # cache.py / envs.py: 0.9 and no CUDA-graph reservation up to 0.19.1, 0.92 and reserved from 0.20.0
    old = compute(facts, target("0.19.1", max_model_len=8192))
    new = compute(facts, target("0.20.0", max_model_len=8192))
    assert old.gpu_memory_utilization == 0.9 and new.gpu_memory_utilization == 0.92
    assert not old.extra["cuda_graphs_reserved"] and new.extra["cuda_graphs_reserved"]
    assert any("before vLLM 0.20" in a for a in old.assumptions)
    eager = compute(facts, target("0.21.0", max_model_len=8192, enforce_eager=True))
    assert eager.cuda_graph_bytes == 0


def test_large_gpu_batch_defaults_and_t4_falls_back_to_v0() -> None:
    facts = llm("Qwen2.5-7B-Instruct", 15_231_233_024)
    h100 = compute(facts, target("0.11.0", gpu("H100 SXM", 79.19, "9.0"), max_model_len=8192))
    assert h100.extra["max_num_batched_tokens"] == 8192 and h100.extra["max_num_seqs"] == 1024
    a100 = compute(facts, target("0.11.0", gpu("A100 80GB", 79.19, "8.0"), max_model_len=8192))
    assert a100.extra["max_num_batched_tokens"] == 2048
    t4 = compute(facts, target("0.8.2", gpu("Tesla T4", 14.56, "7.5"), max_model_len=2048, dtype="float16"))
    assert t4.extra["vllm_engine"] == "V0"
    assert t4.failure == "no-kv-memory" or t4.failure == "weights-exceed"


def test_batch_defaults_follow_arg_utils_per_version() -> None:
    facts = llm("Qwen2.5-7B-Instruct", 15_231_233_024)
    b200 = gpu("B200", 178.4, "10.0")
    assert compute(facts, target("0.27.1", b200, max_model_len=8192)).extra["max_num_batched_tokens"] == 8192
    assert compute(facts, target("0.28.0", b200, max_model_len=8192)).extra["max_num_batched_tokens"] == 16384
    # 0.8.5 did not exclude A100 yet; 0.8.0-0.8.4 went by device name and used max_num_seqs 1024 everywhere
    a100 = gpu("A100 80GB", 79.19, "8.0")
    assert compute(facts, target("0.8.5", a100, max_model_len=8192)).extra["max_num_batched_tokens"] == 8192
    old = compute(facts, target("0.8.2", max_model_len=8192))
    assert old.extra["max_num_batched_tokens"] == 2048 and old.extra["max_num_seqs"] == 1024


def test_v0_fallbacks_of_0_8_to_0_10() -> None:
    facts = llm("Qwen2.5-7B-Instruct", 15_231_233_024)
    fp8 = compute(facts, target("0.9.2", max_model_len=8192, kv_cache_dtype="fp8"))
    assert fp8.extra["vllm_engine"] == "V0" and any("kv-cache-dtype fp8" in a for a in fp8.assumptions)
    assert fp8.kv_cache_bytes_per_token == 57344 // 2
    hopper = compute(facts, target("0.9.2", gpu("H100 SXM", 79.19, "9.0"), max_model_len=8192, kv_cache_dtype="fp8"))
    assert hopper.extra["vllm_engine"] == "V1"
    lora = compute(facts, target("0.8.2", max_model_len=8192, enable_lora=True))
    assert lora.extra["vllm_engine"] == "V0"
    assert compute(facts, target("0.11.0", max_model_len=8192, kv_cache_dtype="fp8")).extra["vllm_engine"] == "V1"


def test_tp_comm_buffers_count_until_0_11_on_nvlink() -> None:
    facts = llm("Llama-3.1-8B-Instruct", LLAMA8B)
    h100 = gpu("H100 SXM", 79.19, "9.0")
    old = compute(facts, target("0.10.1", h100, n=2, max_model_len=8192, tensor_parallel_size=2))
    new = compute(facts, target("0.11.0", h100, n=2, max_model_len=8192, tensor_parallel_size=2))
    pcie = compute(facts, target("0.10.1", gpu("RTX 4090", 23.55, "8.9"), n=2, max_model_len=8192,
                                 tensor_parallel_size=2))
    assert old.non_torch_bytes - new.non_torch_bytes == 2 * GIB
    assert pcie.non_torch_bytes < old.non_torch_bytes
    assert any("NVLink" in a for a in old.assumptions) and not any("NVLink" in a for a in new.assumptions)


def test_sampler_path_per_version() -> None:
    facts = llm("Qwen2.5-7B-Instruct", 15_231_233_024)
    h100 = gpu("H100 SXM", 79.19, "9.0")
    sort = compute(facts, target("0.14.0", h100, max_model_len=8192))
    inplace = compute(facts, target("0.21.0", h100, max_model_len=8192, gpu_memory_utilization=0.9))
    assert sort.extra["sampler_bytes"] == 1024 * 152064 * 39
    assert inplace.extra["sampler_bytes"] == 1024 * 152064 * 14
    assert inplace.activation_bytes < sort.activation_bytes


def test_hybrid_sliding_window_groups() -> None:
    cfg = {"model_type": "gpt_oss", "num_hidden_layers": 24, "hidden_size": 2880, "num_attention_heads": 64,
           "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 2880, "vocab_size": 201088,
           "max_position_embeddings": 131072, "sliding_window": 128,
           "layer_types": ["sliding_attention", "full_attention"] * 12, "num_local_experts": 32,
           "num_experts_per_tok": 4}
    est = compute(llm(cfg, 13_000_000_000), target("0.14.0", gpu("A100 80GB", 79.19, "8.0"), max_model_len=131072))
    blocks = est.extra["num_gpu_blocks"]
    # 12 full + 12 sliding layers: 2 groups of 12; tokens = num_blocks // 2 * 16
    assert est.kv_cache_tokens == blocks // 2 * 16
    per_req = 131072 // 16 + (-(-(128 - 1 + 2048) // 16) + 1)
    assert est.max_concurrency == round(blocks / per_req, 2)


def test_tensor_parallel_splits_weights_and_kv() -> None:
    facts = llm("Llama-3.1-8B-Instruct", LLAMA8B)
    one = compute(facts, target("0.11.0", max_model_len=8192))
    two = compute(facts, target("0.11.0", n=2, max_model_len=8192, tensor_parallel_size=2))
    assert two.weights_bytes_per_gpu < one.weights_bytes_per_gpu * 0.52
    assert two.kv_cache_bytes_per_token == one.kv_cache_bytes_per_token // 2
    assert two.kv_cache_tokens > 2 * one.kv_cache_tokens


def test_memory_block_and_text() -> None:
    est = compute(llm("Qwen2.5-7B-Instruct", 15_231_233_024), target("0.11.0", max_model_len=8192))
    block = estimate_memory_block(est)
    for key in ("weights_bytes", "kv_cache_bytes_per_token", "kv_cache_tokens", "max_concurrency", "max_model_len",
                "gpu_memory_utilization", "total_vram_bytes", "assumptions", "activation_bytes", "non_torch_bytes"):
        assert key in block
    assert block["kv_cache_bytes_per_token"] == 57344 and block["max_model_len"] == 8192
    assert block["status"] == "ok"
    text = format_memory_text(est)
    assert text[0].startswith("memory (vllm 0.11.0 (V1)")
    assert any("57344 B/token" in line for line in text)
    assert estimate_memory_block(None) is None


T4 = gpu("Tesla T4", 14.56, "7.5")
GEMMA2_9B = 18_483_000_000  # bf16 weights, config.json says float32


def test_dtype_resolution_per_version() -> None:
    gemma2 = llm("gemma-2-9b-it", GEMMA2_9B)
    # 0.9.2+ _resolve_auto_dtype: gemma2 refuses float16, T4 has no bfloat16 -> float32: weights x2, fp32 KV
    new = compute(gemma2, target("0.14.0", T4, max_model_len=4096))
    assert new.extra["model_dtype"] == "float32" and new.kv_cache_bytes_per_token == 42 * 8 * 256 * 2 * 4
    assert new.weights_bytes == 2 * GEMMA2_9B and new.extra["checkpoint_weights_bytes"] == GEMMA2_9B
    assert new.failure == "weights-exceed"
    assert any("runs it in float32" in a and "refuses float16" in a for a in new.assumptions)
    # 0.9.0 had no float16 ban yet: a dtype the GPU lacks falls back to float16
    assert compute(gemma2, target("0.9.0", T4, max_model_len=4096)).extra["model_dtype"] == "float16"
    # on a bf16 GPU the float32 config is downcast to bfloat16 (the weights stay as stored)
    a10 = compute(gemma2, target("0.14.0", max_model_len=4096))
    assert a10.extra["model_dtype"] == "bfloat16" and a10.weights_bytes == GEMMA2_9B
    # gemma3_text joined the float16 ban in 0.10.2
    g3 = llm("gemma-3-1b-it", 1_999_811_584)
    assert compute(g3, target("0.9.2", T4, max_model_len=4096)).extra["model_dtype"] == "float16"
    assert compute(g3, target("0.14.0", T4, max_model_len=4096)).extra["model_dtype"] == "float32"
    # explicit --dtype float32 doubles a bf16 checkpoint and its KV cache
    qwen = llm("Qwen2.5-7B-Instruct", 15_231_233_024)
    f32 = compute(qwen, target("0.14.0", gpu("A100 80GB", 79.19, "8.0"), max_model_len=8192, dtype="float32"))
    assert f32.weights_bytes == 2 * 15_231_233_024 and f32.kv_cache_bytes_per_token == 2 * 57344


def test_float32_checkpoint_loads_in_16_bit() -> None:
    cfg = {**load_config("Qwen2.5-7B-Instruct"), "torch_dtype": "float32"}
    w = WeightsSummary("safetensors", 30_462_466_048, 7_615_616_512, {"F32": 30_462_466_048}, "F32", 1,
                       ("model.safetensors",))
    facts = make_facts(config=cfg, weights=w)
    new = compute(facts, target("0.14.0", max_model_len=8192))  # 0.9.2+: float32 -> bfloat16 on cc >= 8.0
    assert new.extra["model_dtype"] == "bfloat16" and new.weights_bytes == 15_231_233_024
    old = compute(facts, target("0.8.5", max_model_len=8192))  # before: float32 -> float16
    assert old.extra["model_dtype"] == "float16" and old.weights_bytes == 15_231_233_024


def test_quantized_checkpoint_keeps_packed_weights() -> None:
    cfg = load_config("Qwen2.5-7B-Instruct-AWQ")
    w = WeightsSummary("safetensors", 5_580_000_000, 0, {"I32": 4_000_000_000, "F16": 1_580_000_000}, "I32", 1,
                       ("model.safetensors",))
    est = compute(make_facts(config=cfg, weights=w), target("0.14.0", T4, max_model_len=4096))
    assert est.weights_bytes == 5_580_000_000 and est.extra["model_dtype"] == "float16"


def _vlm(model_type: str, vision: dict, **extra) -> object:
    cfg = {**load_config("Qwen2.5-7B-Instruct"), "model_type": model_type, "vision_config": vision, **extra}
    return llm(cfg, 16_580_000_000)


def test_v1_multimodal_encoder_profile() -> None:
    h100 = gpu("H100 SXM", 79.19, "9.0")
    vc = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "out_hidden_size": 3584, "patch_size": 14,
          "spatial_merge_size": 2, "temporal_patch_size": 2}
    text = compute(llm("Qwen2.5-7B-Instruct", 16_580_000_000), target("0.14.0", h100, max_model_len=32768))
    vl = compute(_vlm("qwen2_5_vl", vc), target("0.14.0", h100, max_model_len=32768))
    # one 12845056-pixel image = 16384 tokens over 65536 ViT positions (budget max(8192, 16384) = 1 image):
    # ViT peak 65536 x (4 x 1280 + 2 x 3420) x 2 B + pixels 65536 x 1176 x 2 B
    peak = 65536 * (4 * 1280 + 2 * 3420) * 2 + 65536 * 1176 * 2
    assert vl.activation_bytes == max(peak, 16384 * 3584 * 2 + text.activation_bytes)
    assert vl.extra["encoder_profile_bytes"] == vl.activation_bytes - text.activation_bytes > 0
    assert any("1 image(s) of 16384 tokens" in a for a in vl.assumptions)
    # a smaller max_pixels in preprocessor_config.json shrinks the profiled image
    small = _vlm("qwen2_5_vl", vc)
    small = make_facts(config=small.config, weights=small.weights,
                       json_files={"preprocessor_config.json": {"max_pixels": 1003520}})
    est = compute(small, target("0.14.0", h100, max_model_len=32768))
    assert any("6 image(s) of 1280 tokens" in a for a in est.assumptions)  # 8192 // 1280 = 6
    # LLaVA-NeXT anyres: 576 + 48 x 48 + 48 = 2928 tokens over 5 CLIP crops of 577 positions
    clip = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "image_size": 336,
            "patch_size": 14}
    nxt = compute(_vlm("llava_next", clip), target("0.10.2", h100, max_model_len=4096, max_num_batched_tokens=16384))
    assert any("5 image(s) of 2928 tokens (14425 ViT positions)" in a for a in nxt.assumptions)
    # families without a model say so instead of guessing
    other = compute(_vlm("internvl_chat", {"hidden_size": 1024}), target("0.14.0", h100, max_model_len=8192))
    assert any("not modelled for this family" in a for a in other.assumptions)


def test_non_llm_block_and_text_have_no_kv_lines() -> None:
    w = WeightsSummary("safetensors", 6_938_000_000, 0, {"F16": 6_938_000_000}, "F16", 1, ("unet.safetensors",))
    sdxl = make_facts(kind="diffusion", subtype="sdxl", weights=w)
    comfy = ImageRef(raw="comfyui:1.0", engine="comfyui", version="1.0", chip="GPU", category="image-generation")
    t = Target(image=comfy, instance=Instance(name="t", cloud="user", chip="GPU", gpu=gpu(), gpu_count=1), chip="GPU")
    est = compute(sdxl, t)
    block = estimate_memory_block(est)
    assert block["kv_cache_tokens"] is None and block["kv_cache_bytes_per_token"] is None
    assert block["gpu_memory_utilization"] is None and block["max_model_len"] is None
    assert block["needed_bytes"] == 6_938_000_000 + int(3.5 * GIB) + int(0.3 * GIB)
    assert block["spare_bytes"] == block["total_vram_bytes"] - block["needed_bytes"] and block["status"] == "ok"
    text = "\n".join(format_memory_text(est))
    assert "KV cache" not in text and "B/token" not in text and "util" not in text
    assert "weights 6.46 GiB + activation 3.50 GiB + CUDA context 0.30 GiB = 10.26 GiB of 22.06 GiB" in text
    # on an LLM image the IMG rules fail the deployment: no diffusion estimate there; none needed without image
    assert compute(sdxl, target("0.14.0")) is None
    assert compute(sdxl, Target(image=None, instance=t.instance, chip="GPU")) is not None


def test_llama_cpp_gguf() -> None:
    meta = {"general.architecture": "llama", "llama.block_count": 32, "llama.embedding_length": 4096,
            "llama.attention.head_count": 32, "llama.attention.head_count_kv": 8, "llama.context_length": 131072,
            "llama.feed_forward_length": 14336, "tokenizer.ggml.tokens": {"type": "string", "length": 128256}}
    info = GGUFInfo(path="m.gguf", version=3, tensor_count=0, kv_count=len(meta), metadata=meta, tensors=(),
                    file_size=4_920_000_000, data_offset=0, expected_file_size=4_920_000_000)
    w = WeightsSummary("gguf", 4_900_000_000, 0, {"Q4_K": 4_900_000_000}, "Q4_K", 1, ("m.gguf",))
    facts = make_facts(kind="gguf", gguf=[info], weights=w)
    # newest llama-server (engines/llamacpp.py): -c defaults to the GGUF's 131072; --fit shrinks it for the A10
    est = compute(facts, target(None, engine="llama.cpp"))
    assert est.engine == "llama.cpp" and est.kv_cache_bytes_per_token == 131072
    assert est.status == "ok" and est.extra["offload"] == "context-reduced" and est.extra["gpu_layers"] == 32
    assert est.extra["context_before_fit"] == 131072 and 4096 <= est.max_model_len < 131072
    # -c 131072 pinned on a 7.4 GiB P4: --fit moves layers to the CPU instead (starts, slower)
    small = compute(facts, target(None, gpu("Tesla P4", 7.4, "6.1"), engine="llama.cpp", max_model_len=131072))
    assert small.status == "ok" and small.extra["offload"] == "partial-offload"
    assert 0 <= small.extra["gpu_layers"] < 32 and small.max_model_len == 131072
    # -c and -ngl both pinned: nothing left for --fit, the allocation fails at load
    pinned = compute(facts, target(None, gpu("Tesla P4", 7.4, "6.1"), engine="llama.cpp", max_model_len=131072,
                                   n_gpu_layers=99))
    assert pinned.status == "fail" and pinned.extra["offload"] == "fail"
    # the same file under vLLM: vLLM's budget and paged KV (GGUF needs V0 before 0.9.0: arg_utils.py@0.8.5)
    v = compute(facts, target("0.14.0", max_model_len=8192))
    assert v.engine == "vllm" and v.extra["vllm_engine"] == "V1" and v.kv_cache_bytes_per_token == 131072
    assert v.weights_bytes == 4_900_000_000 and v.kv_cache_tokens % 16 == 0
    assert compute(facts, target("0.8.5", max_model_len=8192)).extra["vllm_engine"] == "V0"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "bench" / "accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Well-understood calibration rows (tests/data/vllm_memory_observations.yaml): KV tokens within these bounds
CALIBRATED = {
    "t4-qwen2.5-1.5b-u0.5": 0.02,
    "t4-unsloth-llama3.2-3b-v0.8.2": 0.02,
    "a10class-llama3.1-8b-default-len-FAIL": 0.05,
    "a10class-qwen2.5-math-1.5b-v0.7.2": 0.02,
    "48gbclass-qwen2.5-math-1.5b-u0.85": 0.02,
    "3090-qwen2.5-7b-v0.6.6": 0.03,
    "l40s-qwen3-235b-2507-fp8-tp4ep": 0.02,
    "l40s-qwen3-coder-30b-tp4": 0.03,
    "gh10517-llama3.1-8b-3090-ml20000": 0.10,
    "80gb-phi4-bnb-lora-u0.7": 0.03,  # V0 fallback (bitsandbytes + LoRA in 0.8.0)
    "80gb-qwen2.5-vl-7b-lora-tp4": 0.03,  # V0 multimodal profile: 1 sequence of 16384 image tokens
    "gh21348-qwen3-235b-fp8-4xh100": 0.10,  # V1 < 0.11 on NVLink: NCCL buffers inside the budget
    "80gb-llava-v1.6-mistral-7b-v0.10.2": 0.02,  # V1 multimodal: 5 LLaVA-NeXT images profiled by the encoder
}


def test_calibration_rows_do_not_regress(tmp_path: Path) -> None:
    bench = _bench()
    data = bench.load()
    rows = {r["id"]: r for r in data["observations"]}
    cache: dict = {}
    for rid, bound in CALIBRATED.items():
        out = bench.evaluate(rows[rid], data["models"], tmp_path, cache)
        assert out["start_pred"] == out["start_rep"], rid
        assert abs(out["tok_err"]) <= bound, (rid, out["tokens_pred"], out["tokens_rep"])


def test_failed_starts_are_predicted(tmp_path: Path) -> None:
    bench = _bench()
    data = bench.load()
    rows = {r["id"]: r for r in data["observations"]}
    out = bench.evaluate(rows["gh13061-r1-distill-qwen14b-2x4090-tp2-FAIL"], data["models"], tmp_path, {})
    assert out["start_pred"] == "fail" and out["start_rep"] == "fail"
