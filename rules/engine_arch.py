"""ENG rules, engine version vs model and GPU: architectures, compute capability and float dtypes the
image's engine will refuse at start-up.

Knowledge comes from ``modelcheck.catalog.support`` (vLLM sdists, per sampled release). Where the data brackets a
version without pinning it, the finding is a warning that says so; errors are reserved for certainty.
The rest of the family: ``rules/engine_quant.py`` (quantization), ``rules/engine_flags.py`` (engine
arguments), ``rules/engine_features.py`` (repo code, chat template, image inputs).

Codes: ENG001, ENG002, ENG003, ENG004.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.catalog import support
from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import image_engine, model_types, quant_method


def _sglang_architecture(ctx: Context, v: tuple[int, ...] | None) -> Iterator[Finding]:
    """SGLang's own registry (srt/models/*.py EntryClass per release, checker/engines/sglang.py): before
    0.4.9 an architecture it does not implement stops the server; from 0.4.9 the Transformers backend runs it."""
    from modelcheck.engines import sglang

    arch = ctx.facts.architectures[0]
    s = sglang.arch_support(arch, v)
    if s.status != "unsupported":
        return
    ver = sglang.fmt(v) if v else "(version unknown)"
    yield Finding(
        f"architecture {arch} is not implemented by SGLang {ver} (its srt/models registry as of "
        f"{sglang.fmt(s.release)}) and this release has no Transformers fallback: the server refuses to start",
        path="config.json:architectures", severity=Severity.ERROR if s.note is None else Severity.WARNING,
        hint="use SGLang >= 0.4.9 (Transformers backend) or an engine that implements the architecture",
        data={"architecture": arch, "sglang": ver, "release_read": sglang.fmt(s.release), "note": s.note},
    )


@rule("ENG001", severity=Severity.ERROR, kinds={"hf-llm"}, needs={"image", "config"})
def architecture_not_in_engine(ctx: Context) -> Iterator[Finding]:
    """The image's engine version (vLLM, SGLang) does not implement the model's architecture.

    ## Why it matters
    vLLM picks the implementation from config.json `architectures[0]`. A name the version's model
    registry lacks (added in a later release, or removed) stops the server at start-up with
    "Model architectures [...] are not supported for now".

    ## How to fix
    Use an image whose vLLM registers the architecture (the finding names the first release), or an
    older one for removed architectures. For custom code, see ENG015 (--trust-remote-code).
    """
    engine, v = image_engine(ctx)
    if not ctx.facts.architectures:
        return
    if engine == "sglang":
        yield from _sglang_architecture(ctx, v)
        return
    if engine != "vllm":
        return
    arch = ctx.facts.architectures[0]
    s = support.arch_support(arch, v)
    where = "config.json:architectures"
    ver = support.fmt(v)
    if s.status == "registered":
        return
    if s.status == "not-yet":
        exact = s.added_after is None or support.first_release_known(arch)
        first = (f"first registered in {s.present_since}" if exact
                 else f"first registered in a release in ({s.added_after}, {s.present_since}]")
        yield Finding(
            f"architecture {arch} is not registered in vLLM {ver} ({first}); the server refuses to start",
            path=where, hint=f"use an image with vLLM >= {s.present_since}",
            data={"architecture": arch, "vllm": ver, "added_after": s.added_after, "present_since": s.present_since},
        )
    elif s.status == "removed":
        yield Finding(
            f"architecture {arch} is not registered in vLLM {ver} (last seen in {s.last_seen}, absent from "
            f"{s.gone or ver}); the server refuses to start",
            path=where, hint=f"use an image with vLLM <= {s.last_seen}, or a checkpoint of a supported architecture",
            data={"architecture": arch, "vllm": ver, "last_seen": s.last_seen, "gone": s.gone},
        )
    elif s.status == "uncertain":
        yield Finding(
            f"architecture {arch} may not be registered in vLLM {ver}: {s.detail} (sampled releases only)",
            path=where, severity=Severity.WARNING,
            hint=f"to be certain use vLLM >= {s.present_since}" if not s.gone else f"to be certain use vLLM <= {s.last_seen}",
            data={"architecture": arch, "vllm": ver, "added_after": s.added_after, "present_since": s.present_since,
                  "gone": s.gone, "last_seen": s.last_seen},
        )
    else:
        remote = isinstance((ctx.facts.config or {}).get("auto_map"), dict)
        yield Finding(
            f"architecture {arch} is in no sampled vLLM model registry; vLLM {ver} will only run it through "
            f"its Transformers fallback{' or the repo code (auto_map)' if remote else ''}, if at all",
            path=where, severity=Severity.WARNING,
            hint="check the vLLM supported-models list; serve with --trust-remote-code only if you trust the repo code"
            if remote else "check the vLLM supported-models list or use an engine that supports this model",
            data={"architecture": arch, "vllm": ver},
        )


@rule("ENG002", severity=Severity.ERROR, needs={"image", "gpu"})
def gpu_below_engine_minimum(ctx: Context) -> Iterator[Finding]:
    """The GPU's compute capability is below what the engine version supports.

    ## Why it matters
    vLLM builds its kernels for a minimum CUDA compute capability: 7.0 up to 0.19, 7.5 from 0.20 (V100
    dropped). Below it the kernels are missing and the server fails ("no kernel image is available").

    ## How to fix
    Pick a newer GPU (T4/A10/A100/L20/H20...) or an engine version that still supports this GPU.
    """
    engine, v = image_engine(ctx)
    gpu = ctx.target.gpu
    m = support.min_compute_capability(engine, v)
    if m is None or gpu is None or gpu.cc_int >= m.cc:
        return
    need = f"{m.cc // 10}.{m.cc % 10}"
    hint = (f"use a GPU with compute capability >= {need}"
            + (" or a vLLM <= 0.19 image (the last documented for 7.0)" if engine == "vllm" and gpu.cc_int >= 70 else ""))
    yield Finding(
        f"{gpu.name} has compute capability {gpu.compute_capability}, below the {need} {engine} "
        f"{support.fmt(v)} needs: {m.note}",
        severity=None if m.certain else Severity.WARNING, hint=hint,
        data={"gpu": gpu.name, "compute_capability": gpu.compute_capability, "min": need, "engine": engine,
              "version": support.fmt(v)},
    )


def _has_bf16(gpu) -> bool:  # type: ignore[no-untyped-def]
    return bool(getattr(gpu, "bf16", False)) or gpu.cc_int >= 80


@rule("ENG003", severity=Severity.ERROR, kinds={"hf-llm"}, needs={"gpu"})
def bf16_on_gpu_without_bf16(ctx: Context) -> Iterator[Finding]:
    """bfloat16 is asked for (or is the checkpoint's dtype) on a GPU without bfloat16.

    ## Why it matters
    bfloat16 needs compute capability >= 8.0. T4 (7.5) and V100 (7.0) do not have it: an explicit
    `--dtype bfloat16` fails ("Bfloat16 is only supported on GPUs with compute capability of at least
    8.0"); with `--dtype auto` older vLLM fails the same way, vLLM >= 0.14 falls back to float16.

    ## How to fix
    Pass `--dtype half` (float16). For models that refuse float16 (gemma2/gemma3/glm4) use
    `--dtype float32` (twice the memory) or a GPU with bfloat16 (A10, A100, L20, H20...).
    """
    gpu = ctx.target.gpu
    if gpu is None or _has_bf16(gpu):
        return
    engine, v = image_engine(ctx)
    if engine not in (None, "vllm", "sglang"):
        return
    asked = ctx.target.engine_args.get("dtype")
    canon = support.canonical_dtype(asked) if isinstance(asked, str) else None
    ckpt = support.checkpoint_dtype(ctx.facts.config, ctx.facts.weights.dominant_dtype)
    forbidden = any(support.float16_forbidden(mt, v) for mt in model_types(ctx))
    fix = ("--dtype float32 (the model refuses float16; doubles weight memory) or a GPU with bfloat16 "
           "(compute capability >= 8.0)" if forbidden else "--dtype half")
    data = {"gpu": gpu.name, "compute_capability": gpu.compute_capability, "checkpoint_dtype": ckpt,
            "dtype": asked, "float16_forbidden": forbidden}
    if canon == "bfloat16":
        yield Finding(
            f"--dtype {asked} on {gpu.name} (compute capability {gpu.compute_capability}): bfloat16 needs compute capability 8.0, "
            f"the engine refuses to start", path="engine_args.dtype", hint=f"use {fix}", data=data)
        return
    if canon not in (None, "auto") or ckpt != "bfloat16" or engine == "sglang" and canon is None and asked:
        return
    if quant_method(ctx)[0] in ("awq", "gptq", "gguf"):
        return  # these run in float16 activations anyway
    fallback = support.bf16_auto_fallback(v) if engine == "vllm" else None
    cfg = "config.json:torch_dtype"
    if fallback is True:
        target = "float32" if forbidden else "float16"
        yield Finding(
            f"the checkpoint is bfloat16 and {gpu.name} has no bfloat16: vLLM {support.fmt(v)} falls back to "
            f"{target} by itself" + (" (the model refuses float16), doubling weight memory" if forbidden else
                                     "; outputs can differ slightly from bfloat16"),
            path=cfg, severity=Severity.WARNING if forbidden else Severity.INFO,
            hint=("pass --dtype float32 to make it explicit (the model refuses float16; it doubles weight memory), "
                  "or use a GPU with bfloat16 (compute capability >= 8.0)" if forbidden else
                  "pass --dtype half to make it explicit, or use a GPU with bfloat16"), data=data)
    elif fallback is False:
        yield Finding(
            f"the checkpoint is bfloat16 and {gpu.name} (compute capability {gpu.compute_capability}) has no "
            f"bfloat16: vLLM {support.fmt(v)} with --dtype auto refuses to start", path=cfg, hint=f"pass {fix}",
            data=data)
    else:
        yield Finding(
            f"the checkpoint is bfloat16 and {gpu.name} has no bfloat16: {engine or 'the engine'} "
            f"{support.fmt(v)} either refuses to start or falls back to float16 (vLLM <= 0.8.4 refuses, >= 0.14 "
            "falls back)", path=cfg, severity=Severity.WARNING, hint=f"pass {fix}", data=data)


@rule("ENG004", severity=Severity.ERROR, kinds={"hf-llm"})
def float16_refused_by_model(ctx: Context) -> Iterator[Finding]:
    """float16 is asked for a model type vLLM refuses to run in float16.

    ## Why it matters
    vLLM raises "The model type 'gemma2' does not support float16" for gemma2, gemma3, glm4 (and more
    in some versions) because of numerical instability (overflow to inf/nan).

    ## How to fix
    Use `--dtype bfloat16` on a GPU with compute capability >= 8.0, or `--dtype float32` on T4/V100.
    """
    asked = ctx.target.engine_args.get("dtype")
    if support.canonical_dtype(asked if isinstance(asked, str) else None) != "float16":
        return
    _, v = image_engine(ctx)
    bad = [mt for mt in model_types(ctx) if support.float16_forbidden(mt, v)]
    if not bad:
        return
    gpu = ctx.target.gpu
    fix = "--dtype bfloat16" if gpu is None or _has_bf16(gpu) else "--dtype float32 (twice the memory) or a GPU with bfloat16"
    yield Finding(
        f"--dtype {asked} with model_type {bad[0]!r}: vLLM refuses float16 for this model type (numerical instability)",
        path="engine_args.dtype", hint=f"use {fix}", data={"model_type": bad[0], "dtype": asked})
