"""`check images`, `check instances`, `check gpus`: the catalogs as tables or JSON, so users find the
names the gate accepts. Pure: the caller passes the catalog entries and the format."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from modelcheck.model import GPU, Instance


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, no trailing spaces."""
    body = [tuple(head), *[tuple(r) for r in rows]]
    widths = [max(len(r[i]) for r in body) for i in range(len(head))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in body)


def _gib(n: int | None) -> str:
    return f"{n / 2**30:.1f}" if n else "-"


def gpu_dict(g: GPU, aliases: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "name": g.name, "aliases": list(aliases), "memory_bytes": g.memory_bytes, "nominal_gb": g.nominal_gb,
        "compute_capability": g.compute_capability, "arch": g.arch, "bf16": g.bf16, "fp8": g.fp8, "fp4": g.fp4,
    }


def gpus(items: Sequence[tuple[GPU, Sequence[str]]], *, fmt: str = "text") -> str:
    """``items``: (GPU, its aliases)."""
    if fmt == "json":
        return json.dumps([gpu_dict(g, a) for g, a in items], indent=2) + "\n"
    rows = []
    for g, aliases in items:
        precisions = ",".join(p for p, ok in (("bf16", g.bf16), ("fp8", g.fp8), ("fp4", g.fp4)) if ok) or "-"
        rows.append((g.name, _gib(g.memory_bytes), g.compute_capability, g.arch or "-", precisions,
                     ", ".join(aliases) or "-"))
    return table(("gpu", "GiB", "cc", "arch", "precisions", "also accepted as (--gpu)"), rows)


def instance_dict(i: Instance) -> dict[str, Any]:
    return {
        "name": i.name, "cloud": i.cloud, "chip": i.chip, "gpu": i.gpu.name if i.gpu else None,
        "gpu_count": i.gpu_count, "gpu_memory_bytes": i.gpu.memory_bytes if i.gpu else None,
        "vcpu": i.vcpu, "mem_gib": i.mem_gib, "family": i.family,
    }


def instances(items: Sequence[Instance], *, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps([instance_dict(i) for i in items], indent=2) + "\n"
    rows = []
    for i in items:
        gpu = f"{i.gpu_count}x {i.gpu.name}" if i.gpu and i.gpu_count else ("-" if not i.gpu_count else f"{i.gpu_count}x ?")
        rows.append((i.name, i.cloud, i.chip, gpu, _gib(i.gpu.memory_bytes) if i.gpu else "-",
                     str(i.vcpu) if i.vcpu else "-", f"{i.mem_gib:g}" if i.mem_gib else "-"))
    return table(("instance", "cloud", "chip", "gpus", "GiB/gpu", "vcpu", "mem GiB"), rows)


def image_dict(family: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "category", "aliases", "versions", "version_range", "chip_types", "default_chip",
            "accepts_kinds", "accepts_kinds_experimental", "accepts_formats", "default_port")
    return {k: family.get(k) for k in keys}


def images(families: Sequence[dict[str, Any]], *, fmt: str = "text") -> str:
    """``families``: catalog image family entries (with their "name")."""
    if fmt == "json":
        return json.dumps([image_dict(f) for f in families], indent=2) + "\n"
    rows = []
    for f in families:
        versions = list(f.get("versions") or ())
        rng = f.get("version_range")
        known = ", ".join(versions[:3]) + (" ..." if len(versions) > 3 else "")
        if rng:
            known = (known + " " if known else "") + f"({rng[0]}..{rng[1]})"
        chips = "/".join(f.get("chip_types") or ()) or "-"
        rows.append((f["name"], f.get("category") or "-", known or "-", chips,
                     ", ".join(f.get("accepts_kinds") or ()) or "-"))
    out = table(("image", "category", "known versions", "chips", "serves"), rows)
    return out + "\nwrite --image ENGINE[:VERSION[-CHIP]] (vllm:0.14.0-gpu, sglang:0.5.8-gpu, llama.cpp) or a registry URI\n"
