"""Plain-dict views of facts, target and estimate shared by the formatters (JSON, text, SARIF...)."""

from __future__ import annotations

from typing import Any

from modelcheck.model import Estimate, ModelFacts, Target
from modelcheck.rule import Finding, Severity


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


def memory_block(est: Estimate | None) -> dict[str, Any] | None:
    """The JSON ``memory`` block (DESIGN.md contract); rules put it in their findings' data too."""
    if est is None:
        return None
    if not est.llm:
        return _non_llm_block(est)
    block: dict[str, Any] = {
        "engine": est.engine,
        "engine_version": est.engine_version,
        "status": est.status,
        "weights_bytes": est.weights_bytes,
        "weights_bytes_per_gpu": est.weights_bytes_per_gpu,
        "kv_cache_bytes_per_token": est.kv_cache_bytes_per_token,
        # never negative: what the weights and overheads leave for the KV cache is 0 when they do not
        # fit, and the shortfall says by how much
        "kv_cache_bytes": max(est.kv_cache_bytes, 0),
        "kv_cache_shortfall_bytes": max(-est.kv_cache_bytes, 0),
        "kv_cache_tokens": max(est.kv_cache_tokens, 0),
        "max_concurrency": est.max_concurrency,
        "max_model_len": est.max_model_len,
        "gpu_memory_utilization": est.gpu_memory_utilization,
        "total_vram_bytes": est.total_vram_bytes,
        "usable_bytes": est.usable_bytes,
        "activation_bytes": est.activation_bytes,
        "non_torch_bytes": est.non_torch_bytes,
        "cuda_graph_bytes": est.cuda_graph_bytes,
        "block_size": est.block_size,
        "assumptions": list(est.assumptions),
    }
    block["failure"] = est.failure
    if est.fixes is not None:
        block["fit_max_model_len"] = est.fixes.max_model_len
        block["min_gpu_memory_utilization"] = est.fixes.gpu_memory_utilization
        block["fit_tensor_parallel_size"] = est.fixes.tensor_parallel_size
        block["fit_max_num_seqs"] = est.fixes.max_num_seqs
        block["fit_kv_cache_dtype"] = est.fixes.kv_cache_dtype
    for key in ("vllm_engine", "num_gpu_blocks", "max_num_seqs", "max_num_batched_tokens", "tensor_parallel_size",
                "pipeline_parallel_size", "kv_cache_dtype", "gpu_layers", "total_layers", "mem_fraction_static"):
        if key in est.extra:
            block[key] = est.extra[key]
    return block


def _non_llm_block(est: Estimate) -> dict[str, Any]:
    """Diffusion / TTS: weights + activation + overhead against the GPU; the LLM-only fields are null."""
    need = est.weights_bytes_per_gpu + est.activation_bytes + est.non_torch_bytes
    return {
        "engine": est.engine, "engine_version": est.engine_version, "status": est.status,
        "weights_bytes": est.weights_bytes, "weights_bytes_per_gpu": est.weights_bytes_per_gpu,
        "kv_cache_bytes_per_token": None, "kv_cache_bytes": None, "kv_cache_tokens": None,
        "max_concurrency": None, "max_model_len": None, "gpu_memory_utilization": None,
        "total_vram_bytes": est.total_vram_bytes, "usable_bytes": None, "activation_bytes": est.activation_bytes,
        "non_torch_bytes": est.non_torch_bytes, "cuda_graph_bytes": None, "block_size": None,
        "needed_bytes": need, "spare_bytes": est.total_vram_bytes - need,
        "assumptions": list(est.assumptions),
        **({"failure": est.failure} if est.failure else {}),
    }


def smoke_block(smoke: Any) -> dict[str, Any] | None:
    """The JSON ``smoke`` block of a path (modelcheck.smoke.SmokeResult)."""
    if smoke is None:
        return None
    return {
        "passed": smoke.passed,
        "skipped_reason": smoke.skipped_reason,
        "engine": smoke.engine,
        "command": list(smoke.command),
        "log_path": smoke.log_path,
        "answers": [
            {"prompt": c.prompt, "expect": c.expect, "endpoint": c.endpoint, "answer": c.answer, "passed": c.passed,
             "error": c.error, "ttft_s": c.ttft_s, "total_s": c.total_s, "completion_tokens": c.completion_tokens,
             "raw_answer": c.raw_answer}
            for c in smoke.answers
        ],
        "metrics": dict(smoke.metrics),
        "comparisons": [
            {"name": c.name, "measured": c.measured, "predicted": c.predicted, "unit": c.unit, "ratio": c.ratio,
             "disagrees": c.disagrees}
            for c in smoke.comparisons
        ],
    }


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


# Skip reasons that mean part of the target was never declared (rule.NEEDS): these checks did not run and
# a green result says nothing about them. Kind-based skips and the opt-in stages (smoke, deployment spec)
# are not gaps.
_GAPS = ("image", "instance", "gpu", "vram", "estimate")


def not_checked(skipped: Any) -> list[dict[str, Any]]:
    """What this run did not check because the target was not declared: one entry per missing input, with
    the rule families and codes it left out (``skipped``: the linter's Skip records)."""
    from modelcheck.rule import NEEDS

    by_reason: dict[str, list[str]] = {}
    for s in skipped:
        by_reason.setdefault(s.reason, []).append(s.rule)
    out: list[dict[str, Any]] = []
    for need in _GAPS:
        codes = by_reason.pop(NEEDS[need], None)
        if not codes:
            continue
        if out and out[-1]["what"] == "instance" and need in ("gpu", "vram", "estimate"):
            # no instance: the GPU, its memory and the estimate are missing for that one reason
            out[-1]["rules"] = sorted({*out[-1]["rules"], *codes})
            out[-1]["families"] = sorted({c[:3] for c in out[-1]["rules"]})
            continue
        out.append({"what": need, "reason": NEEDS[need], "families": sorted({c[:3] for c in codes}),
                    "rules": sorted(codes)})
    return out
