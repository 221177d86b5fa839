"""ENG rules, engine arguments vs the model and the instance: dtype names, context length,
parallelism, the GPU memory fraction. Same family and knowledge source as ``rules/engine_arch.py``.

Codes: ENG010, ENG011, ENG012, ENG013, ENG014.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelcheck.catalog import support
from modelcheck.engine_args import declared
from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import serving_engine


def _env(ctx: Context) -> dict[str, Any]:
    env = ctx.target.deployment.env if ctx.target.deployment else None
    return env if isinstance(env, dict) else {}


def _truthy(val: Any) -> bool:
    return str(val).strip().lower() in ("1", "true", "yes", "on")


@rule("ENG010", severity=Severity.ERROR)
def invalid_dtype(ctx: Context) -> Iterator[Finding]:
    """--dtype is not a dtype the engine accepts.

    ## Why it matters
    vLLM and SGLang accept auto, half, float16, bfloat16, float, float32. Anything else (int8, fp8,
    fp16, bf16...) is rejected by the argument parser before the model is even read; int8/fp8/int4 are
    quantizations, not dtypes. The same holds for `--kv-cache-dtype` (auto, fp8, fp8_e4m3, fp8_e5m2...).

    ## How to fix
    Use one of the accepted names; for quantization pass `--quantization` (or a quantized checkpoint),
    for an FP8 KV cache `--kv-cache-dtype fp8`.
    """
    asked = ctx.target.engine_args.get("dtype")
    engine, _ = serving_engine(ctx)
    yield from _invalid_kv_cache_dtype(ctx, engine)
    if asked is None or engine == "llama.cpp" or support.canonical_dtype(str(asked)) is not None:
        return
    low = str(asked).strip().lower()
    instead = support.NOT_A_DTYPE.get(low)
    yield Finding(
        f"--dtype {asked!r} is not a dtype the engine accepts"
        + (f" ({low} is a quantization/KV-cache setting, not a dtype)" if instead and low in (
            "int8", "int4", "fp8", "fp8_e4m3", "fp8_e5m2", "fp4", "nf4", "awq", "gptq") else ""),
        path="engine_args.dtype",
        hint=(f"use {instead.strip()}" if instead else "use one of: " + ", ".join(support.valid_dtypes())),
        data={"dtype": asked, "valid": list(support.valid_dtypes())},
    )


# vLLM --kv-cache-dtype choices, union over releases (CacheDType in vllm/config: auto, fp8, fp8_e4m3,
# fp8_e5m2 since 0.4; fp8_inc, bfloat16, fp8_ds_mla later): a value outside the union fails everywhere.
KV_CACHE_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla", "bfloat16")


def _invalid_kv_cache_dtype(ctx: Context, engine: str | None) -> Iterator[Finding]:
    kv = ctx.target.engine_args.get("kv_cache_dtype")
    if kv is None or engine not in (None, "vllm") or str(kv).strip().lower() in KV_CACHE_DTYPES:
        return
    yield Finding(
        f"--kv-cache-dtype {kv!r} is not a KV-cache dtype vLLM accepts; the argument parser stops the server",
        path="engine_args.kv_cache_dtype",
        hint="use --kv-cache-dtype fp8 (halves KV-cache memory) or auto",
        data={"kv_cache_dtype": kv, "valid": list(KV_CACHE_DTYPES)},
    )


def _requested_len(ctx: Context) -> tuple[int | None, str]:
    ea = ctx.target.engine_args
    for key in ("max_model_len", "context_length", "ctx_size"):
        val = ea.get(key)
        if isinstance(val, int) and not isinstance(val, bool):
            return val, key
    return None, ""


@rule("ENG011", severity=Severity.ERROR, kinds={"hf-llm", "gguf"})
def max_model_len_exceeds_model(ctx: Context) -> Iterator[Finding]:
    """The requested context length is longer than the model supports.

    ## Why it matters
    vLLM derives the limit from config.json (the smallest of max_position_embeddings, n_positions,
    max_seq_len, seq_length, max_sequence_length, ..., with transformers' config-class default when the
    key is absent (Falcon: 2048), times the rope_scaling factor for linear/dynamic scaling;
    llama3/longrope limits, Gemma 3's and from 0.30 yarn's are already scaled), a sentence-transformers
    max_seq_length, and for BERT-like embedders tokenizer_config model_max_length (see the engine view,
    checker/engines/vllm.py, for the rule per release), and refuses a larger --max-model-len unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 (SGLang:
    SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1). Past the trained length outputs degrade (nan with RoPE).
    llama.cpp only warns.

    ## How to fix
    Lower --max-model-len to the model's limit, or add a rope_scaling entry the model was trained for.
    """
    req, key = _requested_len(ctx)
    if req is None or req <= 0:
        return
    engine, _ = serving_engine(ctx)
    flag = declared()[key].flag(engine)
    if ctx.facts.kind == "gguf":
        g = ctx.facts.gguf[0] if ctx.facts.gguf else None
        arch = g.architecture if g else None
        limit = g.metadata.get(f"{arch}.context_length") if g and arch else None
        if isinstance(limit, int) and req > limit:
            yield Finding(
                f"{flag} {req} is above the model's trained context {limit} ({arch}.context_length)",
                path=g.path if g else None, severity=Severity.WARNING if engine == "llama.cpp" else None,
                hint=f"use {flag} {limit} or less", data={"requested": req, "limit": limit})
        return
    from modelcheck import engines

    ev = engines.of(ctx)
    derived = ev.max_len if ev is not None else None
    if derived is None or req <= derived.strict_value:
        return
    if derived.model_max_length and req <= derived.model_max_length:
        return
    env = _env(ctx)
    env_name = "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN" if engine == "sglang" else "VLLM_ALLOW_LONG_MAX_MODEL_LEN"
    allowed = _truthy(env.get(env_name, ""))
    where = (derived.key if derived.key and ":" in derived.key else
             f"config.json:{derived.key}" if derived.key else "config.json")
    scale = (f" x rope factor {derived.factor:g} ({derived.rope_type})" if derived.factor != 1.0 else
             (f" (rope_scaling {derived.rope_type} does not multiply it)" if derived.rope_type not in (None, "default") else ""))
    # limit: the most lenient reading of the config; strict_limit: the strictest (they differ only where
    # vLLM versions read yarn scaling differently)
    data = {"requested": req, "limit": derived.value, "strict_limit": derived.strict_value, "key": derived.key,
            "base": derived.base, "engine_default": derived.default, "certain": derived.certain,
            "rope_type": derived.rope_type, "factor": derived.factor, "env_override": allowed}
    if req <= derived.value:  # only the older/newer reading of yarn refuses it
        yield Finding(
            f"{flag} {req} may exceed the model's limit"
            + (f": {derived.notes[0]}" if derived.notes else f" (one reading of the config gives {derived.strict_value})"),
            path=where, severity=Severity.WARNING, hint=f"use {flag} {derived.strict_value} to be safe", data=data)
        return
    source = (f"{derived.key}={derived.base}{scale}" if derived.key and ":" not in derived.key
              else f"{derived.key}" if derived.key else "no length key in config.json: vLLM assumes 2048")
    if derived.notes and ("class default" in derived.notes[0] or "sentence-transformers" in derived.notes[0]):
        source += f"; {derived.notes[0]}"
    msg = f"{flag} {req} is above the model's limit {derived.value} ({source})"
    if not derived.certain and derived.notes:
        msg += f" [uncertain: {derived.notes[-1]}]"
    if engine == "llama.cpp":
        yield Finding(msg + "; llama.cpp runs but quality degrades past it", path=where, severity=Severity.WARNING,
                      hint=f"use {flag} {derived.value}", data=data)
    elif allowed:
        yield Finding(msg + f"; {env_name}=1 lets it start, but positions past the limit give nan/garbage",
                      path=where, severity=Severity.WARNING, hint=f"use {flag} {derived.value} unless the model was "
                      "trained longer (then fix config.json)", data=data)
    else:
        yield Finding(msg + "; the engine refuses to start", path=where,
                      hint=f"use {flag} {derived.value} or less (or set {env_name}=1 if you know the model handles it)",
                      data=data)


def _heads(ctx: Context) -> int | None:
    tc = ctx.facts.text_config or {}
    for key in ("num_attention_heads", "n_head", "num_heads", "n_heads"):
        val = tc.get(key)
        if isinstance(val, int) and val > 0:
            return val
    return None


@rule("ENG012", severity=Severity.ERROR, kinds={"hf-llm"})
def tensor_parallel_splits_heads(ctx: Context) -> Iterator[Finding]:
    """--tensor-parallel-size does not divide the model's attention heads.

    ## Why it matters
    Tensor parallelism splits attention heads evenly across GPUs; vLLM raises "Total number of
    attention heads (N) must be divisible by tensor parallel size (T)" (the text config's heads for
    vision-language models). SGLang fails the same way.

    ## How to fix
    Use a tensor-parallel size that divides the head count (the finding lists them), and pipeline
    parallelism for the rest.
    """
    tp = ctx.target.engine_args.get("tensor_parallel_size")
    heads = _heads(ctx)
    if not isinstance(tp, int) or tp <= 1 or heads is None or heads % tp == 0:
        return
    ok = [d for d in range(1, min(heads, 64) + 1) if heads % d == 0 and d <= max(tp, ctx.target.gpu_count or tp)]
    yield Finding(
        f"--tensor-parallel-size {tp} does not divide the {heads} attention heads (config.json num_attention_heads)",
        path="config.json:num_attention_heads", hint=f"use --tensor-parallel-size in {ok}",
        data={"tensor_parallel_size": tp, "num_attention_heads": heads, "valid": ok})


@rule("ENG013", severity=Severity.ERROR, needs={"instance"})
def parallel_exceeds_gpus(ctx: Context) -> Iterator[Finding]:
    """tensor_parallel_size x pipeline_parallel_size asks for more GPUs than the instance has.

    ## Why it matters
    One replica needs TP x PP GPUs on the instance; with fewer, vLLM waits for resources or fails
    ("The number of required GPUs exceeds the total number of available GPUs").

    ## How to fix
    Lower the parallel sizes to the instance's GPU count or choose an instance with more GPUs.
    """
    ea = ctx.target.engine_args
    tp = ea.get("tensor_parallel_size") or 1
    pp = ea.get("pipeline_parallel_size") or 1
    if not isinstance(tp, int) or not isinstance(pp, int):
        return
    n = ctx.target.gpu_count
    inst = ctx.target.instance
    if inst is None or inst.chip != "GPU" or n <= 0 or tp * pp <= n:
        return
    yield Finding(
        f"--tensor-parallel-size {tp} x --pipeline-parallel-size {pp} needs {tp * pp} GPUs, but {inst.name} has "
        f"{n}: the engine cannot start its workers",
        path="engine_args.tensor_parallel_size", hint=f"use --tensor-parallel-size {n}{' (or fewer)' if n > 1 else ''} or an instance with {tp * pp} GPUs",
        data={"tensor_parallel_size": tp, "pipeline_parallel_size": pp, "gpus": n})


@rule("ENG014", severity=Severity.ERROR)
def memory_fraction_out_of_range(ctx: Context) -> Iterator[Finding]:
    """--gpu-memory-utilization (or SGLang --mem-fraction-static) is outside (0, 1].

    ## Why it matters
    It is a fraction of each GPU's memory. vLLM rejects values outside (0, 1] ("GPU memory utilization
    must be within (0, 1]"); 90 instead of 0.9 is a common slip.

    ## How to fix
    Give a fraction such as 0.9.
    """
    for key in ("gpu_memory_utilization", "mem_fraction_static"):
        flag = declared()[key].flag()
        val = ctx.target.engine_args.get(key)
        if isinstance(val, (int, float)) and not isinstance(val, bool) and not 0 < val <= 1:
            yield Finding(f"{flag} {val} is outside (0, 1]: it is a fraction of each GPU's memory, and the engine "
                          "rejects it at start-up", path=f"engine_args.{key}",
                          hint=(f"use a fraction, e.g. {flag} {val / 100:g}" if 10 <= val <= 100  # 90 meant 90 %
                                else f"use a fraction such as {flag} 0.9"),
                          data={key: val})
