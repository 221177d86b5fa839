"""SEC: what in the model folder would run code in the serving process or reach outside the folder."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from checker import engines
from checker.model import ModelFacts, PickleScan
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
    for scan in ctx.facts.pickles:
        bad = scan.dangerous
        if not bad:
            continue
        names = [f"{g.module}.{g.name}" for g in bad]
        path, member = _file_and_member(scan)
        yield Finding(
            f"{_where(scan)} is a {scan.format} pickle that imports {', '.join(names)}: loading it runs code",
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
    for scan in ctx.facts.pickles:
        unknown = scan.unknown
        if not unknown:
            continue
        names = [f"{g.module}.{g.name}" for g in unknown]
        path, member = _file_and_member(scan)
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


def _remote_code_files(facts: ModelFacts) -> tuple[dict[str, Any], list[str]]:
    auto_maps: dict[str, Any] = {}
    for name, doc in facts.json_files.items():
        if isinstance(doc, dict) and isinstance(doc.get("auto_map"), dict) and doc["auto_map"]:
            auto_maps[name] = doc["auto_map"]
    py_files = sorted(f.path for f in facts.files if f.type == "file" and f.suffix == ".py")
    return auto_maps, py_files


@rule("SEC004", severity=Severity.WARNING)
def remote_code_required(ctx: Context) -> Iterator[Finding]:
    """The model ships Python code that the server runs with ``trust_remote_code``.

    ## Why it matters
    ``auto_map`` entries point transformers/vLLM at ``.py`` files in the model folder; with
    ``--trust-remote-code`` they are imported into the serving process with its credentials, so the
    folder is code, not data, and needs the same review as code.

    ## How to fix
    Prefer an architecture the engine implements natively (drop ``auto_map``), or review the listed
    files, pin the model revision and keep ``trust_remote_code`` only for this deployment.
    """
    auto_maps, py_files = _remote_code_files(ctx.facts)
    if not auto_maps and not py_files:
        return
    targets = sorted({str(v) for m in auto_maps.values() for v in _flatten(m)})
    parts = []
    if auto_maps:
        parts.append(f"auto_map in {', '.join(sorted(auto_maps))} -> {', '.join(targets[:6])}")
    if py_files:
        parts.append(f"Python files {', '.join(py_files[:10])}" + (" ..." if len(py_files) > 10 else ""))
    cfg = ctx.facts.config or {}
    optional = (cfg.get("model_type") in engines.TRANSFORMERS_NATIVE_MODEL_TYPES
                and "tokenizer_config.json" not in auto_maps
                and ctx.target.engine_args.get("trust_remote_code") is not True)
    if optional:  # e.g. Phi-3: transformers has the class, the shipped code never runs without the flag
        yield Finding(
            f"the model ships Python code that runs only with --trust-remote-code, which model_type "
            f"{cfg.get('model_type')!r} does not need: {'; '.join(parts)}",
            path=min(auto_maps) if auto_maps else py_files[0], severity=Severity.INFO,
            hint="serve without --trust-remote-code so these files never run",
            data={"auto_map": auto_maps, "python_files": py_files, "needed": False},
        )
        return
    yield Finding(
        f"the model needs trust_remote_code: {'; '.join(parts)}",
        path=min(auto_maps) if auto_maps else py_files[0],
        hint="review these files before enabling --trust-remote-code, or use a natively supported architecture",
        data={"auto_map": auto_maps, "python_files": py_files},
    )


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _flatten(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _flatten(v)
    elif value is not None:
        yield value


@rule("SEC005", severity=Severity.ERROR)
def symlink_escapes_root(ctx: Context) -> Iterator[Finding]:
    """A symlink in the model folder points outside it.

    ## Why it matters
    The server follows the link and reads (or serves) a file from elsewhere on the host: secrets such as
    ``/etc/shadow`` or ``~/.ssh`` can leak through tokenizer or config loading, and a copy of the folder
    into the image silently differs from what was checked.

    ## How to fix
    Replace the link with the real file, or a link that stays inside the model folder.
    """
    for f in ctx.facts.files:
        if f.escapes_root:
            yield Finding(
                f"{f.path} is a symlink to {f.symlink_target!r}, outside the model folder",
                path=f.path,
                hint="copy the target file into the folder instead of linking out of it",
                data={"target": f.symlink_target},
            )


def _escapes(base_dir: str, ref: str) -> bool:
    if not ref or ref.startswith(("/", "\\")) or "\\" in ref or (len(ref) > 1 and ref[1] == ":") or "\0" in ref:
        return True
    joined = posixpath.normpath(posixpath.join(base_dir, ref))
    return joined == ".." or joined.startswith(("../", "/"))


@rule("SEC006", severity=Severity.ERROR)
def weight_map_path_traversal(ctx: Context) -> Iterator[Finding]:
    """A sharded-weights index names a file outside the model folder.

    ## Why it matters
    Loaders join ``weight_map`` values to the folder and open them: ``../`` or absolute paths make the
    server read arbitrary host files as weights.

    ## How to fix
    Regenerate the ``*.index.json`` so every ``weight_map`` value is a plain file name in the folder.
    """
    for name, doc in sorted(ctx.facts.json_files.items()):
        if not name.endswith(".index.json") or not isinstance(doc, dict):
            continue
        wm = doc.get("weight_map")
        if not isinstance(wm, dict):
            continue
        base = posixpath.dirname(name)
        bad = sorted({v if isinstance(v, str) else repr(v) for v in wm.values()
                      if not isinstance(v, str) or _escapes(base, v)})
        if bad:
            yield Finding(
                f"{name} weight_map points outside the model folder: {', '.join(bad[:5])}",
                path=name,
                hint="make every weight_map value a shard file name inside the folder",
                data={"paths": bad},
            )


@rule("SEC007", severity=Severity.ERROR)
def onnx_external_data_escape(ctx: Context) -> Iterator[Finding]:
    """An ONNX model's external-data location points outside the model folder.

    ## Why it matters
    onnxruntime opens external-data files relative to the model file: ``../`` or absolute locations
    read arbitrary host files into tensors (and can leak them through outputs).

    ## How to fix
    Re-save the model with ``onnx.save_model(..., save_as_external_data=True, location="<file>")`` so the
    data file sits next to the model.
    """
    # checker.facts.gather stores {onnx rel path: [locations]} under "onnx_external_data"
    ext = ctx.facts.extra.get("onnx_external_data", ctx.facts.extra.get("onnx_external"))
    if not isinstance(ext, dict):
        return
    for rel, locations in sorted(ext.items()):
        base = posixpath.dirname(rel)
        bad = sorted({loc for loc in (locations or ()) if isinstance(loc, str) and _escapes(base, loc)})
        if bad:
            yield Finding(
                f"{rel} reads external tensor data from outside the model folder: {', '.join(bad[:5])}",
                path=rel,
                hint="re-save the ONNX model with its external data file inside the folder",
                data={"locations": bad},
            )


@rule("SEC008", severity=Severity.WARNING)
def keras_lambda_layer(ctx: Context) -> Iterator[Finding]:
    """A Keras model contains Lambda layers, which carry Python code run at load time.

    ## Why it matters
    Lambda layers serialize Python bytecode; loading the model (without ``safe_mode``) executes it.

    ## How to fix
    Replace Lambda layers with registered custom layers, or export to a format without code (SavedModel
    signatures, ONNX, safetensors).
    """
    found = ctx.facts.extra.get("keras_lambda_layers", ctx.facts.extra.get("keras_lambda"))
    if not isinstance(found, dict):
        return
    for rel, names in sorted(found.items()):
        if names:
            yield Finding(
                f"{rel} has Lambda layers {', '.join(map(str, list(names)[:8]))}: loading it runs their code",
                path=rel,
                hint="replace Lambda layers with registered layers, or keep keras safe_mode=True when loading",
                data={"layers": list(names)},
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


@rule("SEC010", severity=Severity.ERROR)
def model_code_scan_failed(ctx: Context) -> Iterator[Finding]:
    """An ONNX or Keras file could not be read for external-data paths or Lambda layers.

    ## Why it matters
    The security checks for that file did not run to the end, and a file the checks cannot parse also
    fails when the server loads it.

    ## How to fix
    Re-export or re-download the file and check it with ``onnx.checker`` / ``keras.models.load_model``
    in a sandbox.
    """
    for kind in ("onnx", "keras"):
        for err in ctx.facts.errors_of(kind):
            yield Finding(
                f"{err.path} ({kind}) could not be checked: {err.message}",
                path=err.path,
                hint="re-export or re-download the file",
                data={"format": kind, "reason": err.message},
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
    for res in ctx.facts.extra.get("verify") or ():
        if not isinstance(res, dict):
            continue
        if res.get("status") == "mismatch":
            yield Finding(
                f"{res.get('path')}: {res.get('message')}",
                path=res.get("path"),
                hint="re-download the file from its source and verify again",
                data={k: res.get(k) for k in ("algorithm", "expected", "actual", "source", "size")},
            )
        elif res.get("status") == "error":
            yield Finding(
                f"{res.get('path')} could not be hashed: {res.get('message')}",
                path=res.get("path"),
                severity=Severity.WARNING,
                hint="make the file readable and verify again",
                data={"reason": res.get("message")},
            )
