"""What llama.cpp's ``llama-server`` derives from a GGUF, per build, read in its source (never vLLM's rules).

Pure functions over GGUF metadata values, byte sizes and a build number (``b7437`` -> 7437; None = the
newest source read, what the ``server-cuda`` image tracks). Sources read: the llama.cpp trees vendored by
llama-cpp-python 0.3.16 (llama.cpp@4227c9b, Aug 2025, "legacy") and 0.3.36 (llama.cpp@0c1e570, "fit").

- **Context** (common/common.h, common/arg.cpp): legacy ``n_ctx = 4096``; newer ``n_ctx = 0`` = the GGUF's
  ``<arch>.context_length`` (n_ctx_train, src/llama-context.cpp). ``-c N`` sets it; ``-c 0`` asks for the
  full trained context and stops --fit from reducing it. A context above n_ctx_train only warns.
- **Offload** (``-ngl``): legacy default -1 = "use default" = llama_model_default_params' 0 layers: the model
  runs on the CPU unless -ngl is given. Newer: -1 = "auto" = all layers (llama_model::n_gpu_layers()).
- **--fit** (PR ggml-org/llama.cpp#16653, Dec 2025; on by default): the parameters the user did NOT set are
  reduced until the projection fits the free memory with a 1 GiB margin per GPU: first the context, down to
  ``--fit-ctx`` (4096), then layers move to the CPU. So a model too large for the GPU still starts (slower,
  partly on the CPU); only explicit ``-c`` + ``-ngl`` (or ``--fit off``) that do not fit fail at load with a
  CUDA allocation error.
- **Load failures** (src/llama-model-loader.cpp, src/llama-arch.cpp): an architecture the build does not know
  ("unknown model architecture"), a file without tensors (llama.cpp's vocab-only test files: "missing
  tensor"), a split GGUF whose other parts are absent.

Builds between the two read (b6200..b7436) are not read: which era applies is stated, not guessed silently.
"""

from __future__ import annotations

from typing import Any

from modelcheck.record import record

GIB = 1 << 30
MIB = 1 << 20

LEGACY_LAST_BUILD = 6200  # llama.cpp@4227c9b (llama-cpp-python 0.3.16), read
FIT_FIRST_SEEN_BUILD = 7437  # --fit reported on b7437 (ggml-org/llama.cpp#18097, 2025-12-16)
LEGACY_N_CTX = 4096  # common/common.h@4227c9b: int32_t n_ctx = 4096
FIT_MIN_CTX = 4096  # common/common.h@0c1e570: fit_params_min_ctx = 4096
FIT_MARGIN = 1024 * MIB  # common/common.h@0c1e570: fit_params_target = 1024 MiB per device
UBATCH = 512  # n_ubatch default: the compute buffer holds one micro-batch

# Fixes spell settings with the engine's own flags: checker/catalog/engine_args.yaml (engine_args.spelling).


@record
class Defaults:
    era: str  # "legacy" | "fit"
    n_ctx: int | None  # None: the GGUF's context_length
    all_layers_on_gpu: bool  # -ngl default offloads everything
    fit: bool  # --fit on by default
    note: str | None


def build_number(version: Any) -> int | None:
    """b7437 / "7437" / 7437 -> 7437; anything else (None, "latest", a date) -> None."""
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    if isinstance(version, str):
        s = version.strip().lower()
        s = s[s.rfind("-b") + 2:] if "-b" in s else s.removeprefix("b")
        if s.isdigit():
            return int(s)
    if isinstance(version, tuple) and len(version) == 1 and isinstance(version[0], int):
        return version[0]
    return None


def defaults(build: int | None) -> Defaults:
    if build is not None and build <= LEGACY_LAST_BUILD:
        return Defaults("legacy", LEGACY_N_CTX, False, False, None)
    if build is None:
        return Defaults("fit", None, True, True, "llama.cpp build unknown: the newest source read (--fit on, "
                        "context from the GGUF, all layers on the GPU) is assumed")
    if build < FIT_FIRST_SEEN_BUILD:
        return Defaults("fit", None, True, True, f"llama.cpp b{build} was not read (between b{LEGACY_LAST_BUILD} "
                        f"and b{FIT_FIRST_SEEN_BUILD}): the --fit defaults are assumed")
    return Defaults("fit", None, True, True, None)


