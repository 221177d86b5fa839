"""The memory estimator: what the engine will allocate on each GPU, from the headers alone.

``compute(facts, target, catalog)`` returns an :class:`~checker.model.Estimate` (or None when the model
kind or engine has no memory model, or no GPU is declared). It is pure arithmetic: vLLM's accounting per
version lives in :mod:`checker.estimate.vllm`, llama.cpp / SGLang / diffusion / TTS in
:mod:`checker.estimate.simple`. Every figure that rests on an assumption records it in
``Estimate.assumptions``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from checker.estimate import vllm as V
from checker.estimate.geometry import (
    GIB,
    Geometry,
    geometry_from_config,
    geometry_from_gguf,
)
from checker.model import Estimate, ModelFacts, Target

__all__ = ["GIB", "compute", "compute_vllm", "estimate_memory_block", "format_memory_text", "geometry", "is_llm"]


def geometry(facts: ModelFacts) -> Geometry | None:
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


def compute(facts: ModelFacts, target: Target, catalog: Any = None, *, fixes: bool = True) -> Estimate | None:
    """The memory estimate for this model on this target, or None when there is nothing to model.

    ``fixes=False`` skips the search for the settings that would make a failing start work (the
    planner asks only "does it start?" for every catalog instance)."""
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
    est = _compute(facts, target, catalog, fixes)
    return replace(est, assumptions=(note, *est.assumptions)) if est is not None and note else est


def _compute(facts: ModelFacts, target: Target, catalog: Any, fixes: bool) -> Estimate | None:
    gpu = target.gpu
    engine = _engine_of(facts, target)
    try:
        if engine == "vllm" and facts.kind in ("hf-llm", "unknown", "custom") and facts.config is not None:
            return compute_vllm(facts, target, fixes=fixes)
        if engine == "vllm" and facts.kind == "gguf":
            # vLLM serves a GGUF file with its own budget (util x total, paged KV), not llama.cpp's
            est = compute_vllm(facts, target, fixes=fixes)
            if est is not None:
                return est
        from checker.estimate import simple as E

        if engine in ("llama.cpp", "llamacpp", "ollama") or (facts.kind == "gguf" and engine == "vllm"):
            return E.llama_cpp(facts, target)
        if engine == "sglang" and facts.config is not None:
            return E.sglang(facts, target)
        if facts.kind in ("diffusion", "tts") and _image_serves(target, facts.kind):
            return E.diffusion(facts, target) if facts.kind == "diffusion" else E.tts(facts, target)
    except (ValueError, TypeError, ZeroDivisionError):
        # odd engine args or configs: the rules that own them report it; no estimate beats a wrong one
        return None
    return None


def compute_vllm(
    facts: ModelFacts, target: Target, args_override: dict[str, Any] | None = None, *, fixes: bool = True
) -> Estimate | None:
    geo = geometry(facts)
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
        from checker.estimate.vision import vision_geometry

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
    if weights_total != checkpoint_total:
        notes.append(f"weights load in {dname}: {checkpoint_total / GIB:.2f} GiB on disk -> "
                     f"{weights_total / GIB:.2f} GiB on the GPU")
    tp, pp = s.tensor_parallel_size, s.pipeline_parallel_size
    ranks = tp * pp
    weights_gpu = weights_total // ranks + V.LOAD_OVERHEAD
    usable = int(total * s.gpu_memory_utilization)
    fwd = V.forward_activation_bytes(geo, s.max_num_batched_tokens, tp, dbytes)
    rows = s.sampler_rows or min(s.max_num_seqs, s.max_num_batched_tokens)
    smp = V.sampler_bytes(geo, rows, s.sampler_bytes_per_logit)
    if s.engine == "V1":
        # profile_run keeps the batch's hidden states alive while the sampler runs (gpu_model_runner.py)
        activation = max(fwd, s.max_num_batched_tokens * geo.hidden_size * dbytes + smp)
    else:
        activation = max(fwd, smp) if not s.chunked_prefill else fwd + smp
    non_torch = s.non_torch_bytes
    encoder_bytes = 0
    if geo.multimodal and s.engine == "V1" and vision is not None:
        from checker.estimate.vision import encoder_profile

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
    kv_avail = usable - weights_gpu - activation - non_torch - reserved_cg
    layout = V.kv_layout(geo, s, dbytes)
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
        "engine_version": ".".join(map(str, s.version)) if s.version else None,
        "vllm_engine": s.engine,
        "status": status,
        "failure": reason,
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
    )
    if with_fixes and status == "fail":
        est = replace(est, extra={**extra, **_vllm_fixes(geo, checkpoint_total, weights_dtype, total, gpu_name, cc,
                                                         gpu_count, args, version, s, weights_by_dtype,
                                                         vision)})
    return est


def _vllm_fixes(geo: Geometry, weights_total: int, weights_dtype: str | None, total: int, gpu_name: str,
                cc: int | None, gpu_count: int, args: dict[str, Any], version: tuple[int, ...] | None,
                s: V.VllmSettings, weights_by_dtype: dict[str, int] | None = None,
                vision: Any = None) -> dict[str, Any]:
    """Re-run the arithmetic with one setting changed: the largest max_model_len, the smallest util."""

    def run(**over: Any) -> Estimate:
        return _vllm_estimate(geo, weights_total, weights_dtype, total, gpu_name, cc, gpu_count,
                              {**args, **over}, version, with_fixes=False, weights_by_dtype=weights_by_dtype,
                              vision=vision)

    fixes: dict[str, Any] = {}
    # largest max_model_len (multiple of the block size) that starts; activation can depend on it (V0)
    lo, hi = 0, (s.max_model_len or 0) // s.block_size
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if run(max_model_len=mid * s.block_size).extra["status"] == "ok":
            lo = mid
        else:
            hi = mid - 1
    fixes["fit_max_model_len"] = lo * s.block_size if lo else None
    # smallest gpu_memory_utilization (0.01 steps) that starts at the requested max_model_len
    fixes["min_gpu_memory_utilization"] = None
    for pct in range(int(s.gpu_memory_utilization * 100) + 1, 100):
        if run(gpu_memory_utilization=pct / 100, max_model_len=s.max_model_len).extra["status"] == "ok":
            fixes["min_gpu_memory_utilization"] = pct / 100
            break
    # smallest tensor-parallel size that divides the heads and starts (within the GPUs the target has)
    fixes["fit_tensor_parallel_size"] = None
    for tp in (2, 4, 8, 16):
        if tp <= s.tensor_parallel_size or geo.num_heads % tp:
            continue
        if run(tensor_parallel_size=tp, max_model_len=s.max_model_len).extra["status"] == "ok":
            fixes["fit_tensor_parallel_size"] = tp
            break
    return fixes


# -- output ------------------------------------------------------------------------------------------


def estimate_memory_block(est: Estimate | None) -> dict[str, Any] | None:
    """The JSON ``memory`` block (DESIGN.md contract)."""
    if est is None:
        return None
    x = est.extra
    if not is_llm(est):
        return _non_llm_block(est)
    block: dict[str, Any] = {
        "engine": est.engine,
        "engine_version": x.get("engine_version"),
        "status": x.get("status"),
        "weights_bytes": est.weights_bytes,
        "weights_bytes_per_gpu": est.weights_bytes_per_gpu,
        "kv_cache_bytes_per_token": est.kv_cache_bytes_per_token,
        "kv_cache_bytes": est.kv_cache_bytes,
        "kv_cache_tokens": est.kv_cache_tokens,
        "max_concurrency": est.max_concurrency,
        "max_model_len": est.max_model_len,
        "gpu_memory_utilization": est.gpu_memory_utilization,
        "total_vram_bytes": est.total_vram_bytes,
        "usable_bytes": est.usable_bytes,
        "activation_bytes": est.activation_bytes,
        "non_torch_bytes": est.non_torch_bytes,
        "cuda_graph_bytes": est.cuda_graph_bytes,
        "block_size": est.block_size,
        "assumptions": list(est.assumptions),
    }
    for key in ("vllm_engine", "num_gpu_blocks", "max_num_seqs", "max_num_batched_tokens", "tensor_parallel_size",
                "pipeline_parallel_size", "kv_cache_dtype", "failure", "fit_max_model_len",
                "min_gpu_memory_utilization", "fit_tensor_parallel_size", "gpu_layers", "total_layers",
                "mem_fraction_static"):
        if key in x:
            block[key] = x[key]
    return block


def is_llm(est: Estimate) -> bool:
    """Whether the estimate has a KV cache (LLM engines); diffusion / TTS pipelines have none."""
    return bool(est.extra.get("llm", True))


def _non_llm_block(est: Estimate) -> dict[str, Any]:
    """Diffusion / TTS: weights + activation + overhead against the GPU; the LLM-only fields are null."""
    x = est.extra
    need = est.weights_bytes_per_gpu + est.activation_bytes + est.non_torch_bytes
    return {
        "engine": est.engine, "engine_version": x.get("engine_version"), "status": x.get("status"),
        "weights_bytes": est.weights_bytes, "weights_bytes_per_gpu": est.weights_bytes_per_gpu,
        "kv_cache_bytes_per_token": None, "kv_cache_bytes": None, "kv_cache_tokens": None,
        "max_concurrency": None, "max_model_len": None, "gpu_memory_utilization": None,
        "total_vram_bytes": est.total_vram_bytes, "usable_bytes": None, "activation_bytes": est.activation_bytes,
        "non_torch_bytes": est.non_torch_bytes, "cuda_graph_bytes": None, "block_size": None,
        "needed_bytes": need, "spare_bytes": est.total_vram_bytes - need,
        "assumptions": list(est.assumptions),
        **({"failure": x["failure"]} if "failure" in x else {}),
    }


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def format_memory_text(est: Estimate | None) -> list[str]:
    """A readable breakdown for the text formatter (no trailing newlines)."""
    if est is None:
        return []
    x = est.extra
    ver = f" {x['engine_version']}" if x.get("engine_version") else ""
    eng = f" ({x['vllm_engine']})" if x.get("vllm_engine") else ""
    lines = [f"memory ({est.engine}{ver}{eng}, per GPU):"]
    if not is_llm(est):
        need = est.weights_bytes_per_gpu + est.activation_bytes + est.non_torch_bytes
        lines.append(f"  weights {_gib(est.weights_bytes_per_gpu)} + activation {_gib(est.activation_bytes)}"
                     f" + CUDA context {_gib(est.non_torch_bytes)} = {_gib(need)} of {_gib(est.total_vram_bytes)}"
                     f" ({_gib(est.total_vram_bytes - need)} spare)")
        if x.get("status") == "fail":
            lines.append(f"  predicted start-up: FAIL ({x.get('failure')})")
        lines.extend(f"  assumes: {a}" for a in est.assumptions)
        return lines
    lines.append(f"  total {_gib(est.total_vram_bytes)} x util {est.gpu_memory_utilization:g} = "
                 f"{_gib(est.usable_bytes)} usable")
    lines.append(f"  weights {_gib(est.weights_bytes_per_gpu)} (model {_gib(est.weights_bytes)})"
                 f" + activation {_gib(est.activation_bytes)} + non-torch {_gib(est.non_torch_bytes)}"
                 + (f" + CUDA graphs {_gib(est.cuda_graph_bytes)}" if x.get("cuda_graphs_reserved") else ""))
    lines.append(f"  KV cache {_gib(est.kv_cache_bytes)} at {est.kv_cache_bytes_per_token} B/token"
                 f" = {est.kv_cache_tokens} tokens")
    if est.max_model_len:
        conc = f"{est.max_concurrency:.2f}x" if est.max_concurrency is not None else "n/a"
        lines.append(f"  max_model_len {est.max_model_len}: max concurrency {conc}")
    if x.get("status") == "fail":
        lines.append(f"  predicted start-up: FAIL ({x.get('failure')})")
    for a in est.assumptions:
        lines.append(f"  assumes: {a}")
    return lines
