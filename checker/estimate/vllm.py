"""vLLM's start-up memory accounting, per version, as pure arithmetic.

vLLM sizes the KV cache from a profiling run (V1: ``gpu_worker.determine_available_memory``; V0:
``worker.determine_num_available_blocks``)::

    available_kv = total * gpu_memory_utilization - weights - peak_activation - non_torch [- cuda_graphs]

and then ``kv_cache_utils.get_kv_cache_config`` cuts it into blocks of ``block_size`` tokens. Every version
fact below was read in the vLLM sdist of that version (PyPI ``vllm-X.tar.gz``), file@version:

- engine: V1 is the default from 0.8.0; 0.8.x-0.9.x fall back to V0 below compute capability 8.0; V0 is
  gone from 0.11.0.
- default ``gpu_memory_utilization``: 0.9 up to 0.19.1, 0.92 from 0.20.0 (``vllm/config/cache.py``@0.19.1 /
  @0.20.0).
- CUDA-graph memory: from 0.20.0 ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` defaults to 1 (``envs.py``@0.20.0,
  "0" in @0.19.1) and ``profile_cudagraph_memory`` (``v1/worker/gpu_model_runner.py``@0.20.0) measures the
  first (largest) capture plus one more per graph; that estimate is subtracted from the budget
  (``v1/worker/gpu_worker.py``@0.20.0). Before, the graphs land on top of total*util. The log line says
  "default since v0.21.0" but the switch is already in the 0.20.0 source.
- ``max_num_batched_tokens`` / ``max_num_seqs`` for ``vllm serve`` (usage context OPENAI_API_SERVER), V1
  (``vllm/engine/arg_utils.py``): 0.8.0-0.8.4: 8192 tokens when the device name has "h100"/"h200", else
  2048; max_num_seqs 1024. 0.8.5: 8192/1024 on >= 70 GiB, else 2048/256. 0.9.0+: the same but not on A100
  ("a100" not in the device name). 0.28.0+: 16384/1024 on >= 160 GiB (absent in 0.27.1). Without chunked
  prefill the profiled batch is max_model_len. max_num_seqs = min(default, max_num_batched_tokens)
  (@0.11.0); max_num_batched_tokens = min(max_num_seqs * max_model_len, default) (``config/scheduler.py``
  @0.10.1, ``config.py``@0.9.2).
- V0 (``vllm/config.py`` SchedulerConfig, ``engine/arg_utils.py``): max_num_seqs 256; chunked prefill
  switches on above 32K context (not for multimodal/sliding-window models); the chunked batch is 512 tokens
  up to 0.6.4 and 2048 from 0.6.5; without chunking ``max(max_model_len, 2048)``, at least 5120 for
  multimodal models (``_MULTIMODAL_MODEL_MAX_NUM_BATCHED_TOKENS``@0.6.6). A multimodal V0 profile run uses
  ``min(max_num_seqs, max_num_batched_tokens // max_mm_tokens)`` sequences (``worker/model_runner.py``@0.7.2).
- peak activation (V1 ``profile_run``@0.11.0/@0.14.0): the forward over the profiled batch, then the
  sampler over ``min(max_num_seqs, batch)`` rows while the batch's hidden states are still alive
  (``_dummy_sampler_run``: temperature 0.5, top_p 0.9, top_k vocab-1). The sampler path depends on the
  version (``v1/sample/ops/topk_topp_sampler.py``): 0.8.0-0.11.x FlashInfer when installed (not a pip
  dependency before 0.12.0: ``requirements/cuda.txt``), 0.12.0-0.16.x PyTorch sort (FlashInfer opt-in),
  0.17.0-0.20.x the in-place Triton top-k/top-p for >= 8 rows (``apply_top_k_top_p``@0.17.0, not 0.20 as
  this module once said), 0.21.0+ FlashInfer by default (``topk_topp_sampler.py``@0.21.0).
- ``entrypoint`` (engine argument of this checker, not of vLLM): ``serve`` (default; ``vllm serve`` and
  ``python -m vllm.entrypoints.openai.api_server``: UsageContext.OPENAI_API_SERVER) or ``llm-class``
  (``vllm.LLM``, LangChain's VLLM wrapper: UsageContext.LLM_CLASS, ``entrypoints/llm.py``), which V1 gives
  2x-4x the max_num_batched_tokens (:func:`_batch_defaults`).
- non-torch memory (``vllm/utils/mem_utils.py`` memory_profiling): the increase since the worker's first
  snapshot. Up to 0.10.x the snapshot is taken before ``init_worker_distributed_environment``
  (``v1/worker/gpu_worker.py``@0.10.2), so NCCL / custom all-reduce buffers count; from 0.11.0 the
  distributed environment is set up first (@0.11.0) and they fall outside the budget. V1 0.8.x subtracts
  everything the device has allocated that torch does not own (CUDA context included, @0.8.5).
- model dtype (``_get_and_verify_dtype``, ``vllm/config.py``@0.6.4-0.9.2, ``config/model.py``@0.11.0+, CUDA):
  an explicit ``--dtype`` wins (``float32`` doubles a 16-bit checkpoint). With ``auto`` the start is the
  config's ``torch_dtype`` (float32 when absent; from 0.9.2 the safetensors dtype first). 0.6.4-0.8.0: a
  float32 config becomes float16 (bfloat16 for gemma2 / gemma3 / gemma3_text), no device check (a bf16
  checkpoint on T4 then refuses to start). 0.8.2-0.8.5: float32 -> float16. 0.9.0: float32 -> float16, then
  a dtype the GPU lacks falls back to the platform's first (T4/V100: float16). 0.9.2+
  (``_resolve_auto_dtype``): supported = [bf16, fp16, fp32] on compute capability >= 8.0, [fp16, fp32]
  below (``platforms/cuda.py``), minus float16 for ``_FLOAT16_NOT_SUPPORTED_MODELS`` (gemma2, gemma3,
  plamo2, glm4; gemma3_text from 0.10.2; plamo2 gone from 0.27.0); float32 -> supported[0]; a dtype not
  supported -> supported[0]. So gemma2/gemma3 on T4/V100 run in float32: weights load at 4 B/param and
  the KV cache is float32. Weights load in that dtype (every float tensor is cast); quantized checkpoints
  keep their packed tensors.
"""

