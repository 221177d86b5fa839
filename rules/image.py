"""IMG: can the declared image serve this kind and format of model?

What each image family serves (category, accepts_kinds, accepts_formats, chip_types) is catalog data
(checker/catalog/images.yaml); the rules ask :func:`image_family`. The only engine knowledge kept here
is how vLLM's GGUF loader behaves across versions, with its sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checker.errors import CheckError
from checker.rule import Context, Finding, Severity, rule

# what a catalog lookup may raise: an unknown name, or an older/foreign catalog object
CATALOG_ERRORS = (CheckError, AttributeError, TypeError, LookupError)

# Used only when no catalog is at hand (plain run_rule tests, broken user catalog): category -> kinds.
_CATEGORY_KINDS = {
    "llm": {"hf-llm", "adapter", "gguf", "ollama"},
    "image-generation": {"diffusion"},
    "video": {"diffusion"},
    "training": {"diffusion"},
    "tts": {"tts"},
    "rag": {"hf-llm", "custom"},
}
_GENERAL = ("general", "base")
_KIND_WORDS = {
    "hf-llm": "a Hugging Face language model",
    "gguf": "a GGUF model",
    "diffusion": "an image-generation (diffusion) model",
    "tts": "a text-to-speech model",
    "custom": "a custom (non-HF) model",
    "adapter": "a LoRA adapter",
    "ollama": "an Ollama store",
}
# vLLM's GGUF loader: "highly experimental", single-file only, --tokenizer of the HF original advised
# (vLLM docs features/quantization/gguf.md, 0.6 - 0.20); from 0.33.0 gguf left the in-tree
# quantization methods for the out-of-tree vllm-gguf-plugin (vllm_support.yaml removed_notes).
VLLM_GGUF_PLUGIN_FROM = (0, 33)


def image_family(ctx: Context) -> dict[str, Any]:
    """The catalog entry of the target image's family, or {} (no image, no catalog, unknown family)."""
    engine = ctx.target.engine
    cat = ctx.catalog
    if not engine or cat is None:
        return {}
    try:
        finder = getattr(cat, "find_image_family", None)
        fam = finder(engine) if callable(finder) else cat.image_family(engine)
    except CATALOG_ERRORS:  # an unknown family or an older catalog: the rule falls back to the ImageRef
        return {}
    return dict(fam) if isinstance(fam, dict) else {}


def image_category(ctx: Context) -> str | None:
    img = ctx.target.image
    return image_family(ctx).get("category") or (img.category if img else None)


def accepted_kinds(ctx: Context) -> tuple[set[str], set[str]]:
    """(kinds served, kinds served experimentally) by the target image."""
    fam = image_family(ctx)
    if "accepts_kinds" in fam:
        return set(fam.get("accepts_kinds") or ()), set(fam.get("accepts_kinds_experimental") or ())
    return set(_CATEGORY_KINDS.get(image_category(ctx) or "", ())), set()


def images_for(ctx: Context, kind: str) -> list[str]:
    """Catalog image families that serve ``kind`` (special-purpose ones first, general ones never)."""
    cat = ctx.catalog
    ranked: list[tuple[tuple[bool, bool, int, str], str]] = []
    try:
        for name in cat.image_families():
            fam = cat.find_image_family(name) or {}
            if kind in (fam.get("accepts_kinds") or ()) and fam.get("category") not in (
                *_GENERAL,
                "training",
            ):
                # dedicated serving images first, the best documented (most known versions) before the rest
                key = (
                    fam.get("category") == "rag",
                    fam.get("confidence") == "low",
                    -len(fam.get("versions") or ()),
                    name,
                )
                ranked.append((key, name))
    except CATALOG_ERRORS:
        return []  # no catalog to suggest from
    return [name for _, name in sorted(ranked)]


def _engine_label(ctx: Context) -> str:
    img = ctx.target.image
    if img is None:
        return "?"
    return f"{img.engine}" + (f" {img.version}" if img.version else "")


