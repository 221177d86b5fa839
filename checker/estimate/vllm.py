"""vLLM's start-up memory accounting, per version, as pure arithmetic.

vLLM sizes the KV cache from a profiling run (V1: ``gpu_worker.determine_available_memory``; V0:
``worker.determine_num_available_blocks``)::

    available_kv = total * gpu_memory_utilization - weights - peak_activation - non_torch [- cuda_graphs]

and then ``kv_cache_utils.get_kv_cache_config`` cuts it into blocks of ``block_size`` tokens. What changes
between versions, and what this module follows (each item was read in vLLM's source at that version):

- engine: V1 is the default from 0.8.0; 0.8.x-0.9.x fall back to V0 below compute capability 8.0; V0 is
  gone from 0.11.0.
- default ``gpu_memory_utilization``: 0.9, 0.92 from 0.21.0 (``vllm/config/cache.py``).
- CUDA-graph memory: lands on top of total*util until 0.20; profiled and subtracted by default from
  0.21.0 (``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1``, the log says "default since v0.21.0").
- ``max_num_batched_tokens`` (the profiled batch): V1 ``vllm serve`` defaults 2048, or 8192 on GPUs with
  >= 70 GiB that are not A100 (0.9.0+), or 16384 on >= 160 GiB (assumed 0.13.0+); ``max_num_seqs`` 256, or
  1024 on those large GPUs (``EngineArgs.get_batch_defaults``). V0 without chunked prefill profiles
  ``max(max_model_len, 2048)`` tokens; V0 ``vllm serve`` switches chunked prefill on above 32K context
  and then profiles 512 tokens.
- peak activation: the larger of the model's forward pass over the profiled batch and the sampler's pass
  over ``min(max_num_seqs, max_num_batched_tokens)`` rows of logits (``_dummy_sampler_run``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checker.estimate.geometry import (
    GIB,
    MIB,
    Geometry,
    kv_dtype_bytes,
    layer_kv_bytes_per_token,
    layers_per_gpu,
)

DEFAULT_BLOCK_SIZE = 16
# Bytes per logit in the sampler's profiling pass: fp32 logits copy (4), temperature in place, top-k/top-p
# sort values (4) + int64 indices (8), softmax probs (4), cumulative sum (4), boolean masks (~2), scatter
# back (4), probs for sampling (4) and the exponential draw (4): ~38-40. Calibration rows agree (V0 0.7-0.8
# Qwen2.5-1.5B 1.40 GiB, Phi-4 0.94 GiB, Llama-3.2-3B 0.90 GiB; V1 Qwen3-235B 1.40 GiB).
SAMPLER_BYTES_PER_LOGIT = 39
# V0 with chunked prefill profiles short chunks; observed activation is logits + probs only (~8 B/logit).
SAMPLER_BYTES_PER_LOGIT_V0_CHUNKED = 8
NON_TORCH_V1 = int(0.2 * GIB)  # V1 measures NCCL/cuBLAS before its baseline: 0.07-0.21 GiB observed
NON_TORCH_V0_TP1 = int(0.1 * GIB)  # 0.01-0.35 GiB observed
NON_TORCH_V0_TP = int(2.0 * GIB)  # custom all-reduce + NCCL buffers: 1.4-3.6 GiB observed with TP>1
LOAD_OVERHEAD = 32 * MIB  # loaded weights exceed the header total by a few tens of MiB


@dataclass(frozen=True, slots=True)
class VllmSettings:
    """The engine arguments after vLLM's defaults for this version, GPU and model."""

    version: tuple[int, ...] | None
    engine: str  # "V0" | "V1"
    gpu_memory_utilization: float
    max_model_len: int | None
    max_num_seqs: int
    max_num_batched_tokens: int
    chunked_prefill: bool
    tensor_parallel_size: int
    pipeline_parallel_size: int
    kv_cache_dtype: str
    block_size: int
    enforce_eager: bool
    cudagraphs_reserved: bool
    assumptions: tuple[str, ...] = field(default_factory=tuple)


