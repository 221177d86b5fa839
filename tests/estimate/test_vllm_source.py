"""vLLM behaviours pinned to the source they were read in (file@version); expected figures are computed
here from the formula in that source, not copied from the estimator's output."""

from __future__ import annotations

from modelcheck.estimate import compute
from modelcheck.estimate.geometry import geometry_from_config
from modelcheck.estimate.vllm import (
    mtp_skipped_bytes,
    mxfp4_backend,
    mxfp4_padded_expert_bytes,
    pp_partition,
    pp_stages,
    resolve_entrypoint,
)
from modelcheck.model import GPU, ImageRef, Instance, Target, WeightsSummary
from modelcheck.testing import make_facts
from fixtures.builders import load_config

GIB = 1 << 30
LLAMA8B = 16_060_522_496  # Llama-3.1-8B bf16 header total
H100 = GPU(name="NVIDIA H100 80GB HBM3", memory_bytes=int(79.19 * GIB), nominal_gb=80, compute_capability="9.0",
           bf16=True, fp8=True)
A10 = GPU(name="NVIDIA A10", memory_bytes=int(22.06 * GIB), nominal_gb=24, compute_capability="8.6", bf16=True,
          fp8=False)


def target(version: str, g: GPU, n: int = 1, **args) -> Target:
    img = ImageRef(raw=f"vllm:{version}-gpu", engine="vllm", version=version, chip="GPU", category="llm")
    return Target(image=img, instance=Instance(name="t", cloud="user", chip="GPU", gpu=g, gpu_count=n), chip="GPU",
                  engine_args=args)


def llm(config: str | dict, weights_bytes: int, dtype: str = "BF16") -> object:
    cfg = load_config(config) if isinstance(config, str) else config
    w = WeightsSummary("safetensors", weights_bytes, weights_bytes // 2, {dtype: weights_bytes}, dtype, 1,
                       ("model.safetensors",))
    return make_facts(config=cfg, weights=w)


def test_triton_top_k_top_p_from_0_17_shrinks_the_profiled_sampler() -> None:
    # topk_topp_sampler.py@0.17.0 apply_top_k_top_p: >= 8 rows go to apply_top_k_top_p_triton (in place on the
    # fp32 logits) instead of the sort (@0.16.0). Peak per logit: bf16 logits 2 + fp32 copy 4 + probs 4 +
    # exponential q 4 = 14, vs 39 with sort values/indices/masks/scatter; plus the Triton scratch buffer
    # [min(next_pow2(min(132 SMs, rows)), 132), vocab] fp32 (topk_topp_triton.py@0.17.0).
    facts = llm("Llama-3.1-8B-Instruct", LLAMA8B)
    old = compute(facts, target("0.16.0", H100, max_model_len=8192))
    new = compute(facts, target("0.17.0", H100, max_model_len=8192))
    rows, vocab = 1024, 128256  # max_num_seqs on H100 (arg_utils.py@0.17.0), Llama-3 vocabulary
    assert old.extra["sampler_bytes"] == rows * vocab * 39
    assert new.extra["sampler_bytes"] == rows * vocab * 14 + 132 * vocab * 4
    # the sampler sits on top of the batch's live hidden states, and dominates the forward here
    assert old.activation_bytes - new.activation_bytes == rows * vocab * 25 - 132 * vocab * 4  # ~2.9 GiB
    assert new.kv_cache_bytes - old.kv_cache_bytes == old.activation_bytes - new.activation_bytes
    assert any("Triton top-k/top-p (vLLM 0.17+" in a for a in new.assumptions)
    # 0.19.1 is the same path; 0.20.0 too (the topk_topp_sampler.py diff 0.19.1 -> 0.20.0 is empty of it)
    assert compute(facts, target("0.19.1", H100, max_model_len=8192)).extra["sampler_bytes"] == \
        new.extra["sampler_bytes"]