def context(n_ctx_train: int | None, requested: int | None, build: int | None) -> tuple[int, str]:
    """(n_ctx llama-server allocates before --fit, how it was chosen)."""
    d = defaults(build)
    if requested:
        return int(requested), f"-c {requested}"
    if requested == 0 or d.n_ctx is None:
        if n_ctx_train:
            return int(n_ctx_train), f"the GGUF's context_length {n_ctx_train} (-c 0 / default)"
        return LEGACY_N_CTX, f"no context_length in the GGUF: {LEGACY_N_CTX} assumed"
    return d.n_ctx, f"llama-server default -c {d.n_ctx}"


@record
class Offload:
    """What llama-server does with the GPU memory it finds."""

    status: str  # "ok" | "context-reduced" | "partial-offload" | "cpu-only" | "fail"
    n_ctx: int
    gpu_layers: int
    total_layers: int
    need_bytes: int  # all layers + KV(n_ctx) + compute buffer, before any fitting
    fitted: bool  # --fit changed a setting the user left unset
    message: str


def _need(weights: int, kv_per_token: int, ctx: int, compute: int) -> int:
    return weights + kv_per_token * ctx + compute


def plan(weights_bytes: int, num_layers: int, kv_bytes_per_token: int, compute_bytes: int, free_bytes: int,
         n_ctx_train: int | None, requested_ctx: int | None = None, requested_ngl: int | None = None,
         fit: bool | None = None, build: int | None = None, gpu_count: int = 1) -> Offload:
    """Mirror of the load path: defaults, then --fit over the unset parameters, then the allocation.

    ``free_bytes`` is the GPU memory over all GPUs the server may use (layers are split across GPUs)."""
    d = defaults(build)
    fit = d.fit if fit is None else fit
    ctx, _ = context(n_ctx_train, requested_ctx, build)
    ngl = requested_ngl if requested_ngl is not None and requested_ngl >= 0 else None
    if ngl is None and not d.all_layers_on_gpu:
        ngl = 0
    layers = max(1, num_layers)
    need = _need(weights_bytes, kv_bytes_per_token, ctx, compute_bytes)
    per_layer_w = weights_bytes / layers

    def need_at(c: int, n: int) -> int:
        return int(per_layer_w * n + kv_bytes_per_token * c * n / layers + compute_bytes)

    if ngl == 0:
        return Offload("cpu-only", ctx, 0, layers, need, False,
                       "llama-server without -ngl keeps every layer on the CPU in this build (default -ngl 0)")
    on_gpu = min(layers, ngl) if ngl is not None else layers
    pinned = requested_ctx is not None and requested_ngl is not None  # --fit has nothing left to change
    budget = free_bytes - (FIT_MARGIN * gpu_count if fit and not pinned else 0)
    if need_at(ctx, on_gpu) <= budget:
        return Offload("ok", ctx, on_gpu, layers, need, False, f"{on_gpu}/{layers} layers on the GPU, context {ctx}")
    if not fit or pinned:
        return Offload("fail", ctx, on_gpu, layers, need, False,
                       f"{on_gpu} layers + a {ctx}-token KV cache need {need_at(ctx, on_gpu) / GIB:.2f} GiB of "
                       f"{free_bytes / GIB:.2f} GiB: the CUDA allocation fails at load")
    # --fit: the context first (only when the user left it unset), down to FIT_MIN_CTX
    if requested_ctx is None and ctx > FIT_MIN_CTX:
        room = budget - need_at(0, on_gpu)
        per_tok = kv_bytes_per_token * on_gpu / layers
        fitted_ctx = int(room // per_tok) if per_tok and room > 0 else 0
        if fitted_ctx >= FIT_MIN_CTX:
            fitted_ctx = min(ctx, fitted_ctx // 256 * 256)
            return Offload("context-reduced", fitted_ctx, on_gpu, layers, need, True,
                           f"--fit reduces the context from {ctx} to {fitted_ctx} so that all {on_gpu} layers stay "
                           "on the GPU")
        ctx = min(ctx, FIT_MIN_CTX)
    if requested_ngl is not None:
        return Offload("fail", ctx, on_gpu, layers, need, True,
                       f"-ngl {requested_ngl} with a {ctx}-token context needs {need_at(ctx, on_gpu) / GIB:.2f} GiB of "
                       f"{budget / GIB:.2f} GiB: the CUDA allocation fails at load")
    # then layers move to the CPU
    per_layer = per_layer_w + kv_bytes_per_token * ctx / layers
    n = int(max(0, budget - compute_bytes) // per_layer) if per_layer else 0
    n = max(0, min(layers, n))
    return Offload("partial-offload", ctx, n, layers, need, True,
                   f"--fit keeps {n}/{layers} layers on the GPU and runs the rest on the CPU (context {ctx}): it "
                   "starts, but generation is several times slower")


# src/llama-arch.cpp LLM_ARCH_NAMES (general.architecture values the build loads)
_ARCHS_LEGACY = """
    (unknown) arcee arctic arwkv7 baichuan bailingmoe bert bitnet bloom chameleon chatglm codeshell cohere2
    command-r dbrx deci deepseek deepseek2 dots1 dream ernie4_5 ernie4_5-moe exaone exaone4 falcon falcon-h1
    gemma gemma2 gemma3 gemma3n glm4 glm4moe gpt-oss gpt2 gptj gptneox granite granitehybrid granitemoe grok
    hunyuan-dense hunyuan-moe internlm2 jais jamba jina-bert-v2 lfm2 llada llama llama4 mamba mamba2 minicpm
    minicpm3 mpt nemotron neo-bert nomic-bert nomic-bert-moe olmo olmo2 olmoe openelm orion phi2 phi3 phimoe
    plamo plamo2 plm qwen qwen2 qwen2moe qwen2vl qwen3 qwen3moe refact rwkv6 rwkv6qwen2 rwkv7 smallthinker
    smollm3 stablelm starcoder starcoder2 t5 t5encoder wavtokenizer-dec xverse
"""
_ARCHS_ADDED_FIT = """
    afmoe apertus bailingmoe2 bailingmoe3 clip cogvlm cohere2moe deepseek2-ocr deepseek32 deepseek4 dflash
    dots3note eagle3 eurobert exaone-moe gemma-embedding gemma4 gemma4-assistant glm-dsa glm5-next granite_swa
    graniteswitch grovemoe hrm_text hunyuan_vl hy_v3 hy_v4 jais2 jina-bert-v3 kimi-k3 kimi-linear laguna
    lfm2moe llada-moe llama-embed maincoder maple mellum mimo2 minimax-01 minimax-m2 minimax-m3 mistral3
    mistral4 modern-bert muse-glimmer nanbeige nemotron_h nemotron_h_moe paddleocr pangu-embedded plamo3
    pockettts qwen35 qwen35moe qwen3next qwen3tts qwen3vl qwen3vlmoe qwen4exp rnd1 seed_oss spark2_5 step35
    talkie
"""
_ARCHS_REMOVED_FIT = ""


def architectures(build: int | None) -> frozenset[str]:
    base = set(_ARCHS_LEGACY.split())
    if defaults(build).era == "fit":
        base = (base | set(_ARCHS_ADDED_FIT.split())) - set(_ARCHS_REMOVED_FIT.split())
    return frozenset(base)


@record
class LoadCheck:
    loads: bool
    reason: str | None
    note: str | None


def load_check(metadata: dict[str, Any] | None, tensor_count: int | None, build: int | None = None,
               split_count: int | None = None, split_present: int | None = None) -> LoadCheck:
    """Will ``llama_model_load`` accept this GGUF (llama-model-loader.cpp / llama-arch.cpp)?"""
    d = defaults(build)
    md = metadata if isinstance(metadata, dict) else {}
    arch = md.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        return LoadCheck(False, "no general.architecture key: llama.cpp cannot pick a model class", d.note)
    if arch not in architectures(build):
        when = f"b{build}" if build is not None else "the newest build read"
        return LoadCheck(False, f"unknown model architecture '{arch}' for llama.cpp {when}", d.note)
    if tensor_count == 0:
        return LoadCheck(False, "the file holds no tensors (a vocab-only GGUF, as llama.cpp's tokenizer test files): "
                         "loading fails with \"missing tensor\"", d.note)
    if split_count and split_present is not None and split_present < split_count:
        return LoadCheck(False, f"split GGUF: {split_present} of {split_count} parts present", d.note)
    return LoadCheck(True, None, d.note)
