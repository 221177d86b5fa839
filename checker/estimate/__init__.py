"""The memory estimator: what the engine will allocate on each GPU, from the headers alone.

``compute(facts, target, catalog)`` returns an :class:`~modelcheck.model.Estimate` (or None when the model
kind or engine has no memory model, or no GPU is declared). It is pure arithmetic: vLLM's accounting per
version lives in :mod:`modelcheck.estimate.vllm`, llama.cpp / SGLang / diffusion / TTS in
:mod:`modelcheck.estimate.simple`. Every figure that rests on an assumption records it in
``Estimate.assumptions``.
"""

from __future__ import annotations

from typing import Any

from modelcheck.estimate import vllm as V
from modelcheck.estimate.geometry import (
    DTYPE_BYTES,
    GIB,
    Geometry,
    geometry_from_config,
    geometry_from_gguf,
)
from modelcheck.memo import last_answer
from modelcheck.model import Estimate, Fixes, ModelFacts, Target
from modelcheck.record import replace

__all__ = ["GIB", "compute", "compute_vllm", "geometry"]


@last_answer
def geometry(facts: ModelFacts) -> Geometry | None:
    """The model's shape for the memory arithmetic (asked once per estimate: remembered per facts)."""
    if facts.gguf:
        geo = geometry_from_gguf(facts.gguf[0].metadata)
        if geo:
            return geo
    return geometry_from_config(facts.config, facts.text_config)


def _quantized(geo: Geometry, args: dict[str, Any]) -> bool:
    q = str(args.get("quantization") or geo.quant_method or "").lower()
    return bool(q) and q not in ("none", "auto") or geo.source == "gguf"


def _engine_of(facts: ModelFacts, target: Target) -> str | None:
    engine = target.engine
    if engine:
        return engine
    if facts.kind == "gguf":
        return "llama.cpp"
    if facts.kind in ("hf-llm",):
        return "vllm"
    if facts.kind in ("diffusion", "tts"):
        return facts.kind
    return None


# image categories (catalog images.yaml) that serve a non-LLM kind: its own category, or a general-purpose
# image running the user's own code (pytorch, triton)
_SERVES = {"diffusion": ("image-generation", "general"), "tts": ("tts", "general")}


def _image_serves(target: Target, kind: str) -> bool:
    """A diffusion / TTS memory figure only means something on an image that serves that kind (or when no
    image is declared): on an LLM image the IMG rules already fail the deployment."""
    img = target.image
    return img is None or img.category in _SERVES.get(kind, ())


def compute(facts: ModelFacts, target: Target, view: Any = None, *, fixes: bool = True) -> Estimate | None:
    """The memory estimate for this model on this target, or None when there is nothing to model.

    ``view``: what the engine derives from the model (modelcheck.engines.view), when known. ``fixes=False``
    skips the search for the settings that would make a failing start work (the planner asks only
    "does it start?" for every catalog instance)."""
    gpu = target.gpu
    if gpu is None or gpu.memory_bytes <= 0:
        return None
    # Unknown is not zero: no figure without the weights' size; a declared size is used and said so.
    w = facts.weights
    if w.figure_bytes is None:
        return None
    note = None
    if not w.complete:
        facts = replace(facts, weights=replace(w, total_bytes=w.figure_bytes))
        note = (f"weights {w.figure_bytes / GIB:.2f} GiB as declared by {w.declared_source}, not read "
                f"({len(w.unread)} weight file(s) not readable here)")
    est = _compute(facts, target, view, fixes)
    return replace(est, assumptions=(note, *est.assumptions)) if est is not None and note else est


def _compute(facts: ModelFacts, target: Target, view: Any, fixes: bool) -> Estimate | None:
    engine = _engine_of(facts, target)
    try:
        if engine == "vllm" and facts.kind in ("hf-llm", "unknown", "custom") and facts.config is not None:
            return compute_vllm(facts, target, fixes=fixes, view=view)
        if engine == "vllm" and facts.kind == "gguf":
            # vLLM serves a GGUF file with its own budget (util x total, paged KV), not llama.cpp's
            est = compute_vllm(facts, target, fixes=fixes)
            if est is not None:
                return est
        from modelcheck.estimate import simple as E

        if engine in ("llama.cpp", "llamacpp", "ollama") or (facts.kind == "gguf" and engine == "vllm"):
            return E.llama_cpp(facts, target, fixes=fixes)
        if engine == "sglang" and facts.config is not None:
            return E.sglang(facts, target, fixes=fixes)
        if facts.kind in ("diffusion", "tts") and _image_serves(target, facts.kind):
            return E.diffusion(facts, target) if facts.kind == "diffusion" else E.tts(facts, target)
    except (ValueError, TypeError, ZeroDivisionError):
        # odd engine args or configs: the rules that own them report it; no estimate beats a wrong one
        return None
    return None


