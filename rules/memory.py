"""MEM: will the model fit in GPU memory, with what context and concurrency (from checker.estimate)."""

from __future__ import annotations

from collections.abc import Iterator

from checker.rule import Context, Finding, Severity, rule

GIB = 1 << 30
KINDS = {"hf-llm", "gguf", "diffusion", "tts", "unknown", "custom"}
LLM_KINDS = {"hf-llm", "gguf", "unknown", "custom"}
MIN_USEFUL_MAX_MODEL_LEN = 1024  # below this a --max-model-len hint is not a fix


def _g(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def _where(ctx: Context) -> str:
    gpu = ctx.target.gpu
    n = ctx.target.gpu_count
    return f"{n}x {gpu.name}" if gpu else "the target"


def _instances_hint(ctx: Context) -> str:
    """The smallest catalog instances (same cloud and chip) where the model starts (Context.alternatives)."""
    # only instances that do better than this one: suggesting the same type (or a same-size sibling) fixes nothing
    here = ctx.target.instance.name if ctx.target.instance else None
    kv_here = ctx.estimate.kv_cache_tokens if ctx.estimate else 0
    rows = [r for r in ctx.alternatives if r.instance != here and r.kv_cache_tokens > kv_here][:3]
    if not rows:
        return ""
    parts = [f"{r.instance} ({r.gpu_count}x {r.gpu}, TP {r.tensor_parallel_size}, "
             f"{r.kv_cache_tokens} KV tokens)" for r in rows]
    return "; or deploy on " + ", ".join(parts)


def _model_limit(ctx: Context) -> int | None:
    """The model's own context limit as the engine derives it (the engine view), or None."""
    limit = getattr(ctx.view, "max_model_len", None) if ctx.view is not None else None
    value = getattr(limit, "value", limit)
    return value if isinstance(value, int) else None


def round_max_model_len(n: int) -> int:
    """The largest round length <= n users would type: a multiple of 1024, or of 256 below 4096."""
    step = 1024 if n >= 4096 else 256
    return n // step * step if n >= step else n


def _suggested_len(ctx: Context) -> tuple[int, int]:
    """(round --max-model-len to offer, exact largest that starts), both within the model's limit."""
    fit = (ctx.estimate.fixes.max_model_len if ctx.estimate.fixes else None) or 0
    limit = _model_limit(ctx)
    if limit and fit > limit:  # never advise more than the model allows (ENG011 would refuse it)
        fit = limit
    return round_max_model_len(fit), fit


def _fix_hint(ctx: Context, first: str = "") -> str:
    x = ctx.estimate.fixes
    fixes = [first] if first else []
    fit, _ = _suggested_len(ctx)
    # a context of a few hundred tokens serves nothing useful: then only memory/GPU fixes are offered
    if fit >= MIN_USEFUL_MAX_MODEL_LEN:
        fixes.append(f"--max-model-len {fit}")
    if x and x.gpu_memory_utilization:
        fixes.append(f"--gpu-memory-utilization {x.gpu_memory_utilization:.2f}")
    if x and x.max_num_seqs:
        fixes.append(f"--max-num-seqs {x.max_num_seqs}")
    tp = x.tensor_parallel_size if x else None
    if tp and tp <= ctx.target.gpu_count:
        fixes.append(f"--tensor-parallel-size {tp}")
    elif tp:
        fixes.append(f"--tensor-parallel-size {tp} on an instance with {tp} GPUs")
    hint = "use " + " or ".join(fixes) if fixes else "use a GPU with more memory"
    return hint + _instances_hint(ctx)


def _weights_path(ctx: Context) -> str | None:
    """The index of a sharded model (naming one shard would blame that shard), else the one weight file."""
    files = ctx.facts.weights.files
    if len(files) > 1:
        index = [f for f in ctx.facts.json_files if f.endswith((".safetensors.index.json", ".bin.index.json"))]
        return index[0] if index else None
    return files[0] if files else None


def _fp8_kv_helps(ctx: Context) -> bool:
    """An FP8 KV cache doubles the tokens: a fix only when not already FP8 and twice the tokens suffice."""
    est = ctx.estimate
    kv = str(ctx.target.engine_args.get("kv_cache_dtype") or "auto").lower()
    return kv in ("auto", "bfloat16") and est.max_model_len is not None and 2 * est.kv_cache_tokens >= est.max_model_len


def _data(ctx: Context) -> dict:
    from checker.summary import memory_block

    data = memory_block(ctx.estimate) or {}
    if ctx.estimate.fixes and ctx.estimate.fixes.max_model_len:
        # the hint offers a round length; the exact largest that starts stays in the data
        suggested, exact = _suggested_len(ctx)
        data["suggested_max_model_len"] = suggested
        data["exact_max_model_len"] = exact
    return data


@rule("MEM001", severity=Severity.ERROR, kinds=KINDS, needs={"estimate"})
def weights_exceed_vram(ctx: Context) -> Iterator[Finding]:
    """The weights alone do not fit in the GPU memory the engine may use.

    ## Why it matters
    The engine loads every weight before anything else; when the weights per GPU exceed
    total memory x gpu_memory_utilization the start-up fails with a CUDA out-of-memory error or
    "No available memory for the cache blocks", after minutes of download and load on a paid GPU.

    ## How to fix
    Split the model over more GPUs (--tensor-parallel-size), use a quantized checkpoint, or choose an
    instance with more GPU memory. The hint lists the smallest catalog instances where it fits.
    """
    est = ctx.estimate
    if est.weights_bytes_per_gpu <= est.usable_bytes:
        return
    yield Finding(
        f"weights take {_g(est.weights_bytes_per_gpu)} per GPU but {est.engine} may use only "
        f"{_g(est.usable_bytes)} ({_g(est.total_vram_bytes)} x {est.gpu_memory_utilization:g}) on {_where(ctx)}",
        path=_weights_path(ctx),
        hint=_fix_hint(ctx),
        data=_data(ctx),
    )


@rule("MEM002", severity=Severity.ERROR, kinds=LLM_KINDS, needs={"estimate"})
def no_kv_cache_memory(ctx: Context) -> Iterator[Finding]:
    """Nothing is left for the KV cache after weights, activations and runtime overheads.

    ## Why it matters
    vLLM profiles a forward pass and the sampler, subtracts weights, peak activation, non-torch and
    (from 0.21) CUDA-graph memory from total x gpu_memory_utilization, and refuses to start with
    "No available memory for the cache blocks" when nothing is left.

    ## How to fix
    Raise --gpu-memory-utilization, lower --max-num-seqs / --max-num-batched-tokens (smaller profiling
    pass), add GPUs with --tensor-parallel-size, or pick a larger instance.
    """
    est = ctx.estimate
    if est.weights_bytes_per_gpu > est.usable_bytes or est.kv_cache_bytes > 0 or not est.kv_cache_bytes_per_token:
        return
    yield Finding(
        f"no memory left for the KV cache on {_where(ctx)}: {_g(est.usable_bytes)} usable - weights "
        f"{_g(est.weights_bytes_per_gpu)} - activation {_g(est.activation_bytes)} - non-torch "
        f"{_g(est.non_torch_bytes)}"
        + (f" - CUDA graphs {_g(est.cuda_graph_bytes)}" if est.extra.get("cuda_graphs_reserved") else "")
        + f" = {_g(est.kv_cache_bytes)}",
        hint=_fix_hint(ctx),
        data=_data(ctx),
    )


@rule("MEM003", severity=Severity.ERROR, kinds=LLM_KINDS, needs={"estimate"})
def max_model_len_exceeds_kv_cache(ctx: Context) -> Iterator[Finding]:
    """max_model_len does not fit in the KV cache: one full-length request cannot be held.

    ## Why it matters
    vLLM checks at start-up that one request of max_model_len tokens fits and stops with "The model's
    max seq len (N) is larger than the maximum number of tokens that can be stored in KV cache (M)".
    Without --max-model-len it uses the model's own limit (often 128K), which rarely fits a 24 GB GPU.

    ## How to fix
    Pass the largest --max-model-len that fits (the hint gives it), raise --gpu-memory-utilization,
    use --kv-cache-dtype fp8, or add GPUs.
    """
    est = ctx.estimate
    if est.kv_cache_bytes <= 0 or est.weights_bytes_per_gpu > est.usable_bytes:
        return
    if est.max_model_len is None or est.max_concurrency is None or est.max_concurrency >= 1.0:
        return
    fit = ((est.fixes.max_model_len if est.fixes else None) or 0) >= MIN_USEFUL_MAX_MODEL_LEN
    yield Finding(
        f"max_model_len {est.max_model_len} is larger than the {est.kv_cache_tokens} tokens the KV cache "
        f"holds on {_where(ctx)} ({_g(est.kv_cache_bytes)} at {est.kv_cache_bytes_per_token} B/token)",
        path=None if "max_model_len" in ctx.target.engine_args else (
            "config.json:max_position_embeddings" if ctx.facts.kind != "gguf" else
            (ctx.facts.gguf[0].path if ctx.facts.gguf else None)),
        hint=_fix_hint(ctx) if fit or not _fp8_kv_helps(ctx) else _fix_hint(ctx, "--kv-cache-dtype fp8"),
        data=_data(ctx),
    )


@rule("MEM004", severity=Severity.WARNING, kinds=LLM_KINDS, needs={"estimate"},
      options={"min_concurrency": 2.0})
def low_concurrency(ctx: Context) -> Iterator[Finding]:
    """The KV cache holds fewer full-length requests than the configured floor.

    ## Why it matters
    A server whose KV cache holds about one request of max_model_len tokens starts, but queues or
    preempts every concurrent long request: latency grows with each user.

    ## How to fix
    Lower --max-model-len to what requests need, raise --gpu-memory-utilization, use --kv-cache-dtype
    fp8, add GPUs, or set `min_concurrency` for this rule to the floor your service needs.
    """
    est = ctx.estimate
    floor = float(ctx.options.get("min_concurrency", 2.0))
    if est.max_concurrency is None or est.max_concurrency < 1.0 or est.max_concurrency >= floor:
        return
    want_tokens = int(floor * (est.max_model_len or 0))
    yield Finding(
        f"the KV cache holds {est.kv_cache_tokens} tokens: {est.max_concurrency:.2f} concurrent requests of "
        f"{est.max_model_len} tokens on {_where(ctx)}, below the floor of {floor:g}",
        hint=f"use --max-model-len {est.kv_cache_tokens // max(floor, 1.0) // est.block_size * est.block_size:.0f}"
        f" or a larger GPU (needs {want_tokens} KV tokens)" + _instances_hint(ctx),
        data={**_data(ctx), "min_concurrency": floor},
    )


@rule("MEM005", severity=Severity.INFO, kinds=LLM_KINDS, needs={"estimate", "instance"},
      options={"oversized_concurrency": 64.0})
def instance_oversized(ctx: Context) -> Iterator[Finding]:
    """The instance is far larger than the model needs.

    ## Why it matters
    A GPU instance that leaves most of its memory to a KV cache no workload fills costs more per hour
    than a smaller one that serves the same traffic.

    ## How to fix
    Consider the smaller catalog instances listed in the hint (same cloud and chip), or keep this one if
    you need the concurrency.
    """
    est = ctx.estimate
    limit = float(ctx.options.get("oversized_concurrency", 64.0))
    if est.max_concurrency is None or est.max_concurrency < limit:
        return
    inst = ctx.target.instance
    here = est.total_vram_bytes * ctx.target.gpu_count
    # smaller, useful (>= 2x), and not leaving GPUs idle (a 2-GPU box at TP 1 only costs more)
    smaller = [r for r in ctx.alternatives
               if r.total_vram_bytes < here and (r.max_concurrency or 0) >= 2
               and r.tensor_parallel_size >= r.gpu_count]
    if not smaller:
        return
    best = smaller[0]
    yield Finding(
        f"{inst.name if inst else _where(ctx)} gives {est.max_concurrency:.0f}x concurrency at max_model_len "
        f"{est.max_model_len}; {best.instance} ({best.gpu_count}x {best.gpu}) already gives "
        f"{best.max_concurrency:.1f}x",
        hint="consider " + ", ".join(f"{r.instance} ({r.max_concurrency:.1f}x)" for r in smaller[:3]),
        data={**_data(ctx), "smaller_instances": [r.as_dict() for r in smaller[:3]]},
    )
