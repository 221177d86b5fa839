"""MEM: will the model fit in GPU memory, with what context and concurrency (from modelcheck.estimate).

Each engine is judged by its own start-up (checker/engines/): vLLM refuses to start when one max_model_len
request does not fit the KV cache; SGLang clamps the request length to its KV pool and starts
(tp_worker.py max_req_len); llama-server's --fit shrinks the context or moves layers to the CPU and
starts. Fix hints come from ``Estimate.fixes`` (each re-estimated by the estimator) and are written in the
target engine's flags.

Codes: MEM001, MEM002, MEM003, MEM004, MEM005.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._memory import (
    MIN_USEFUL_MAX_MODEL_LEN,
    _data,
    _fix_hint,
    _flag,
    _g,
    _instances_hint,
    _llama_context,
    _llama_weights,
    _sglang_clamp,
    _weights_path,
    _where,
)

KINDS = {"hf-llm", "gguf", "diffusion", "tts", "unknown", "custom"}
LLM_KINDS = {"hf-llm", "gguf", "unknown", "custom"}


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
    if est.engine == "llama.cpp":
        yield from _llama_weights(ctx)
        return
    if est.weights_bytes_per_gpu <= est.usable_bytes:
        return
    if est.engine == "sglang":
        yield Finding(
            f"weights take {_g(est.weights_bytes_per_gpu)} per GPU but SGLang's --mem-fraction-static "
            f"{est.gpu_memory_utilization:.3f} leaves {_g(est.usable_bytes)} for weights + KV pool on {_where(ctx)}: "
            "it stops with \"Not enough memory. Please try to increase --mem-fraction-static\"",
            path=_weights_path(ctx), hint=_fix_hint(ctx), data=_data(ctx))
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
    if est.engine == "llama.cpp":
        return  # llama-server allocates the KV cache of its context: MEM001 / MEM003 judge it
    if est.engine == "sglang" and est.failure != "no-kv-memory":
        return  # SGLang stops when its pool holds no token at all (max_total_num_tokens <= 0)
    if est.engine != "sglang" and (est.weights_bytes_per_gpu > est.usable_bytes or est.kv_cache_bytes > 0
                                   or not est.kv_cache_bytes_per_token):
        return
    if est.engine == "sglang":
        yield Finding(
            f"no memory left for SGLang's KV pool on {_where(ctx)}: --mem-fraction-static "
            f"{est.gpu_memory_utilization:.3f} x free memory = {_g(est.usable_bytes)} - weights "
            f"{_g(est.weights_bytes_per_gpu)} = {_g(est.kv_cache_bytes)}: it stops with \"Not enough memory. Please "
            "try to increase --mem-fraction-static\"",
            hint=_fix_hint(ctx), data=_data(ctx))
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
    SGLang starts anyway and clamps the longest request to its KV pool (a warning stating the clamped
    length); llama-server's --fit trims an unset context to what fits (a warning), and fails only when
    -c and -ngl are both pinned.

    ## How to fix
    Pass the largest --max-model-len that fits (the hint gives it), raise --gpu-memory-utilization,
    use --kv-cache-dtype fp8, or add GPUs.
    """
    est = ctx.estimate
    if est.engine == "llama.cpp":
        yield from _llama_context(ctx)
        return
    if est.kv_cache_bytes <= 0 or est.weights_bytes_per_gpu > est.usable_bytes:
        return
    if est.max_model_len is None or est.max_concurrency is None or est.max_concurrency >= 1.0:
        return
    if est.engine == "sglang":
        yield from _sglang_clamp(ctx)
        return
    fit = ((est.fixes.max_model_len if est.fixes else None) or 0) >= MIN_USEFUL_MAX_MODEL_LEN
    yield Finding(
        f"max_model_len {est.max_model_len} is larger than the {est.kv_cache_tokens} tokens the KV cache "
        f"holds on {_where(ctx)} ({_g(est.kv_cache_bytes)} at {est.kv_cache_bytes_per_token} B/token)",
        path=None if "max_model_len" in ctx.target.engine_args else (
            "config.json:max_position_embeddings" if ctx.facts.kind != "gguf" else
            (ctx.facts.gguf[0].path if ctx.facts.gguf else None)),
        hint=_fix_hint(ctx) if fit or not (est.fixes and est.fixes.kv_cache_dtype) else
        _fix_hint(ctx, f"--kv-cache-dtype {est.fixes.kv_cache_dtype}"),
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
    if est.engine == "llama.cpp":
        return  # llama-server allocates one context shared by its -np slots: no concurrency figure to judge
    floor = float(ctx.options.get("min_concurrency", 2.0))
    if est.max_concurrency is None or est.max_concurrency < 1.0 or est.max_concurrency >= floor:
        return
    want_tokens = int(floor * (est.max_model_len or 0))
    yield Finding(
        f"the KV cache holds {est.kv_cache_tokens} tokens: {est.max_concurrency:.2f} concurrent requests of "
        f"{est.max_model_len} tokens on {_where(ctx)}, below the floor of {floor:g}",
        # the KV pool does not depend on the length (vLLM V1, SGLang): the shorter length passes by construction
        hint=f"use {_flag(ctx, 'max_model_len')} {est.kv_cache_tokens // max(floor, 1.0) // est.block_size * est.block_size:.0f}"
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
    if est.engine == "llama.cpp":
        return  # no concurrency figure for llama-server (see MEM004)
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
