"""SEC: code that ships with the model (``auto_map`` Python files, also from other repositories, Keras
Lambda layers, TorchScript archives), and model files whose code scan could not finish.

Codes: SEC004, SEC008, SEC010, SEC012.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelcheck.catalog import support
from modelcheck.model import ModelFacts
from modelcheck.rule import Context, Finding, Severity, rule


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
    outside = sorted({(name, str(v)) for name, m in auto_maps.items() for v in _flatten(m) if "--" in str(v)})
    if outside:
        # transformers/dynamic_module_utils.py@4.57.1 get_class_from_dynamic_module: "org/repo--module.Class"
        # downloads module.py from that other repository at load time: code no review of this folder saw.
        refs = sorted({v for _, v in outside})
        yield Finding(
            f"auto_map in {', '.join(sorted({n for n, _ in outside}))} loads code from another repository: "
            f"{', '.join(refs[:6])}; with --trust-remote-code the server downloads and runs it",
            path=min(n for n, _ in outside), severity=Severity.ERROR,
            hint="point auto_map at reviewed .py files inside the model folder, or use a natively supported "
                 "architecture",
            data={"auto_map": auto_maps, "remote": refs},
        )
    targets = sorted({str(v) for m in auto_maps.values() for v in _flatten(m)})
    parts = []
    if auto_maps:
        parts.append(f"auto_map in {', '.join(sorted(auto_maps))} -> {', '.join(targets[:6])}")
    if py_files:
        parts.append(f"Python files {', '.join(py_files[:10])}" + (" ..." if len(py_files) > 10 else ""))
    cfg = ctx.facts.config or {}
    native = cfg.get("model_type") in support.TRANSFORMERS_NATIVE_MODEL_TYPES
    img = ctx.target.image
    if img is not None and img.engine == "sglang" and ctx.facts.config is not None:
        # SGLang's own registry and config classes (checker/engines/sglang.py remote_code, read per release)
        from modelcheck.engines import sglang

        native = not sglang.remote_code(ctx.facts.config, img.version_tuple).needed
    optional = (native and "tokenizer_config.json" not in auto_maps
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


@rule("SEC008", severity=Severity.ERROR)
def keras_lambda_layer(ctx: Context) -> Iterator[Finding]:
    """A Keras model contains Lambda layers, which carry Python code run at load time.

    ## Why it matters
    Lambda layers serialize Python bytecode; loading the model (without ``safe_mode``) executes it.
    The class name is matched also when the JSON spells it with escapes (``"\u004cambda"``).

    ## How to fix
    Replace Lambda layers with registered custom layers, or export to a format without code (SavedModel
    signatures, ONNX, safetensors).
    """
    for rel, names in sorted(ctx.facts.scan.keras_lambda.items()):
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


_WEIGHT_NAMES = ("pytorch_model", "adapter_model", "consolidated", "diffusion_pytorch_model")


@rule("SEC012", severity=Severity.ERROR)
def torchscript_archive(ctx: Context) -> Iterator[Finding]:
    """A TorchScript archive sits where weights are expected.

    ## Why it matters
    ``torch.load`` hands an archive holding ``constants.pkl`` to ``torch.jit.load``
    (torch/serialization.py ``_is_torchscript_zip``), which runs the archive's TorchScript code. A weight
    file (``pytorch_model.bin``, ``*.pth``, ``*.ckpt``, an index-listed shard) should hold tensors only.
    Elsewhere (a Triton ``model.pt``) it is a warning: the code is part of the model.

    ## How to fix
    Export the weights with ``safetensors.torch.save_file(model.state_dict(), ...)`` instead of
    ``torch.jit.save``, or review the archive's ``code/`` folder before serving it.
    """
    listed = set()
    for rel, doc in ctx.facts.json_files.items():
        wm = doc.get("weight_map") if rel.endswith(".index.json") and isinstance(doc, dict) else None
        if isinstance(wm, dict):
            base = rel.rpartition("/")[0]
            listed.update(f"{base}/{v}" if base else v for v in wm.values() if isinstance(v, str))
    for path, member in ctx.facts.scan.torchscript:
        name = path.rsplit("/", 1)[-1].lower()
        weights = (path in listed or name.endswith((".bin", ".pth", ".ckpt", ".safetensors"))
                   or name.startswith(_WEIGHT_NAMES))
        where = f"{path} (member {member})" if member else path
        yield Finding(
            f"{where} is a TorchScript archive{' where weights are expected' if weights else ''}: "
            "torch.load runs its code through torch.jit.load",
            path=path, severity=None if weights else Severity.WARNING,
            hint="ship the weights as safetensors; review the archive's code/ folder if TorchScript is intended",
            data={"file": path, "member": member, "weights_expected": weights},
        )