from __future__ import annotations

from typing import Any

from modelcheck.estimate.geometry import (
    GIB,
    MIB,
    Geometry,
    embedding_params,
    kv_dtype_bytes,
    layer_kv_bytes_per_token,
    layer_params,
    layers_per_gpu,
)
from modelcheck.record import field, record

DEFAULT_BLOCK_SIZE = 16
# Bytes per logit of the PyTorch-sort sampler (V0 and V1 0.8-0.19 without FlashInfer): bf16 logits (2) kept
# by the caller, the fp32 copy (4), sort values (4) + int64 indices (8) + the sort's own buffers, bool masks,
# softmax/cumsum (4) and the scattered result (4): ~39. Calibration rows agree (V0 0.7-0.8 Qwen2.5-1.5B
# 1.40 GiB, Phi-4 0.94 GiB, Llama-3.2-3B 0.90 GiB; V1 ~0.11 Qwen3-235B on L40S 1.40 GiB).
SAMPLER_BYTES_PER_LOGIT = 39
# In-place top-k/top-p (Triton 0.20.x, FlashInfer 0.21+): bf16 logits (2) + fp32 copy (4) + probs (4) +
# exponential noise / FlashInfer's masked logits (4) (topk_topp_sampler.py@0.20.0 random_sample).
SAMPLER_BYTES_PER_LOGIT_INPLACE = 14
# V0 with chunked prefill: the observed peak is the forward pass alone (0.19-0.22 GiB for 8-14B models at
# 2048 tokens); the sampler adds almost nothing there. An observation, not read in the source.
SAMPLER_BYTES_PER_LOGIT_V0_CHUNKED = 0
NON_TORCH_V1 = int(0.2 * GIB)  # V1 measures from a snapshot after CUDA init: 0.07-0.21 GiB observed
NON_TORCH_V1_08 = int(0.5 * GIB)  # V1 0.8.x counts the CUDA context too (gpu_worker.py@0.8.5); estimate
NON_TORCH_V0_TP1 = int(0.1 * GIB)  # 0.01-0.35 GiB observed
# NCCL channels + custom all-reduce IPC buffers with TP/PP > 1, when they fall inside the budget (V0, V1 <
# 0.11). NVLink/NVSwitch boxes run many NCCL channels: 1.39-2.1 GiB observed (A100 TP4/TP8); PCIe cards
# few: 0.25 GiB observed (2x RTX 4090 TP2).
NON_TORCH_TP_NVLINK = int(2.0 * GIB)
NON_TORCH_TP_PCIE = int(0.3 * GIB)
LOAD_OVERHEAD = 32 * MIB  # loaded weights exceed the header total by a few tens of MiB
# Image tokens one item can take, for V0's multimodal profile (model_runner.py@0.7.2 divides the batch by it):
# Qwen2-VL/Qwen2.5-VL max_pixels 12845056 / (28*28); LLaVA-1.5 576; LLaVA-NeXT up to 2928.
MAX_MM_TOKENS_PER_ITEM = {"qwen2_vl": 16384, "qwen2_5_vl": 16384, "llava": 576, "llava_next": 2928}
V0_MULTIMODAL_MIN_BATCHED_TOKENS = 5120  # _MULTIMODAL_MODEL_MAX_NUM_BATCHED_TOKENS (config.py@0.6.6)


@record
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
    sampler_bytes_per_logit: int = SAMPLER_BYTES_PER_LOGIT
    sampler_rows: int = 0  # rows of logits the profile samples (0: min(max_num_seqs, batch))
    sampler_scratch_rows: int = 0  # fp32 [rows, vocab] scratch of the Triton top-k/top-p (0.17+)
    entrypoint: str = "serve"  # "serve" (OPENAI_API_SERVER) | "llm-class" (LLM_CLASS usage context)
    non_torch_bytes: int = NON_TORCH_V1
    hybrid_kv: bool = True  # V1 hybrid allocator (per-layer-type groups)
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


def nvlink_class(gpu_name: str) -> bool:
    """GPUs sold in NVLink/NVSwitch boards (SXM/HGX), where NCCL runs many channels with big buffers."""
    n = gpu_name.lower()
    if "pcie" in n:
        return False
    return any(k in n for k in ("sxm", "h100", "h200", "h800", "h20", "a800", "a100", "b200", "b300", "gb200",
                                "gh200", "hgx"))


ENTRYPOINTS = ("serve", "llm-class")
_ENTRYPOINT_ALIASES = {"serve": "serve", "vllm-serve": "serve", "api-server": "serve", "openai": "serve",
                       "openai-api-server": "serve", "llm-class": "llm-class", "llm": "llm-class",
                       "offline": "llm-class", "python": "llm-class", "langchain": "llm-class"}