@rule("IMG001", severity=Severity.ERROR, needs={"image"})
def kind_image_mismatch(ctx: Context) -> Iterator[Finding]:
    """The image serves a different kind of model (an LLM on ComfyUI, an SD checkpoint on vLLM, TTS on vLLM).

    ## Why it matters
    Each serving image loads one family of models: vLLM/SGLang load language models, ComfyUI / SD WebUI
    load diffusion checkpoints, CosyVoice loads its own TTS files. The wrong pairing fails at start-up
    or leaves a server with no usable model.

    ## How to fix
    Deploy the model on an image of the matching category (the finding names candidates from the
    catalog), or deploy the model the image is meant for.
    """
    img = ctx.target.image
    kind = ctx.facts.kind
    category = image_category(ctx)
    # unknown images, unknown folders, adapters, Ollama stores and GGUF/HF format questions have their own rules
    if img is None or not img.known or kind in ("unknown", "adapter", "ollama") or category in _GENERAL:
        return
    if category == "llm" and kind in ("hf-llm", "gguf"):
        return
    served, experimental = accepted_kinds(ctx)
    if not served and not experimental or kind in served or kind in experimental:
        return
    candidates = images_for(ctx, kind)
    yield Finding(
        f"the image {img.raw} is {category or 'an unknown category'} ({_engine_label(ctx)} serves "
        f"{', '.join(sorted(served)) or 'nothing we know'}), but this folder holds {_KIND_WORDS.get(kind, kind)}"
        + (f" ({ctx.facts.classification.evidence[0]})" if ctx.facts.classification.evidence else ""),
        hint=(
            f"deploy it on an image that serves {kind}: {', '.join(candidates[:4])}"
            if candidates
            else f"deploy it on an image that serves {kind}"
        ),
        data={
            "kind": kind,
            "engine": img.engine,
            "category": category,
            "accepts_kinds": sorted(served),
            "suggested_images": candidates[:4],
        },
    )


@rule("IMG002", severity=Severity.ERROR, kinds={"gguf"}, needs={"image"})
def gguf_on_hf_engine(ctx: Context) -> Iterator[Finding]:
    """A GGUF model is deployed on an engine that serves Hugging Face folders (vLLM, SGLang ...).

    ## Why it matters
    SGLang and most LLM images load Hugging Face folders only. vLLM loads a *single-file* GGUF
    experimentally (slow, not every architecture, needs the original tokenizer) before 0.33, and from
    0.33 only with the separate vllm-gguf-plugin installed; split GGUF files never load.

    ## How to fix
    Serve the GGUF with llama.cpp (`llama-server -m FILE.gguf`), or deploy the Hugging Face original on
    vLLM. To try vLLM anyway: `vllm serve ./FILE.gguf --tokenizer ORG/ORIGINAL` (merge split files
    first with `llama-gguf-split --merge`).
    """
    img = ctx.target.image
    if img is None or not img.known or image_category(ctx) != "llm":
        return
    served, _ = accepted_kinds(ctx)
    if "gguf" in served:
        return
    files = [g.path for g in ctx.facts.gguf if "mmproj" not in g.path.lower()] or [
        f.path for f in ctx.facts.files_with_suffix(".gguf")
    ]
    first = files[0] if files else "MODEL.gguf"
    split = any((g.split_count or 0) > 1 for g in ctx.facts.gguf)
    llama = f"serve it with llama.cpp: `llama-server -m {first}`, or deploy the Hugging Face original of the model"
    data = {"engine": img.engine, "version": img.version, "gguf_files": files, "split": split}
    if img.engine != "vllm":
        yield Finding(
            f"{_engine_label(ctx)} serves Hugging Face folders; this is a GGUF model ({first})",
            path=first,
            hint=llama,
            data=data,
        )
        return
    version = img.version_tuple
    if split:
        yield Finding(
            f"{first} is a split GGUF ({len(files)} parts): vLLM loads only single-file GGUF",
            path=first,
            hint=f"merge the parts with `llama-gguf-split --merge {first} merged.gguf`, or {llama}",
            data=data,
        )
    elif version is not None and version[:2] >= VLLM_GGUF_PLUGIN_FROM:
        yield Finding(
            f"vLLM {img.version} loads GGUF only through the separate vllm-gguf-plugin, which the image "
            f"{img.raw} does not ship; this is a GGUF model ({first})",
            path=first,
            hint=f"{llama}; or build an image with `pip install vllm-gguf-plugin`",
            data=data,
        )
    else:
        yield Finding(
            f"vLLM's GGUF support is experimental (slower, not every architecture, tokenizer converted from "
            f"GGUF): {first} may fail to load" + ("" if version else " (image version unknown)"),
            path=first,
            severity=Severity.WARNING,
            hint=f"start with the file and the original tokenizer: `vllm serve ./{first} --tokenizer ORG/ORIGINAL`"
            f", or {llama}",
            data=data,
        )


