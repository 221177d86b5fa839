"""SMK: start-up failures the smoke stage recognised in the server log (``modelcheck.smoke.logparse``
failure kinds): no KV-cache memory, context too long, CUDA OOM, unknown architecture, no bfloat16, a gated
repository, a tokenizer that does not load. One failure kind, one rule; ``server-exited`` (rules/smoke.py)
speaks only when none of them matched.

Codes: SMK003, SMK004, SMK005, SMK006, SMK007, SMK008, SMK009.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import observation


def _log_failure(ctx: Context, kind: str):
    obs = observation(ctx)
    if obs is None:
        return None
    for f in obs.log.failures:
        if f.kind == kind:
            return f
    return None


@rule("SMK003", severity=Severity.ERROR, needs={"observation"})
def kv_cache_no_memory(ctx: Context) -> Iterator[Finding]:
    """vLLM found no memory left for the KV cache blocks after loading the weights.

    ## Why it matters
    vLLM refuses to start: ``No available memory for the cache blocks``. The weights, activations and
    CUDA graphs use all of the memory ``gpu_memory_utilization`` allows.

    ## How to fix
    Raise ``--gpu-memory-utilization`` (e.g. 0.95), use more GPUs with ``--tensor-parallel-size``, a
    quantized checkpoint, or a GPU with more memory; ``--enforce-eager`` saves the CUDA graph memory.
    """
    f = _log_failure(ctx, "kv-no-memory")
    if f is not None:
        yield Finding(
            f"vLLM stopped: no memory for the KV cache blocks ({f.line[:200]})",
            path=observation(ctx).log_path,
            hint="raise --gpu-memory-utilization, add GPUs (--tensor-parallel-size), quantize, "
            "or use --enforce-eager",
            data={"log_line": f.line},
        )


@rule("SMK004", severity=Severity.ERROR, needs={"observation"})
def served_max_model_len_exceeds_kv_cache(ctx: Context) -> Iterator[Finding]:
    """vLLM refused to start: one request of max_model_len tokens does not fit in the KV cache.

    ## Why it matters
    vLLM checks at start-up that at least one sequence of the full context length fits in the KV cache
    memory left after the weights; if not, the engine does not start.

    ## How to fix
    Lower ``--max-model-len`` to the length vLLM estimates fits (shown in the finding), raise
    ``--gpu-memory-utilization``, use an fp8 KV cache (``--kv-cache-dtype fp8``), or add GPUs.
    """
    f = _log_failure(ctx, "kv-too-small")
    if f is None:
        return
    d = f.data
    fits = d.get("fits_len")
    parts = [f"vLLM stopped: max_model_len {d.get('max_model_len', '?')} does not fit in the KV cache"]
    if "needed_gib" in d:
        parts.append(f"({d['needed_gib']} GiB needed, {d.get('available_gib', '?')} GiB available)")
    hint = f"--max-model-len {fits}" if fits else "lower --max-model-len"
    yield Finding(
        " ".join(parts),
        path=observation(ctx).log_path,
        hint=f"{hint}, or raise --gpu-memory-utilization / use --kv-cache-dtype fp8",
        data={**d, "log_line": f.line},
    )


@rule("SMK005", severity=Severity.ERROR, needs={"observation"})
def cuda_out_of_memory(ctx: Context) -> Iterator[Finding]:
    """The GPU ran out of memory while vLLM loaded or profiled the model.

    ## Why it matters
    ``CUDA out of memory`` during start-up means the weights (per GPU) plus the profiling run do not fit,
    or another process holds GPU memory. The server never becomes ready.

    ## How to fix
    Check ``nvidia-smi`` for other processes; lower ``--gpu-memory-utilization`` if another process shares
    the GPU, otherwise use ``--tensor-parallel-size``, a quantized checkpoint, a smaller
    ``--max-num-batched-tokens``, or a larger GPU.
    """
    f = _log_failure(ctx, "oom")
    if f is not None:
        yield Finding(
            f"the GPU ran out of memory during start-up: {f.line[:240]}",
            path=observation(ctx).log_path,
            hint="free the GPU (nvidia-smi), shard with --tensor-parallel-size, quantize, "
            "or lower --max-num-batched-tokens",
            data={**f.data, "log_line": f.line},
        )


@rule("SMK006", severity=Severity.ERROR, needs={"observation"})
def architecture_unsupported(ctx: Context) -> Iterator[Finding]:
    """This vLLM build does not implement the model's architecture.

    ## Why it matters
    vLLM looks up ``architectures`` from config.json in its model registry; an architecture it does not
    know stops the server at start-up.

    ## How to fix
    Use a vLLM release that supports the architecture (see vLLM's supported-models list), install the
    out-of-tree plugin vLLM names, or serve the model with transformers' backend
    (``--model-impl transformers``) where that works.
    """
    f = _log_failure(ctx, "arch-unsupported")
    if f is not None:
        archs = f.data.get("archs", "?")
        yield Finding(
            f"vLLM does not support the architecture {archs} (config.json architectures)",
            path="config.json",
            hint="use a vLLM release that supports it, its out-of-tree plugin, or --model-impl transformers",
            data={"architectures": archs, "log_line": f.line[:400]},
        )


@rule("SMK007", severity=Severity.ERROR, needs={"observation"})
def bf16_unsupported_gpu(ctx: Context) -> Iterator[Finding]:
    """The GPU has no bfloat16 support (compute capability below 8.0) and the model loads as bf16.

    ## Why it matters
    vLLM refuses bf16 on pre-Ampere GPUs (T4, V100) and stops at start-up.

    ## How to fix
    Pass ``--dtype half`` (float16); check the model's outputs afterwards, since a few bf16-trained models
    overflow in float16.
    """
    f = _log_failure(ctx, "bf16-unsupported")
    if f is not None:
        gpu, cc = f.data.get("gpu"), f.data.get("cc")
        on = f" on {gpu} (compute capability {cc})" if gpu else ""
        yield Finding(
            f"vLLM refused bfloat16{on}: it needs compute capability {f.data.get('needed', '8.0')}",
            path="config.json",
            hint="--dtype half",
            data={**f.data, "log_line": f.line},
        )


@rule("SMK008", severity=Severity.ERROR, needs={"observation"})
def gated_repo_without_token(ctx: Context) -> Iterator[Finding]:
    """The engine tried to download from a gated Hugging Face repository without access.

    ## Why it matters
    A gated repository (Llama, Gemma, ...) answers 401/403 without a token of an account that accepted
    its licence; the server stops before loading anything.

    ## How to fix
    Accept the licence on the model page, then set ``HF_TOKEN`` in the server's environment; better,
    download the model ahead of time and point the server at the local folder.
    """
    f = _log_failure(ctx, "gated")
    if f is not None:
        repo = f.data.get("repo") or f.data.get("url") or "the repository"
        yield Finding(
            f"access to the gated repository {repo} was refused (no or unauthorised token)",
            path=observation(ctx).log_path,
            hint="accept the licence, set HF_TOKEN for the server, or serve a local copy",
            data={**f.data, "log_line": f.line},
        )


@rule("SMK009", severity=Severity.ERROR, needs={"observation"})
def tokenizer_load_failed(ctx: Context) -> Iterator[Finding]:
    """The engine could not load the model's tokenizer.

    ## Why it matters
    vLLM loads the tokenizer before serving; an unreadable ``tokenizer.json``, a tokenizer saved by a
    newer ``tokenizers`` release, or a ``tokenizer_class`` the installed transformers lacks stops it.

    ## How to fix
    Re-save the tokenizer with the transformers/tokenizers versions of the image, upgrade the image, or
    point ``--tokenizer`` at a working copy. The exception in the finding says which file failed.
    """
    f = _log_failure(ctx, "tokenizer")
    if f is not None:
        yield Finding(
            f"vLLM could not load the tokenizer: {f.line[:240]}",
            path="tokenizer.json" if ctx.facts.file("tokenizer.json") else "tokenizer_config.json",
            hint="re-save the tokenizer with the image's transformers/tokenizers versions or pass --tokenizer",
            data={**f.data, "log_line": f.line},
        )