def resolve_entrypoint(value: Any) -> str | None:
    """``serve`` (``vllm serve`` / ``python -m vllm.entrypoints.openai.api_server``: UsageContext.OPENAI_API_SERVER)
    or ``llm-class`` (``vllm.LLM(...)``, LangChain's VLLM wrapper: UsageContext.LLM_CLASS, entrypoints/llm.py);
    None when the value is neither."""
    if value is None:
        return "serve"
    return _ENTRYPOINT_ALIASES.get(str(value).strip().lower().replace("_", "-").replace(" ", "-"))


def _batch_defaults(v: tuple[int, ...], total_bytes: int, gpu_name: str, entrypoint: str = "serve") -> tuple[int, int]:
    """V1 defaults (max_num_batched_tokens, max_num_seqs) per usage context: EngineArgs._set_default_args_v1 /
    get_batch_defaults, arg_utils.py per version. The LLM class gets twice (or 4x) the batch of ``vllm serve``
    (dict keyed by UsageContext.LLM_CLASS / OPENAI_API_SERVER since @0.8.0); max_num_seqs is the same."""
    name = gpu_name.lower()
    llm = entrypoint == "llm-class"
    if v < (0, 8, 5):  # 0.8.0-0.8.4: by device name, max_num_seqs 1024 everywhere (arg_utils.py@0.8.0/@0.8.3)
        if "h100" in name or "h200" in name:
            return (16384 if llm else 8192), 1024
        return (8192 if llm else 2048), 1024
    if v >= (0, 28, 0) and total_bytes >= 160 * GIB:  # arg_utils.py@0.28.0: 16384 for both (absent @0.27.1)
        return 16384, 1024
    large = total_bytes >= 70 * GIB and (v < (0, 9, 0) or "a100" not in name)  # A100 excluded from 0.9.0
    if large:  # arg_utils.py@0.8.5/@0.11.0/@0.17.0/@0.20.0: {LLM_CLASS: 16384, OPENAI_API_SERVER: 8192}, 1024
        return (16384 if llm else 8192), 1024
    return (8192 if llm else 2048), 256  # {LLM_CLASS: 8192, OPENAI_API_SERVER: 2048}, 256


def _sampler_per_logit(engine: str, v: tuple[int, ...], chunked: bool, notes: list[str], rows: int = 1024) -> int:
    """Bytes per logit the profile's dummy sampler run peaks at (``_dummy_sampler_run``: temperature 0.5,
    top_p 0.9, top_k vocab-1, no penalties, so no [rows, vocab] penalty tensors)."""
    if engine == "V0":
        return SAMPLER_BYTES_PER_LOGIT_V0_CHUNKED if chunked else SAMPLER_BYTES_PER_LOGIT
    if v >= (0, 21, 0):
        # topk_topp_sampler.py@0.21.0: FlashInfer top-k/top-p is default-on (VLLM_USE_FLASHINFER_SAMPLER
        # unset) where FlashInferBackend supports the capability; elsewhere forward_native, which is the
        # Triton path below: the same in-place footprint either way
        notes.append("sampler profiled with FlashInfer top-k/top-p (default from vLLM 0.21, envs.py)")
        return SAMPLER_BYTES_PER_LOGIT_INPLACE
    if v >= (0, 17, 0) and rows >= TRITON_TOPK_MIN_ROWS:
        # topk_topp_sampler.py@0.17.0 apply_top_k_top_p: ``if HAS_TRITON and logits.shape[0] >= 8: return
        # apply_top_k_top_p_triton(logits, k, p)`` (topk_topp_triton.py@0.17.0, masks the fp32 logits in
        # place) instead of the sort: no sort values/indices, masks or scatter copy (same in @0.19.1, @0.20.0)
        notes.append("sampler profiled with the in-place Triton top-k/top-p (vLLM 0.17+, >= 8 rows)")
        return SAMPLER_BYTES_PER_LOGIT_INPLACE
    if v < (0, 12, 0):
        notes.append("sampler profiled with PyTorch sort; an image with FlashInfer installed uses it by default "
                     "in vLLM 0.8-0.11 and needs ~2/3 less for the sampler")
    return SAMPLER_BYTES_PER_LOGIT


# topk_topp_triton.py@0.17.0 apply_top_k_top_p_triton: one [min(next_pow2(min(SMs, rows)), SMs), vocab] fp32
# scratch buffer per device (``_TRITON_BUFFER_CACHE``). Streaming-multiprocessor counts of common cards
# (NVIDIA data sheets); 128 when the card is not listed.
SM_COUNTS = {"h100 pcie": 114, "h100": 132, "h200": 132, "h20": 78, "h800": 132, "gh200": 132, "a100": 108,
             "a800": 108, "l40s": 142, "l40": 142, "a10g": 80, "a10": 72, "l4": 58, "l20": 92, "a40": 84,
             "a6000": 84, "rtx 4090": 128, "rtx 3090": 82, "b200": 148, "b300": 148, "gb200": 152, "t4": 40,
             "v100": 80, "rtx pro 6000": 188, "5090": 170}
TRITON_TOPK_MIN_ROWS = 8


def sm_count(gpu_name: str) -> int:
    n = gpu_name.lower()
    for key in sorted(SM_COUNTS, key=len, reverse=True):
        if key in n:
            return SM_COUNTS[key]
    return 128


def triton_scratch_rows(gpu_name: str, rows: int) -> int:
    """Rows of the Triton top-k/top-p scratch buffer (topk_topp_triton.py@0.17.0: NUM_PROGRAMS = min(SMs,
    batch); buffer = logits.new_empty((min(next_power_of_2(NUM_PROGRAMS), SMs), vocab)))."""
    sms = sm_count(gpu_name)
    programs = min(sms, rows)
    return min(1 << max(0, programs - 1).bit_length(), sms)


