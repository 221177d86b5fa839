"""Memory models for the engines other than vLLM, each with its assumptions stated.

- llama.cpp (GGUF): weights as stored in the file, f16 KV cache for the context, a compute buffer for one
  512-token micro-batch, ~0.3 GiB CUDA context; which context, how many layers on the GPU and what --fit
  changes come from :mod:`modelcheck.engines.llamacpp` (per build).
- SGLang: ``--mem-fraction-static`` (default per release, GPU size and TP from :mod:`modelcheck.engines.sglang`)
  x free memory holds weights + KV pool; activations live outside that fraction; KV pool in tokens (page
  size 1); a pool smaller than the context length clamps the request length (the server starts).
- Diffusion: weights + the largest activation at the default resolution (a per-family figure).
- TTS: weights + ~1 GiB of runtime buffers (vocoder, flow matching).
"""

from __future__ import annotations

from typing import Any

from modelcheck.estimate.geometry import (
    GIB,
    geometry_from_config,
    geometry_from_gguf,
    kv_dtype_bytes,
    layer_kv_bytes_per_token,
)
from modelcheck.model import Estimate, Fixes, ModelFacts, Target
from modelcheck.record import replace

CUDA_CONTEXT = int(0.3 * GIB)
# torch CUDA context (+ NCCL buffers at TP > 1) taken before SGLang measures its free memory (model_runner.py
# init_torch_distributed -> min_per_gpu_memory); a typical figure, not measured
SGLANG_CONTEXT = int(0.5 * GIB)
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


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def llama_cpp(facts: ModelFacts, target: Target, *, fixes: bool = True) -> Estimate | None:
    """llama-server: modelcheck.engines.llamacpp decides context, offload and --fit; this adds the bytes."""
    from modelcheck.engines import llamacpp as L

    total, args = _common(target)
    geo = geometry_from_gguf(facts.gguf[0].metadata) if facts.gguf else None
    if geo is None or not facts.weights.tensor_count:
        return None  # no tensors (vocab-only GGUF): nothing is loaded, no memory figure
    build = L.build_number(target.image.version if target.image else None)
    d = L.defaults(build)
    weights = facts.weights.total_bytes
    requested_ctx = _opt_int(args.get("ctx_size") if args.get("ctx_size") is not None else args.get("max_model_len"))
    requested_ngl = _opt_int(args.get("n_gpu_layers"))
    fit = args.get("fit")
    fit = None if fit is None else str(fit).lower() not in ("off", "false", "0", "no")
    kvb = kv_dtype_bytes(args.get("kv_cache_dtype") or args.get("cache_type_k"), 2)
    per_token = layer_kv_bytes_per_token(geo, 1, kvb) * geo.num_layers
    compute_buf = LLAMA_CPP_UBATCH * (geo.vocab_size + 4 * geo.hidden_size) * 4
    gpus = max(1, target.gpu_count)
    free = total * gpus - CUDA_CONTEXT * gpus
    plan = L.plan(weights, geo.num_layers, per_token, compute_buf, free, geo.max_len, requested_ctx, requested_ngl,
                  fit, build, gpus)
    ctx = plan.n_ctx
    usable = free - (L.FIT_MARGIN * gpus if (d.fit if fit is None else fit) else 0)
    avail_kv = usable - weights - compute_buf
    kv_tokens = max(0, avail_kv) // per_token if per_token else 0
    status = "fail" if plan.status == "fail" else "ok"
    failure = None
    if status == "fail":
        failure = "weights-exceed" if weights > usable else "no-kv-memory"
    before, how = L.context(geo.max_len, requested_ctx, build)
    notes = [f"llama.cpp ({d.era} defaults): context {before} from {how}", plan.message,
             (f"KV cache {kvb * 8}-bit over {geo.num_layers} layers; compute buffer for a {LLAMA_CPP_UBATCH}-token "
              "micro-batch; CUDA context ~0.3 GiB per GPU")]
    if d.note:
        notes.append(d.note)
    est = Estimate(
        engine="llama.cpp", weights_bytes=weights, weights_bytes_per_gpu=-(-weights // gpus), total_vram_bytes=total,
        gpu_memory_utilization=round(usable / (total * gpus), 3), usable_bytes=usable // gpus,
        activation_bytes=compute_buf, non_torch_bytes=CUDA_CONTEXT, cuda_graph_bytes=0, kv_cache_bytes=avail_kv // gpus,
        kv_cache_bytes_per_token=per_token // gpus, kv_cache_tokens=int(kv_tokens), max_model_len=ctx,
        max_concurrency=round(kv_tokens / ctx, 2) if ctx else None, block_size=1,
        assumptions=tuple(notes), inputs=args,
        extra={"offload": plan.status, "offload_message": plan.message,
               "gpu_layers": plan.gpu_layers, "total_layers": plan.total_layers, "fitted": plan.fitted,
               "requested_context": requested_ctx, "model_context": geo.max_len,
               "context_before_fit": before},
        status=status, failure=failure, engine_version=target.image.version if target.image else None,
    )
    if fixes and status == "fail":
        est = replace(est, fixes=_llama_cpp_fixes(facts, target, est))
    return est


def _with_args(target: Target, **over: Any) -> Target:
    return replace(target, engine_args={**target.engine_args, **over})


def _llama_cpp_fixes(facts: ModelFacts, target: Target, est: Estimate) -> Fixes:
    """-c values (256 steps) with which llama-server's allocation succeeds, each re-planned; -ngl in extra."""
    lo, hi = 0, (est.extra.get("context_before_fit") or est.max_model_len or 0) // 256
    while lo < hi:
        mid = (lo + hi + 1) // 2
        alt = llama_cpp(facts, _with_args(target, ctx_size=mid * 256, max_model_len=mid * 256), fixes=False)
        if alt is not None and alt.status == "ok" and alt.extra.get("offload") != "partial-offload":
            lo = mid
        else:
            hi = mid - 1
    if target.engine_args.get("n_gpu_layers") is not None:
        for n in range(int(est.extra.get("total_layers") or 0), 0, -1):
            alt = llama_cpp(facts, _with_args(target, n_gpu_layers=n), fixes=False)
            if alt is not None and alt.status == "ok":
                est.extra["fit_n_gpu_layers"] = n
                break
    return Fixes(max_model_len=lo * 256 or None)


def _sglang_weights(facts: ModelFacts, config: dict[str, Any] | None, dtype: str | None) -> int:
    """Weights as loaded: float32 tensors cast to the 16-bit model dtype under --dtype auto
    (sglang/srt/configs/model_config.py@0.5.8 _get_and_verify_dtype)."""
    from modelcheck.engines import sglang as S

    total = facts.weights.total_bytes
    f32 = int((facts.weights.dtype_bytes or {}).get("F32", 0))
    if f32 and S.model_dtype_bytes(config, dtype) == 2:
        total -= f32 // 2
    return total


def sglang(facts: ModelFacts, target: Target, *, fixes: bool = True) -> Estimate | None:
    """SGLang's accounting (modelcheck.engines.sglang): the KV pool is what mem_fraction_static leaves after the
    weights; a pool smaller than the context length clamps the request length instead of failing."""
    from modelcheck.engines import sglang as S

    total, args = _common(target)
    geo = geometry_from_config(facts.config, facts.text_config)
    if geo is None or not isinstance(facts.config, dict):
        return None
    version = target.image.version_tuple if target.image else None
    tp = int(args.get("tensor_parallel_size") or args.get("tp_size") or 1)
    pp = int(args.get("pipeline_parallel_size") or 1)
    notes: list[str] = []
    archs = [a for a in (facts.config.get("architectures") or []) if isinstance(a, str)]
    # model_config.py@0.5.8: multimodal is off by default for these (vision tower not loaded)
    mm = geo.multimodal and not set(archs) & {"Gemma3ForConditionalGeneration", "Llama4ForConditionalGeneration",
                                              "Step3VLForConditionalGeneration"}
    frac = args.get("mem_fraction_static")
    if frac is None:
        mf = S.mem_fraction_static(total, version, tp, pp, _opt_int(args.get("chunked_prefill_size")),
                                   facts.config.get("vision_config"), mm)
        frac = mf.value
        notes.append(mf.note)
    frac = float(frac)
    dbytes = S.model_dtype_bytes(facts.config, args.get("dtype"))
    kvb = kv_dtype_bytes(args.get("kv_cache_dtype"), dbytes)
    layers = -(-(geo.attention_layers or geo.num_layers) // pp)
    per_token = layer_kv_bytes_per_token(geo, tp, kvb) * layers
    weights = _sglang_weights(facts, facts.config, args.get("dtype"))
    weights_gpu = weights // (tp * pp)
    free = total - SGLANG_CONTEXT
    usable = int(free * frac)
    kv = usable - weights_gpu
    swa = geo.sliding_layers if set(archs) & S.HYBRID_SWA_ARCHS else 0
    tokens = S.pool_tokens(kv, per_token, layers, swa)
    requested = _opt_int(args.get("context_length") if args.get("context_length") is not None
                         else args.get("max_model_len"))
    cl = S.context_length(facts.config, version, requested, allow_longer=True)
    ctx_len = cl.value if cl else None
    notes.extend(cl.notes if cl else ())
    if weights_gpu > usable:
        status, failure = "fail", "weights-exceed"
    elif tokens <= 0:
        status, failure = "fail", "no-kv-memory"
    else:
        status, failure = "ok", None
    clamped = S.max_req_len(ctx_len, tokens) if ctx_len and tokens > 0 and tokens < ctx_len else None
    notes.append(f"SGLang: weights + KV pool inside mem_fraction_static x free memory (~{SGLANG_CONTEXT / GIB:.1f} GiB "
                 "CUDA context taken first); activations and CUDA graphs outside it; page size 1")
    if clamped:
        notes.append(f"the KV pool ({tokens} tokens) is smaller than the context length {ctx_len}: SGLang clamps "
                     f"the longest request to {clamped} tokens (tp_worker.py max_req_len) and starts")
    extra: dict[str, Any] = {
        "mem_fraction_static": frac, "tensor_parallel_size": tp, "pipeline_parallel_size": pp,
        "context_length": ctx_len, "context_length_derived": cl.derived if cl else None,
        "max_req_len": S.max_req_len(ctx_len, tokens) if ctx_len and tokens > 0 else None,
        "clamped_max_req_len": clamped, "clamps_to_kv": True,
    }
    est = Estimate(
        engine="sglang", weights_bytes=weights, weights_bytes_per_gpu=weights_gpu,
        total_vram_bytes=total, gpu_memory_utilization=frac, usable_bytes=usable, activation_bytes=0,
        non_torch_bytes=total - free, cuda_graph_bytes=0, kv_cache_bytes=kv, kv_cache_bytes_per_token=per_token,
        kv_cache_tokens=int(tokens), max_model_len=ctx_len,
        max_concurrency=round(tokens / ctx_len, 2) if ctx_len else None, block_size=1, assumptions=tuple(notes),
        inputs=args, extra=extra, status=status, failure=failure,
        engine_version=target.image.version if target.image else None,
    )
    if fixes and (status == "fail" or clamped):
        est = replace(est, fixes=_sglang_fixes(facts, target, est, geo.num_heads, full=bool(clamped)))
    return est


def _sglang_fixes(facts: ModelFacts, target: Target, est: Estimate, heads: int, full: bool) -> Fixes:
    """Settings with which SGLang starts (and, when the pool clamps the context, holds all of it), each
    re-estimated. ``max_model_len`` is the clamped length itself: --context-length states what clients get.
    ``gpu_memory_utilization`` is SGLang's --mem-fraction-static (0.01 steps, at most 0.95: above it nothing is
    left for activations and CUDA graphs)."""
    want = est.max_model_len if full else None

    def starts(**over: Any) -> bool:
        alt = sglang(facts, _with_args(target, **over), fixes=False)
        return alt is not None and alt.status == "ok" and (want is None or alt.kv_cache_tokens >= want)

    frac = next((pct / 100 for pct in range(round(est.gpu_memory_utilization * 100) + 1, 96)
                 if starts(mem_fraction_static=pct / 100)), None)
    tp_now = int(est.extra.get("tensor_parallel_size") or 1)
    tp = next((n for n in (2, 4, 8, 16) if n > tp_now and not heads % n and starts(tensor_parallel_size=n)), None)
    return Fixes(max_model_len=est.extra.get("clamped_max_req_len"), gpu_memory_utilization=frac,
                 tensor_parallel_size=tp)


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



