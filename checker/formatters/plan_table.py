"""The `check plan` output: a table (text) or a JSON list of catalog instances, smallest first."""

from __future__ import annotations

from typing import Any



def render(rows: list[Any], *, fmt: str = "text", model: Any = None, min_concurrency: float | None = None) -> str:
    """``rows``: checker.plan.PlanRow, smallest instance first; ``model``: the ModelFacts (for its name)."""
    if fmt == "json":
        import json

        return json.dumps([r.as_dict() for r in rows], indent=2) + "\n"
    if not rows:
        name = model.name if model else "the model"
        if min_concurrency is not None:
            return (f"{name}: no catalog instance reaches a max concurrency of {min_concurrency:g} (lower "
                    "--max-model-len, use --kv-cache-dtype fp8 or a quantized checkpoint)\n")
        return f"{name}: no catalog instance fits (try a quantized checkpoint or a larger --tensor-parallel-size)\n"
    head = ("instance", "cloud", "gpus", "gpu", "tp", "kv tokens", "concurrency", "max_model_len")
    table = [head]
    for r in rows:
        conc = f"{r.max_concurrency:.1f}x" if r.max_concurrency is not None else "?"
        table.append((r.instance, r.cloud, str(r.gpu_count), r.gpu, str(r.tensor_parallel_size),
                      f"{r.kv_cache_tokens:,}", conc, str(r.max_model_len or "?")))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    if rows and rows[0].estimate.assumptions:
        lines.append("")
        lines.append("assumes: " + "; ".join(rows[0].estimate.assumptions[:4]))
    return "\n".join(lines) + "\n"

