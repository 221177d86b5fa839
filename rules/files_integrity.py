"""FIL: is each file whole and real data? Truncated weights, git-lfs pointers, empty files, unfinished
downloads, special files, broken symlinks, and a folder with no weight files at all (the rest of the
family: ``rules/files.py``).

Codes: FIL004, FIL005, FIL006, FIL007, FIL016, FIL017, FIL018.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.model import FileEntry
from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import READ_AT_STARTUP, WEIGHT_SUFFIXES, gib
from modelcheck_rules.files import loads_hf_folder

_HARMLESS_EMPTY = {"__init__.py", ".gitkeep", ".keep", "py.typed", "added_tokens.json"}
_PARTIAL_SUFFIXES = (".incomplete", ".part", ".partial", ".aria2", ".crdownload", ".download", ".tmp")


def _is_weight(f: FileEntry) -> bool:
    return f.suffix in WEIGHT_SUFFIXES


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
            size_text = f"{f.lfs_size} bytes" + (f", {gib(f.lfs_size)}" if f.lfs_size >= 2**20 else "")
            promised = f" (the real file is {size_text})" if f.lfs_size else ""
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
        important = _is_weight(f) or bool(READ_AT_STARTUP.search(f.path))
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
    for p in ctx.facts.incomplete_downloads:
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
                if _is_weight(f) or READ_AT_STARTUP.search(f.path) or f.path == ctx.facts.source_info.ollama_model_blob
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
            important = _is_weight(f) or bool(READ_AT_STARTUP.search(f.path))
            yield Finding(
                f"{f.path} is a broken symlink (points to {f.symlink_target})",
                path=f.path,
                severity=Severity.ERROR if important else None,
                hint=f"download {f.path} again or replace the link with the real file",
                data={"target": f.symlink_target},
            )


# vllm/model_executor/model_loader/weight_utils.py@0.17.0 filter_files_not_needed_for_inference
_NOT_WEIGHTS = {"training_args.bin", "optimizer.bin", "optimizer.pt", "scheduler.pt", "scaler.pt"}


@rule("FIL018", severity=Severity.ERROR, kinds={"hf-llm"})
def no_weight_files(ctx: Context) -> Iterator[Finding]:
    """A Hugging Face model folder has config.json but no weight files at all.

    ## Why it matters
    vLLM globs the model folder (not its sub-folders) for `*.safetensors`, then `*.bin` / `*.pt`, drops
    training leftovers (training_args.bin, optimizer.pt ...) and stops with "Cannot find any model
    weights" when nothing is left (vllm/model_executor/model_loader/default_loader.py). A folder with
    only configs and tokenizer files is a partial download (`hf download ... --include "*.json"`).

    ## How to fix
    Download the weights into the folder: `hf download ORG/NAME --local-dir PATH` (or the
    `*.safetensors` files it lists).
    """
    f = ctx.facts
    if f.config is None or not loads_hf_folder(ctx) or f.walk_truncated:
        return
    top = [e for e in f.files if e.type in ("file", "symlink") and "/" not in e.path]
    weights = [e.path for e in top if e.suffix in (".safetensors", ".bin", ".pt", ".pth", ".gguf")
               and e.name not in _NOT_WEIGHTS]
    if weights or any(rel.endswith('.index.json') and not rel.endswith('model_index.json') for rel in f.json_files):
        return  # present (pointers and shards are judged by their own rules)
    if f.incomplete_downloads or any(e.name.lower().endswith(_PARTIAL_SUFFIXES) for e in f.files):
        return  # an unfinished download: incomplete-download (FIL007) says so
    sub = sorted(e.path for e in f.files_with_suffix(".safetensors", ".bin") if "/" in e.path)
    yield Finding(
        "no weight files: the folder holds config.json but no *.safetensors, *.bin or *.pt next to it, so "
        "the engine stops with \"Cannot find any model weights\""
        + (f" (weights only in sub-folders, which it does not read: {', '.join(sub[:3])})" if sub else ""),
        hint="download the weights into the folder: `hf download ORG/NAME --local-dir .`",
        data={"subfolder_weights": sub[:20], "files": [e.path for e in top][:20]},
    )
