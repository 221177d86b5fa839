"""modelcheck.engines.vllm: what vLLM derives per version, on real public configs (fixtures/realworld)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelcheck import engines, facts
from modelcheck.model import Deployment
from modelcheck.engines import vllm as V
from modelcheck.model import GGUFInfo
from modelcheck.testing import make_facts, make_target
from tests.engines import realworld as R

SENTENCE = ("sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})


def test_gemma3_rope_factor_is_not_applied_and_layers_are_5_to_1():
    cfg = R.config("medgemma-27b-it")  # text_config: max_position_embeddings 131072, rope linear x8
    for v in ("0.8.0", "0.11.0", "0.17.0", "0.32.0"):
        ml = V.derive_max_len(cfg, v)
        assert (ml.value, ml.default, ml.key, ml.factor, ml.certain) == (131072, 131072, "max_position_embeddings", 1.0, True)
    assert "does not multiply it" in V.derive_max_len(cfg, "0.17.0").note
    lp = V.layer_pattern(cfg)
    assert (lp.num_layers, lp.full, lp.sliding, lp.window, lp.source) == (62, 10, 52, 1024, "config.json:layer_types")
    # without layer_types transformers' Gemma3TextConfig fills 5 sliding : 1 full, window 4096 when absent
    bare = {"model_type": "gemma3_text", "num_hidden_layers": 12}
    lp = V.layer_pattern(bare)
    assert (lp.full, lp.sliding, lp.window) == (2, 10, 4096) and "Gemma3TextConfig" in lp.source


def test_falcon_without_the_key_takes_the_config_class_default():
    cfg = R.config("falcon-180B-chat")
    assert "max_position_embeddings" not in cfg
    for v in ("0.6.3", "0.17.0", "0.32.0"):
        ml = V.derive_max_len(cfg, v)
        assert (ml.value, ml.default, ml.key) == (2048, 2048, "max_position_embeddings")
    assert "transformers' falcon config class default 2048" in V.derive_max_len(cfg, "0.17.0").note
    # a type we have no class default for: vLLM's own fallback
    ml = V.derive_max_len({"model_type": "somethingnew", "hidden_size": 8}, "0.17.0")
    assert (ml.value, ml.key) == (2048, None) and "vLLM assumes 2048" in ml.note


@pytest.mark.parametrize("name", ["Phi-3.5-mini-instruct", "Phi-4-mini-instruct"])
def test_longrope_default_is_the_original_length_from_0_11_1(name):
    cfg = R.config(name)
    old = V.derive_max_len(cfg, "0.11.0")  # config/model.py@0.11.0 has no LongRoPE default
    assert (old.value, old.default) == (131072, 131072)
    for v in ("0.11.1", "0.14.0", "0.17.0", "0.32.0"):
        ml = V.derive_max_len(cfg, v)
        assert (ml.value, ml.default, ml.rope_type) == (131072, 4096, "longrope")
        assert V.check_user_len(ml, 131072) is None and V.check_user_len(ml, 131073) == "refused"
    assert "original_max_position_embeddings 4096" in V.derive_max_len(cfg, "0.17.0").note


def test_gemma2_window_cap_per_version_and_alternating_layers():
    cfg = R.config("gemma-2-9b-it")
    assert "layer_types" not in cfg
    for v in ("0.6.3", "0.6.4"):  # config.py@0.6.4: "Disabling sliding window and capping the max length"
        ml = V.derive_max_len(cfg, v)
        assert (ml.value, ml.key) == (4096, "sliding_window") and "caps the length at the window" in ml.note
    for v in ("0.6.5", "0.8.5", "0.17.0"):
        assert V.derive_max_len(cfg, v).value == 8192
    assert V.derive_max_len(cfg, "0.8.5", attention_backend="XFORMERS").value == 4096
    assert V.derive_max_len(cfg, "0.6.6", attention_backend="FLASHINFER").value == 8192  # FLASHINFER from 0.7.3
    lp = V.layer_pattern(cfg)
    assert (lp.full, lp.sliding, lp.window) == (21, 21, 4096) and "alternate" in lp.source


def test_sentence_transformers_and_tokenizer_limits_per_version():
    stella = R.config("stella_en_1.5B_v5")  # Qwen2, 131072; tokenizer 32768; sentence_bert 512
    tok = json.loads((R.REAL / "stella_en_1.5B_v5" / "tokenizer_config.json").read_text())
    assert V.derive_max_len(stella, "0.6.3", tokenizer_config=tok, sentence=SENTENCE, pooling=True).value == 131072
    for v in ("0.6.4", "0.9.1", "0.17.0", "0.32.0"):
        ml = V.derive_max_len(stella, v, tokenizer_config=tok, sentence=SENTENCE, pooling=True)
        assert (ml.value, ml.key) == (512, "sentence_bert_config.json:max_seq_length")
    # tokenizer_config model_max_length: never <= 0.9.0; every model in 0.9.1; pooling only in 0.9.2;
    # pooling with absolute positions (BERT) from 0.10.0
    qwen, small = {"model_type": "qwen2", "max_position_embeddings": 32768}, {"model_max_length": 16384}
    got = {v: V.derive_max_len(qwen, v, tokenizer_config=small).value for v in ("0.9.0", "0.9.1", "0.9.2", "0.17.0")}
    assert got == {"0.9.0": 32768, "0.9.1": 16384, "0.9.2": 32768, "0.17.0": 32768}
    assert V.derive_max_len(qwen, "0.9.2", tokenizer_config=small, pooling=True).value == 16384
    assert V.derive_max_len(qwen, "0.10.0", tokenizer_config=small, pooling=True).value == 32768  # rotary
    bert = R.config("bge-large-zh")
    ml = V.derive_max_len(bert, "0.10.0", tokenizer_config={"model_max_length": 256}, pooling=True)
    assert (ml.value, ml.key) == (256, "tokenizer_config.json:model_max_length")


def test_yarn_factor_reading_changes_in_0_30():
    cfg = {"model_type": "qwen2", "max_position_embeddings": 32768,
           "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}
    assert V.derive_max_len(cfg, "0.29.0").value == 131072  # config/model.py@0.29.0 multiplies
    assert V.derive_max_len(cfg, "0.30.0").value == 32768  # @0.30.0 yarn is already scaled
    unknown = V.derive_max_len(cfg, None)
    assert (unknown.value, unknown.strict_value, unknown.certain) == (131072, 32768, False)
    lin = V.derive_max_len({"max_position_embeddings": 8192, "rope_scaling": {"type": "linear", "factor": 4}}, "0.32.0")
    assert (lin.value, lin.factor) == (32768, 4.0)


def test_view_on_real_folders(tmp_path: Path):
    bge = facts.gather(str(R.folder("bge-large-zh", tmp_path, weights=False)))
    ev = engines.view(bge, make_target(image="vllm:0.17.0-gpu"))
    assert (ev.engine, ev.runner, ev.max_model_len, ev.max_len.key) == (
        "vllm", "pooling", 512, "sentence_bert_config.json:max_seq_length")
    dev = facts.gather(str(R.folder("Devstral-Small-2507", tmp_path, weights=False)))
    ev = engines.view(dev, make_target(image="vllm:0.17.0-gpu"))
    assert (ev.max_model_len, ev.dtype, ev.quant, ev.arch.status) == (131072, "bfloat16", None, "registered")
    assert (ev.layers.full, ev.layers.sliding) == (40, 0)  # "sliding_window": null
    assert (ev.param_count, ev.param_source) == (23572403200, "model.safetensors.index.json:metadata.total_parameters")
    # SGLang gets vLLM's derivation, said to be vLLM's
    sg = engines.view(dev, make_target(image="sglang:0.5.8-gpu"))
    assert sg.engine == "sglang" and sg.max_model_len == 131072 and "not read in sglang's source" in sg.notes[-1]


def test_mlx_folder_is_not_loadable_and_counts_unpacked_parameters(tmp_path: Path):
    d, params = R.mlx_folder(tmp_path)
    fa = facts.gather(str(d))
    ev = engines.view(fa, make_target(image="vllm:0.17.0-gpu"))
    q = ev.quant
    assert (q.method, q.loadable, q.fmt) == (None, False, "mlx")
    assert "group_size 64 / bits 8 and no quant_method" in q.source and "U32-packed weights with .scales/.biases" in q.source
    assert (ev.param_count, ev.param_source) == (params, "stored elements with packed tensors unpacked")
    assert fa.weights.param_count < params / 3  # what the stored elements say: ~4x low
    # a real GPTQ config is loadable as far as the view knows (ENG005-007 judge it)
    gptq = make_facts(config={"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                              "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}})
    assert engines.view(gptq, make_target(image="vllm:0.17.0-gpu")).quant.method == "gptq"


def _gguf(single: bool):
    g = GGUFInfo("m-Q4_K_M.gguf", 3, 0, 1, {"general.architecture": "qwen2"}, (), 100, 10, 100)
    fa = make_facts(kind="gguf", name="m", gguf=[g])
    return fa if not single else type(fa)(**{**{f: getattr(fa, f) for f in fa.__record_fields__},
                                             "single_file": "m-Q4_K_M.gguf"})


def test_gguf_loading_per_version_and_layout():
    folder, single = _gguf(False), _gguf(True)
    load = V.gguf_load(folder, (0, 17, 0), None)
    assert (load.loadable, load.certain) == (False, True) and "the mounted folder is a folder" in load.reason
    assert V.gguf_load(folder, (0, 17, 0), Deployment(source="--serve-cmd", source_kind="serve-cmd", model_ref="/models/m-Q4_K_M.gguf")).loadable is True
    assert V.gguf_load(single, (0, 23, 0), None).loadable is True
    gone = V.gguf_load(single, (0, 24, 0), None)
    assert (gone.loadable, gone.certain) == (False, True) and "removed in 0.24.0" in gone.reason
    odd = V.gguf_load(type(single)(**{**{f: getattr(single, f) for f in single.__record_fields__},
                                      "gguf": (GGUFInfo("m.gguf", 3, 0, 1, {"general.architecture": "rwkv6"},
                                                        (), 100, 10, 100),)}), (0, 17, 0), None)
    assert (odd.loadable, odd.certain, odd.architecture) == (False, False, "rwkv6")