def compute_vllm(
    facts: ModelFacts, target: Target, args_override: dict[str, Any] | None = None, *, fixes: bool = True,
    view: Any = None,
) -> Estimate | None:
    from modelcheck import engines
    from modelcheck.estimate.geometry import with_view

    geo = geometry(facts)
    if geo is not None and target.engine in (None, "vllm"):
        geo = with_view(geo, view if view is not None else engines.view(facts, target))
    gpu = target.gpu
    if geo is None or gpu is None:
        return None
    args = {**target.engine_args, **(args_override or {})}
    version = target.image.version_tuple if target.image else None
    cc = gpu.cc_int if gpu.compute_capability else None
    if cc is None and not gpu.bf16:
        cc = 75  # a GPU declared without bfloat16: what vLLM's platform check sees on T4-class cards
    vision = None
    if geo.multimodal:
        from modelcheck.estimate.vision import vision_geometry

        vision = vision_geometry(facts.config, facts.json_files.get("preprocessor_config.json"), geo.hidden_size)
    return _vllm_estimate(geo, facts.weights.total_bytes, facts.weights.dominant_dtype, gpu.memory_bytes,
                          gpu.name, cc, target.gpu_count, args, version, with_fixes=fixes,
                          weights_by_dtype=dict(facts.weights.dtype_bytes or {}), vision=vision)


