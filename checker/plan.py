"""Planning: on which catalog instances does this model start, and with how much KV cache?

``plan(facts, catalog, engine_args)`` runs the memory estimator for every GPU instance of the catalog,
trying tensor-parallel sizes that divide the attention heads (1, 2, 4, 8 ... up to the instance's GPU
count) unless the user fixed one, keeps the smallest TP that starts, and sorts the instances that fit
smallest first (GPU count, then total GPU memory, then name). Pure: no I/O beyond what it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelcheck.model import Estimate, ImageRef, Instance, ModelFacts, Target
from modelcheck.record import record, replace


@record
class PlanRow:
    instance: str
    cloud: str
    gpu: str
    gpu_count: int
    total_vram_bytes: int  # all GPUs of the instance
    tensor_parallel_size: int
    kv_cache_tokens: int
    max_concurrency: float | None
    max_model_len: int | None
    estimate: Estimate

    def as_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance, "cloud": self.cloud, "gpu": self.gpu, "gpu_count": self.gpu_count,
            "total_vram_bytes": self.total_vram_bytes, "tensor_parallel_size": self.tensor_parallel_size,
            "kv_cache_tokens": self.kv_cache_tokens, "max_concurrency": self.max_concurrency,
            "max_model_len": self.max_model_len,
        }


def _heads(facts: ModelFacts) -> int | None:
    from modelcheck.estimate import geometry

    geo = geometry(facts)
    return geo.num_heads if geo else None


def _enough(est: Estimate, min_concurrency: float | None) -> bool:
    if min_concurrency is None:
        return True
    return est.max_concurrency is not None and est.max_concurrency >= min_concurrency


def fit_on(facts: ModelFacts, inst: Instance, engine_args: dict[str, Any], image: ImageRef | None,
           min_concurrency: float | None = None, view: Any = None,
           no_room: dict[Any, int] | None = None) -> PlanRow | None:
    """The smallest TP on this instance with which the model starts (and, with ``min_concurrency``, whose
    KV cache holds at least that many full-length requests), or None.

    ``no_room`` (GPU model -> the largest TP at which the weights alone did not fit): shared across calls, so
    the planner skips what cannot start. Each GPU's share of the weights only shrinks as TP grows, and on
    one GPU model nothing else about it depends on the GPU count; so once the weights do not fit at TP t,
    no TP <= t fits on that GPU model, whatever the instance (a 405B plan: ~70 estimates fewer)."""
    from modelcheck.estimate import compute

    if inst.gpu is None or inst.gpu_count <= 0 or inst.gpu.memory_bytes <= 0:
        return None
    heads = _heads(facts)
    fixed = engine_args.get("tensor_parallel_size")
    sizes = [int(fixed)] if fixed else [t for t in (1, 2, 4, 8, 16) if t <= inst.gpu_count]
    sizes = [tp for tp in sizes if tp <= inst.gpu_count and not (heads and heads % tp)]
    known = no_room if no_room is not None else {}
    gpu_model = (inst.gpu, inst.chip)
    if sizes and known.get(gpu_model, 0) >= sizes[-1]:
        return None

    def estimate(tp: int) -> Estimate | None:
        args = {**engine_args, "tensor_parallel_size": tp} if image is None or image.engine == "vllm" else engine_args
        est = compute(facts, Target(image=image, instance=inst, chip=inst.chip, engine_args=args), view, fixes=False)
        if est is not None and est.failure == "weights-exceed":
            known[gpu_model] = max(known.get(gpu_model, 0), tp)
        return est

    for i, tp in enumerate(sizes):
        if known.get(gpu_model, 0) >= tp:
            continue
        est = estimate(tp)
        if est is None:
            return None
        if i == 0 and est.failure == "weights-exceed" and len(sizes) > 2:
            # when even the largest TP cannot hold the weights, no size in between can
            largest = estimate(sizes[-1])
            if largest is None or largest.failure == "weights-exceed":
                return None
        if est.status == "ok" and _enough(est, min_concurrency):
            return PlanRow(
                instance=inst.name, cloud=inst.cloud, gpu=inst.gpu.name, gpu_count=inst.gpu_count,
                total_vram_bytes=inst.gpu.memory_bytes * inst.gpu_count, tensor_parallel_size=tp,
                kv_cache_tokens=est.kv_cache_tokens, max_concurrency=est.max_concurrency,
                max_model_len=est.max_model_len, estimate=est,
            )
    return None


def _min_cc(image: ImageRef | None) -> int | None:
    """The lowest compute capability the engine runs on (vLLM of any version: 7.0)."""
    from modelcheck.catalog import support

    engine = image.engine if image else "vllm"
    found = support.min_compute_capability(engine, image.version if image else None)
    if found is not None:
        return found.cc
    return 70 if engine == "vllm" else None


def plan(
    facts: ModelFacts,
    catalog: Any,
    engine_args: dict[str, Any] | None = None,
    image: ImageRef | None = None,
    clouds: list[str] | tuple[str, ...] | None = None,
    chip: str | None = "GPU",
    include_vgpu: bool = False,
    min_concurrency: float | None = None,
) -> list[PlanRow]:
    """Every catalog instance the model fits on, smallest first. Virtual-workstation vGPU slices
    (GRID, a few GB of one card, sold for graphics) are left out unless ``include_vgpu``.
    ``min_concurrency`` keeps only the instances whose predicted max concurrency (full-length requests
    the KV cache holds) reaches it, trying a larger TP where the smallest one falls short."""
    if catalog is None:
        return []
    engine_args = dict(engine_args or {})
    min_cc = _min_cc(image)
    # what the engine derives from the model does not depend on the instance: once for the whole catalog
    from modelcheck import engines

    view = engines.view(facts, Target(image=image, instance=None, chip=None, engine_args=engine_args))
    candidates: list[Instance] = []
    seen: set[tuple[str, str]] = set()
    for inst in catalog.instances(chip=chip):
        if clouds and inst.cloud not in clouds:
            continue
        if not include_vgpu and inst.gpu is not None and inst.gpu.memory_source == "vgpu-slice":
            continue
        if min_cc and inst.gpu is not None and inst.gpu.compute_capability and inst.gpu.cc_int < min_cc:
            continue  # the engine refuses the GPU whatever the memory says (ENG002)
        if (inst.cloud, inst.name) not in seen:
            seen.add((inst.cloud, inst.name))
            candidates.append(inst)
    # many instance types share a GPU model and count: estimate each combination once, the largest count of
    # a GPU model first (where its weights do not fit, no smaller count of it is estimated: fit_on's no_room)
    fits: dict[tuple[Any, ...], PlanRow | None] = {}
    no_room: dict[Any, int] = {}
    for inst in sorted(candidates, key=lambda i: -i.gpu_count):
        combo = (inst.gpu, inst.gpu_count, inst.chip)
        if combo not in fits:
            fits[combo] = fit_on(facts, inst, engine_args, image, min_concurrency, view, no_room)
    rows: list[tuple[PlanRow, Instance]] = []
    for inst in candidates:
        row = fits[(inst.gpu, inst.gpu_count, inst.chip)]
        if row is not None:
            row = replace(row, instance=inst.name, cloud=inst.cloud)
            rows.append((row, inst))
    # smallest first: GPUs, GPU memory, then the host (vCPU, RAM) the instance drags along
    rows.sort(key=lambda ri: (ri[0].gpu_count, ri[0].total_vram_bytes, ri[1].vcpu or 0, ri[1].mem_gib or 0,
                              ri[0].cloud, ri[0].instance))
    return [row for row, _ in rows]


ALTERNATIVE_KINDS = ("hf-llm", "gguf")


class Alternatives(Sequence[PlanRow]):
    """The smallest catalog instances of the target's cloud where the model starts on the target's image,
    smallest first: the rules' fix hints (MEM, CHP) read them from the Context. On an accelerator
    instance: instances with that chip; on a CPU instance: GPU instances (what the chip rule offers).

    Computed at most once per model path, on first use: a healthy model whose rules never ask pays
    nothing (the plan runs the estimator for every GPU combination of the catalog)."""

    def __init__(self, facts: ModelFacts, target: Target, catalog: Any, n: int = 10) -> None:
        self._args = (facts, target, catalog, n)
        self._rows: tuple[PlanRow, ...] | None = None

    def _computed(self) -> tuple[PlanRow, ...]:
        if self._rows is None:
            facts, target, catalog, n = self._args
            self._rows = ()
            if catalog is not None and target.instance is not None and facts.kind in ALTERNATIVE_KINDS:
                inst = target.instance
                clouds = [inst.cloud] if inst.cloud not in ("user", "local") else None
                chip = inst.chip if inst.chip in ("GPU", "PPU", "XPU") else "GPU"
                args = {k: v for k, v in target.engine_args.items() if k != "tensor_parallel_size"}
                self._rows = tuple(plan(facts, catalog, args, target.image, clouds=clouds, chip=chip)[:n])
        return self._rows

    def __getitem__(self, i):  # type: ignore[override]
        return self._computed()[i]

    def __len__(self) -> int:
        return len(self._computed())

    def __repr__(self) -> str:
        return f"Alternatives({'not computed' if self._rows is None else list(self._rows)!r})"


def alternatives(facts: ModelFacts, target: Target, catalog: Any, n: int = 10) -> Alternatives:
    return Alternatives(facts, target, catalog, n)


__all__ = ["ALTERNATIVE_KINDS", "Alternatives", "PlanRow", "alternatives", "fit_on", "plan"]


