"""FIL: what could not be read. Every FactError the facts carry is reported here exactly once, except
kinds "pickle", "onnx" and "keras", which the security rules own (``rules/security.py``,
``rules/security_code.py``). A file whose root cause is already explained (a git-lfs pointer, an empty
file: ``rules/files_integrity.py``) does not get a second finding for its unreadable header.

Codes: FIL011, FIL012, FIL013, FIL014, FIL015.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.model import ModelFacts
from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import READ_AT_STARTUP, WEIGHT_SUFFIXES

# FactError kinds the SEC rules report (pickle: rules/security.py; onnx, keras: rules/security_code.py)
OWNED_ELSEWHERE = frozenset({"pickle", "onnx", "keras"})
# kinds with a dedicated rule below; every other kind falls to unreadable-file so none is silent
_HEADER_KINDS = frozenset({"safetensors", "gguf"})
_CONFIG_KINDS = frozenset({"json", "yaml", "index"})
_WALK_KINDS = frozenset({"walk"})


def _explained(facts: ModelFacts) -> set[str]:
    """Paths whose problem another rule names more precisely (placeholder or empty file)."""
    return {f.path for f in facts.files if f.lfs_pointer or (f.type == "file" and f.size == 0)}


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
                bool(READ_AT_STARTUP.search(e.path)) or e.path.endswith(WEIGHT_SUFFIXES),
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
            f"{path}: invalid {kind} file: {message}" if path else f"not every {kind} header was read: {message}",
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