def test_entrypoint_llm_class_gets_the_larger_batch() -> None:
    # arg_utils.py@0.17.0 get_batch_defaults: {LLM_CLASS: 16384, OPENAI_API_SERVER: 8192} on >= 70 GiB (not
    # A100), {LLM_CLASS: 8192, OPENAI_API_SERVER: 2048} below; max_num_seqs 1024 / 256 for both
    facts = llm("Llama-3.1-8B-Instruct", LLAMA8B)
    for g, serve_tokens, llm_tokens, seqs in ((H100, 8192, 16384, 1024), (A10, 2048, 8192, 256)):
        serve = compute(facts, target("0.17.0", g, max_model_len=4096))
        cls = compute(facts, target("0.17.0", g, max_model_len=4096, entrypoint="llm-class"))
        assert serve.extra["max_num_batched_tokens"] == serve_tokens
        assert cls.extra["max_num_batched_tokens"] == llm_tokens
        assert serve.extra["max_num_seqs"] == cls.extra["max_num_seqs"] == seqs
        assert cls.kv_cache_tokens < serve.kv_cache_tokens
    assert any("entrypoint serve assumed" in a for a in serve.assumptions)
    assert any("the Python LLM class profiles max_num_batched_tokens=8192" in a for a in cls.assumptions)
    # the same model, GPU and max_model_len: starts under vllm serve, fails in the LLM class
    fit = compute(facts, target("0.17.0", A10, max_model_len=65536)).kv_cache_tokens // 16 * 16
    assert compute(facts, target("0.17.0", A10, max_model_len=fit)).status == "ok"
    failed = compute(facts, target("0.17.0", A10, max_model_len=fit, entrypoint="llm-class"))
    assert failed.status == "fail" and failed.failure == "max-model-len-exceeds-kv"
    # 0.28.0: 16384 for both on >= 160 GiB
    b200 = GPU(name="NVIDIA B200", memory_bytes=int(178.4 * GIB), nominal_gb=192, compute_capability="10.0",
               bf16=True, fp8=True)
    assert compute(facts, target("0.28.0", b200, max_model_len=8192, entrypoint="llm-class")).extra[
        "max_num_batched_tokens"] == 16384
    # V0 has no usage-context defaults
    v0 = compute(facts, target("0.7.2", A10, max_model_len=4096, entrypoint="llm-class"))
    assert v0.extra["max_num_batched_tokens"] == 4096


def test_entrypoint_values() -> None:
    assert resolve_entrypoint(None) == "serve"
    assert resolve_entrypoint("LLM_class") == "llm-class"
    assert resolve_entrypoint("vllm serve") == "serve"
    assert resolve_entrypoint("docker") is None
    est = compute(llm("Llama-3.1-8B-Instruct", LLAMA8B), target("0.17.0", A10, max_model_len=4096,
                                                               entrypoint="docker"))
    assert est.extra["max_num_batched_tokens"] == 2048
    assert any("entrypoint 'docker' is neither" in a for a in est.assumptions)


def test_online_fp8_loads_linear_weights_at_one_byte() -> None:
    # quantization/fp8.py@0.17.0: Fp8LinearMethod (checkpoint not fp8-serialized) quantizes every LinearBase
    # weight to float8 in process_weights_after_loading; VocabParallelEmbedding (embed_tokens, lm_head) and
    # the RMSNorm weights stay bfloat16
    facts = llm("Llama-3.1-8B-Instruct", LLAMA8B)
    bf16 = compute(facts, target("0.17.0", H100, max_model_len=8192))
    fp8 = compute(facts, target("0.17.0", H100, max_model_len=8192, quantization="fp8"))
    params = LLAMA8B // 2
    kept = 2 * 128256 * 4096 + (2 * 32 + 1) * 4096  # untied embed + lm_head, 65 norms
    assert bf16.weights_bytes == LLAMA8B
    assert fp8.weights_bytes == kept * 2 + (params - kept)
    assert fp8.kv_cache_bytes - bf16.kv_cache_bytes == LLAMA8B - fp8.weights_bytes
    assert any("quantizes the linear and expert weights to FP8" in a for a in fp8.assumptions)
    # a checkpoint that already is fp8 loads as stored
    fp8_ckpt = llm("Qwen3-8B-FP8", 8_000_000_000, "F8_E4M3")
    assert compute(fp8_ckpt, target("0.17.0", H100, max_model_len=8192, quantization="fp8")).weights_bytes == \
        8_000_000_000


GPT_OSS_20B = {
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 2880, "intermediate_size": 2880,
    "num_hidden_layers": 24, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
    "vocab_size": 201088, "max_position_embeddings": 131072, "num_local_experts": 32, "num_experts_per_tok": 4,
    "sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * 12,
    "quantization_config": {"quant_method": "mxfp4"},
}


