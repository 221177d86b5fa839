"""Plain-dict views of facts, target and estimate shared by the formatters (JSON, text, SARIF...)."""

from __future__ import annotations

import dataclasses
from typing import Any

from checker.model import Estimate, ModelFacts, Target
from checker.rule import Finding, Severity


def model_summary(facts: ModelFacts) -> dict[str, Any]:
    c = facts.classification
    w = facts.weights
    arch = facts.architectures[0] if facts.architectures else None
    if arch is None and facts.gguf:
        arch = facts.gguf[0].architecture
    return {
        "name": facts.name,
        "source": facts.source,
        "format": w.format,
        "architecture": arch,
        "model_type": facts.model_type,
        "subtype": c.subtype,
        "modalities": list(c.modalities),
        "param_count": w.param_count,
        "weights_bytes": w.total_bytes,
        "dtype": w.dominant_dtype,
        "weight_files": len(w.files),
        "files": len(facts.files),
    }


def target_summary(target: Target) -> dict[str, Any]:
    img = target.image
    inst = target.instance
    gpu = inst.gpu if inst else None
    return {
        "image": None
        if img is None
        else {"ref": img.raw, "engine": img.engine, "version": img.version, "chip": img.chip, "category": img.category},
        "instance": None
        if inst is None
        else {
            "name": inst.name,
            "cloud": inst.cloud,
            "chip": inst.chip,
            "gpu": gpu.name if gpu else None,
            "gpu_count": inst.gpu_count,
            "gpu_memory_bytes": gpu.memory_bytes if gpu else None,
            "compute_capability": gpu.compute_capability if gpu else None,
        },
        "chip": target.chip,
        "engine_args": dict(sorted(target.engine_args.items())),
    }


def memory_block(estimate: Estimate | None) -> dict[str, Any] | None:
    if estimate is None:
        return None
    try:
        from checker.estimate import estimate_memory_block
    except ImportError:  # estimator not installed in this build: plain field dump
        return {k: v for k, v in dataclasses.asdict(estimate).items()}
    return estimate_memory_block(estimate)


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "name": f.name,
        "severity": (f.severity or Severity.ERROR).label,
        "message": f.message,
        "path": f.path,
        "hint": f.hint,
        "data": f.data,
    }