def _vllm_estimate(
    geo: Geometry, weights_total: int, weights_dtype: str | None, total: int, gpu_name: str,
    cc: int | None, gpu_count: int, args: dict[str, Any], version: tuple[int, ...] | None,
    with_fixes: bool = True, weights_by_dtype: dict[str, int] | None = None, vision: Any = None,
) -> Estimate:
    s = V.resolve_settings(args, version, geo, total, gpu_name, cc)
    notes = list(s.assumptions)
    dt = V.resolve_dtype(args, s.version or (0, 21, 0), geo.dtype, geo.model_type, weights_dtype,
                         bf16_ok=cc is None or cc >= 80)
    dbytes, dname = dt.bytes, dt.name
    if dt.note:
        notes.append(dt.note)
    checkpoint_total = weights_total
    weights_total = V.loaded_weight_bytes(weights_total, weights_by_dtype or {}, weights_dtype, dbytes,
                                          _quantized(geo, args))
    weights_total, load_notes = V.load_adjustments(geo, args, weights_total, dbytes, s.version or (0, 21, 0), cc,
                                                   s.tensor_parallel_size, weights_dtype)
    notes.extend(load_notes)
    if weights_total != checkpoint_total:
        notes.append(f"weights load in {dname}: {checkpoint_total / GIB:.2f} GiB on disk -> "
                     f"{weights_total / GIB:.2f} GiB on the GPU")
    tp, pp = s.tensor_parallel_size, s.pipeline_parallel_size
    ranks = tp * pp
    weights_gpu = weights_total // ranks + V.LOAD_OVERHEAD
    usable = int(total * s.gpu_memory_utilization)
    fwd = V.forward_activation_bytes(geo, s.max_num_batched_tokens, tp, dbytes)
    rows = s.sampler_rows or min(s.max_num_seqs, s.max_num_batched_tokens)
    smp = V.sampler_bytes(geo, rows, s.sampler_bytes_per_logit, s.sampler_scratch_rows)
    if s.engine == "V1":
        # profile_run keeps the batch's hidden states alive while the sampler runs (gpu_model_runner.py)
        activation = max(fwd, s.max_num_batched_tokens * geo.hidden_size * dbytes + smp)
    else:
        activation = max(fwd, smp) if not s.chunked_prefill else fwd + smp
    non_torch = s.non_torch_bytes
    encoder_bytes = 0
    if geo.multimodal and s.engine == "V1" and vision is not None:
        from modelcheck.estimate.vision import encoder_profile

        # profile_run: encoder forward first, its outputs stay cached through the text forward + sampler
        ep = encoder_profile(vision, s.max_num_batched_tokens, s.max_num_seqs, s.max_model_len, tp, dbytes)
        text_peak = activation
        activation = max(ep.encoder_peak_bytes, ep.held_bytes + text_peak)
        encoder_bytes = activation - text_peak
        notes.append(ep.note)
    elif geo.multimodal and s.engine == "V1":
        notes.append(f"multimodal ({geo.model_type or 'unknown'}): the vision encoder's profiling pass is not "
                     "modelled for this family (typically adds 0.1-2 GiB)")
    elif geo.multimodal:
        notes.append("multimodal (V0): the vision encoder runs inside the profiled forward and is not modelled "
                     "(0.1-0.3 GiB observed for Qwen2-VL-class models)")
    cg = V.cudagraph_bytes(geo, s)
    reserved_cg = cg if s.cudagraphs_reserved else 0
    stage_layers = None
    if pp > 1 and not (geo.sliding_window and geo.sliding_layers):
        # pipeline stages differ in layers, embeddings and sampling: the tightest one sets the block count
        per_layer = V.layer_kv_bytes_per_token(geo, tp, V.kv_dtype_bytes(s.kv_cache_dtype, dbytes)) * s.block_size
        weights_gpu, activation, stage_layers, pp_note = V.binding_pp_stage(
            geo, s, weights_total, activation, fwd, usable - non_torch - reserved_cg, per_layer)
        notes.append(pp_note)
    kv_avail = usable - weights_gpu - activation - non_torch - reserved_cg
    layout = V.kv_layout(geo, s, dbytes, layers=stage_layers)
    if layout.note:
        notes.append(layout.note)
    num_blocks = max(0, kv_avail) // layout.page_bytes_per_block if layout.page_bytes_per_block else 0
    # kv_cache_utils.py: printed tokens = num_blocks // groups * block_size; concurrency = num_blocks /
    # blocks one max_model_len request needs over all groups (get_max_concurrency_for_kv_cache_config)
    kv_tokens = num_blocks // layout.groups * s.block_size
    concurrency = num_blocks / layout.blocks_per_request if s.max_model_len else None
    if weights_gpu > usable:
        status, reason = "fail", "weights-exceed"
    elif kv_avail <= 0:
        status, reason = "fail", "no-kv-memory"
    elif concurrency is not None and concurrency < 1.0:
        status, reason = "fail", "max-model-len-exceeds-kv"
    else:
        status, reason = "ok", None
    extra: dict[str, Any] = {
        "vllm_engine": s.engine,
        "num_gpu_blocks": num_blocks,
        "max_num_seqs": s.max_num_seqs,
        "max_num_batched_tokens": s.max_num_batched_tokens,
        "chunked_prefill": s.chunked_prefill,
        "tensor_parallel_size": tp,
        "pipeline_parallel_size": pp,
        "kv_cache_dtype": s.kv_cache_dtype,
        "model_dtype": dname,
        "checkpoint_weights_bytes": checkpoint_total,
        "cuda_graphs_reserved": s.cudagraphs_reserved,
        "sampler_bytes": smp,
        "encoder_profile_bytes": encoder_bytes,
        "forward_bytes": fwd,
        "gpus_needed": ranks,
        "gpus_available": gpu_count,
        "kv_bytes_per_request": layout.blocks_per_request * layout.page_bytes_per_block,
    }
    if ranks > max(1, gpu_count):
        notes.append(f"tensor x pipeline parallel = {ranks} ranks but the target has {gpu_count} GPU(s)")
    notes.append(f"total GPU memory {total / GIB:.2f} GiB as the driver reports it")
    notes.append("non-torch memory and CUDA-graph pools are typical values, not measured")
    est = Estimate(
        engine="vllm", weights_bytes=weights_total, weights_bytes_per_gpu=weights_gpu, total_vram_bytes=total,
        gpu_memory_utilization=s.gpu_memory_utilization, usable_bytes=usable, activation_bytes=activation,
        non_torch_bytes=non_torch, cuda_graph_bytes=cg, kv_cache_bytes=kv_avail,
        kv_cache_bytes_per_token=layout.bytes_per_token, kv_cache_tokens=kv_tokens,
        max_model_len=s.max_model_len, max_concurrency=round(concurrency, 2) if concurrency is not None else None,
        block_size=s.block_size, assumptions=tuple(dict.fromkeys(notes)),
        inputs={k: v for k, v in args.items() if v is not None}, extra=extra,
        status=status, failure=reason, engine_version=".".join(map(str, s.version)) if s.version else None,
    )
    if with_fixes and status == "fail":
        est = replace(est, fixes=_vllm_fixes(geo, checkpoint_total, weights_dtype, total, gpu_name, cc, gpu_count,
                                             args, version, s, weights_by_dtype, vision,
                                             weights_gpu=weights_gpu if pp == 1 else None))
    return est


