"""SEC: weight files that would run code in the serving process or are not what was published:
pickles (scanned as opcodes, never unpickled) and sha256 mismatches (--verify).

The rest of the family: ``rules/security_code.py`` (repo code, Keras Lambda layers) and
``rules/security_paths.py`` (links and references that reach outside the folder).
"""

from __future__ import annotations

from collections.abc import Iterator

from checker.model import PickleScan
from checker.rule import Context, Finding, Severity, rule

_SAFETENSORS_HINT = (
    "do not deploy this file; load the weights from safetensors instead (convert a trusted copy with "
    "`safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')`)"
)
_PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def _file_and_member(scan: PickleScan) -> tuple[str, str | None]:
    path, sep, member = scan.path.partition(":")
    return path, (member if sep else None)


def _where(scan: PickleScan) -> str:
    path, member = _file_and_member(scan)
    return f"{path} (member {member})" if member else path


def _pickles_importing(ctx: Context, verdict: str) -> Iterator[tuple[PickleScan, list[str], str, str | None]]:
    """(scan, dotted global names, file, archive member) for each pickle importing globals of ``verdict``."""
    for scan in ctx.facts.pickles:
        names = [f"{g.module}.{g.name}" for g in scan.globals if g.verdict == verdict]
        if names:
            yield scan, names, *_file_and_member(scan)


@rule("SEC001", severity=Severity.ERROR)
def dangerous_pickle_global(ctx: Context) -> Iterator[Finding]:
    """A pickle in the model imports a global that can run code when the file is loaded.

    ## Why it matters
    Loading a pickle (``torch.load`` without ``weights_only``, ``joblib.load``, ``numpy.load`` with
    ``allow_pickle``) calls whatever the pickle names: ``os.system``, ``builtins.exec``,
    ``subprocess.Popen``... The serving process then runs the attacker's command with its credentials.
    The file was only read as opcodes here, never unpickled.

    ## How to fix
    Do not deploy the file. Get the weights as safetensors from a trusted source, or convert a trusted
    copy in an isolated sandbox with ``torch.load(..., weights_only=True)`` and ``safetensors.torch.save_file``.
    """
    for scan, names, path, member in _pickles_importing(ctx, "dangerous"):
        yield Finding(
            f"{_where(scan)} is a {'' if scan.format == 'pickle' else scan.format + ' '}pickle that imports "
            f"{', '.join(names)}: loading it runs code",
            path=path,
            hint=_SAFETENSORS_HINT,
            data={"file": path, "member": member, "format": scan.format, "globals": names},
        )


@rule("SEC002", severity=Severity.WARNING)
def unknown_pickle_global(ctx: Context) -> Iterator[Finding]:
    """A pickle in the model imports globals that are neither weight-loading helpers nor known-dangerous.

    ## Why it matters
    Unpickling imports each named module and calls the named objects. Classes from training code
    (``transformers.training_args.TrainingArguments``, Lightning modules, sklearn estimators) are common
    and usually benign, but nothing guarantees what their constructors do; ``torch.load`` with
    ``weights_only=True`` refuses them.

    ## How to fix
    Check that every listed global is expected for this file. Ship tensors as safetensors and other
    state as JSON; drop files the server does not need (``training_args.bin``, optimizer states).
    """
    for scan, names, path, member in _pickles_importing(ctx, "unknown"):
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        yield Finding(
            f"{_where(scan)} imports globals this checker does not know to be safe: {shown}",
            path=path,
            hint="review these classes before loading the file, or replace it with safetensors/JSON",
            data={"file": path, "member": member, "format": scan.format, "globals": names},
        )


@rule("SEC003", severity=Severity.ERROR)
def pickle_not_scanned(ctx: Context) -> Iterator[Finding]:
    """A file that may hold a pickle could not be scanned completely.

    ## Why it matters
    The scan stops at malformed data, fixed limits (64 MiB of pickle stream, 2 million opcodes) or
    unreadable archives. Whatever comes after that point was not checked for code-running globals, so
    the gate fails closed: a pickle we cannot vouch for is an error (a corrupt one also fails to load).

    ## How to fix
    Replace the file with safetensors, or make sure it is intact (re-download and compare sha256 with
    ``--verify``). Files the server does not load can be removed.
    """
    for err in ctx.facts.errors_of("pickle"):
        path = err.path.partition(":")[0]
        yield Finding(
            f"{err.path} could not be scanned for code-running pickle globals: {err.message}",
            path=path,
            hint="replace it with safetensors or re-download an intact copy",
            data={"file": path, "reason": err.message},
        )


@rule("SEC009", severity=Severity.INFO)
def pickle_weights(ctx: Context) -> Iterator[Finding]:
    """Weights are stored as pickles (``.bin``/``.pt``/``.pth``/``.ckpt``) rather than safetensors.

    ## Why it matters
    Pickled weights can carry code and load slower; when safetensors copies sit next to them they are
    dead weight in the image that a loader may still pick.

    ## How to fix
    Ship only ``*.safetensors`` (convert with ``safetensors.torch.save_file``) and delete the pickles.
    """
    scanned = {s.path.partition(":")[0] for s in ctx.facts.pickles if s.format in ("torch-zip", "torch-legacy")}
    files = sorted(f.path for f in ctx.facts.files if f.path in scanned and f.suffix in _PICKLE_WEIGHT_SUFFIXES)
    if not files:
        return
    has_st = bool(ctx.facts.safetensors) or any(f.suffix == ".safetensors" for f in ctx.facts.files)
    what = "besides safetensors weights" if has_st else "and no safetensors copy"
    yield Finding(
        f"pickle weight files {', '.join(files[:5])}{' ...' if len(files) > 5 else ''} {what}",
        path=files[0],
        hint=("delete the pickle copies" if has_st else "convert the weights to safetensors") + " before deploying",
        data={"files": files, "safetensors_present": has_st},
    )


@rule("SEC011", severity=Severity.ERROR)
def weight_hash_mismatch(ctx: Context) -> Iterator[Finding]:
    """A weight file's sha256 differs from the one the Hub or the cache says it should have (``--verify``).

    ## Why it matters
    A changed weight file is corrupt (interrupted download, disk error) or was tampered with; either way
    the server would load something no one published.

    ## How to fix
    Delete the file and download it again (``hf download REPO FILE --force-download``), then re-run
    ``check --verify``.
    """
    for res in ctx.facts.hashes:
        if res.status == "mismatch":
            yield Finding(
                f"{res.path}: {res.message}",
                path=res.path,
                hint="re-download the file from its source and verify again",
                data={"algorithm": res.algorithm, "expected": res.expected, "actual": res.actual,
                      "source": res.source, "size": res.size},
            )
        elif res.status == "error":
            yield Finding(
                f"{res.path} could not be hashed: {res.message}",
                path=res.path,
                severity=Severity.WARNING,
                hint="make the file readable and verify again",
                data={"reason": res.message},
            )