def _v0_fallback(args: dict[str, Any], v: tuple[int, ...], geo: Geometry, cc: int | None) -> str | None:
    """Why 0.8-0.10 would run V0 (EngineArgs._is_v1_supported_oracle, arg_utils.py@0.8.0/0.8.3/0.8.5/0.10.1)."""
    if cc is not None and cc < 80 and v < (0, 10, 0):
        return "compute capability < 8.0"
    kv = str(_arg(args, "kv_cache_dtype") or "auto").lower()
    # fp8 KV needs FlashAttention 3 (Hopper, cc 9.x) from 0.8.2 (fa_utils.flash_attn_supports_fp8); 0.8.0 none
    if kv.startswith("fp8") and (v < (0, 8, 2) or cc is None or cc // 10 != 9):
        return f"--kv-cache-dtype {kv} without FlashAttention 3"
    dtype = str(_arg(args, "dtype") or "").lower()
    if dtype in ("float32", "float", "fp32"):
        return "--dtype float32"
    quant = str(_arg(args, "quantization") or geo.quant_method or "").lower()
    if quant == "gguf" or geo.source == "gguf":
        if v < (0, 9, 0):  # V1_UNSUPPORTED_QUANT = ["gguf"] up to 0.8.5, gone in 0.9.0
            return "--quantization gguf"
    elif quant == "bitsandbytes" and v < (0, 8, 3):
        return f"--quantization {quant}"
    if v < (0, 8, 3) and _arg(args, "enable_lora") is not None and _as_bool(_arg(args, "enable_lora")):
        return "LoRA"
    return None


def resolve_settings(
    args: dict[str, Any], version: tuple[int, ...] | None, geo: Geometry, total_bytes: int,
    gpu_name: str, cc: int | None,
) -> VllmSettings:
    notes: list[str] = []
    v = version
    if v is None:
        v = (0, 21, 0)
        notes.append("vLLM version unknown (no version in --image): computed as vLLM 0.21.0, a recent V1 "
                     "(util 0.92, CUDA graphs reserved)")
    engine = "V0" if v < (0, 8, 0) else "V1"
    if engine == "V1" and v < (0, 11, 0):
        why = _v0_fallback(args, v, geo, cc)
        if why:
            engine = "V0"
            notes.append(f"{why}: vLLM {'.'.join(map(str, v))} falls back to the V0 engine")
    tp = int(_arg(args, "tensor_parallel_size") or 1)
    pp = int(_arg(args, "pipeline_parallel_size") or 1)

    util = _arg(args, "gpu_memory_utilization")
    if util is not None and not 0 < float(util) <= 1:
        # vLLM refuses it (ENG014); estimating with 90 (meant 90 %) would promise 100x the memory
        notes.append(f"gpu_memory_utilization {util} is outside (0, 1]: estimated with the default instead")
        util = None
    if util is None:
        util = 0.92 if v >= (0, 20, 0) else 0.9
        notes.append(f"gpu_memory_utilization defaults to {util} in vLLM {'.'.join(map(str, v))}")
    util = float(util)

    mml = _arg(args, "max_model_len")
    if mml is None:
        mml = geo.max_len
        if mml:
            notes.append(f"max_model_len defaults to the model's limit {mml}")
    mml = int(mml) if mml else None

    mns = _arg(args, "max_num_seqs")
    mnbt = _arg(args, "max_num_batched_tokens")
    chunked_arg = _arg(args, "enable_chunked_prefill")
    sampler_rows = 0
    entry_arg = _arg(args, "entrypoint")
    entrypoint = resolve_entrypoint(entry_arg)
    if entrypoint is None:
        notes.append(f"entrypoint {entry_arg!r} is neither 'serve' nor 'llm-class': estimated as vllm serve")
        entrypoint = "serve"
    starter = "vllm serve" if entrypoint == "serve" else "the Python LLM class"
    if engine == "V1":
        chunked = True if chunked_arg is None else _as_bool(chunked_arg)
        d_tokens, d_seqs = _batch_defaults(v, total_bytes, gpu_name, entrypoint)
        if mnbt is None:
            mnbt = d_tokens
            if not chunked and mml:
                mnbt = max(mnbt, mml)
            elif mml:
                mnbt = min(int(mns or d_seqs) * mml, mnbt)
        if mns is None:
            mns = min(d_seqs, int(mnbt)) if v >= (0, 11, 0) else d_seqs
        how = "" if entry_arg is not None else " (entrypoint serve assumed; the Python LLM class defaults to a " \
            "larger batch)"
        notes.append(f"{starter} profiles max_num_batched_tokens={mnbt}, max_num_seqs={mns} (V1){how}")
    else:
        if mns is None:
            mns = 256
        if chunked_arg is None:
            chunked = bool(mml and mml > 32768 and not geo.multimodal and not geo.sliding_window)
            if chunked:
                notes.append("V0 switches chunked prefill on above 32K context")
        else:
            chunked = _as_bool(chunked_arg)
        if mnbt is None:
            if chunked:
                mnbt = 512 if v < (0, 6, 5) else 2048
            else:
                mnbt = max(mml or 2048, 2048)
                if geo.multimodal:
                    mnbt = max(mnbt, V0_MULTIMODAL_MIN_BATCHED_TOKENS)
            notes.append(f"V0 profiles max_num_batched_tokens={mnbt}, max_num_seqs={mns}")
        mm_tokens = MAX_MM_TOKENS_PER_ITEM.get(geo.model_type or "") if geo.multimodal else None
        if mm_tokens:
            sampler_rows = max(1, min(int(mns), int(mnbt) // mm_tokens))
            notes.append(f"V0 multimodal profile: {sampler_rows} sequence(s) of up to {mm_tokens} image tokens")
    kv_dtype = str(_arg(args, "kv_cache_dtype") or "auto")
    block = int(_arg(args, "block_size") or DEFAULT_BLOCK_SIZE)
    eager = _as_bool(_arg(args, "enforce_eager")) if _arg(args, "enforce_eager") is not None else False
    cudagraphs_reserved = engine == "V1" and v >= (0, 20, 0) and not eager
    if engine == "V1" and not cudagraphs_reserved and not eager:
        notes.append("CUDA-graph memory is not reserved before vLLM 0.20: it lands on top of total x util")
    profile_rows = sampler_rows or min(int(mns), int(mnbt))
    per_logit = _sampler_per_logit(engine, v, chunked, notes, profile_rows)
    scratch_rows = 0
    # the Triton path's scratch buffer: 0.17-0.20, and 0.21+ where FlashInfer's sampler cannot run (< SM75)
    triton_path = v < (0, 21, 0) or (cc is not None and cc < 75)
    if engine == "V1" and v >= (0, 17, 0) and triton_path and profile_rows >= TRITON_TOPK_MIN_ROWS:
        scratch_rows = triton_scratch_rows(gpu_name, profile_rows)

    # non-torch memory inside the budget
    ranks = tp * pp
    comm_counted = engine == "V0" or v < (0, 11, 0)
    if engine == "V0":
        non_torch = NON_TORCH_V0_TP1
    elif v < (0, 9, 0):
        non_torch = NON_TORCH_V1_08
    else:
        non_torch = NON_TORCH_V1
    if ranks > 1 and comm_counted:
        nv = nvlink_class(gpu_name)
        non_torch += NON_TORCH_TP_NVLINK if nv else NON_TORCH_TP_PCIE
        notes.append(f"NCCL/custom all-reduce buffers counted in the budget ({'NVLink' if nv else 'PCIe'} class, "
                     f"~{(NON_TORCH_TP_NVLINK if nv else NON_TORCH_TP_PCIE) / GIB:.1f} GiB)")
    return VllmSettings(
        version=v, engine=engine, gpu_memory_utilization=util, max_model_len=mml, max_num_seqs=int(mns),
        max_num_batched_tokens=int(mnbt), chunked_prefill=chunked, tensor_parallel_size=tp,
        pipeline_parallel_size=pp, kv_cache_dtype=kv_dtype, block_size=block, enforce_eager=eager,
        cudagraphs_reserved=cudagraphs_reserved, sampler_bytes_per_logit=per_logit, sampler_rows=sampler_rows,
        sampler_scratch_rows=scratch_rows, entrypoint=entrypoint,
        non_torch_bytes=non_torch, hybrid_kv=engine == "V1" and v >= (0, 9, 2), assumptions=tuple(notes),
    )


def forward_activation_bytes(geo: Geometry, tokens: int, tp: int, dtype_bytes: int) -> int:
    """Peak transient memory of one decoder layer over ``tokens`` tokens (the MLP dominates).

    Residual + normed hidden + output (3 x hidden) alongside gate_up (2 x I/tp) and the activation output
    (I/tp). MoE layers (fused_moe: intermediate_cache1 [M, topk, 2I/tp], cache2 [M*topk, I/tp], cache3
    [M, topk, hidden]) route every token to ``experts_per_tok`` experts of ``moe_intermediate`` width; M is
    chunked at VLLM_FUSED_MOE_CHUNK_SIZE (16384 in envs.py@0.14.0).
    """
    tp = max(1, tp)
    if geo.moe_experts_per_tok:
        moe_tokens = min(tokens, 16384)
        routed = moe_tokens * geo.moe_experts_per_tok * (3 * geo.moe_intermediate // tp + geo.hidden_size)
        dense = tokens * (3 * geo.hidden_size + 3 * geo.shared_intermediate // tp)
        return dtype_bytes * (routed + dense)
    return tokens * dtype_bytes * (3 * geo.hidden_size + 3 * geo.intermediate_size // tp)


def sampler_bytes(geo: Geometry, rows: int, per_logit: int = SAMPLER_BYTES_PER_LOGIT, scratch_rows: int = 0) -> int:
    return rows * geo.vocab_size * per_logit + scratch_rows * geo.vocab_size * 4


def cudagraph_bytes(geo: Geometry, s: VllmSettings) -> int:
    """Captured-graph pools: ~0.1 GiB plus a few MiB per layer (0.17-0.7 GiB observed for one GPU).

    vLLM 0.20+ measures it (first capture + one more graph per size); the sizes go up to
    min(2 * max_num_seqs, 512) tokens (config/scheduler.py@0.10.1), so the pool stays small next to the KV
    cache. This is a typical figure, not a model of the capture.
    """
    if s.enforce_eager:
        return 0
    layers = layers_per_gpu(geo.num_layers, s.pipeline_parallel_size)
    return int(0.1 * GIB) + layers * 6 * MIB


@record
class KvLayout:
    bytes_per_token: int  # per GPU, over every layer that caches KV (full-attention equivalent)
    page_bytes_per_block: int  # bytes one block id costs across the layers that share it
    blocks_per_request: int  # blocks one request at max_model_len holds
    tokens_per_block_id: int  # KV tokens one block id stands for, for the token count vLLM prints
    groups: int = 1  # KV cache groups (hybrid allocator)
    note: str | None = None


def kv_layout(geo: Geometry, s: VllmSettings, dtype_bytes: int, layers: int | None = None) -> KvLayout:
    """vLLM's KV cache groups (v1/core/kv_cache_utils.py@0.14.0 _get_kv_cache_groups_uniform_page_size).

    Layers are grouped by spec; group size is the smallest layer count, or the largest when it is under
    1.25x the smallest (that rule from 0.12.0; absent in 0.11.0). One block id holds one page per layer of a
    group, so num_blocks = available // (page * group_size); the printed token count is
    num_blocks // groups * block_size; a sliding group keeps min(window - 1 + max_num_batched_tokens,
    max_model_len) tokens + 1 block (kv_cache_interface.py SlidingWindowSpec.max_memory_usage_bytes) and
    concurrency = num_blocks / blocks one request needs over all groups (get_max_concurrency_for_kv_cache_config).
    """
    kvb = kv_dtype_bytes(s.kv_cache_dtype, dtype_bytes)
    per_layer = layer_kv_bytes_per_token(geo, s.tensor_parallel_size, kvb)
    if layers is None:
        layers = layers_per_gpu(geo.attention_layers or geo.num_layers, s.pipeline_parallel_size)
    block = s.block_size
    mml = s.max_model_len or 1
    full_blocks = -(-mml // block)
    sliding = min(geo.sliding_layers, layers) if geo.sliding_window else 0
    if s.engine == "V1" and s.hybrid_kv and sliding and sliding < layers:
        full = layers - sliding
        group = min(full, sliding)
        if s.version and s.version >= (0, 12, 0) and max(full, sliding) < group * 1.25:
            group = max(full, sliding)
        n_full_groups = -(-full // group)
        n_slide_groups = -(-sliding // group)
        slide_tokens = min(geo.sliding_window - 1 + s.max_num_batched_tokens, mml)
        slide_blocks = -(-slide_tokens // block) + 1
        return KvLayout(
            bytes_per_token=per_layer * layers, page_bytes_per_block=per_layer * group * block,
            blocks_per_request=n_full_groups * full_blocks + n_slide_groups * slide_blocks,
            tokens_per_block_id=block, groups=n_full_groups + n_slide_groups,
            note=f"hybrid KV cache: {full} full-attention and {sliding} sliding-window layers "
            f"(window {geo.sliding_window}) in {n_full_groups + n_slide_groups} groups of {group}",
        )
    return KvLayout(
        bytes_per_token=per_layer * layers, page_bytes_per_block=per_layer * layers * block,
        blocks_per_request=full_blocks, tokens_per_block_id=block,
        note="MLA latent KV cache" if geo.mla_latent else None,
    )


# -- model dtype ---------------------------------------------------------------------------------------

_DTYPE_NAMES = {"half": "float16", "float16": "float16", "fp16": "float16", "bfloat16": "bfloat16",
                "bf16": "bfloat16", "float": "float32", "float32": "float32", "fp32": "float32"}
_NAME_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
# safetensors / GGUF dtype names of float tensors vLLM casts to the model dtype when it loads them
_FLOAT_TENSOR_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}


def _canon_dtype(value: Any) -> str | None:
    return _DTYPE_NAMES.get(str(value).strip().lower()) if value is not None else None


def float16_forbidden_types(v: tuple[int, ...]) -> frozenset[str]:
    """``_FLOAT16_NOT_SUPPORTED_MODELS`` (config.py@0.9.2, config/__init__.py@0.10.2, config/model.py@0.27.0)."""
    types = {"gemma2", "gemma3", "glm4"}
    if v >= (0, 10, 2):
        types.add("gemma3_text")
    if v < (0, 27, 0):
        types.add("plamo2")
    return frozenset(types)


@record
class DtypeChoice:
    name: str  # float16 | bfloat16 | float32
    bytes: int
    note: str | None = None


def resolve_dtype(
    args: dict[str, Any], version: tuple[int, ...], config_dtype: str | None, model_type: str | None,
    weights_dtype: str | None, bf16_ok: bool,
) -> DtypeChoice:
    """The dtype vLLM runs the model in (weights, activations, KV cache with --kv-cache-dtype auto)."""
    v = version
    asked = _arg(args, "dtype")
    if asked is not None and str(asked).strip().lower() != "auto":
        name = _canon_dtype(asked) or "bfloat16"
        return DtypeChoice(name, _NAME_BYTES[name], f"--dtype {asked}: the model runs in {name}")
    cfg = _canon_dtype(config_dtype)
    src = "config.json torch_dtype"
    if cfg is None and v >= (0, 9, 2):
        cfg = _canon_dtype({"F32": "float32", "F16": "float16", "BF16": "bfloat16"}.get(
            str(weights_dtype or "").upper()))
        src = "the safetensors dtype"
    if cfg is None:
        cfg, src = "float32", "no torch_dtype (vLLM assumes float32)"
    mt = model_type or ""
    if v >= (0, 9, 2):
        supported = ["bfloat16", "float16", "float32"] if bf16_ok else ["float16", "float32"]
        if mt in float16_forbidden_types(v):
            supported.remove("float16")
        preferred = supported[0]
        name = preferred if cfg == "float32" else cfg
        if name not in supported:
            name = preferred
    elif v >= (0, 9, 0):
        name = "float16" if cfg == "float32" else cfg
        if name == "bfloat16" and not bf16_ok:
            name = "float16"
    elif v >= (0, 8, 2):
        name = "float16" if cfg == "float32" else cfg
    else:
        gemma = {"gemma2"} if v < (0, 8, 0) else {"gemma2", "gemma3", "gemma3_text"}
        name = ("bfloat16" if mt in gemma else "float16") if cfg == "float32" else cfg
    note = None
    if name != cfg or name == "float32":
        note = f"--dtype auto: {src} is {cfg}, vLLM {'.'.join(map(str, v))} runs it in {name}"
        if name == "float32" and mt in float16_forbidden_types(v) and not bf16_ok:
            note += f" ({mt} refuses float16 and the GPU has no bfloat16)"
    return DtypeChoice(name, _NAME_BYTES[name], note)


def loaded_weight_bytes(total: int, by_dtype: dict[str, int], dominant: str | None, dtype_bytes: int,
                        quantized: bool) -> int:
    """The bytes the weights take once loaded in the model dtype: float tensors are cast, quantized
    (packed integer / fp8) checkpoints load as stored."""
    if quantized or total <= 0:
        return total
    raw = sum(by_dtype.values()) if by_dtype else 0
    if raw > 0:
        cast = 0
        for name, n in by_dtype.items():
            src = _FLOAT_TENSOR_BYTES.get(str(name).upper())
            cast += n * dtype_bytes // src if src else n
        # the split scales the header total (they agree for real folders)
        return total if cast == raw else total * cast // raw
    src = _FLOAT_TENSOR_BYTES.get(str(dominant or "").upper())
    return total * dtype_bytes // src if src else total


# -- quantization at load ------------------------------------------------------------------------------

ONLINE_FP8 = ("fp8", "fp8_e4m3", "ptpc_fp8")


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def mxfp4_backend(version: tuple[int, ...], cc: int | None) -> str:
    """Mxfp4MoEMethod's kernel backend with the default environment (``get_mxfp4_backend``,
    model_executor/layers/quantization/mxfp4.py@0.10.2/@0.11.0/@0.17.0): FlashInfer MXFP4-BF16 on SM100
    (FlashInfer ships with the CUDA image), the OpenAI Triton kernels on SM90 (and, up to 0.11, any
    capability >= 9; from 0.14 only 9.0 <= cc < 11.0), Marlin below SM90 (A100, L40S, A10...)."""
    c = cc or 90
    if c // 10 == 10:
        return "flashinfer-sm100"
    if c < 90:
        return "marlin"
    if c >= 110 and version >= (0, 14, 0):
        return "marlin"
    return "triton"


def mxfp4_padded_expert_bytes(geo: Geometry, tp: int, backend: str) -> tuple[int, int]:
    """(checkpoint, loaded) bytes of the mxfp4 expert tensors on one GPU. create_weights (mxfp4.py@0.17.0)
    pads per backend: Marlin intermediate -> 128, hidden -> 256; FlashInfer SM100 both -> 256; Triton
    intermediate -> 64. Per expert: w13 [2I, H/2] u8 + scales [2I, H/32] + bias [2I] bf16; w2 [H, I/2] +
    [H, I/32] + [H]. The Triton backend casts both biases to float32 (process_weights_after_loading)."""
    e, h = geo.moe_experts, geo.hidden_size
    i = geo.moe_intermediate // max(1, tp)

    def size(i_: int, h_: int, bias_bytes: int) -> int:
        return e * (2 * i_ * h_ // 2 + 2 * i_ * h_ // 32 + h_ * i_ // 2 + h_ * i_ // 32 + (2 * i_ + h_) * bias_bytes)

    if backend == "marlin":
        ip, hp = _round_up(i, 128), _round_up(h, 256)
    elif backend == "flashinfer-sm100":
        ip, hp = _round_up(i, 256), _round_up(h, 256)
    else:
        ip, hp = _round_up(i, 64), h
    return size(i, h, 2), size(ip, hp, 4 if backend == "triton" else 2)


def load_adjustments(geo: Geometry, args: dict[str, Any], checkpoint_bytes: int, dtype_bytes: int,
                     version: tuple[int, ...], cc: int | None, tp: int,
                     checkpoint_dtype: str | None = None) -> tuple[int, list[str]]:
    """The weights vLLM holds after loading (whole model) and notes: MTP layers skipped, then
    :func:`_quantized_at_load`."""
    notes: list[str] = []
    skipped = mtp_skipped_bytes(geo, checkpoint_bytes)
    if skipped and not _arg(args, "speculative_config"):
        checkpoint_bytes -= skipped
        notes.append(f"{geo.mtp_layers} multi-token-prediction layer(s) in the checkpoint are not loaded without "
                     f"speculative decoding (-{skipped / GIB:.2f} GiB, deepseek_v2.py load_weights)")
    loaded, note = _quantized_at_load(geo, args, checkpoint_bytes, dtype_bytes, version, cc, tp, checkpoint_dtype)
    if note:
        notes.append(note)
    return loaded, notes


def _quantized_at_load(geo: Geometry, args: dict[str, Any], checkpoint_bytes: int, dtype_bytes: int,
                       version: tuple[int, ...], cc: int | None, tp: int,
                       checkpoint_dtype: str | None = None) -> tuple[int, str | None]:
    """Weight bytes (whole model) after vLLM's load-time quantization or repacking, and a note.

    - ``--quantization fp8`` on a 16-bit checkpoint (online FP8, ``Fp8LinearMethod`` with
      ``is_checkpoint_fp8_serialized`` False, quantization/fp8.py@0.11.0/@0.17.0): every LinearBase weight
      and the FusedMoE experts are quantized to float8 in ``process_weights_after_loading`` (one fp32
      scale per tensor) before ``model_memory_usage`` is taken; embed_tokens / lm_head
      (VocabParallelEmbedding) and the norms keep the model dtype.
    - mxfp4 MoE checkpoints (gpt-oss): the expert tensors are padded per kernel backend
      (:func:`mxfp4_padded_expert_bytes`).
    """
    q = str(_arg(args, "quantization") or "").lower()
    if q in ONLINE_FP8 and geo.quant_method in (None, "", "none"):
        src = _FLOAT_TENSOR_BYTES.get(str(checkpoint_dtype or "").upper(), dtype_bytes)
        params = checkpoint_bytes // src
        kept = min(params, geo.vocab_size * geo.hidden_size * (1 if geo.tie_word_embeddings else 2)
                   + (2 * geo.num_layers + 1) * geo.hidden_size)
        loaded = kept * dtype_bytes + (params - kept)  # 1 byte per float8 weight
        return loaded, (f"--quantization {q} on a {dtype_bytes * 8}-bit checkpoint: vLLM quantizes the linear "
                        f"and expert weights to FP8 at load ({checkpoint_bytes / GIB:.2f} -> {loaded / GIB:.2f} "
                        "GiB; embeddings and lm_head stay 16-bit)")
    if geo.quant_method == "mxfp4" and geo.moe_experts and geo.moe_intermediate:
        backend = mxfp4_backend(version, cc)
        ckpt, padded = mxfp4_padded_expert_bytes(geo, tp, backend)
        extra = (padded - ckpt) * max(1, tp) * layers_per_gpu(geo.num_layers, 1)
        if extra > 0:
            note = (f"mxfp4 experts padded for the {backend} MoE kernel: +{extra / GIB:.2f} GiB over the checkpoint "
                    "(mxfp4.py create_weights)")
            if backend == "triton":
                note += "; the Hopper swizzle layout of triton_kernels may pad further (not modelled)"
            return checkpoint_bytes + extra, note
    return checkpoint_bytes, None


# -- what each GPU holds -------------------------------------------------------------------------------


def pp_partition(num_layers: int, pp: int) -> list[int]:
    """Decoder layers per pipeline stage (distributed/utils.py@0.17.0 get_pp_indices, without
    VLLM_PP_LAYER_PARTITION): num_layers // pp each; the remainder goes one each to the stages before the
    last, starting from the second-to-last."""
    pp = max(1, pp)
    parts = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        parts[-i] += 1
    return parts


def mtp_skipped_bytes(geo: Geometry, checkpoint_bytes: int) -> int:
    """Bytes of the multi-token-prediction layers a checkpoint stores but vLLM does not load without
    speculative decoding (deepseek_v2.py@0.17.0 load_weights: ``get_spec_layer_idx_from_weight_name`` ->
    ``continue``; also glm4_moe, minimax_m2...). One MTP layer = a decoder layer + eh_proj (2H x H)."""
    if not geo.mtp_layers or checkpoint_bytes <= 0:
        return 0
    h = geo.hidden_size
    layers = sum(layer_params(geo, i) for i in range(geo.num_layers))
    embeds = embedding_params(geo) * (1 if geo.tie_word_embeddings else 2)
    mtp = geo.mtp_layers * (layer_params(geo, geo.num_layers) + 2 * h * h)
    return checkpoint_bytes * mtp // (layers + embeds + mtp)


@record
class RankShare:
    """One pipeline stage: its decoder layers and its fraction of the model's weights."""

    stage: int
    layers: int
    weight_fraction: float
    last: bool


def pp_stages(geo: Geometry, pp: int) -> list[RankShare]:
    """Each stage holds its layers (make_layers + PPMissingLayer), embed_tokens on the first stage and
    lm_head on the last (a separate copy there when the embeddings are tied and pp > 1: the last stage has
    no embed_tokens to tie to, models/llama.py@0.17.0)."""
    parts = pp_partition(geo.num_layers, pp)
    emb = embedding_params(geo)
    per_stage, start = [], 0
    for r, n in enumerate(parts):
        p = sum(layer_params(geo, i) for i in range(start, start + n))
        if r == 0:
            p += emb
        if r == len(parts) - 1 and (not geo.tie_word_embeddings or len(parts) > 1):
            p += emb
        per_stage.append((n, p))
        start += n
    total = sum(p for _, p in per_stage) or 1
    return [RankShare(r, n, p / total, r == len(parts) - 1) for r, (n, p) in enumerate(per_stage)]


def binding_pp_stage(geo: Geometry, s: VllmSettings, weights_total: int, activation_last: int, forward: int,
                     budget: int, per_layer_block_bytes: int) -> tuple[int, int, int, str]:
    """The pipeline stage that runs out of KV blocks first: (weights per GPU, activation, layers, note).

    Every stage profiles its own memory; only the last samples (gpu_model_runner.py@0.17.0 profile_run:
    ``if get_pp_group().is_last_rank: ... _dummy_sampler_run``), the others peak at the forward. Each then
    fits ``available // (page x its layers)`` blocks and the engine keeps the smallest count for every stage
    (v1/core/kv_cache_utils.py@0.17.0 get_kv_cache_configs, step 5)."""
    tp = max(1, s.tensor_parallel_size)
    best = None
    for st in pp_stages(geo, s.pipeline_parallel_size):
        w = int(weights_total * st.weight_fraction) // tp + LOAD_OVERHEAD
        act = activation_last if st.last else forward
        blocks = max(0, budget - w - act) // max(1, per_layer_block_bytes * max(1, st.layers))
        if best is None or blocks < best[0]:
            best = (blocks, w, act, st)
    assert best is not None
    _, w, act, st = best
    note = (f"pipeline parallel {s.pipeline_parallel_size}: stage {st.stage} binds the KV cache ({st.layers} layers, "
            f"{w / GIB:.2f} GiB weights per GPU; get_pp_indices + min blocks over stages)")
    return w, act, st.layers, note
