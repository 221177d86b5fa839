"""IMG: can the declared image serve this kind of model at all?

What each image family serves (category, accepts_kinds, accepts_formats, chip_types) is catalog data
(checker/catalog/images.yaml); the rules ask it through ``modelcheck_rules._common``. Whether the image loads the
model's file format (GGUF, Hugging Face folder, diffusers layout, pickles) is ``rules/image_format.py``.

Codes: IMG001, IMG005, IMG006, IMG008.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import (
    GENERAL_CATEGORIES,
    KIND_WORDS,
    accepted_kinds,
    engine_label,
    image_category,
    image_family,
    images_for,
)


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
    if img is None or not img.known or kind in ("unknown", "adapter", "ollama") or category in GENERAL_CATEGORIES:
        return
    if category == "llm" and kind in ("hf-llm", "gguf"):
        return
    served, experimental = accepted_kinds(ctx)
    if not served and not experimental or kind in served or kind in experimental:
        return
    candidates = images_for(ctx, kind)
    yield Finding(
        f"the image {img.raw} is {category or 'an unknown category'} ({engine_label(ctx)} serves "
        f"{', '.join(sorted(served)) or 'nothing we know'}), but this folder holds {KIND_WORDS.get(kind, kind)}"
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
    if img is None or not img.known or image_category(ctx) not in GENERAL_CATEGORIES:
        return
    served, _ = accepted_kinds(ctx)
    kind = ctx.facts.kind
    if kind == "custom" and ctx.facts.classification.subtype == "triton" and img.engine == "triton":
        return  # a Triton repository on a Triton image: the intended pairing
    better = images_for(ctx, kind)
    if served and kind not in served:
        yield Finding(
            f"{engine_label(ctx)} serves {', '.join(sorted(served))} models; this folder holds "
            f"{KIND_WORDS.get(kind, kind)}, which it cannot load as is",
            severity=Severity.WARNING,
            hint=f"use {', '.join(better[:3])} for this model"
            if better
            else "package the model in the layout the image loads",
            data={"engine": img.engine, "kind": kind, "accepts_kinds": sorted(served)},
        )
        return
    yield Finding(
        f"{engine_label(ctx)} is a general-purpose image: it runs your own serving code, so whether it "
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
    """The image is not in the catalog and its engine was not declared, so nothing engine-specific was checked.

    ## Why it matters
    Without knowing the engine, modelcheck cannot tell whether it loads this kind and format of model,
    which chips it runs on, which flags it accepts, or how it uses memory; those checks are skipped.
    (A name one slip away from a known engine, like `vlm:0.14.0-gpu`, is refused outright with a
    "did you mean".)

    ## How to fix
    Declare the engine the image is built on (`--engine vllm:0.14.0`), pass the registry's description
    of the image (`--image-spec FILE`: PAI GetImage labels, `docker image inspect` / `skopeo inspect`
    output), or describe the image in a user catalog file (`--catalog my-images.yaml`).
    """
    img = ctx.target.image
    if img is not None and not img.known:
        skipped = "model kind and format support, chip build, engine flags, architecture support, memory estimate"
        yield Finding(
            f"unknown image {img.raw!r} (engine {img.engine!r}): what it serves was not checked for this "
            f"{ctx.facts.kind} model ({skipped})",
            hint="declare the engine it runs (--engine vllm:0.14.0), pass its labels with --image-spec FILE, "
            "describe it in a user catalog (--catalog), or use a catalog image name (vllm:0.14.0-gpu, "
            "sglang:0.5.8-gpu, llama.cpp, comfyui:2.2 ...)",
            data={"image": img.raw, "engine": img.engine, "not_checked": skipped.split(", ")},
        )


@rule("IMG008", severity=Severity.WARNING, needs={"image"})
def image_newer_than_known(ctx: Context) -> Iterator[Finding]:
    """The image's engine version is newer than the newest release modelcheck knows.

    ## Why it matters
    Architecture support, quantization methods, accepted flags and memory behaviour are release data:
    for a newer release modelcheck answers as for the newest release it knows, which may miss what the
    new release added or removed.

    ## How to fix
    Nothing is wrong with the deployment by itself. Check the release notes for changes since the newest
    known release, or update modelcheck (its catalog data comes with each version).
    """
    from modelcheck.model import version_tuple

    img = ctx.target.image
    if img is None or not img.known or not img.version or img.version_from == "newest-known":
        return
    fam = image_family(ctx)
    newest = fam.latest_known if fam is not None else None
    have, top = version_tuple(img.version), version_tuple(str(newest) if newest else None)
    if not have or not top or have <= top:
        return
    yield Finding(
        f"{img.engine} {img.version} (from {img.raw}) is newer than {newest}, the newest {img.engine} release "
        f"modelcheck knows: architecture support, quantization, engine flags and the memory estimate were "
        f"checked as {newest}",
        hint=f"check the {img.engine} release notes after {newest}, or update modelcheck",
        data={"engine": img.engine, "version": img.version, "newest_known": str(newest)},
    )
