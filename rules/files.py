"""FIL: is everything the engine loads in the folder? config.json, the tokenizer, every shard the
weight index lists, and no weights stored twice or left out of the index.

The other FIL rules: ``rules/files_integrity.py`` (is each file whole: truncated, git-lfs pointer, empty,
unfinished download, special file, broken link) and ``rules/files_read.py`` (what could not be read).

Codes: FIL001, FIL002, FIL003, FIL008, FIL009, FIL010.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from modelcheck.memo import last_answer
from modelcheck.model import FileEntry, ModelFacts
from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import gib, weight_indexes

TOKENIZER_MODEL_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.json",
    "vocab.txt",
    "qwen.tiktoken",
    "tokenizer.tiktoken",
    "tekken.json",
)
_SHARD_RE = re.compile(r"-\d{5}-of-\d{5}\.(safetensors|bin)$")
HF_ENGINES = ("vllm", "sglang", "tgi", "bladellm", "chat-llm-webui")


def _dir_of(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _join(d: str, name: str) -> str:
    return f"{d}/{name}" if d else name


def loads_hf_folder(ctx: Context) -> bool:
    engine = ctx.target.engine
    return engine is None or engine in HF_ENGINES


def _index_docs(facts: ModelFacts) -> Iterator[tuple[str, frozenset[str], dict]]:
    """(path, files named, document) of each weights index whose map names only files (diffusers'
    model_index.json is a pipeline description, not a weights index)."""
    for index in weight_indexes(facts):
        if not index.not_names and not index.path.endswith("model_index.json"):
            yield index.path, index.files, index.doc


@last_answer
def _present(facts: ModelFacts) -> frozenset[str]:
    return frozenset(f.path for f in facts.files if f.type in ("file", "symlink"))


def _mistral_format(facts: ModelFacts, names: set[str]) -> bool:
    """A Mistral-format folder: params.json with mistral_common's tokenizer (tekken.json or
    tokenizer.model.v*). Its tokenizer carries the chat template and special tokens itself, so no
    tokenizer_config.json is read (vllm/tokenizers/registry.py@0.17.0: tokenizer_mode "mistral" when
    consolidated*.safetensors and tekken.json / tokenizer.model.v* are present; vllm/tokenizers/mistral.py)."""
    if facts.classification.subtype == "mistral-native":
        return True
    mistral_tok = "tekken.json" in names or any(n.startswith("tokenizer.model.v") for n in names)
    return mistral_tok and ("params.json" in names or any(
        n.startswith("consolidated") and n.endswith(".safetensors") for n in names))


@rule("FIL001", severity=Severity.ERROR, kinds={"hf-llm"})
def missing_config_json(ctx: Context) -> Iterator[Finding]:
    """A Hugging Face model folder has no config.json.

    ## Why it matters
    vLLM, SGLang and transformers read config.json first to choose the architecture; without it the
    server stops with "does not appear to have a file named config.json" before loading any weight.

    ## How to fix
    Copy config.json from the model's original repository (same revision as the weights), e.g.
    `hf download ORG/NAME config.json --local-dir PATH`.
    """
    f = ctx.facts
    if f.config is not None or f.classification.subtype == "mistral-native" or not loads_hf_folder(ctx):
        return
    if f.file("config.json") is not None:
        return  # present but unreadable: the json rule reports it
    weights = [w.path for w in f.files_with_suffix(".safetensors", ".bin")][:3]
    yield Finding(
        "config.json is missing: the folder holds weights"
        + (f" ({', '.join(weights)})" if weights else "")
        + " but no model configuration, so the engine cannot tell which architecture to build",
        path="config.json",
        hint="download config.json from the original repository at the same revision: "
        "`hf download ORG/NAME config.json --local-dir .`",
        data={"weights": weights},
    )


@rule("FIL002", severity=Severity.ERROR, kinds={"hf-llm"})
def missing_tokenizer(ctx: Context) -> Iterator[Finding]:
    """An LLM folder has no tokenizer files (or no tokenizer_config.json).

    ## Why it matters
    vLLM and SGLang load the tokenizer from the model folder at start-up unless `--tokenizer` points
    elsewhere: without tokenizer.json / tokenizer.model / vocab files the server fails to start. Without
    tokenizer_config.json it starts, but the chat template and special tokens are missing, so
    /v1/chat/completions fails or answers badly.

    ## How to fix
    Copy the tokenizer files from the original repository (`hf download ORG/NAME tokenizer.json
    tokenizer_config.json --local-dir PATH`), or pass `--tokenizer ORG/NAME`.
    """
    f = ctx.facts
    args = ctx.target.engine_args
    if args.get("tokenizer") or args.get("skip_tokenizer_init") or not loads_hf_folder(ctx):
        return
    names = {e.path for e in f.files if e.type in ("file", "symlink")}
    has_model = any(n in names for n in TOKENIZER_MODEL_FILES) or any(
        n.startswith("tokenizer.model.v") for n in names
    )
    if not has_model:
        yield Finding(
            "no tokenizer in the folder: none of tokenizer.json, tokenizer.model or vocab.json/vocab.txt is "
            "present, so the engine cannot load a tokenizer and stops at start-up",
            path="tokenizer.json",
            hint="copy tokenizer.json and tokenizer_config.json from the original repository, or start with "
            "`--tokenizer ORG/NAME`",
            data={"looked_for": list(TOKENIZER_MODEL_FILES)},
        )
    elif "tokenizer_config.json" not in names and not _mistral_format(f, names):
        yield Finding(
            "tokenizer_config.json is missing: the tokenizer loads, but its chat template and special tokens "
            "do not, so chat requests fail or are formatted wrongly",
            path="tokenizer_config.json",
            severity=Severity.WARNING,
            hint="copy tokenizer_config.json from the original repository, or pass `--chat-template FILE`",
            data={},
        )


@rule("FIL003", severity=Severity.ERROR)
def index_shard_missing(ctx: Context) -> Iterator[Finding]:
    """The weight index lists shard files that are not in the folder.

    ## Why it matters
    The loader opens every file named in `weight_map`; a missing shard stops the start-up, usually after
    minutes of loading the other shards.

    ## How to fix
    Download the missing shards again (`hf download ORG/NAME FILE... --local-dir PATH`).
    """
    present = _present(ctx.facts)
    for rel, names, doc in _index_docs(ctx.facts):
        d = _dir_of(rel)
        listed = sorted(names)
        missing = [s for s in listed if _join(d, s) not in present]
        if missing:
            tensors = sum(1 for v in doc["weight_map"].values() if v in missing)
            yield Finding(
                f"{rel} lists {len(listed)} shard(s) but {len(missing)} are missing: {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
                + f" ({tensors} tensors have no data)",
                path=rel,
                hint=f"download the missing shard(s) again: `hf download ORG/NAME {' '.join(missing[:3])}"
                f"{' ...' if len(missing) > 3 else ''} --local-dir .`",
                data={"missing": missing, "listed": len(listed), "tensors_without_data": tensors},
            )


@rule("FIL008", severity=Severity.WARNING, kinds={"hf-llm", "adapter", "diffusion"})
def duplicate_weight_formats(ctx: Context) -> Iterator[Finding]:
    """The same weights are stored twice, as pickle .bin and as .safetensors.

    ## Why it matters
    vLLM and transformers load the .safetensors copy and ignore the .bin files, which double the
    download, the disk and the image or mount size (and keep an unneeded pickle around).

    ## How to fix
    Delete the .bin copies (pytorch_model*.bin and pytorch_model.bin.index.json) after checking the
    .safetensors files are complete.
    """
    by_dir: dict[str, dict[str, list[FileEntry]]] = {}
    for f in ctx.facts.files_with_suffix(".bin", ".safetensors"):
        if f.name.startswith(("pytorch_model", "model", "adapter_model", "diffusion_pytorch_model")):
            by_dir.setdefault(_dir_of(f.path), {}).setdefault(f.suffix, []).append(f)
    for d, groups in sorted(by_dir.items()):
        if ".bin" in groups and ".safetensors" in groups:
            bins, sts = groups[".bin"], groups[".safetensors"]
            extra = sum(b.size for b in bins)
            yield Finding(
                f"{'folder ' + d if d else 'the folder'} holds the weights twice: {len(sts)} .safetensors "
                f"({sts[0].path}...) and {len(bins)} .bin ({bins[0].path}...); the engine loads only the "
                f".safetensors, the .bin copy wastes {gib(extra)}",
                path=bins[0].path,
                hint="delete "
                + ", ".join(b.path for b in bins[:3])
                + (" ..." if len(bins) > 3 else "")
                + " (and pytorch_model.bin.index.json) once the .safetensors files are verified",
                data={
                    "bin_files": [b.path for b in bins],
                    "safetensors_files": [s.path for s in sts],
                    "wasted_bytes": extra,
                },
            )


@rule("FIL009", severity=Severity.WARNING, options={"tolerance": 0.01})
def index_total_size_mismatch(ctx: Context) -> Iterator[Finding]:
    """The index's metadata.total_size disagrees with the tensor bytes in the shard headers.

    ## Why it matters
    total_size is written together with the shards. A different total means the index belongs to
    another export (mixed revisions, re-quantized shards copied over old ones): tensors may be missing,
    duplicated or of the wrong dtype.

    ## How to fix
    Download the index and all shards again from one revision. Option `tolerance` (fraction, default
    0.01) sets how much difference is accepted.
    """
    headers = {h.path: h for h in ctx.facts.safetensors}
    for rel, names, doc in _index_docs(ctx.facts):
        meta = doc.get("metadata")
        declared = meta.get("total_size") if isinstance(meta, dict) else None
        if isinstance(declared, str) and declared.isdigit():
            declared = int(declared)
        if not isinstance(declared, (int, float)) or isinstance(declared, bool) or declared <= 0:
            continue
        d = _dir_of(rel)
        shards = sorted({_join(d, s) for s in names})
        if not all(s in headers for s in shards):
            continue  # a missing or unreadable shard is reported by its own rule
        actual = sum(t.nbytes for s in shards for t in headers[s].tensors)
        if abs(actual - declared) > float(ctx.options.get("tolerance", 0.01)) * declared:
            yield Finding(
                f"{rel} says metadata.total_size = {int(declared)} bytes but its {len(shards)} shard headers hold "
                f"{actual} bytes of tensors ({(actual - declared) / declared:+.1%}): index and shards come from "
                "different exports",
                path=f"{rel}:metadata.total_size",
                hint="download the index and every shard again from the same revision",
                data={"declared": int(declared), "actual": actual, "shards": len(shards)},
            )


@rule("FIL010", severity=Severity.WARNING)
def shards_not_in_index(ctx: Context) -> Iterator[Finding]:
    """Shard files are present that the index does not list.

    ## Why it matters
    When an index exists, vLLM and transformers load only the files it lists: extra shards are dead
    weight on disk, or a sign that the index is stale and tensors live in files that will be ignored.

    ## How to fix
    Delete the stray shards, or download the index that matches them.
    """
    present = _present(ctx.facts)
    for rel, names, _ in _index_docs(ctx.facts):
        d = _dir_of(rel)
        listed = {_join(d, s) for s in names}
        suffix = ".bin" if ".bin." in rel else ".safetensors"
        stray = sorted(
            p
            for p in present
            if _dir_of(p) == d
            and p.endswith(suffix)
            and p not in listed
            and (_SHARD_RE.search(p) or p.rsplit("/", 1)[-1].startswith(("model", "pytorch_model")))
        )
        if stray:
            yield Finding(
                f"{len(stray)} shard file(s) next to {rel} are not in its weight_map: {', '.join(stray[:4])}"
                + (" ..." if len(stray) > 4 else "")
                + "; the engine will not load them",
                path=stray[0],
                hint="delete the stray files, or download the index that belongs to them",
                data={"unlisted": stray, "index": rel},
            )

