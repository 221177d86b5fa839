"""The `check plan` output: a table (text) or a JSON list of catalog instances, smallest first."""

from __future__ import annotations

from typing import Any


def render(rows: list[Any], *, fmt: str = "text", model: Any = None, min_concurrency: float | None = None) -> str:
    """``rows``: modelcheck.plan.PlanRow, smallest instance first; ``model``: the ModelFacts (for its name)."""
    if fmt == "json":
        import json

        return json.dumps([_row_dict(r) for r in rows], indent=2) + "\n"
    if not rows:
        name = model.name if model else "the model"
        if min_concurrency is not None:
            return (f"{name}: no catalog instance reaches a max concurrency of {min_concurrency:g} (lower "
                    "--max-model-len, use --kv-cache-dtype fp8 or a quantized checkpoint)\n")
        return f"{name}: no catalog instance fits (try a quantized checkpoint or a larger --tensor-parallel-size)\n"
    if not _llm(rows[0]):
        return _non_llm_table(rows)
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



def _llm(row: Any) -> bool:
    return bool(getattr(row.estimate, "llm", True))


def _needed(est: Any) -> int:
    return int(est.weights_bytes_per_gpu + est.activation_bytes + est.non_torch_bytes)


def _row_dict(row: Any) -> dict[str, Any]:
    """A plan row as JSON; a model without a KV cache (diffusion, TTS) has no KV figures, it has the
    memory it needs per GPU and what is left."""
    out = row.as_dict()
    if not _llm(row):
        need = _needed(row.estimate)
        out.update(kv_cache_tokens=None, max_concurrency=None, max_model_len=None,
                   needed_bytes_per_gpu=need, spare_bytes_per_gpu=row.estimate.total_vram_bytes - need)
    return out


def _non_llm_table(rows: list[Any]) -> str:
    """Diffusion / TTS: no KV cache, no context length; the memory needed per GPU and what is spare."""
    head = ("instance", "cloud", "gpus", "gpu", "needs/gpu", "spare/gpu")
    table = [head]
    for r in rows:
        need = _needed(r.estimate)
        table.append((r.instance, r.cloud, str(r.gpu_count), r.gpu, f"{need / 2**30:.2f} GiB",
                      f"{(r.estimate.total_vram_bytes - need) / 2**30:.2f} GiB"))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    if rows[0].estimate.assumptions:
        lines.append("")
        lines.append("assumes: " + "; ".join(rows[0].estimate.assumptions[:4]))
    return "\n".join(lines) + "\n"
