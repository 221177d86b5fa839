"""Memory models for the engines other than vLLM, each with its assumptions stated.

- llama.cpp (GGUF): weights as stored in the file, f16 KV cache for the whole context (``-c``, default
  4096 in llama-server), a compute buffer for one 512-token micro-batch, ~0.3 GiB CUDA context; all layers
  offloaded (``-ngl 999``). When it does not fit, ``gpu_layers`` says how many layers would.
- SGLang: ``--mem-fraction-static`` x total holds weights + KV pool (default by TP size: 0.88 / 0.87 / 0.85
  / 0.81); activations live outside that fraction; KV pool in tokens (page size 1).
- Diffusion: weights + the largest activation at the default resolution (a per-family figure).
- TTS: weights + ~1 GiB of runtime buffers (vocoder, flow matching).
"""

from __future__ import annotations

from typing import Any

from checker.estimate.geometry import (
    DTYPE_BYTES,
    GIB,
    geometry_from_config,
    geometry_from_gguf,
    kv_dtype_bytes,
    layer_kv_bytes_per_token,
)
from checker.model import Estimate, ModelFacts, Target

CUDA_CONTEXT = int(0.3 * GIB)
LLAMA_CPP_DEFAULT_CTX = 4096
LLAMA_CPP_UBATCH = 512
# Largest activation at the default resolution, by family (UNet/DiT attention + VAE decode, fp16)
DIFFUSION_ACTIVATION = {
    "sd1": int(1.5 * GIB), "sd2": int(2.0 * GIB), "sdxl": int(3.5 * GIB), "sd3": int(4.0 * GIB),
    "flux": int(5.0 * GIB), None: int(3.0 * GIB),
}


def _common(target: Target) -> tuple[int, dict[str, Any]]:
    gpu = target.gpu
    assert gpu is not None
    return gpu.memory_bytes, dict(target.engine_args)


