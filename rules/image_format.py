"""IMG: does the image load the model's file format? GGUF vs Hugging Face folders, diffusers folders vs
single-file checkpoints, pickle-only weights.

The only engine knowledge kept here is how vLLM's GGUF loader behaves across versions, with its sources;
everything else is catalog data (accepts_formats).

Codes: IMG002, IMG003, IMG004, IMG007.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import accepted_kinds, engine_label, image_category, image_family, images_for

# vLLM's GGUF loader: "highly experimental", single-file only, --tokenizer of the HF original advised
# (vLLM docs features/quantization/gguf.md, 0.6 - 0.20); what loads in which release is the engine
# view's (checker/engines/vllm.py gguf_load: gone from 0.24.0, a .gguf file path required).


@rule("IMG002", severity=Severity.ERROR, kinds={"gguf"}, needs={"image"})
def gguf_on_hf_engine(ctx: Context) -> Iterator[Finding]:
    """A GGUF model is deployed on an engine that serves Hugging Face folders (vLLM, SGLang ...).

    ## Why it matters
    SGLang and most LLM images load Hugging Face folders only. vLLM (0.6 - 0.23) loads a GGUF only when
    its model argument is the `.gguf` *file* itself (a mounted folder holding one is read as a Hugging
    Face folder and fails), experimentally (slow, architectures transformers can read, the original
    tokenizer advised); vLLM 0.24.0 and later have no GGUF loader; split GGUF files never load.

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
            f"{engine_label(ctx)} serves Hugging Face folders; this is a GGUF model ({first})",
            path=first,
            hint=llama,
            data=data,
        )
        return
    version = img.version_tuple
    from modelcheck import engines

    ev = engines.of(ctx)
    load = ev.gguf if ev is not None else None
    if load is not None:
        data.update(load.data, loadable=load.loadable, certain=load.certain)
    if split:
        yield Finding(
            f"{first} is a split GGUF ({len(files)} parts): vLLM loads only single-file GGUF",
            path=first,
            hint=f"merge the parts with `llama-gguf-split --merge {first} merged.gguf`, or {llama}",
            data=data,
        )
    elif load is not None and load.loadable is False:
        # the engine view (checker/engines/vllm.py): no loader in this release, a folder instead of the
        # .gguf file path, or an architecture transformers cannot build a config for
        yield Finding(
            f"{load.reason}: {first}" + ("" if load.certain else " (uncertain)"),
            path=first, severity=None if load.certain else Severity.WARNING,
            hint=f"{load.fix}; or {llama}", data=data,
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
    formats = set(fam.accepts_formats) if fam is not None else set()
    if img is None or not formats or "gguf" not in formats or formats & {"hf-safetensors", "hf-bin"}:
        return
    yield Finding(
        f"{engine_label(ctx)} loads GGUF files only; this is a Hugging Face folder "
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
    formats = set(fam.accepts_formats) if fam is not None else set()
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
            f"{engine_label(ctx)} loads {', '.join(sorted(formats))}; this is {what}",
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
            f"{engine_label(ctx)} loads them, but more slowly than safetensors and through torch.load",
            path=bins[0],
            hint="convert to safetensors once (`model.save_pretrained(out, safe_serialization=True)`) and deploy that",
            data={"bin_files": bins},
        )
