"""FIL: are the files there, complete and readable? (missing, truncated, placeholder, duplicate, broken).

Every FactError the facts carry is reported here exactly once, except kinds "pickle", "onnx" and
"keras", which the security rules own. A file whose root cause is already explained (an lfs pointer,
an empty file) does not get a second finding for its unreadable header.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from checker.model import FileEntry, ModelFacts
from checker.rule import Context, Finding, Severity, rule

# FactError kinds reported by another family's rules (rules/security.py).
OWNED_ELSEWHERE = frozenset({"pickle", "onnx", "keras"})
# kinds with a dedicated rule below; every other kind falls to unreadable-file so none is silent
_HEADER_KINDS = frozenset({"safetensors", "gguf"})
_CONFIG_KINDS = frozenset({"json", "yaml", "index"})
_WALK_KINDS = frozenset({"walk"})

WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack")
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
# files an engine reads at start-up: a problem with them stops the server
_ESSENTIAL = re.compile(
    r"(^|/)(config\.json|generation_config\.json|tokenizer(_config)?\.json|special_tokens_map\.json|"
    r"preprocessor_config\.json|processor_config\.json|model_index\.json|adapter_config\.json|"
    r"[^/]*\.index\.json|params\.json|tokenizer\.model|vocab\.(json|txt)|merges\.txt)$"
)
_HARMLESS_EMPTY = {"__init__.py", ".gitkeep", ".keep", "py.typed", "added_tokens.json"}
_PARTIAL_SUFFIXES = (".incomplete", ".part", ".partial", ".aria2", ".crdownload", ".download", ".tmp")
_SHARD_RE = re.compile(r"-\d{5}-of-\d{5}\.(safetensors|bin)$")
HF_ENGINES = ("vllm", "sglang", "tgi", "bladellm", "chat-llm-webui")


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if abs(n) >= 2**20 else f"{n} bytes"


def _dir_of(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _join(d: str, name: str) -> str:
    return f"{d}/{name}" if d else name


def _is_weight(f: FileEntry) -> bool:
    return f.suffix in WEIGHT_SUFFIXES


def _explained(facts: ModelFacts) -> set[str]:
    """Paths whose problem another rule names more precisely (placeholder or empty file)."""
    return {f.path for f in facts.files if f.lfs_pointer or (f.type == "file" and f.size == 0)}


def _loads_hf_folder(ctx: Context) -> bool:
    engine = ctx.target.engine
    return engine is None or engine in HF_ENGINES


def _index_docs(facts: ModelFacts) -> Iterator[tuple[str, dict[str, str], dict]]:
    for rel, doc in sorted(facts.json_files.items()):
        if not rel.endswith(".index.json") or rel.endswith("model_index.json") or not isinstance(doc, dict):
            continue
        wm = doc.get("weight_map")
        if isinstance(wm, dict) and all(isinstance(v, str) for v in wm.values()):
            yield rel, wm, doc


def _present(facts: ModelFacts) -> set[str]:
    return {f.path for f in facts.files if f.type in ("file", "symlink")}


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
    if f.config is not None or f.classification.subtype == "mistral-native" or not _loads_hf_folder(ctx):
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
    if args.get("tokenizer") or args.get("skip_tokenizer_init") or not _loads_hf_folder(ctx):
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
    elif "tokenizer_config.json" not in names and f.classification.subtype != "mistral-native":
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
    for rel, wm, _ in _index_docs(ctx.facts):
        d = _dir_of(rel)
        listed = sorted(set(wm.values()))
        missing = [s for s in listed if _join(d, s) not in present]
        if missing:
            tensors = sum(1 for v in wm.values() if v in missing)
            yield Finding(
                f"{rel} lists {len(listed)} shard(s) but {len(missing)} are missing: {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
                + f" ({tensors} tensors have no data)",
                path=rel,
                hint=f"download the missing shard(s) again: `hf download ORG/NAME {' '.join(missing[:3])}"
                f"{' ...' if len(missing) > 3 else ''} --local-dir .`",
                data={"missing": missing, "listed": len(listed), "tensors_without_data": tensors},
            )


@rule("FIL004", severity=Severity.ERROR)
def truncated_weights(ctx: Context) -> Iterator[Finding]:
    """A weight file is shorter (or, for safetensors, longer) than its own header says.

    ## Why it matters
    A download that stopped early leaves a file whose header promises more tensor data than the file
    holds. The engine fails while loading (safetensors: "incomplete metadata, file not fully covered"),
    or maps garbage. safetensors also refuses files with bytes after the last tensor.

    ## How to fix
    Delete the file and download it again; compare its size with the size the hub lists.
    """
    for h in ctx.facts.safetensors:
        if h.file_size != h.expected_file_size:
            short = h.file_size < h.expected_file_size
            diff = abs(h.expected_file_size - h.file_size)
            yield Finding(
                f"{h.path} is {h.file_size} bytes but its header describes {h.expected_file_size} bytes: "
                + (
                    f"{gib(diff)} of tensor data missing (truncated download)"
                    if short
                    else f"{diff} unexpected bytes after the last tensor, which safetensors refuses"
                ),
                path=h.path,
                hint=f"delete {h.path} and download it again, then check it is {h.expected_file_size} bytes",
                data={
                    "file_size": h.file_size,
                    "expected_file_size": h.expected_file_size,
                    ("missing_bytes" if short else "extra_bytes"): diff,
                },
            )
    for g in ctx.facts.gguf:
        if g.file_size < g.expected_file_size:
            diff = g.expected_file_size - g.file_size
            yield Finding(
                f"{g.path} is {g.file_size} bytes but its tensor table ends at {g.expected_file_size}: "
                f"{gib(diff)} missing (truncated download)",
                path=g.path,
                hint=f"delete {g.path} and download it again, then check it is at least {g.expected_file_size} bytes",
                data={
                    "file_size": g.file_size,
                    "expected_file_size": g.expected_file_size,
                    "missing_bytes": diff,
                },
            )


@rule("FIL005", severity=Severity.ERROR)
def lfs_pointer(ctx: Context) -> Iterator[Finding]:
    """A file is a git-lfs pointer (a small text stub) instead of the real data.

    ## Why it matters
    `git clone` without git-lfs leaves ~130-byte text files in place of weights and tokenizers. The
    engine fails with a header or deserialisation error that does not mention git-lfs.

    ## How to fix
    In the clone run `git lfs install && git lfs pull`, or download with `hf download ORG/NAME
    --local-dir PATH`, which fetches real files.
    """
    for f in ctx.facts.files:
        if f.lfs_pointer:
            promised = f" (the real file is {f.lfs_size} bytes, {gib(f.lfs_size)})" if f.lfs_size else ""
            yield Finding(
                f"{f.path} is a git-lfs pointer of {f.size} bytes, not the file's data{promised}",
                path=f.path,
                hint="run `git lfs install && git lfs pull` in the cloned repository (or `hf download ORG/NAME "
                "--local-dir .`) to fetch the real files",
                data={"size": f.size, "promised_size": f.lfs_size},
            )


@rule("FIL006", severity=Severity.ERROR)
def empty_file(ctx: Context) -> Iterator[Finding]:
    """A weight, config or tokenizer file is empty (0 bytes).

    ## Why it matters
    An empty file is what an interrupted copy or a full disk leaves; the engine fails to parse it. Empty
    files the engine does not read are reported as warnings.

    ## How to fix
    Copy or download the file again and check the disk has room.
    """
    for f in ctx.facts.files:
        if (
            f.type != "file"
            or f.size != 0
            or f.lfs_pointer
            or f.name in _HARMLESS_EMPTY
            or f.name.startswith(".")
        ):
            continue
        if f.path.startswith(".cache/"):
            continue  # in-progress download bookkeeping: the incomplete-download rule speaks for it
        important = _is_weight(f) or bool(_ESSENTIAL.search(f.path))
        yield Finding(
            f"{f.path} is empty (0 bytes)" + (": the engine cannot load it" if important else ""),
            path=f.path,
            severity=None if important else Severity.WARNING,
            hint=f"copy or download {f.path} again (and check free disk space)",
            data={"size": 0},
        )


@rule("FIL007", severity=Severity.ERROR)
def incomplete_download(ctx: Context) -> Iterator[Finding]:
    """Half-finished downloads are in the folder (.incomplete, .part, .aria2 ... files).

    ## Why it matters
    `hf download --local-dir` keeps unfinished files under .cache/huggingface/download/*.incomplete and
    browsers/aria2 leave .part/.aria2 files: the download did not finish, so some weights are missing or
    truncated.

    ## How to fix
    Run the same download command again until it completes (it resumes), then delete the leftovers.
    """
    partial = [f for f in ctx.facts.files if f.type == "file" and f.name.lower().endswith(_PARTIAL_SUFFIXES)]
    listed = {f.path for f in partial}
    for p in ctx.facts.extra.get("hf_download_incomplete") or ():
        if isinstance(p, str) and p not in listed:
            partial.append(FileEntry(p, 0))
    if not partial:
        return
    names = sorted(f.path for f in partial)
    yield Finding(
        f"{len(names)} unfinished download file(s): {', '.join(names[:4])}"
        + (" ..." if len(names) > 4 else "")
        + "; the download was interrupted, so weights may be missing or truncated",
        path=names[0],
        hint="run the download again until it finishes (`hf download ORG/NAME --local-dir .` resumes), "
        "then delete the leftover files",
        data={"files": names, "bytes": sum(f.size for f in partial)},
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
    for rel, wm, doc in _index_docs(ctx.facts):
        meta = doc.get("metadata")
        declared = meta.get("total_size") if isinstance(meta, dict) else None
        if isinstance(declared, str) and declared.isdigit():
            declared = int(declared)
        if not isinstance(declared, (int, float)) or isinstance(declared, bool) or declared <= 0:
            continue
        d = _dir_of(rel)
        shards = sorted({_join(d, s) for s in wm.values()})
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
    for rel, wm, _ in _index_docs(ctx.facts):
        d = _dir_of(rel)
        listed = {_join(d, s) for s in wm.values()}
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


def _error_findings(ctx: Context, kinds: frozenset[str] | None) -> Iterator[tuple[str, str, str, bool]]:
    explained = _explained(ctx.facts)
    for e in ctx.facts.errors:
        owned = (
            e.kind in kinds
            if kinds is not None
            else (e.kind not in OWNED_ELSEWHERE | _HEADER_KINDS | _CONFIG_KINDS | _WALK_KINDS)
        )
        if owned and e.path not in explained:
            yield (
                e.kind,
                e.path,
                e.message,
                bool(_ESSENTIAL.search(e.path)) or e.path.endswith(WEIGHT_SUFFIXES),
            )


@rule("FIL011", severity=Severity.ERROR)
def invalid_weights_header(ctx: Context) -> Iterator[Finding]:
    """A .safetensors or .gguf header cannot be read or is invalid.

    ## Why it matters
    The engine parses the same header first; an invalid one stops the start-up with a loader error.

    ## How to fix
    Download the file again; if it persists, the file was written by a broken exporter: re-export it.
    """
    for kind, path, message, _ in _error_findings(ctx, _HEADER_KINDS):
        yield Finding(
            f"{path or 'the folder'}: invalid {kind} file: {message}",
            path=path or None,
            hint=f"download {path} again; if the error stays, re-export it"
            if path
            else "split the weights into fewer files",
            data={"kind": kind, "error": message},
        )


@rule("FIL012", severity=Severity.ERROR)
def invalid_json(ctx: Context) -> Iterator[Finding]:
    """A JSON/YAML config (config.json, tokenizer, index ...) is not valid or has the wrong shape.

    ## Why it matters
    The engine reads config.json, the tokenizer files and the weight index at start-up; a parse error
    there stops it. Broken files the engine does not read are reported as warnings.

    ## How to fix
    Fix the syntax at the position the message names, or download the file again.
    """
    for kind, path, message, essential in _error_findings(ctx, _CONFIG_KINDS):
        yield Finding(
            f"{path}: {message}",
            path=path or None,
            severity=None if essential else Severity.WARNING,
            hint=f"fix {path} (valid {'YAML' if kind == 'yaml' else 'JSON'}) or download it again",
            data={"kind": kind, "error": message},
        )


@rule("FIL013", severity=Severity.ERROR)
def unreadable_file(ctx: Context) -> Iterator[Finding]:
    """A file or folder cannot be read (permissions, I/O error), or another read problem was recorded.

    ## Why it matters
    If modelcheck cannot read it, the engine's user usually cannot either: loading fails.

    ## How to fix
    Fix permissions (`chmod -R a+rX PATH`) or ownership, or copy the file again.
    """
    for kind, path, message, _ in _error_findings(ctx, None):
        yield Finding(
            f"{path or 'the model folder'}: {message}",
            path=path or None,
            hint=f"make it readable for the serving user (`chmod -R a+rX {path or '.'}`) or copy it again",
            data={"kind": kind, "error": message},
        )


@rule("FIL014", severity=Severity.WARNING)
def walk_problem(ctx: Context) -> Iterator[Finding]:
    """A path in the folder could not be walked (symlink loop, non-UTF-8 name, nesting too deep).

    ## Why it matters
    Engines and copy tools trip over the same paths, and files behind them were not checked.

    ## How to fix
    Rename or remove the path the message names.
    """
    for kind, path, message, _ in _error_findings(ctx, _WALK_KINDS):
        yield Finding(
            f"{path}: {message}",
            path=path or None,
            hint=f"rename or remove {path}",
            data={"kind": kind, "error": message},
        )


@rule("FIL015", severity=Severity.WARNING)
def walk_truncated(ctx: Context) -> Iterator[Finding]:
    """The folder has so many files that the walk stopped: some files were not checked.

    ## Why it matters
    A model folder has tens of files; tens of thousands mean the path points at a parent folder, a
    dataset or a cache, and the checks saw only part of it.

    ## How to fix
    Point modelcheck (and the engine) at the model folder itself.
    """
    if ctx.facts.walk_truncated:
        yield Finding(
            f"stopped after {len(ctx.facts.files)} entries: the folder is too large to be one model, and the "
            "files after that were not checked",
            hint="point at the model folder itself (the one holding config.json or the weight files)",
            data={"entries_seen": len(ctx.facts.files)},
        )


@rule("FIL016", severity=Severity.WARNING)
def special_file(ctx: Context) -> Iterator[Finding]:
    """The folder holds a FIFO, socket or device file.

    ## Why it matters
    Opening a FIFO blocks forever and device files are not data; an engine that globs for weights can
    hang at start-up, and copy tools fail on them.

    ## How to fix
    Remove the special file from the model folder.
    """
    for f in ctx.facts.files:
        if f.type in ("fifo", "socket", "device", "other"):
            yield Finding(
                f"{f.path} is a {f.type}, not a regular file",
                path=f.path,
                severity=Severity.ERROR
                if _is_weight(f) or _ESSENTIAL.search(f.path) or f.path == ctx.facts.extra.get("ollama_model_blob")
                else None,
                hint=f"remove {f.path} from the model folder",
                data={"type": f.type},
            )


@rule("FIL017", severity=Severity.WARNING)
def broken_symlink(ctx: Context) -> Iterator[Finding]:
    """A symlink in the folder points at nothing.

    ## Why it matters
    Hugging Face cache snapshots are symlinks into blobs/; a broken one means the blob was deleted or
    never downloaded. If it is a weight, config or tokenizer file the engine fails to open it.

    ## How to fix
    Download the file again (`hf download ORG/NAME FILE`), or replace the link with the real file.
    """
    for f in ctx.facts.files:
        if f.broken_link:
            important = _is_weight(f) or bool(_ESSENTIAL.search(f.path))
            yield Finding(
                f"{f.path} is a broken symlink (points to {f.symlink_target})",
                path=f.path,
                severity=Severity.ERROR if important else None,
                hint=f"download {f.path} again or replace the link with the real file",
                data={"target": f.symlink_target},
            )
