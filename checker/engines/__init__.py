"""The engine view: what a serving engine (per version) will derive from this model.

One place answers "what will vLLM X do with these files": the default and maximum ``max_model_len``
(and which config key / rule gave it), the attention layer pattern (with the sliding window), the dtype,
the quantization method (and whether the engine can load it at all), the architecture's support and,
for GGUF, whether the engine can load the file as deployed. ENG rules and the memory estimator both
read the view; nothing else derives these. ``view(facts, target)`` is computed once per checked path
(``modelcheck.api.check_path``) and travels on the rule Context.

Per-engine derivations live in ``checker/engines/<engine>.py`` and cite the engine's source
file@version they mirror. Where a release between two read ones behaves in a way we have not read, the
view says so (``certain=False`` plus a note) instead of guessing.
"""

from __future__ import annotations

from typing import Any

from modelcheck.model import ModelFacts, Target
from modelcheck.record import field, record


@record
class MaxLen:
    """The model's length as the engine derives it (vLLM ``_get_and_verify_max_len``)."""

    value: int  # the limit a user's --max-model-len is checked against (looser reading when uncertain)
    key: str | None  # the config key / rule that set it ("max_position_embeddings", "sentence_bert_config.json:max_seq_length", ...)
    base: int | None  # before rope scaling
    factor: float  # rope factor applied
    rope_type: str | None
    strict_value: int  # the tighter reading (== value when certain)
    certain: bool
    default: int  # what the engine runs with when --max-model-len is not given (LongRoPE: the original length)
    model_max_length: int | None = None  # config model_max_length: a longer user value up to it is allowed
    notes: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        return "; ".join(self.notes)


@record
class LayerPattern:
    """Which decoder layers hold which kind of KV cache, as the engine allocates it."""

    num_layers: int
    full: int  # full-attention layers
    sliding: int  # sliding-window layers
    other: int  # layers without a growing KV cache (linear attention, mamba)
    window: int | None
    source: str  # "config.json:layer_types", "transformers Gemma2Config default (alternating)", ...
    note: str = ""


@record
class QuantView:
    """The checkpoint's quantization as the engine reads it."""

    method: str | None  # the engine's method name (None: loaded as unquantized)
    source: str  # where it came from ("config.json:quantization_config.quant_method", "--quantization", ...)
    loadable: bool | None  # False: the engine cannot load these weights; None: not known
    reason: str = ""  # why not (with the evidence)
    fmt: str | None = None  # "mlx", "bitsandbytes", "gptq", "awq", "gguf" ...


@record
class GgufLoad:
    """Whether the engine loads this GGUF as deployed."""

    file: str | None  # the .gguf file the engine would be pointed at
    loadable: bool | None  # False: it fails to start; None: uncertain
    certain: bool
    reason: str
    fix: str = ""
    architecture: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@record
class EngineView:
    engine: str
    version: tuple[int, ...] | None
    max_len: MaxLen | None = None
    layers: LayerPattern | None = None
    dtype: str | None = None  # the checkpoint dtype the engine starts from (--dtype auto), or the explicit one
    quant: QuantView | None = None
    arch: Any = None  # modelcheck.catalog.support.ArchSupport of architectures[0] (vLLM)
    gguf: GgufLoad | None = None
    param_count: int | None = None  # true parameters (packed formats unpacked), when known
    param_source: str = ""
    runner: str = "generate"  # "generate" | "pooling" (vLLM's runner type)
    notes: tuple[str, ...] = ()

    @property
    def max_model_len(self) -> int | None:
        """What the engine runs with by default (None: nothing derivable)."""
        return self.max_len.default if self.max_len else None


def of(ctx: Any) -> EngineView | None:
    """The view on a rule Context (computed by the API once per path; computed here for a Context built
    without one, as unit tests do)."""
    v = getattr(ctx, "view", None)
    return v if v is not None else view(ctx.facts, ctx.target)


def view(facts: ModelFacts, target: Target) -> EngineView | None:
    """The engine view for this model on this target, or None when there is no engine to model.

    vLLM has its own derivation per version; an image of another LLM engine (SGLang) gets vLLM's
    derivation marked as such until its own module exists; a folder without an image is read as vLLM
    would read it (the engine most Hugging Face folders are served with)."""
    from modelcheck.engines import vllm

    engine = target.engine
    version = target.image.version_tuple if target.image else None
    if engine in (None, "vllm"):
        return vllm.view(facts, version, target.engine_args, target.deployment, engine="vllm")
    if engine in ("llama.cpp", "llamacpp", "ollama"):
        return None
    if facts.config is None:
        return None
    v = vllm.view(facts, None, target.engine_args, target.deployment, engine=engine)
    notes = [f"{engine}: layer pattern, dtype and quantization read as vLLM does (not read in {engine}'s source)"]
    max_len = v.max_len
    if engine == "sglang":
        from modelcheck.engines import sglang

        # SGLang's own length: model_config.py get_context_length (checker/engines/sglang.py cites it)
        cl = sglang.context_length(facts.config, version)
        read = sglang.release_read(version)
        if cl is not None:
            max_len = MaxLen(value=cl.derived, key=cl.key, base=None, factor=cl.factor, rope_type=None,
                             strict_value=cl.derived, certain=read.exact, default=cl.derived,
                             notes=tuple(n for n in (*cl.notes, read.note) if n))
    else:
        notes.append(f"{engine}: max_model_len derived as vLLM does (not read in {engine}'s source)")
    return EngineView(
        engine=engine, version=version, max_len=max_len, layers=v.layers, dtype=v.dtype, quant=v.quant,
        param_count=v.param_count, param_source=v.param_source, runner=v.runner, notes=(*v.notes, *notes),
    )


__all__ = ["EngineView", "GgufLoad", "LayerPattern", "MaxLen", "QuantView", "of", "view"]