def llama_cpp(facts: ModelFacts, target: Target) -> Estimate | None:
    total, args = _common(target)
    geo = geometry_from_gguf(facts.gguf[0].metadata) if facts.gguf else None
    if geo is None:
        return None
    weights = facts.weights.total_bytes
    ctx = int(args.get("max_model_len") or args.get("ctx_size") or LLAMA_CPP_DEFAULT_CTX)
    if geo.max_len:
        ctx = min(ctx, geo.max_len)
    kvb = kv_dtype_bytes(args.get("kv_cache_dtype") or args.get("cache_type_k"), 2)
    per_token = layer_kv_bytes_per_token(geo, 1, kvb) * geo.num_layers
    compute_buf = LLAMA_CPP_UBATCH * (geo.vocab_size + 4 * geo.hidden_size) * 4
    gpus = max(1, target.gpu_count)
    usable = total * gpus - CUDA_CONTEXT * gpus
    need = weights + per_token * ctx + compute_buf
    avail_kv = usable - weights - compute_buf
    kv_tokens = max(0, avail_kv) // per_token if per_token else 0
    per_layer = (weights + per_token * ctx) / geo.num_layers
    gpu_layers = geo.num_layers if need <= usable else max(0, int((usable - compute_buf) // per_layer))
    status = "ok" if need <= usable else "fail"
    return Estimate(
        engine="llama.cpp", weights_bytes=weights, weights_bytes_per_gpu=-(-weights // gpus), total_vram_bytes=total,
        gpu_memory_utilization=1.0, usable_bytes=usable // gpus, activation_bytes=compute_buf,
        non_torch_bytes=CUDA_CONTEXT, cuda_graph_bytes=0, kv_cache_bytes=avail_kv // gpus,
        kv_cache_bytes_per_token=per_token // gpus, kv_cache_tokens=int(kv_tokens), max_model_len=ctx,
        max_concurrency=round(kv_tokens / ctx, 2) if ctx else None, block_size=1,
        assumptions=(
            f"llama.cpp: context {ctx} (llama-server default {LLAMA_CPP_DEFAULT_CTX} unless --max-model-len)",
            f"KV cache {kvb * 8}-bit, all {geo.num_layers} layers offloaded (-ngl 999), layers split across GPUs",
            f"compute buffer for a {LLAMA_CPP_UBATCH}-token micro-batch; CUDA context ~0.3 GiB per GPU",
        ),
        inputs=args,
        extra={"gpu_layers": gpu_layers, "total_layers": geo.num_layers},
        status=status, failure=None if status == "ok" else "weights-exceed" if weights > usable else "no-kv-memory",
        engine_version=target.image.version if target.image else None,
    )


def sglang(facts: ModelFacts, target: Target) -> Estimate | None:
    total, args = _common(target)
    geo = geometry_from_config(facts.config, facts.text_config)
    if geo is None:
        return None
    tp = int(args.get("tensor_parallel_size") or args.get("tp_size") or 1)
    frac = args.get("mem_fraction_static")
    notes = []
    if frac is None:
        frac = 0.79 if tp >= 16 else 0.81 if tp >= 8 else 0.85 if tp >= 4 else 0.87 if tp >= 2 else 0.88
        notes.append(f"--mem-fraction-static defaults to {frac} at TP {tp}")
    frac = float(frac)
    dbytes = DTYPE_BYTES.get(str(geo.dtype or "bfloat16").lower(), 2)
    kvb = kv_dtype_bytes(args.get("kv_cache_dtype"), dbytes)
    per_token = layer_kv_bytes_per_token(geo, tp, kvb) * (geo.attention_layers or geo.num_layers)
    weights_gpu = facts.weights.total_bytes // tp
    usable = int(total * frac)
    kv = usable - weights_gpu
    tokens = max(0, kv) // per_token if per_token else 0
    mml = int(args.get("max_model_len") or args.get("context_length") or geo.max_len or 0) or None
    status = "ok" if kv > 0 and (mml is None or tokens >= mml) else "fail"
    notes.append("SGLang: weights + KV pool inside mem_fraction_static; activations and CUDA graphs outside it")
    return Estimate(
        engine="sglang", weights_bytes=facts.weights.total_bytes, weights_bytes_per_gpu=weights_gpu,
        total_vram_bytes=total, gpu_memory_utilization=frac, usable_bytes=usable, activation_bytes=0,
        non_torch_bytes=0, cuda_graph_bytes=0, kv_cache_bytes=kv, kv_cache_bytes_per_token=per_token,
        kv_cache_tokens=int(tokens), max_model_len=mml,
        max_concurrency=round(tokens / mml, 2) if mml else None, block_size=1, assumptions=tuple(notes),
        inputs=args, extra={"mem_fraction_static": frac, "tensor_parallel_size": tp},
        status=status, failure=None if status == "ok" else "no-kv-memory",
        engine_version=target.image.version if target.image else None,
    )


def _fixed(facts: ModelFacts, target: Target, engine: str, activation: int, note: str) -> Estimate:
    total, args = _common(target)
    weights = facts.weights.total_bytes
    usable = total - CUDA_CONTEXT
    spare = usable - weights - activation
    return Estimate(
        engine=engine, weights_bytes=weights, weights_bytes_per_gpu=weights, total_vram_bytes=total,
        gpu_memory_utilization=1.0, usable_bytes=usable, activation_bytes=activation,
        non_torch_bytes=CUDA_CONTEXT, cuda_graph_bytes=0, kv_cache_bytes=spare, kv_cache_bytes_per_token=0,
        kv_cache_tokens=0, max_model_len=None, max_concurrency=None, block_size=0,
        assumptions=(note, "one pipeline on one GPU, fp16/bf16 weights as stored"), inputs=args,
        status="ok" if spare >= 0 else "fail", failure=None if spare >= 0 else "weights-exceed",
        engine_version=target.image.version if target.image else None, llm=False,
    )


def diffusion(facts: ModelFacts, target: Target) -> Estimate:
    sub = facts.classification.subtype
    act = DIFFUSION_ACTIVATION.get(sub, DIFFUSION_ACTIVATION[None])
    return _fixed(facts, target, target.engine or "diffusion", act,
                  f"diffusion ({sub or 'unknown family'}): largest activation at the default resolution "
                  f"~{act / GIB:.1f} GiB (attention + VAE decode)")


def tts(facts: ModelFacts, target: Target) -> Estimate:
    return _fixed(facts, target, target.engine or "tts", 1 * GIB,
                  "TTS: ~1 GiB runtime buffers (vocoder / flow matching) on top of the weights")



