"""SEC: weight files that would run code in the serving process or are not what was published:
pickles (scanned as opcodes, never unpickled) and sha256 mismatches (--verify).

The rest of the family: ``rules/security_code.py`` (repo code, Keras Lambda layers) and
``rules/security_paths.py`` (links and references that reach outside the folder).

Codes: SEC001, SEC002, SEC003, SEC009, SEC011.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.model import PickleScan
from modelcheck.rule import Context, Finding, Severity, rule

_SAFETENSORS_HINT = (
    "do not deploy this file; load the weights from safetensors instead (convert a trusted copy with "
    "`safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')`)"
)
_PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def _where(scan: PickleScan) -> str:
    return f"{scan.path} (member {scan.member})" if scan.member else scan.path


def _pickles_importing(ctx: Context, verdicts: tuple[str, ...]) -> Iterator[tuple[PickleScan, list[str]]]:
    """(scan, dotted global names) for each pickle importing globals with one of ``verdicts``."""
    for scan in ctx.facts.pickles:
        names = [f"{g.module}.{g.name}" for g in scan.globals if g.verdict in verdicts]
        if names:
            yield scan, names


@rule("SEC001", severity=Severity.ERROR)
def dangerous_pickle_global(ctx: Context) -> Iterator[Finding]:
    """A pickle in the model imports a global that can run code when the file is loaded.

    ## Why it matters
    Loading a pickle (``torch.load`` without ``weights_only``, ``joblib.load``, ``numpy.load`` with
    ``allow_pickle``) calls whatever the pickle names: ``os.system``, ``builtins.exec``,
    ``subprocess.Popen``... The serving process then runs the attacker's command with its credentials.
    As ``torch.load(weights_only=True)`` does, only a reviewed allowlist of reconstruction globals
    (tensors, storages, dtypes, numpy arrays, plain containers) passes; anything else is an error, and
    the message names the known dangerous ones. ``copyreg`` extension codes count as dangerous (they
    resolve to a global the file does not name). The file was only read as opcodes, never unpickled.

    ## How to fix
    Do not deploy the file. Get the weights as safetensors from a trusted source, or convert a trusted
    copy in an isolated sandbox with ``torch.load(..., weights_only=True)`` and ``safetensors.torch.save_file``.
    """
    for scan, names in _pickles_importing(ctx, ("dangerous", "unlisted")):
        denied = [f"{g.module}.{g.name}" for g in scan.globals if g.verdict == "dangerous"]
        unlisted = [f"{g.module}.{g.name}" for g in scan.globals if g.verdict == "unlisted"]
        parts = []
        if denied:
            parts.append(f"{_shown(denied)}, which can run code")
        if unlisted:
            parts.append(f"{_shown(unlisted)}, which {'is' if len(unlisted) == 1 else 'are'} not on the allowlist of "
                         "weight-reconstruction globals (torch.load(weights_only=True) refuses them)")
        yield Finding(
            f"{_where(scan)} is a {_fmt(scan.format)} that imports {'; and '.join(parts)}: loading it calls them",
            path=scan.path,
            hint=_SAFETENSORS_HINT,
            data={"file": scan.path, "member": scan.member, "format": scan.format, "globals": names,
                  "dangerous": denied, "unlisted": unlisted},
        )


def _shown(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


@rule("SEC002", severity=Severity.WARNING)
def unknown_pickle_global(ctx: Context) -> Iterator[Finding]:
    """A pickle in the model imports reviewed training-state classes (not weights).

    ## Why it matters
    Unpickling imports each named module and calls the named objects. Hugging Face Trainer state
    (``training_args.bin``: ``transformers.training_args.TrainingArguments`` and its enums, accelerate's
    state) is common and reviewed, but it is not weights, and ``torch.load`` with ``weights_only=True``
    refuses it. Every other global off the allowlist is an error (SEC001).

    ## How to fix
    Check that every listed global is expected for this file. Ship tensors as safetensors and other
    state as JSON; drop files the server does not need (``training_args.bin``, optimizer states).
    """
    for scan, names in _pickles_importing(ctx, ("unknown",)):
        if scan.dangerous:
            continue  # SEC001 reports the file
        yield Finding(
            f"{_where(scan)} imports training-state classes that are not weights: {_shown(names)}",
            path=scan.path,
            hint="the server does not need this file: remove it, or keep such state as JSON",
            data={"file": scan.path, "member": scan.member, "format": scan.format, "globals": names},
        )


@rule("SEC003", severity=Severity.ERROR)
def pickle_not_scanned(ctx: Context) -> Iterator[Finding]:
    """A file that may hold a pickle could not be scanned completely, or the code scan stopped early.

    ## Why it matters
    The scan stops at malformed data, fixed limits (32 MiB per decompressed stream or archive member)
    or unreadable archives, and the whole run has one budget (pickle opcodes walked, bytes decompressed),
    a file-count cap and the folder walk's entry cap. Whatever comes after such a point was not checked
    for code-running globals, so the gate fails closed: a pickle we cannot vouch for is an error (a
    corrupt one also fails to load), and so is a folder only partly scanned.

    ## How to fix
    Replace the file with safetensors, or make sure it is intact (re-download and compare sha256 with
    ``--verify``). Files the server does not load can be removed.
    """
    for err in ctx.facts.errors_of("pickle"):
        if not err.path:
            yield Finding(
                f"the scan for code-running files stopped early: {err.message}",
                hint="point the check at the model folder itself and remove files the server does not need",
                data={"file": None, "reason": err.message},
            )
            continue
        yield Finding(
            f"{err.path} could not be scanned for code-running pickle globals: {err.message}",
            path=err.path,
            hint="replace it with safetensors or re-download an intact copy",
            data={"file": err.path, "reason": err.message},
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
    scanned = {s.path for s in ctx.facts.pickles if s.format in ("torch-zip", "torch-legacy")}
    files = sorted(f.path for f in ctx.facts.files if f.path in scanned and f.suffix in _PICKLE_WEIGHT_SUFFIXES)
    if not files:
        return
    has_st = bool(ctx.facts.safetensors) or any(f.suffix == ".safetensors" for f in ctx.facts.files)
    what = "besides safetensors weights" if has_st else "and no safetensors copy"
    if ctx.facts.kind == "tts":
        # CosyVoice's loader opens llm.pt / flow.pt / hift.pt by name with torch.load: a safetensors copy
        # would never be read, so converting fixes nothing
        hint = "keep them (the serving code loads these names), pin the model revision and check the hashes (--verify)"
    else:
        hint = ("delete the pickle copies" if has_st else "convert the weights to safetensors") + " before deploying"
    yield Finding(
        f"pickle weight files {', '.join(files[:5])}{' ...' if len(files) > 5 else ''} {what}",
        path=files[0],
        hint=hint,
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


def _fmt(fmt: str) -> str:
    return "pickle" if fmt == "pickle" else f"{fmt} pickle"
