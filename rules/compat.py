"""ENG rules, engine version vs model and GPU: what the image's engine will refuse at start-up.

Knowledge comes from ``checker.engines`` (vLLM sdists, per sampled release). Where the data brackets a
version without pinning it, the finding is a warning that says so; errors are reserved for certainty.
Engine-argument rules (dtype names, lengths, parallelism, flags) live in ``rules/compat_args.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

from checker import engines
from checker.rule import Context, Finding, Severity, rule


def _vllm(ctx: Context) -> tuple[str | None, tuple[int, ...] | None]:
    img = ctx.target.image
    if img is None:
        return None, None
    return img.engine, engines.vt(img.version)


def _model_types(ctx: Context) -> tuple[str, ...]:
    out = []
    if ctx.facts.model_type:
        out.append(ctx.facts.model_type)
    tc = ctx.facts.text_config or {}
    if isinstance(tc.get("model_type"), str) and tc["model_type"] not in out:
        out.append(tc["model_type"])
    return tuple(out)


def _quant_method(ctx: Context) -> tuple[str | None, bool]:
    """(method, explicit): --quantization wins over config.json quantization_config."""
    flag = ctx.target.engine_args.get("quantization")
    if isinstance(flag, str) and flag.strip():
        return engines.normalize_quant_method(flag), True
    if ctx.facts.kind == "gguf":
        return "gguf", False
    return engines.quant_method_from_config(ctx.facts.config), False


@rule("ENG001", severity=Severity.ERROR, kinds={"hf-llm"}, needs={"image", "config"})
def architecture_not_in_engine(ctx: Context) -> Iterator[Finding]:
    """The image's vLLM version does not register the model's architecture.

    ## Why it matters
    vLLM picks the implementation from config.json `architectures[0]`. A name the version's model
    registry lacks (added in a later release, or removed) stops the server at start-up with
    "Model architectures [...] are not supported for now".

    ## How to fix
    Use an image whose vLLM registers the architecture (the finding names the first release), or an
    older one for removed architectures. For custom code, see ENG015 (--trust-remote-code).
    """
    engine, v = _vllm(ctx)
    if engine != "vllm" or not ctx.facts.architectures:
        return
    arch = ctx.facts.architectures[0]
    s = engines.arch_support(arch, v)
    where = "config.json:architectures"
    ver = engines.fmt(v)
    if s.status == "registered":
        return
    if s.status == "not-yet":
        first = (f"first registered in {s.present_since}" if s.added_after is None or _exact(s)
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


def _exact(s: engines.ArchSupport) -> bool:
    row = engines._arch_table().get(s.arch, {})
    return bool(row.get("x"))


@rule("ENG002", severity=Severity.ERROR, needs={"image", "gpu"})
def gpu_below_engine_minimum(ctx: Context) -> Iterator[Finding]:
    """The GPU's compute capability is below what the engine version supports.

    ## Why it matters
    vLLM builds its kernels for a minimum CUDA compute capability: 7.0 up to 0.19, 7.5 from 0.20 (V100
    dropped). Below it the kernels are missing and the server fails ("no kernel image is available").

    ## How to fix
    Pick a newer GPU (T4/A10/A100/L20/H20...) or an engine version that still supports this GPU.
    """
    engine, v = _vllm(ctx)
    gpu = ctx.target.gpu
    m = engines.min_compute_capability(engine, v)
    if m is None or gpu is None or gpu.cc_int >= m.cc:
        return
    need = f"{m.cc // 10}.{m.cc % 10}"
    hint = (f"use a GPU with compute capability >= {need}"
            + (" or a vLLM <= 0.19 image (the last documented for 7.0)" if engine == "vllm" and gpu.cc_int >= 70 else ""))
    yield Finding(
        f"{gpu.name} has compute capability {gpu.compute_capability}, below the {need} {engine} "
        f"{engines.fmt(v)} needs: {m.note}",
        severity=None if m.certain else Severity.WARNING, hint=hint,
        data={"gpu": gpu.name, "compute_capability": gpu.compute_capability, "min": need, "engine": engine,
              "version": engines.fmt(v)},
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
    engine, v = _vllm(ctx)
    if engine not in (None, "vllm", "sglang"):
        return
    asked = ctx.target.engine_args.get("dtype")
    canon = engines.canonical_dtype(asked) if isinstance(asked, str) else None
    ckpt = engines.checkpoint_dtype(ctx.facts.config, ctx.facts.weights.dominant_dtype)
    forbidden = any(engines.float16_forbidden(mt, v) for mt in _model_types(ctx))
    fix = ("--dtype float32 (the model refuses float16; doubles weight memory) or a GPU with bfloat16 "
           "(compute capability >= 8.0)" if forbidden else "--dtype half")
    data = {"gpu": gpu.name, "compute_capability": gpu.compute_capability, "checkpoint_dtype": ckpt,
            "dtype": asked, "float16_forbidden": forbidden}
    if canon == "bfloat16":
        yield Finding(
            f"--dtype {asked} on {gpu.name} (compute capability {gpu.compute_capability}): bfloat16 needs 8.0, "
            f"the engine refuses to start", path="engine_args.dtype", hint=f"use {fix}", data=data)
        return
    if canon not in (None, "auto") or ckpt != "bfloat16" or engine == "sglang" and canon is None and asked:
        return
    if _quant_method(ctx)[0] in ("awq", "gptq", "gguf"):
        return  # these run in float16 activations anyway
    fallback = engines.bf16_auto_fallback(v) if engine == "vllm" else None
    cfg = "config.json:torch_dtype"
    if fallback is True:
        target = "float32" if forbidden else "float16"
        yield Finding(
            f"the checkpoint is bfloat16 and {gpu.name} has no bfloat16: vLLM {engines.fmt(v)} falls back to "
            f"{target} by itself" + (" (the model refuses float16), doubling weight memory" if forbidden else
                                     "; outputs can differ slightly from bfloat16"),
            path=cfg, severity=Severity.WARNING if forbidden else Severity.INFO,
            hint=("pass --dtype float32 to make it explicit (the model refuses float16; it doubles weight memory), "
                  "or use a GPU with bfloat16 (compute capability >= 8.0)" if forbidden else
                  "pass --dtype half to make it explicit, or use a GPU with bfloat16"), data=data)
    elif fallback is False:
        yield Finding(
            f"the checkpoint is bfloat16 and {gpu.name} (compute capability {gpu.compute_capability}) has no "
            f"bfloat16: vLLM {engines.fmt(v)} with --dtype auto refuses to start", path=cfg, hint=f"pass {fix}",
            data=data)
    else:
        yield Finding(
            f"the checkpoint is bfloat16 and {gpu.name} has no bfloat16: {engine or 'the engine'} "
            f"{engines.fmt(v)} either refuses to start or falls back to float16 (vLLM <= 0.8.4 refuses, >= 0.14 "
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
    if engines.canonical_dtype(asked if isinstance(asked, str) else None) != "float16":
        return
    _, v = _vllm(ctx)
    bad = [mt for mt in _model_types(ctx) if engines.float16_forbidden(mt, v)]
    if not bad:
        return
    gpu = ctx.target.gpu
    fix = "--dtype bfloat16" if gpu is None or _has_bf16(gpu) else "--dtype float32 (twice the memory) or a GPU with bfloat16"
    yield Finding(
        f"--dtype {asked} with model_type {bad[0]!r}: vLLM refuses float16 for this model type (numerical instability)",
        path="engine_args.dtype", hint=f"use {fix}", data={"model_type": bad[0], "dtype": asked})


@rule("ENG005", severity=Severity.ERROR, needs={"image", "gpu"})
def quantization_needs_newer_gpu(ctx: Context) -> Iterator[Finding]:
    """The quantization method needs a higher compute capability than the GPU has.

    ## Why it matters
    Each vLLM quantization method declares a minimum capability; below it the engine stops with "The
    quantization method X is not supported for the current GPU. Minimum capability: N".

    ## How to fix
    Use a GPU that meets the minimum (the finding names it), another quantization of the model (e.g.
    GPTQ runs from 6.0, AWQ from 7.5), or the unquantized model.
    """
    engine, v = _vllm(ctx)
    gpu = ctx.target.gpu
    method, explicit = _quant_method(ctx)
    if engine != "vllm" or gpu is None or not method:
        return
    eff = engines.effective_quant_method(method, gpu.cc_int, v, explicit)
    s = engines.quant_support(eff, v)
    if not s.present or s.min_cc is None or gpu.cc_int >= s.min_cc:
        return
    certain = s.min_cc_low == s.min_cc or gpu.cc_int < (s.min_cc_low or 0)
    need = f"{s.min_cc // 10}.{s.min_cc % 10}"
    src = "--quantization" if explicit else "config.json:quantization_config"
    yield Finding(
        f"quantization {eff} ({src}) needs compute capability {need} in vLLM {engines.fmt(v)}; {gpu.name} has "
        f"{gpu.compute_capability}" + ("" if certain else f" ({s.note})"),
        path="config.json:quantization_config.quant_method" if not explicit else "engine_args.quantization",
        severity=None if certain else Severity.WARNING,
        hint=f"use a GPU with compute capability >= {need}, or a checkpoint quantized with a method this GPU runs",
        data={"method": eff, "min_capability": s.min_cc, "gpu": gpu.name, "compute_capability": gpu.compute_capability,
              "vllm": engines.fmt(v)},
    )


@rule("ENG006", severity=Severity.ERROR, kinds={"hf-llm", "gguf"}, needs={"image"})
def quantization_not_in_engine(ctx: Context) -> Iterator[Finding]:
    """The engine version does not know the quantization method.

    ## Why it matters
    vLLM validates `--quantization` (or config.json quantization_config.quant_method) against its
    own list; methods come and go (GGUF and bitsandbytes moved to plugins in 0.33, marlin, aqlm,
    squeezellm were removed). An unknown method stops the server.

    ## How to fix
    Use an engine version that has the method (the finding names the releases), install the plugin,
    or pick a checkpoint in a supported format.
    """
    engine, v = _vllm(ctx)
    method, explicit = _quant_method(ctx)
    if engine != "vllm" or not method or v is None:
        return
    if ctx.facts.kind == "gguf" and not explicit:
        return  # GGUF on vLLM (experimental, plugin from 0.33) is IMG002's: one cause, one finding
    s = engines.quant_support(method, v)
    src = "engine_args.quantization" if explicit else (
        "config.json:quantization_config.quant_method" if ctx.facts.kind != "gguf" else None)
    ver = engines.fmt(v)
    if not s.known:
        yield Finding(
            f"quantization method {method!r} is unknown to vLLM {ver}" + (" (--quantization)" if explicit else ""),
            path=src, severity=None if explicit else Severity.WARNING,
            hint="valid values: " + ", ".join(engines.quant_methods(v)[:30]),
            data={"method": method, "vllm": ver})
        return
    if s.present is True:
        return
    plugin = method in ("gguf", "bitsandbytes") and v >= (0, 33, 0)
    if s.present is False:
        yield Finding(
            f"vLLM {ver} has no quantization method {method!r}"
            + (" (it moved to an out-of-tree plugin in 0.33)" if plugin else ""),
            path=src,
            hint=(f"install the vLLM {method} plugin in the image, or use vLLM 0.20.x" if plugin
                  else "use an engine version that lists it (see `check explain ENG006`) or another checkpoint format"),
            data={"method": method, "vllm": ver, "sampled": list(s.columns)})
    else:
        yield Finding(
            f"vLLM {ver} may not have quantization method {method!r} ({s.note})", path=src,
            severity=Severity.WARNING, hint="check the engine's --quantization choices before deploying",
            data={"method": method, "vllm": ver, "sampled": list(s.columns)})


# --quantization values vLLM accepts for a checkpoint of each method (override_quantization_method:
# awq -> awq_marlin, gptq -> gptq_marlin; moe_wna16 takes AWQ/GPTQ MoE checkpoints).
_QUANT_COMPATIBLE = {
    "awq": {"awq", "awq_marlin", "marlin", "moe_wna16", "auto_awq"},
    "gptq": {"gptq", "gptq_marlin", "marlin", "gptq_marlin_24", "gptq_bitblas", "bitblas", "moe_wna16", "auto_gptq"},
}
# methods that only read a pre-quantized checkpoint (no on-the-fly quantization of bf16 weights)
_NEEDS_QUANTIZED_CHECKPOINT = {"awq", "awq_marlin", "gptq", "gptq_marlin", "marlin", "gptq_marlin_24",
                               "compressed-tensors", "modelopt", "modelopt_fp4", "auto_awq", "auto_gptq"}


@rule("ENG009", severity=Severity.ERROR, kinds={"hf-llm"}, needs={"image"})
def quantization_flag_contradicts_checkpoint(ctx: Context) -> Iterator[Finding]:
    """--quantization names another method than the checkpoint's quantization_config (or the checkpoint is not quantized).

    ## Why it matters
    vLLM compares the flag with config.json `quantization_config.quant_method` and stops with
    "Quantization method specified in the model config (awq) does not match the quantization method
    specified in the `quantization` argument (gptq)". AWQ/GPTQ/compressed-tensors read pre-quantized
    weights, so on a plain bf16 checkpoint they fail to find their quantization config.

    ## How to fix
    Drop --quantization (vLLM reads the method from config.json), or pass the checkpoint's method
    (its Marlin variant is fine: awq_marlin for AWQ, gptq_marlin for GPTQ). For on-the-fly
    quantization of a bf16 checkpoint use --quantization fp8 (or bitsandbytes).
    """
    engine, _ = _vllm(ctx)
    flag = ctx.target.engine_args.get("quantization")
    if engine != "vllm" or not isinstance(flag, str) or not flag.strip():
        return
    flag = engines.normalize_quant_method(flag)
    ckpt = engines.quant_method_from_config(ctx.facts.config)
    data = {"flag": flag, "checkpoint": ckpt}
    if ckpt is None:
        if flag in _NEEDS_QUANTIZED_CHECKPOINT:
            yield Finding(
                f"--quantization {flag} needs a checkpoint quantized with {flag}, but config.json has no "
                "quantization_config: vLLM finds no quantization config and stops",
                path="engine_args.quantization",
                hint=f"drop --quantization, use a {flag.split('_')[0].upper()} checkpoint of the model, or "
                "--quantization fp8 to quantize the bf16 weights on load",
                data=data)
        return
    if flag == ckpt or flag in _QUANT_COMPATIBLE.get(ckpt, ()):
        return
    yield Finding(
        f"--quantization {flag} contradicts the checkpoint's quantization_config.quant_method {ckpt!r}: "
        "vLLM refuses mismatched quantization methods",
        path="engine_args.quantization",
        hint=f"drop --quantization (vLLM picks {ckpt} from config.json)"
        + (f" or use --quantization {ckpt}_marlin" if ckpt in ("awq", "gptq") else ""),
        data=data)


@rule("ENG007", severity=Severity.ERROR, needs={"image"})
def quantization_dtype_mismatch(ctx: Context) -> Iterator[Finding]:
    """--dtype is not an activation dtype the quantization method supports.

    ## Why it matters
    Quantized kernels support fixed activation dtypes (AWQ/GPTQ: float16 only); vLLM raises
    "torch.bfloat16 is not supported for quantization method awq" when another is asked for.

    ## How to fix
    Pass `--dtype half` for AWQ/GPTQ, or let the Marlin variant run (drop `--quantization awq`).
    """
    engine, v = _vllm(ctx)
    method, explicit = _quant_method(ctx)
    asked = ctx.target.engine_args.get("dtype")
    canon = engines.canonical_dtype(asked) if isinstance(asked, str) else None
    if engine != "vllm" or not method or canon in (None, "auto"):
        return
    gpu = ctx.target.gpu
    eff = engines.effective_quant_method(method, gpu.cc_int if gpu else None, v, explicit)
    allowed, sampled = engines.quant_act_dtypes(eff, v)
    if not allowed or canon in allowed:
        return
    yield Finding(
        f"--dtype {asked} is not supported by quantization {eff} (supported: {', '.join(allowed)}; vLLM {sampled} data)",
        path="engine_args.dtype", hint=f"use --dtype {'half' if 'float16' in allowed else allowed[0]}",
        data={"method": eff, "dtype": canon, "supported": list(allowed)})


@rule("ENG008", severity=Severity.INFO, kinds={"hf-llm"}, needs={"image", "gpu"})
def fp8_weight_only_on_gpu(ctx: Context) -> Iterator[Finding]:
    """An FP8 checkpoint on a GPU without FP8 runs weight-only (or not at all for block FP8 in 0.8.x).

    ## Why it matters
    Below compute capability 8.9 vLLM runs FP8 weights through the Marlin kernel (W8A16): memory
    savings, no FP8 speed-up. vLLM 0.8.x cannot do that for block-wise FP8 (weight_block_size) and
    fails; 0.9.0+ can.

    ## How to fix
    Accept the slower path, use an L20/L40S/H20/H100-class GPU, or for block FP8 use vLLM >= 0.9.
    """
    engine, v = _vllm(ctx)
    gpu = ctx.target.gpu
    method, _ = _quant_method(ctx)
    if engine != "vllm" or gpu is None or method != "fp8" or gpu.cc_int >= 89 or gpu.cc_int < 75:
        return
    qc = (ctx.facts.config or {}).get("quantization_config") or {}
    block = isinstance(qc, dict) and qc.get("weight_block_size") is not None
    data = {"gpu": gpu.name, "compute_capability": gpu.compute_capability, "block_quant": block, "vllm": engines.fmt(v)}
    if block and v is not None and v < (0, 9, 0):
        yield Finding(
            f"block-wise FP8 checkpoint (weight_block_size) on {gpu.name}: vLLM {engines.fmt(v)} cannot use the "
            "Marlin fallback below compute capability 8.9 and fails", path="config.json:quantization_config",
            severity=Severity.ERROR, hint="use vLLM >= 0.9.0 or a GPU with FP8 (compute capability >= 8.9)", data=data)
        return
    online = engines.quant_method_from_config(ctx.facts.config) is None  # --quantization fp8 on bf16 weights
    yield Finding(
        (f"--quantization fp8 on {gpu.name}" if online else f"FP8 checkpoint on {gpu.name}")
        + f" (compute capability {gpu.compute_capability}): runs as weight-only FP8 through Marlin, no FP8 "
        "compute speed-up", path="engine_args.quantization" if online else "config.json:quantization_config",
        hint="fine for memory; for FP8 speed use a GPU with compute capability >= 8.9", data=data)