@rule("IMG003", severity=Severity.ERROR, kinds={"hf-llm"}, needs={"image"})
def hf_folder_on_gguf_engine(ctx: Context) -> Iterator[Finding]:
    """A Hugging Face model folder is deployed on llama.cpp, which loads only GGUF files.

    ## Why it matters
    llama.cpp's server takes `-m FILE.gguf`; it cannot read config.json + safetensors.

    ## How to fix
    Convert with llama.cpp's `convert_hf_to_gguf.py PATH --outfile model-f16.gguf --outtype f16` (then
    optionally `llama-quantize model-f16.gguf model-Q4_K_M.gguf Q4_K_M`), or deploy on vLLM/SGLang.
    """
    fam = image_family(ctx)
    img = ctx.target.image
    formats = set(fam.get("accepts_formats") or ())
    if img is None or not formats or "gguf" not in formats or formats & {"hf-safetensors", "hf-bin"}:
        return
    yield Finding(
        f"{_engine_label(ctx)} loads GGUF files only; this is a Hugging Face folder "
        f"({', '.join(ctx.facts.architectures) or 'config.json + weights'})",
        hint="convert it: `python convert_hf_to_gguf.py . --outfile model-f16.gguf --outtype f16` then "
        "`llama-quantize model-f16.gguf model-Q4_K_M.gguf Q4_K_M`; or deploy the folder on "
        + (", ".join(images_for(ctx, "hf-llm")[:2]) or "vLLM/SGLang"),
        data={"engine": img.engine, "accepts_formats": sorted(formats)},
    )


@rule("IMG004", severity=Severity.ERROR, kinds={"diffusion"}, needs={"image"})
def diffusion_format_mismatch(ctx: Context) -> Iterator[Finding]:
    """A diffusion model's layout (diffusers folder vs single-file checkpoint) is not what the image loads.

    ## Why it matters
    SD WebUI loads single-file checkpoints (models/Stable-diffusion/*.safetensors) and cannot load a
    diffusers folder (model_index.json + unet/ vae/ text_encoder/). ComfyUI loads diffusers folders only
    through its deprecated DiffusersLoader node (from models/diffusers/); its normal loaders want single
    files. Diffusers-based images cannot load a single-file checkpoint.

    ## How to fix
    Download the single-file checkpoint of the model (most repos publish one next to the diffusers
    folder), convert with diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py, or pick
    an image that loads this layout.
    """
    fam = image_family(ctx)
    img = ctx.target.image
    formats = set(fam.get("accepts_formats") or ())
    if img is None or not formats or "diffusion" not in accepted_kinds(ctx)[0]:
        return  # an image that does not serve diffusion at all is IMG001's
    diffusers = "model_index.json" in ctx.facts.json_files
    layout = "diffusers" if diffusers else "sd-single-file"
    what = (
        "a diffusers folder (model_index.json + component folders)"
        if diffusers
        else "a single-file checkpoint"
    )
    data = {"engine": img.engine, "layout": layout, "accepts_formats": sorted(formats)}
    if layout not in formats:
        yield Finding(
            f"{_engine_label(ctx)} loads {', '.join(sorted(formats))}; this is {what}",
            path="model_index.json" if diffusers else None,
            hint="download the single-file .safetensors checkpoint of this model (or convert with diffusers' "
            "convert_diffusers_to_original_stable_diffusion.py)"
            if diffusers
            else "use the diffusers version of the model, or an image that loads single-file checkpoints",
            data=data,
        )
    elif diffusers and img.engine == "comfyui":
        yield Finding(
            "ComfyUI loads a diffusers folder only through the deprecated DiffusersLoader node "
            "(from models/diffusers/); its checkpoint loaders and most workflows need a single-file checkpoint",
            path="model_index.json",
            severity=Severity.WARNING,
            hint="put the single-file .safetensors checkpoint under models/checkpoints/, or mount this folder "
            "under models/diffusers/ and use the DiffusersLoader node",
            data=data,
        )