def _arg(args: dict[str, Any], name: str) -> Any:
    value = args.get(name)
    if value is None:
        value = args.get(name.replace("_", "-"))
    return value


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "")
    return bool(value)


def resolve_settings(
    args: dict[str, Any], version: tuple[int, ...] | None, geo: Geometry, total_bytes: int,
    gpu_name: str, cc: int | None,
) -> VllmSettings:
    notes: list[str] = []
    v = version
    if v is None:
        v = (0, 21, 0)
        notes.append("vLLM version unknown: assumed a recent V1 (>= 0.21: util 0.92, CUDA graphs reserved)")
    if v < (0, 8, 0) or (v < (0, 10, 0) and cc is not None and cc < 80):
        engine = "V0"
        if v >= (0, 8, 0):
            notes.append("compute capability < 8.0: vLLM falls back to the V0 engine")
    else:
        engine = "V1"
    tp = int(_arg(args, "tensor_parallel_size") or 1)
    pp = int(_arg(args, "pipeline_parallel_size") or 1)

    util = _arg(args, "gpu_memory_utilization")
    if util is None:
        util = 0.92 if v >= (0, 21, 0) else 0.9
        notes.append(f"gpu_memory_utilization defaults to {util} in vLLM {'.'.join(map(str, v))}")
    util = float(util)

    mml = _arg(args, "max_model_len")
    if mml is None:
        mml = geo.max_len
        if mml:
            notes.append(f"max_model_len defaults to the model's limit {mml}")
    mml = int(mml) if mml else None

    large = total_bytes >= 70 * GIB and "a100" not in gpu_name.lower()
    huge = total_bytes >= 160 * GIB
    mns = _arg(args, "max_num_seqs")
    mnbt = _arg(args, "max_num_batched_tokens")
    chunked_arg = _arg(args, "enable_chunked_prefill")
    if engine == "V1":
        chunked = True if chunked_arg is None else _as_bool(chunked_arg)
        if mns is None:
            mns = 1024 if (large or huge) and v >= (0, 9, 0) else 256
        if mnbt is None:
            if huge and v >= (0, 13, 0):
                mnbt = 16384
            elif large and v >= (0, 9, 0):
                mnbt = 8192
            else:
                mnbt = 2048
            if not chunked and mml:
                mnbt = max(mnbt, mml)
            notes.append(f"max_num_batched_tokens defaults to {mnbt}, max_num_seqs to {mns} (vllm serve, V1)")
    else:
        if mns is None:
            mns = 256
        if chunked_arg is None:
            chunked = bool(mml and mml > 32768)
            if chunked:
                notes.append("V0 switches chunked prefill on above 32K context")
        else:
            chunked = _as_bool(chunked_arg)
        if mnbt is None:
            mnbt = 512 if chunked else max(mml or 2048, 2048)
            notes.append(f"V0 profiles max_num_batched_tokens={mnbt}, max_num_seqs={mns}")
    kv_dtype = str(_arg(args, "kv_cache_dtype") or "auto")
    block = int(_arg(args, "block_size") or DEFAULT_BLOCK_SIZE)
    eager = _as_bool(_arg(args, "enforce_eager")) if _arg(args, "enforce_eager") is not None else False
    cudagraphs_reserved = engine == "V1" and v >= (0, 21, 0) and not eager
    if engine == "V1" and not cudagraphs_reserved and not eager:
        notes.append("CUDA-graph memory is not reserved before vLLM 0.21: it lands on top of total x util")
    return VllmSettings(
        version=v, engine=engine, gpu_memory_utilization=util, max_model_len=mml, max_num_seqs=int(mns),
        max_num_batched_tokens=int(mnbt), chunked_prefill=chunked, tensor_parallel_size=tp,
        pipeline_parallel_size=pp, kv_cache_dtype=kv_dtype, block_size=block, enforce_eager=eager,
        cudagraphs_reserved=cudagraphs_reserved, assumptions=tuple(notes),
    )


