"""Shared by the MEM rules (rules/memory.py): figures in words, fix hints in the target engine's flags (from
``Estimate.fixes``, each re-estimated by the estimator), and the SGLang / llama.cpp findings that replace
vLLM's verdicts (SGLang clamps the request length to its KV pool; llama-server's --fit trims the context or
offloads fewer layers). Private: the registry collects no rules here."""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity

GIB = 1 << 30
MIN_USEFUL_MAX_MODEL_LEN = 1024  # below this a --max-model-len hint is not a fix


def _g(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def _where(ctx: Context) -> str:
    gpu = ctx.target.gpu
    n = ctx.target.gpu_count
    return f"{n}x {gpu.name}" if gpu else "the target"


def _flag(ctx: Context, setting: str) -> str:
    """The target engine's spelling of a setting (vLLM-style key): --context-length on SGLang, -c on llama.cpp."""
    from modelcheck.engine_args import spelling

    return spelling(setting, ctx.estimate.engine if ctx.estimate else "vllm")


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
    if ctx.facts.config is None:
        return None
    from modelcheck import engines

    ev = engines.of(ctx)
    return ev.max_len.value if ev is not None and ev.max_len is not None else None


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


def _engine_fix_hint(ctx: Context, first: str = "") -> str:
    """SGLang / llama.cpp: the estimator's re-estimated fixes, in the engine's own flags. A context length is
    not a fix for SGLang's memory failures (its KV pool does not depend on it)."""
    est = ctx.estimate
    x = est.fixes
    fixes = [first] if first else []
    if est.engine == "llama.cpp" and x and x.max_model_len and x.max_model_len >= MIN_USEFUL_MAX_MODEL_LEN:
        fixes.append(f"{_flag(ctx, 'max_model_len')} {round_max_model_len(x.max_model_len)}")
    if est.engine == "llama.cpp" and est.extra.get("fit_n_gpu_layers"):
        fixes.append(f"{_flag(ctx, 'n_gpu_layers')} {est.extra['fit_n_gpu_layers']} (the other layers run on the CPU)")
    fixes += _memory_and_tp_fixes(ctx)
    hint = "use " + " or ".join(fixes) if fixes else "use a GPU with more memory"
    return hint + _instances_hint(ctx)


def _memory_and_tp_fixes(ctx: Context) -> list[str]:
    """The re-estimated memory-fraction and tensor-parallel fixes, in the target engine's flags."""
    x = ctx.estimate.fixes
    out = []
    if x and x.gpu_memory_utilization:
        out.append(f"{_flag(ctx, 'gpu_memory_utilization')} {x.gpu_memory_utilization:.2f}")
    if x and x.tensor_parallel_size:
        where = "" if x.tensor_parallel_size <= ctx.target.gpu_count else \
            f" on an instance with {x.tensor_parallel_size} GPUs"
        out.append(f"{_flag(ctx, 'tensor_parallel_size')} {x.tensor_parallel_size}{where}")
    return out


def _fix_hint(ctx: Context, first: str = "") -> str:
    if ctx.estimate.engine in ("sglang", "llama.cpp"):
        return _engine_fix_hint(ctx, first)
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


def _data(ctx: Context) -> dict:
    from modelcheck.summary import memory_block

    data = memory_block(ctx.estimate) or {}
    if ctx.estimate.fixes and ctx.estimate.fixes.max_model_len:
        # the hint offers a round length; the exact largest that starts stays in the data
        suggested, exact = _suggested_len(ctx)
        data["suggested_max_model_len"] = suggested
        data["exact_max_model_len"] = exact
    for key in ("clamped_max_req_len", "context_length", "offload", "fitted", "context_before_fit",
                "fit_n_gpu_layers"):
        if key in ctx.estimate.extra:
            data[key] = ctx.estimate.extra[key]
    return data


def _llama_weights(ctx: Context) -> Iterator[Finding]:
    """llama-server: --fit moves layers to the CPU (a warning: it starts, slower); -ngl pinned fails at load."""
    est = ctx.estimate
    x = est.extra
    if x.get("offload") == "partial-offload":
        yield Finding(
            f"the model ({_g(est.weights_bytes)}) does not fit the {_g(est.usable_bytes * ctx.target.gpu_count)} "
            f"llama-server may use on {_where(ctx)}: {x.get('offload_message')}",
            path=_weights_path(ctx), severity=Severity.WARNING,
            hint="use a GPU with more memory or a smaller quantization" + _instances_hint(ctx), data=_data(ctx))
    elif est.status == "fail" and est.weights_bytes_per_gpu > est.usable_bytes:
        yield Finding(
            f"{x.get('gpu_layers')}/{x.get('total_layers')} layers ({_g(est.weights_bytes)}) do not fit the "
            f"{_g(est.usable_bytes)} free on {_where(ctx)}: {x.get('offload_message')}",
            path=_weights_path(ctx), hint=_fix_hint(ctx), data=_data(ctx))


def _sglang_clamp(ctx: Context) -> Iterator[Finding]:
    """SGLang starts with the request length clamped to its KV pool (tp_worker.py: max_req_len =
    min(context_len - 1, max_total_num_tokens - 1)): a warning that states the clamped length."""
    est = ctx.estimate
    clamped = est.extra.get("clamped_max_req_len") or est.kv_cache_tokens - 1
    explicit = "max_model_len" in ctx.target.engine_args or "context_length" in ctx.target.engine_args
    full = _memory_and_tp_fixes(ctx)
    state = f"{_flag(ctx, 'max_model_len')} {round_max_model_len(clamped)}"
    yield Finding(
        f"context length {est.max_model_len} is larger than SGLang's KV pool of {est.kv_cache_tokens} tokens on "
        f"{_where(ctx)} ({_g(est.kv_cache_bytes)} at {est.kv_cache_bytes_per_token} B/token): SGLang starts but "
        f"clamps the longest request to {clamped} tokens",
        path=None if explicit else "config.json:max_position_embeddings", severity=Severity.WARNING,
        hint=f"pass {state} to state the limit clients get"
        + (f", or {' or '.join(full)} for the full {est.max_model_len} tokens" if full else "")
        + _instances_hint(ctx),
        data=_data(ctx))


def _llama_context(ctx: Context) -> Iterator[Finding]:
    """llama-server: --fit reduced the context (a warning), or -c pinned with -ngl does not fit (an error)."""
    est = ctx.estimate
    x = est.extra
    if x.get("offload") == "context-reduced":
        yield Finding(
            f"{x.get('offload_message')} on {_where(ctx)} (the GGUF allows {x.get('context_before_fit')})",
            path=ctx.facts.gguf[0].path if ctx.facts.gguf else None, severity=Severity.WARNING,
            hint=f"pass {_flag(ctx, 'max_model_len')} {round_max_model_len(est.max_model_len or 0)} to state the "
            "context clients get, or use a GPU with more memory" + _instances_hint(ctx),
            data=_data(ctx))
    elif est.status == "fail" and est.weights_bytes_per_gpu <= est.usable_bytes:
        yield Finding(
            f"context {est.max_model_len} does not fit on {_where(ctx)}: {x.get('offload_message')}",
            path=None, hint=_fix_hint(ctx), data=_data(ctx))
