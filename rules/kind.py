"""KND: is this a model folder an engine can serve, and is it the model the user thinks it is?

Codes: KND001, KND002, KND003, KND004, KND005, KND006.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import KIND_WORDS

# kinds a folder name may suggest -> content kinds that do not contradict it
_COMPATIBLE = {
    "hf-llm": {"hf-llm", "gguf", "ollama", "adapter"},
    "gguf": {"gguf", "ollama"},
    "adapter": {"adapter"},
    "diffusion": {"diffusion"},
    "tts": {"tts"},
}


def _has_files(ctx: Context) -> bool:
    return any(f.type in ("file", "symlink") for f in ctx.facts.files)


@rule("KND001", severity=Severity.ERROR, kinds={"unknown"})
def unrecognised_folder(ctx: Context) -> Iterator[Finding]:
    """The folder does not look like any model format modelcheck knows.

    ## Why it matters
    Serving engines expect a known layout (a Hugging Face folder with config.json and weights, a .gguf
    file, a diffusers folder, a single-file checkpoint). A folder that is none of these usually means a
    wrong path (a parent folder, a dataset) or a download that never arrived.

    A vocab-only GGUF (a tokenizer and hyper-parameters, 0 tensors, like llama.cpp's
    models/ggml-vocab-*.gguf test files) is reported here too: it is a whole file, not a model.

    ## How to fix
    Point at the folder that holds the model itself: config.json + *.safetensors + tokenizer files for
    vLLM/SGLang, a .gguf file for llama.cpp, a .safetensors checkpoint for SD WebUI/ComfyUI.
    """
    if not _has_files(ctx):
        return  # empty-folder speaks
    files = [f.path for f in ctx.facts.files if f.type == "file"]
    if ctx.facts.classification.subtype == "gguf-vocab-only":
        yield _vocab_only(ctx, files)
        return
    seen = ", ".join(files[:6]) + (" ..." if len(files) > 6 else "")
    ev = "; ".join(ctx.facts.classification.evidence[:2])
    yield Finding(
        f"not a model folder modelcheck recognises: {len(files)} file(s) ({seen or 'only folders/links'})"
        + (f"; {ev}" if ev else ""),
        hint="point at the model folder itself: a Hugging Face model needs config.json + weights "
        "(*.safetensors) + tokenizer files; llama.cpp needs a .gguf file; SD WebUI/ComfyUI a .safetensors checkpoint",
        data={
            "files": files[:20],
            "file_count": len(files),
            "evidence": list(ctx.facts.classification.evidence),
        },
    )


def _vocab_only(ctx: Context, files: list[str]) -> Finding:
    g = [x for x in ctx.facts.gguf if not x.tensors and ("tokenizer.ggml.tokens" in x.metadata
                                                         or "tokenizer.ggml.model" in x.metadata)]
    archs = sorted({x.architecture or "?" for x in g})
    first = g[0].path if g else (files[0] if files else "")
    return Finding(
        f"{first if len(g) == 1 else f'{len(g)} GGUF files ({first} ...)'} hold{'s' if len(g) == 1 else ''} a tokenizer "
        f"and the hyper-parameters of {', '.join(archs)} but 0 tensors: a vocab-only GGUF (like llama.cpp's "
        "models/ggml-vocab-*.gguf test files), not a model; llama.cpp opens it only to tokenize (vocab_only) and "
        "no engine can serve it",
        path=first,
        hint="download the GGUF that holds the weights (e.g. a Q4_K_M file of the same model) and point the "
        "engine at it; keep vocab-only files for tokenizer tests",
        data={"gguf_files": [x.path for x in g], "architectures": archs, "tensor_count": 0,
              "evidence": list(ctx.facts.classification.evidence)},
    )


@rule("KND002", severity=Severity.ERROR)
def empty_folder(ctx: Context) -> Iterator[Finding]:
    """The model folder is empty.

    ## Why it matters
    Nothing to load: the mount is wrong (an empty OSS/NAS path, a volume mounted over the model), or the
    download never ran.

    ## How to fix
    Check the path and the mount, and download the model into it.
    """
    if not _has_files(ctx) and not ctx.facts.walk_truncated:
        dirs = [f.path for f in ctx.facts.files if f.type == "dir"]
        yield Finding(
            "the folder is empty" + (f" (only empty sub-folders: {', '.join(dirs[:4])})" if dirs else ""),
            hint="check the path / mount and download the model into it (`hf download ORG/NAME --local-dir PATH`)",
            data={"subfolders": dirs[:20]},
        )


@rule("KND003", severity=Severity.WARNING)
def name_contradicts_content(ctx: Context) -> Iterator[Finding]:
    """The folder's name suggests one kind of model, but the files hold another.

    ## Why it matters
    A folder named 'sdxl-...' holding a Qwen LLM, or 'qwen-7b' holding a LoRA adapter, is usually the
    wrong upload or a mix-up of mounts: the deployment starts the wrong model, or the wrong image is
    picked for it.

    ## How to fix
    Check the folder really holds the model you meant to deploy; rename it to say what it holds.
    """
    c = ctx.facts.classification
    suggests = c.name_suggests
    if not suggests or c.kind == "unknown" or c.kind in _COMPATIBLE.get(suggests, {suggests}):
        return
    yield Finding(
        f"the name {ctx.facts.name!r} suggests {KIND_WORDS.get(suggests, suggests)}, but the files hold "
        f"{KIND_WORDS.get(c.kind, c.kind)}" + (f" ({c.evidence[0]})" if c.evidence else ""),
        hint="make sure this is the model you meant to deploy, and rename the folder to match its content",
        data={"name": ctx.facts.name, "name_suggests": suggests, "kind": c.kind},
    )


@rule("KND004", severity=Severity.ERROR, kinds={"adapter"})
def adapter_without_base(ctx: Context) -> Iterator[Finding]:
    """A LoRA/PEFT adapter is deployed on its own, without its base model.

    ## Why it matters
    An adapter holds only low-rank deltas (adapter_config.json + adapter_model.safetensors); it has no
    config.json and no base weights. `vllm serve ADAPTER` fails; the base model must be served with the
    adapter attached, or the adapter merged into it.

    ## How to fix
    Serve the base model named in adapter_config.json (`base_model_name_or_path`) with LoRA enabled:
    `vllm serve BASE --enable-lora --lora-modules NAME=PATH`, or merge the adapter into the base
    (peft `merge_and_unload()`) and deploy the merged folder.
    """
    cfg = ctx.facts.json_files.get("adapter_config.json")
    cfg = cfg if isinstance(cfg, dict) else {}
    base = cfg.get("base_model_name_or_path") if isinstance(cfg.get("base_model_name_or_path"), str) else None
    name = ctx.facts.name.rsplit("/", 1)[-1] or "adapter"
    serve = f"vllm serve {base or 'BASE_MODEL'} --enable-lora --lora-modules {name}={ctx.facts.input_path}"
    rank = cfg.get("r")
    if isinstance(rank, int):
        serve += f" --max-lora-rank {max(8, rank)}" if rank > 16 else ""
    yield Finding(
        f"this is a {cfg.get('peft_type', 'LoRA')} adapter for {base or 'an unnamed base model'}"
        " (adapter_config.json), not a complete model: it cannot be served on its own",
        path="adapter_config.json:base_model_name_or_path" if base else "adapter_config.json",
        hint=f"serve the base model with the adapter: `{serve}`, or merge the adapter into the base "
        "(peft merge_and_unload) and deploy the merged folder",
        data={"base_model": base, "peft_type": cfg.get("peft_type"), "r": rank},
    )


@rule("KND005", severity=Severity.WARNING, kinds={"ollama"})
def ollama_store(ctx: Context) -> Iterator[Finding]:
    """The path is an Ollama model store, not a model folder an engine loads.

    ## Why it matters
    Ollama keeps the GGUF weights as a content-addressed blob (blobs/sha256-...) plus a manifest,
    template and params. Only Ollama understands that layout; llama.cpp needs the GGUF file itself and
    vLLM/SGLang need the Hugging Face original.

    ## How to fix
    Copy or link the model blob to a .gguf name (`ln blobs/sha256-... model.gguf`) and serve it with
    llama.cpp (`llama-server -m model.gguf`), or download the Hugging Face original for vLLM.
    """
    img = ctx.target.image
    if img is not None and img.engine == "ollama":
        return  # the Ollama image reads this store as it is
    # an engine other than Ollama given the store fails to start: that is an error, not a caution
    severity = Severity.ERROR if img is not None and img.known else None
    src = ctx.facts.source_info
    blob = src.ollama_model_blob or (ctx.facts.gguf[0].path if ctx.facts.gguf else None)
    name = src.ollama_name or ctx.facts.name
    if blob:
        how = (
            f"in the store folder, `ln {blob} model.gguf && llama-server -m model.gguf` (llama.cpp), "
            "or download the Hugging Face original of the model for vLLM/SGLang"
        )
        msg = f"Ollama store for {name}: the weights are the GGUF blob {blob}, which engines other than Ollama do not find on their own"
    else:
        how = "pull the model again with `ollama pull`, or download the GGUF / Hugging Face original"
        msg = f"Ollama store for {name}, but no readable GGUF model layer was found"
    if severity is Severity.ERROR:
        msg += f"; {img.engine} cannot start from this store"
    others = src.ollama_models
    if isinstance(others, list) and len(others) > 1:
        msg += f" ({len(others)} models in the store; checked {src.ollama_manifest})"
    yield Finding(
        msg,
        path=blob,
        hint=how,
        severity=severity,
        data={"ollama_name": name, "model_blob": blob, "manifest": src.ollama_manifest},
    )


def _gguf_groups(ctx: Context) -> dict[str, list[str]]:
    """Distinct GGUF models: split parts of one model count once, projector (mmproj) files not at all."""
    groups: dict[str, list[str]] = {}
    for g in ctx.facts.gguf:
        if "mmproj" in g.path.lower() or not g.tensors:  # a vocab-only GGUF is no model (KND001 says so)
            continue
        key = g.path
        if g.split_count and g.split_count > 1:
            key = g.path.rsplit("-", 3)[0] if "-of-" in g.path else g.path.rsplit(".", 1)[0]
        groups.setdefault(key, []).append(g.path)
    return groups


@rule("KND006", severity=Severity.WARNING)
def multiple_models(ctx: Context) -> Iterator[Finding]:
    """The folder holds more than one model (several GGUF files, or GGUF next to a Hugging Face model).

    ## Why it matters
    An engine pointed at the folder picks one by its own rules (vLLM loads the safetensors, llama.cpp
    needs `-m FILE`), so which model serves is ambiguous, and the others waste disk and download time.

    ## How to fix
    Keep one model per folder, or point the engine at the exact file (`llama-server -m FILE.gguf`).
    """
    if ctx.facts.kind == "ollama":
        return
    groups = _gguf_groups(ctx)
    hf = ctx.facts.config is not None and bool(ctx.facts.files_with_suffix(".safetensors", ".bin"))
    names = sorted(groups)
    if len(groups) > 1:
        archs = sorted({g.architecture or "?" for g in ctx.facts.gguf if "mmproj" not in g.path.lower()})
        yield Finding(
            f"{len(groups)} GGUF models in one folder ({', '.join(names[:4])}{' ...' if len(names) > 4 else ''}"
            f"; architectures {archs}): an engine given the folder cannot tell which one to serve",
            path=names[0],
            hint=f"keep one model per folder, or start with the exact file: `llama-server -m {names[0]}`",
            data={"gguf_models": names, "architectures": archs},
        )
    if groups and hf:
        yield Finding(
            f"the folder holds both a Hugging Face model (config.json + weights) and GGUF file(s) "
            f"({', '.join(names[:3])}): vLLM will load the Hugging Face weights, llama.cpp needs `-m FILE`",
            path=names[0],
            hint="move the GGUF file(s) to their own folder, or deploy only the format the image serves",
            data={"gguf_models": names, "hf_model": True},
        )