@rule("IMG005", severity=Severity.INFO, needs={"image"})
def general_purpose_image(ctx: Context) -> Iterator[Finding]:
    """The image is a general-purpose runtime (PyTorch, Triton, TF Serving, a Python base image).

    ## Why it matters
    These images do not know how to serve a model folder by themselves: PyTorch and Python base images
    run your own serving code, Triton needs a model repository (config.pbtxt + version folders), TF
    Serving needs a SavedModel. modelcheck cannot check that code.

    ## How to fix
    Ship the serving code (or the Triton repository layout) with the deployment, or use a serving image
    for the model's kind (vLLM/SGLang for LLMs, ComfyUI/SD WebUI for diffusion...).
    """
    img = ctx.target.image
    if img is None or not img.known or image_category(ctx) not in _GENERAL:
        return
    served, _ = accepted_kinds(ctx)
    kind = ctx.facts.kind
    if kind == "custom" and ctx.facts.classification.subtype == "triton" and img.engine == "triton":
        return  # a Triton repository on a Triton image: the intended pairing
    better = images_for(ctx, kind)
    if served and kind not in served:
        yield Finding(
            f"{_engine_label(ctx)} serves {', '.join(sorted(served))} models; this folder holds "
            f"{_KIND_WORDS.get(kind, kind)}, which it cannot load as is",
            severity=Severity.WARNING,
            hint=f"use {', '.join(better[:3])} for this model"
            if better
            else "package the model in the layout the image loads",
            data={"engine": img.engine, "kind": kind, "accepts_kinds": sorted(served)},
        )
        return
    yield Finding(
        f"{_engine_label(ctx)} is a general-purpose image: it runs your own serving code, so whether it "
        "serves this model depends on that code, which modelcheck does not see",
        hint=(
            f"make sure the start command loads this folder, or use {', '.join(better[:3])}"
            if better
            else "make sure the start command loads this folder"
        ),
        data={"engine": img.engine, "kind": kind},
    )


@rule("IMG006", severity=Severity.WARNING, needs={"image"})
def unknown_image(ctx: Context) -> Iterator[Finding]:
    """The image is not in the catalog, so model/image compatibility cannot be checked.

    ## Why it matters
    Without knowing the engine, modelcheck cannot tell whether it loads this kind and format of model,
    which chips it runs on, or how it uses memory; those checks are skipped.

    ## How to fix
    Use a known image name (`check rules` / the catalog lists them), or describe your image in a user
    catalog file (`--catalog my-images.yaml`) with its category, accepts_kinds and chip_types.
    """
    img = ctx.target.image
    if img is not None and not img.known:
        yield Finding(
            f"unknown image {img.raw!r} (engine {img.engine!r}): compatibility with this "
            f"{ctx.facts.kind} model was not checked",
            hint="use a catalog image name (vllm:0.14.0-gpu, sglang:0.5.8-gpu, llama.cpp, comfyui:2.2 ...) "
            "or add the image to a user catalog with --catalog",
            data={"image": img.raw, "engine": img.engine},
        )


@rule("IMG007", severity=Severity.INFO, kinds={"hf-llm"}, needs={"image"})
def pickle_only_weights(ctx: Context) -> Iterator[Finding]:
    """The LLM's weights are only pickle .bin files (no .safetensors).

    ## Why it matters
    vLLM and SGLang load pytorch_model*.bin, but through torch.load: slower than memory-mapped
    safetensors, more host RAM during loading, and pickle files can carry code (see the SEC rules).

    ## How to fix
    Convert once to safetensors (transformers `save_pretrained(..., safe_serialization=True)`, or the
    safetensors convert script) and deploy the converted folder.
    """
    if image_category(ctx) != "llm" or ctx.facts.safetensors or ctx.facts.files_with_suffix(".safetensors"):
        return
    bins = [
        f.path for f in ctx.facts.files_with_suffix(".bin") if f.name.startswith(("pytorch_model", "model"))
    ]
    if bins:
        yield Finding(
            f"weights are pickle .bin only ({', '.join(bins[:3])}{' ...' if len(bins) > 3 else ''}): "
            f"{_engine_label(ctx)} loads them, but more slowly than safetensors and through torch.load",
            path=bins[0],
            hint="convert to safetensors once (`model.save_pretrained(out, safe_serialization=True)`) and deploy that",
            data={"bin_files": bins},
        )