def _vllm_fixes(geo: Geometry, weights_total: int, weights_dtype: str | None, total: int, gpu_name: str,
                cc: int | None, gpu_count: int, args: dict[str, Any], version: tuple[int, ...] | None,
                s: V.VllmSettings, weights_by_dtype: dict[str, int] | None = None,
                vision: Any = None, *, weights_gpu: int | None = None) -> Fixes:
    """Re-run the arithmetic with one setting changed; a setting is offered only if that run starts.

    ``weights_gpu``: the weights each GPU holds (one pipeline stage). Where they alone exceed what a setting
    leaves usable, that setting cannot start whatever else it changes (the estimate fails "weights-exceed"
    first), so it is not re-run: a 405B model on one GPU tries 4 settings, not 27."""
    weights_fit = weights_gpu is None or weights_gpu <= int(total * s.gpu_memory_utilization)

    def starts(**over: Any) -> bool:
        return _vllm_estimate(geo, weights_total, weights_dtype, total, gpu_name, cc, gpu_count,
                              {**args, **over}, version, with_fixes=False, weights_by_dtype=weights_by_dtype,
                              vision=vision).status == "ok"

    def holds_weights(util: float) -> bool:
        return weights_gpu is None or weights_gpu <= int(total * util)

    # largest max_model_len (multiple of the block size) that starts; activation can depend on it (V0)
    lo, hi = 0, (s.max_model_len or 0) // s.block_size if weights_fit else 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts(max_model_len=mid * s.block_size):
            lo = mid
        else:
            hi = mid - 1
    # smallest gpu_memory_utilization (0.01 steps) that starts at the requested max_model_len
    util = next((pct / 100 for pct in range(int(s.gpu_memory_utilization * 100) + 1, 100)
                 if holds_weights(pct / 100) and starts(gpu_memory_utilization=pct / 100, max_model_len=s.max_model_len)),
                None)
    # smallest tensor-parallel size that divides the heads and starts
    tp = next((n for n in (2, 4, 8, 16) if n > s.tensor_parallel_size and not geo.num_heads % n
               and starts(tensor_parallel_size=n, max_model_len=s.max_model_len)), None)
    # a smaller profiling batch: vLLM 0.8.x warms the sampler up with max_num_seqs sequences ("try lowering
    # max_num_seqs"); only when the weights fit at all
    seqs = None
    if weights_fit:
        seqs = next((n for n in (256, 128, 64) if n < s.max_num_seqs and starts(max_num_seqs=n)), None)
    # an FP8 KV cache (half the bytes per token) at the requested max_model_len. vLLM stores it on Ampere and
    # newer: vllm/v1/attention/backends/triton_attn.py@0.32.0 lists fp8 in supported_kv_cache_dtypes (the
    # selector takes it where FlashAttention's own fp8 KV, FA3 on Hopper, is missing: flash_attn.py@0.32.0
    # supports_kv_cache_dtype); before Ampere it is not offered
    kv_fp8 = None
    # only when the cache is wider than a byte now ("auto": the model's dtype; a dtype we hold no width for: no)
    kv = str(s.kv_cache_dtype or "auto").lower()
    if weights_fit and (kv == "auto" or DTYPE_BYTES.get(kv, 0) > 1) and (cc or 0) >= 80 \
            and starts(kv_cache_dtype="fp8", max_model_len=s.max_model_len):
        kv_fp8 = "fp8"
    return Fixes(max_model_len=lo * s.block_size if lo else None, gpu_memory_utilization=util, kv_cache_dtype=kv_fp8,
                 tensor_parallel_size=tp, max_num_seqs=seqs)
