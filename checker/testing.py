"""Helpers for rule authors (built-in and plugins): in-memory facts and targets, one-line rule tests.

    facts = make_facts(config={"architectures": ["LlamaForCausalLM"]}, files={"model.safetensors": 10})
    findings = run_rule(my_rule, facts, make_target(image="vllm:0.14.0-gpu", gpu="A10"))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelcheck.model import (
    GPU,
    Classification,
    Estimate,
    FactError,
    FileEntry,
    GGUFInfo,
    HashResult,
    ImageRef,
    Instance,
    ModelFacts,
    PickleScan,
    SafetensorsHeader,
    SourceInfo,
    Target,
    WeightsSummary,
)
from modelcheck.rule import Context, Finding, Rule


def _entries(files: dict[str, int] | Iterable[FileEntry] | None) -> tuple[FileEntry, ...]:
    if files is None:
        return ()
    if isinstance(files, dict):
        return tuple(FileEntry(path=p, size=s) for p, s in sorted(files.items()))
    return tuple(files)


def make_facts(
    *,
    kind: str = "hf-llm",
    name: str = "model",
    config: dict[str, Any] | None = None,
    files: dict[str, int] | Iterable[FileEntry] | None = None,
    json_files: dict[str, Any] | None = None,
    safetensors: Iterable[SafetensorsHeader] = (),
    gguf: Iterable[GGUFInfo] = (),
    pickles: Iterable[PickleScan] = (),
    errors: Iterable[FactError] = (),
    weights: WeightsSummary | None = None,
    evidence: Iterable[str] = (),
    name_suggests: str | None = None,
    modalities: tuple[str, ...] = ("text",),
    subtype: str | None = None,
    confidence: float = 0.9,
    single_file: str | None = None,
    source: str = "local",
    yaml_files: dict[str, Any] | None = None,
    text_files: dict[str, str] | None = None,
    source_info: SourceInfo | None = None,
    incomplete_downloads: Iterable[str] = (),
    hashes: Iterable[HashResult] = (),
) -> ModelFacts:
    jf = dict(json_files or {})
    if config is not None:
        jf["config.json"] = config
    entries = _entries(files)
    if config is not None and not any(f.path == "config.json" for f in entries):
        entries = (*entries, FileEntry(path="config.json", size=1))
    safetensors = tuple(safetensors)
    gguf = tuple(gguf)
    if weights is None:
        # the same summary gather() computes, so rule tests see what real folders give
        from modelcheck.facts import _summarise

        weights = _summarise(entries, jf, safetensors, gguf, [])
    return ModelFacts(
        input_path=f"/models/{name}",
        root=f"/models/{name}",
        name=name,
        single_file=single_file,
        files=entries,
        walk_truncated=False,
        json_files=jf,
        safetensors=safetensors,
        gguf=gguf,
        pickles=tuple(pickles),
        errors=tuple(errors),
        weights=weights,
        classification=Classification(
            kind=kind,
            confidence=confidence,
            evidence=tuple(evidence),
            name_suggests=name_suggests,
            modalities=modalities,
            subtype=subtype,
        ),
        yaml_files=dict(yaml_files or {}),
        text_files=dict(text_files or {}),
        source=source,
        source_info=source_info or SourceInfo(),
        incomplete_downloads=tuple(incomplete_downloads),
        hashes=tuple(hashes),
    )


def make_target(
    *,
    image: str | ImageRef | None = None,
    instance: str | None = None,
    gpu: str | GPU | None = None,
    gpu_count: int | None = None,
    chip: str | None = None,
    engine_args: dict[str, Any] | None = None,
    deployment: Any = None,
) -> Target:
    """A Target resolved through the real catalog (so tests see real GPU / instance facts)."""
    from modelcheck import catalog as catalog_mod
    from modelcheck import target as target_mod

    cat = catalog_mod.load()
    if isinstance(image, ImageRef) or isinstance(gpu, GPU):
        img = image if isinstance(image, ImageRef) else (target_mod.parse_image(image, cat) if image else None)
        inst = None
        if isinstance(gpu, GPU):
            n = gpu_count or 1
            inst = Instance(name=f"{n}x {gpu.name}", cloud="user", chip="GPU", gpu=gpu, gpu_count=n)
        base = target_mod.resolve(cat, instance=instance, chip=chip, engine_args=engine_args)
        return Target(
            image=img,
            instance=inst or base.instance,
            chip=chip or (inst.chip if inst else base.chip) or (img.chip if img else None),
            engine_args=dict(engine_args or {}),
            deployment=deployment,
        )
    t = target_mod.resolve(
        cat, image=image, chip=chip, instance=instance, gpu=gpu, gpu_count=gpu_count, engine_args=engine_args
    )
    if deployment:
        t = Target(image=t.image, instance=t.instance, chip=t.chip, engine_args=t.engine_args, deployment=deployment)
    return t


class RuleSkipped(AssertionError):
    """The linter would not run the rule on this input (its kinds / needs): a test must not pass vacuously."""


def rule_spec(func: Any) -> Rule:
    """The Rule declared by a rule function, or looked up by code (``"CHP001"``) or name in the registry."""
    if isinstance(func, str):
        from modelcheck import registry

        found = registry.load().find(func)
        if found is None:
            raise KeyError(f"no rule {func!r}")
        return found
    spec = getattr(func, "__modelcheck_rule__", None)
    if not isinstance(spec, Rule):
        raise TypeError(f"{func!r} is not decorated with @rule")
    return spec


def run_rule(
    func: Any,
    facts: ModelFacts,
    target: Target | None = None,
    estimate: Estimate | None = None,
    options: dict[str, Any] | None = None,
    catalog: Any = None,
    *,
    view: Any = None,
    alternatives: tuple[Any, ...] = (),
    observation: Any = None,
) -> list[Finding]:
    """Run one rule (a function, or its code / name) through the real linter: applicability (raises
    RuleSkipped with the linter's reason when the rule would be skipped), option defaults, stamping,
    crashes (CHK001)."""
    from modelcheck import linter

    spec = rule_spec(func)
    ctx = Context(
        facts=facts, target=target or Target(image=None, instance=None, chip=None), estimate=estimate,
        catalog=catalog, view=view, alternatives=alternatives, observation=observation,
    )
    settings = linter.Settings(options={spec.code: dict(options or {})})
    result = linter.run((spec,), ctx, settings)
    if result.skipped:
        raise RuleSkipped(f"{spec.code} skipped: {result.skipped[0].reason}")
    return list(result.findings)