def test_mxfp4_expert_padding_per_backend() -> None:
    # mxfp4.py@0.17.0 get_mxfp4_backend / create_weights: A100 (sm80) -> Marlin, I -> round_up(128),
    # H -> round_up(256); H100 -> Triton, I -> round_up(64); B200 with FlashInfer -> 256 / 256
    assert mxfp4_backend((0, 17, 0), 80) == "marlin"
    assert mxfp4_backend((0, 17, 0), 90) == "triton"
    assert mxfp4_backend((0, 17, 0), 100) == "flashinfer-sm100"
    assert mxfp4_backend((0, 17, 0), 120) == "marlin" and mxfp4_backend((0, 11, 0), 120) == "triton"
    geo = geometry_from_config(GPT_OSS_20B, None)
    e, h, i = 32, 2880, 2880

    def experts(i_: int, h_: int, bias: int) -> int:  # w13 blocks+scales+bias, w2 blocks+scales+bias
        return e * (2 * i_ * (h_ // 2 + h_ // 32) + h_ * (i_ // 2 + i_ // 32) + (2 * i_ + h_) * bias)

    assert mxfp4_padded_expert_bytes(geo, 1, "marlin") == (experts(i, h, 2), experts(2944, 3072, 2))
    assert mxfp4_padded_expert_bytes(geo, 1, "flashinfer-sm100")[1] == experts(3072, 3072, 2)
    assert mxfp4_padded_expert_bytes(geo, 1, "triton")[1] == experts(2880, 2880, 4)  # biases cast to fp32
    ckpt = 13_000_000_000
    facts = llm(GPT_OSS_20B, ckpt, "U8")
    a100 = GPU(name="NVIDIA A100-SXM4-80GB", memory_bytes=int(79.19 * GIB), nominal_gb=80, compute_capability="8.0",
               bf16=True, fp8=False)
    est = compute(facts, target("0.19.0", a100, max_model_len=8192))
    assert est.weights_bytes == ckpt + 24 * (experts(2944, 3072, 2) - experts(i, h, 2))  # ~ +0.86 GiB
    assert any("padded for the marlin MoE kernel" in a for a in est.assumptions)


def test_pipeline_stages_follow_get_pp_indices() -> None:
    # distributed/utils.py@0.17.0 get_pp_indices: 61 // 2 = 30 each, remainder to partitions[-2]
    assert pp_partition(61, 2) == [31, 30]
    assert pp_partition(61, 4) == [15, 15, 16, 15]
    assert pp_partition(32, 3) == [11, 11, 10]
    cfg = load_config("DeepSeek-V2-Lite")
    geo = geometry_from_config(cfg, cfg)
    stages = pp_stages(geo, 2)
    assert [s.layers for s in stages] == [14, 13] and stages[1].last and not stages[0].last
    assert abs(sum(s.weight_fraction for s in stages) - 1) < 1e-9
    # only the last stage samples (gpu_model_runner.py@0.17.0 profile_run: is_last_rank); num_blocks is the
    # minimum over stages (kv_cache_utils.py@0.17.0 get_kv_cache_configs)
    facts = llm(cfg, 31_400_000_000)
    est = compute(facts, target("0.17.0", H100, n=2, max_model_len=8192, pipeline_parallel_size=2))
    assert any("pipeline parallel 2: stage" in a for a in est.assumptions)
    per_block = (512 + 64) * 2 * 16  # MLA latent per layer, bf16, 16 tokens
    usable = int(H100.memory_bytes * 0.9)
    blocks = []
    for st in stages:
        w = int(31_400_000_000 * st.weight_fraction) + 32 * (1 << 20)
        act = est.activation_bytes if st.last else est.extra["forward_bytes"]
        blocks.append((usable - w - act - est.non_torch_bytes) // (per_block * st.layers))
    assert est.extra["num_gpu_blocks"] == min(blocks)


def test_mtp_layers_are_not_loaded() -> None:
    # deepseek_v2.py@0.17.0 load_weights: weights of layers >= num_hidden_layers (the MTP module) are skipped
    cfg = {**load_config("DeepSeek-V2-Lite"), "num_nextn_predict_layers": 1}
    geo = geometry_from_config(cfg, cfg)
    skipped = mtp_skipped_bytes(geo, 32_000_000_000)
    assert 0 < skipped < 32_000_000_000 // 20  # one MoE layer of 27 (+1 MTP), roughly 1/28 of the weights
    est = compute(llm(cfg, 32_000_000_000), target("0.17.0", H100, max_model_len=8192))
    assert est.weights_bytes == 32_000_000_000 - skipped
    with_spec = compute(llm(cfg, 32_000_000_000), target("0.17.0", H100, max_model_len=8192,
                                                        speculative_config={"method": "deepseek_mtp"}))
    assert with_spec.weights_bytes == 32_000_000_000
