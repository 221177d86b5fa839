"""ENG rules, quantization: is the checkpoint's (or --quantization's) method known to the engine version,
runnable on the GPU, consistent with the checkpoint and with --dtype? Data from ``modelcheck.catalog.support``.

Codes: ENG005, ENG006, ENG007, ENG008, ENG009, ENG019.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.catalog import support
from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import image_engine, quant_method, serving_engine


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
    engine, v = image_engine(ctx)
    gpu = ctx.target.gpu
    method, explicit = quant_method(ctx)
    if engine != "vllm" or gpu is None or not method:
        return
    eff = support.effective_quant_method(method, gpu.cc_int, v, explicit)
    s = support.quant_support(eff, v)
    if not s.present or s.min_cc is None or gpu.cc_int >= s.min_cc:
        return
    certain = s.min_cc_low == s.min_cc or gpu.cc_int < (s.min_cc_low or 0)
    need = f"{s.min_cc // 10}.{s.min_cc % 10}"
    src = "--quantization" if explicit else "config.json:quantization_config"
    yield Finding(
        f"quantization {eff} ({src}) needs compute capability {need} in vLLM {support.fmt(v)}; {gpu.name} has "
        f"{gpu.compute_capability}, so vLLM stops at start-up" + ("" if certain else f" ({s.note})"),
        path="config.json:quantization_config.quant_method" if not explicit else "engine_args.quantization",
        severity=None if certain else Severity.WARNING,
        hint=f"use a GPU with compute capability >= {need}, or a checkpoint quantized with a method this GPU runs",
        data={"method": eff, "min_capability": s.min_cc, "gpu": gpu.name, "compute_capability": gpu.compute_capability,
              "vllm": support.fmt(v)},
    )


@rule("ENG006", severity=Severity.ERROR, kinds={"hf-llm", "gguf"}, needs={"image"})
def quantization_not_in_engine(ctx: Context) -> Iterator[Finding]:
    """The engine version does not know the quantization method.

    ## Why it matters
    vLLM validates `--quantization` (or config.json quantization_config.quant_method) against its
    own list; methods come and go (GGUF left vLLM in 0.24.0 and bitsandbytes in 0.28.0, the 0.33 sdist
    tests them as out-of-tree plugins; marlin, aqlm, squeezellm were removed). An unknown method stops
    the server.

    ## How to fix
    Use an engine version that has the method (the finding names the releases), install the plugin,
    or pick a checkpoint in a supported format.
    """
    engine, v = image_engine(ctx)
    method, explicit = quant_method(ctx)
    if engine != "vllm" or not method or v is None:
        return
    if ctx.facts.kind == "gguf" and not explicit:
        return  # GGUF on vLLM (experimental, gone from 0.24) is IMG002's: one cause, one finding
    s = support.quant_support(method, v)
    src = "engine_args.quantization" if explicit else (
        "config.json:quantization_config.quant_method" if ctx.facts.kind != "gguf" else None)
    ver = support.fmt(v)
    if not s.known:
        yield Finding(
            f"quantization method {method!r} is unknown to vLLM {ver}" + (" (--quantization)" if explicit else ""),
            path=src, severity=None if explicit else Severity.WARNING,
            hint=f"use one of vLLM {ver}'s --quantization values: " + ", ".join(support.quant_methods(v)[:30]),
            data={"method": method, "vllm": ver})
        return
    if s.present is True:
        return
    plugin = method in ("gguf", "bitsandbytes") and bool(s.note.startswith("removed in"))
    if s.present is False:
        yield Finding(
            f"vLLM {ver} has no quantization method {method!r}"
            + (f" ({s.note}; vLLM's 0.33 sdist tests it as an out-of-tree plugin)" if plugin else ""),
            path=src,
            hint=(f"install the vLLM {method} plugin in the image, or use vLLM {s.note.rsplit(' ', 1)[-1].rstrip(')')}"
                  if plugin else "use an engine version that lists it (see `check explain ENG006`) or another checkpoint format"),
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
    engine, _ = image_engine(ctx)
    flag = ctx.target.engine_args.get("quantization")
    if engine != "vllm" or not isinstance(flag, str) or not flag.strip():
        return
    flag = support.normalize_quant_method(flag)
    ckpt = support.quant_method_from_config(ctx.facts.config)
    data = {"flag": flag, "checkpoint": ckpt}
    if ckpt is None:
        if flag in _NEEDS_QUANTIZED_CHECKPOINT:
            yield Finding(
                f"--quantization {flag} needs a checkpoint quantized with {flag}, but config.json has no "
                "quantization_config: vLLM finds no quantization config and stops",
                path="engine_args.quantization",
                hint=f"drop --quantization, use a checkpoint of the model quantized with {flag.split('_')[0].upper()}, or "
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
    engine, v = image_engine(ctx)
    method, explicit = quant_method(ctx)
    asked = ctx.target.engine_args.get("dtype")
    canon = support.canonical_dtype(asked) if isinstance(asked, str) else None
    if engine != "vllm" or not method or canon in (None, "auto"):
        return
    gpu = ctx.target.gpu
    eff = support.effective_quant_method(method, gpu.cc_int if gpu else None, v, explicit)
    allowed, sampled = support.quant_act_dtypes(eff, v)
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
    engine, v = image_engine(ctx)
    gpu = ctx.target.gpu
    method, _ = quant_method(ctx)
    if engine != "vllm" or gpu is None or method != "fp8" or gpu.cc_int >= 89 or gpu.cc_int < 75:
        return
    qc = (ctx.facts.config or {}).get("quantization_config") or {}
    block = isinstance(qc, dict) and qc.get("weight_block_size") is not None
    data = {"gpu": gpu.name, "compute_capability": gpu.compute_capability, "block_quant": block, "vllm": support.fmt(v)}
    if block and v is not None and v < (0, 9, 0):
        yield Finding(
            f"block-wise FP8 checkpoint (weight_block_size) on {gpu.name}: vLLM {support.fmt(v)} cannot use the "
            "Marlin fallback below compute capability 8.9 and fails", path="config.json:quantization_config",
            severity=Severity.ERROR, hint="use vLLM >= 0.9.0 or a GPU with FP8 (compute capability >= 8.9)", data=data)
        return
    online = support.quant_method_from_config(ctx.facts.config) is None  # --quantization fp8 on bf16 weights
    yield Finding(
        (f"--quantization fp8 on {gpu.name}" if online else f"FP8 checkpoint on {gpu.name}")
        + f" (compute capability {gpu.compute_capability}): runs as weight-only FP8 through Marlin, no FP8 "
        "compute speed-up", path="engine_args.quantization" if online else "config.json:quantization_config",
        hint="fine for memory; for FP8 speed use a GPU with compute capability >= 8.9", data=data)


@rule("ENG019", severity=Severity.ERROR, kinds={"hf-llm", "unknown", "custom"}, needs={"config"})
def quantization_format_not_loadable(ctx: Context) -> Iterator[Finding]:
    """The checkpoint is quantized in a format vLLM cannot load (MLX).

    ## Why it matters
    mlx_lm writes `quantization_config` with `group_size` / `bits` and no `quant_method`, and packs the
    weights into U32 tensors beside `.scales` / `.biases`. vLLM finds no quant_method, loads the model as
    unquantized (`_verify_quantization`, vllm/config/model.py), and its weight loader then meets U32
    tensors and parameter names no vLLM layer declares: the server does not start. Apple-silicon MLX
    checkpoints are for `mlx_lm.server`, not for GPU engines.

    ## How to fix
    Deploy the original (bf16) Hugging Face checkpoint, or a GPU quantization of it (AWQ, GPTQ, FP8,
    compressed-tensors); serve the MLX folder with `mlx_lm.server` on a Mac.
    """
    from modelcheck import engines

    engine, _ = serving_engine(ctx)
    if engine not in (None, "vllm"):
        return  # SGLang / llama.cpp loaders are not read here
    ev = engines.of(ctx)
    q = ev.quant if ev is not None else None
    if q is None or q.loadable is not False:
        return
    label = "vLLM"
    count = f"; it holds {ev.param_count / 1e9:.2f}B parameters ({ev.param_source})" if ev.param_count else ""
    yield Finding(
        q.reason.replace("vLLM", label) + count,
        path="config.json:quantization_config",
        hint="deploy the original bf16 checkpoint or an AWQ/GPTQ/FP8 quantization of it; MLX folders are served "
             "by `mlx_lm.server` on Apple silicon",
        data={"format": q.fmt, "evidence": q.source, "engine": engine or "vllm",
              "param_count": ev.param_count, "param_source": ev.param_source},
    )
