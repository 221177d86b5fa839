"""SEC: code that ships inside the model folder (``auto_map`` Python files, Keras Lambda layers), and
model files whose code scan could not finish."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checker.catalog import support
from checker.model import ModelFacts
from checker.rule import Context, Finding, Severity, rule


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
    optional = (cfg.get("model_type") in support.TRANSFORMERS_NATIVE_MODEL_TYPES
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
        f"the model needs --trust-remote-code, which runs its Python code in the server: {'; '.join(parts)}",
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
