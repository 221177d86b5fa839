"""The engine view answers with the target engine's own derivation: SGLang's context length is not vLLM's."""

from __future__ import annotations

import json
from pathlib import Path

from modelcheck import engines
from modelcheck.testing import make_facts, make_target, run_rule
from modelcheck_rules import engine_flags

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "realworld"


def _facts(folder: str):
    cfg = json.loads((REAL / folder / "config.json").read_text())
    return make_facts(config=cfg, files={"model.safetensors": 10, "tokenizer.json": 10})


def test_phi35_longrope_default_differs_between_vllm_and_sglang() -> None:
    phi = _facts("Phi-3.5-mini-instruct")
    # vllm/config/model.py@0.11.1+: LongRoPE models default to original_max_position_embeddings
    v = engines.view(phi, make_target(image="vllm:0.17.0-gpu"))
    # sglang/srt/configs/model_config.py@0.5.8 get_context_length: max_position_embeddings, no LongRoPE case
    s = engines.view(phi, make_target(image="sglang:0.5.8-gpu"))
    assert (v.engine, v.max_model_len) == ("vllm", 4096)
    assert (s.engine, s.max_model_len, s.max_len.key) == ("sglang", 131072, "max_position_embeddings")
    assert s.max_len.certain is True


def test_sglang_length_check_names_sglangs_override() -> None:
    falcon = _facts("falcon-180B-chat")  # no max_position_embeddings: transformers' FalconConfig default 2048
    t = make_target(image="sglang:0.5.8-gpu", engine_args={"max_model_len": 4096})
    [f] = run_rule(engine_flags.max_model_len_exceeds_model, falcon, t, view=engines.view(falcon, t))
    assert f.rule == "ENG011" and f.severity.label == "error" and f.data["limit"] == 2048
    assert "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN" in f.hint


def test_sglang_architecture_registry_is_sglangs() -> None:
    from modelcheck_rules import engine_arch

    odd = make_facts(config={"architectures": ["FrobnicatorForCausalLM"], "model_type": "frob"},
                     files={"model.safetensors": 10})
    [f] = run_rule(engine_arch.architecture_not_in_engine, odd, make_target(image="sglang:0.4.6-gpu"))
    assert f.rule == "ENG001" and "not implemented by SGLang 0.4.6" in f.message and "0.4.9" in f.hint
    # from 0.4.9 the Transformers backend runs an architecture SGLang does not implement itself
    assert run_rule(engine_arch.architecture_not_in_engine, odd, make_target(image="sglang:0.5.8-gpu")) == []
    from fixtures.builders import load_config

    llama = make_facts(config=load_config("Llama-3.1-8B-Instruct"), files={"model.safetensors": 10})
    assert run_rule(engine_arch.architecture_not_in_engine, llama, make_target(image="sglang:0.4.6-gpu")) == []
    # SGLang implements no Falcon (srt/models has falcon_h1.py only): 0.4.6 refuses FalconForCausalLM
    [falcon] = run_rule(engine_arch.architecture_not_in_engine, _facts("falcon-180B-chat"),
                        make_target(image="sglang:0.4.6-gpu"))
    assert falcon.data["architecture"] == "FalconForCausalLM"