def forward_activation_bytes(geo: Geometry, tokens: int, tp: int, dtype_bytes: int) -> int:
    """Peak transient memory of one decoder layer over ``tokens`` tokens (the MLP dominates).

    Residual + normed hidden + output (3 x hidden) alongside gate_up (2 x I/tp) and the activation output
    (I/tp). MoE layers route every token to ``experts_per_tok`` experts of ``moe_intermediate`` width.
    """
    tp = max(1, tp)
    if geo.moe_experts_per_tok:
        # fused MoE caches: gate_up + activation per routed copy, plus each copy's hidden-size output
        routed = geo.moe_experts_per_tok * (3 * geo.moe_intermediate // tp + geo.hidden_size)
        mlp = routed + 3 * geo.shared_intermediate // tp
    else:
        mlp = 3 * geo.intermediate_size // tp
    return tokens * dtype_bytes * (3 * geo.hidden_size + mlp)


def sampler_bytes(geo: Geometry, rows: int, per_logit: int = SAMPLER_BYTES_PER_LOGIT) -> int:
    return rows * geo.vocab_size * per_logit


def cudagraph_bytes(geo: Geometry, s: VllmSettings) -> int:
    """Captured-graph pools: ~0.1 GiB plus a few MiB per layer (0.17-0.7 GiB observed for one GPU)."""
    if s.enforce_eager:
        return 0
    layers = layers_per_gpu(geo.num_layers, s.pipeline_parallel_size)
    return int(0.1 * GIB) + layers * 6 * MIB


@dataclass(frozen=True, slots=True)
class KvLayout:
    bytes_per_token: int  # per GPU, over every layer that caches KV (full-attention equivalent)
    page_bytes_per_block: int  # bytes one block id costs across the layers that share it
    blocks_per_request: int  # blocks one request at max_model_len holds
    tokens_per_block_id: int  # KV tokens one block id stands for, for the token count vLLM prints
    note: str | None = None


def kv_layout(geo: Geometry, s: VllmSettings, dtype_bytes: int) -> KvLayout:
    kvb = kv_dtype_bytes(s.kv_cache_dtype, dtype_bytes)
    per_layer = layer_kv_bytes_per_token(geo, s.tensor_parallel_size, kvb)
    layers = layers_per_gpu(geo.attention_layers or geo.num_layers, s.pipeline_parallel_size)
    block = s.block_size
    mml = s.max_model_len or 1
    full_blocks = -(-mml // block)
    sliding = min(geo.sliding_layers, layers) if geo.sliding_window else 0
    if s.engine == "V1" and sliding and sliding < layers:
        # Hybrid allocator: layers are grouped in groups of equal size; one block id holds one page
        # for each layer of a group; a sliding group keeps at most window-1+max_num_batched_tokens tokens.
        full = layers - sliding
        group = min(full, sliding)
        n_full_groups = -(-full // group)
        n_slide_groups = -(-sliding // group)
        slide_tokens = min(geo.sliding_window - 1 + s.max_num_batched_tokens, mml)
        slide_blocks = -(-slide_tokens // block) + 1
        return KvLayout(
            bytes_per_token=per_layer * layers, page_bytes_per_block=per_layer * group * block,
            blocks_per_request=n_full_groups * full_blocks + n_slide_groups * slide_blocks,
            tokens_per_block_id=block,
            note=f"hybrid KV cache: {full} full-attention and {sliding} sliding-window layers "
            f"(window {geo.sliding_window}) in groups of {group}",
        )
    return KvLayout(
        bytes_per_token=per_layer * layers, page_bytes_per_block=per_layer * layers * block,
        blocks_per_request=full_blocks, tokens_per_block_id=block,
        note="MLA latent KV cache" if geo.mla_latent else None,
    )
