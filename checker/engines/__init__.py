"""What the serving engine derives from this model, per engine and version: the one place rules and the
estimator ask (default max_model_len, ...). ``view(facts, target)`` is computed once per model path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checker.model import ModelFacts, Target


@dataclass(frozen=True, slots=True)
class EngineView:
    engine: str  # vllm | sglang | llama.cpp | ...
    version: tuple[int, ...] | None
    max_model_len: Any = None  # checker.catalog.support.MaxLen: the model's limit as the engine derives it


def view(facts: ModelFacts, target: Target) -> EngineView | None:
    """The engine view for the target's engine (vLLM when no image is declared and the model is an HF LLM)."""
    from checker.catalog import support

    engine = target.engine or ("vllm" if facts.kind == "hf-llm" else None)
    if engine is None:
        return None
    version = support.vt(target.image.version) if target.image else None
    limit = None
    if facts.config is not None:
        limit = support.derive_max_model_len(
            facts.config, facts.json_files.get("tokenizer_config.json"), version, facts.model_type
        )
    return EngineView(engine=engine, version=version, max_model_len=limit)
