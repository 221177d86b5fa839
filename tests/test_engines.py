"""modelcheck.catalog.support: per-version answers from the packaged vllm_support.yaml."""

from __future__ import annotations

from modelcheck.catalog import support as e


def test_arch_support_certain_and_uncertain():
    assert e.arch_support("Qwen3ForCausalLM", "0.8.3").status == "not-yet"
    assert e.arch_support("Qwen3ForCausalLM", "0.8.4").status == "registered"
    s = e.arch_support("Gemma4ForConditionalGeneration", "0.18.0")
    assert (s.status, s.certain, s.detail) == ("uncertain", False, "first registered in a release in (0.17.0, 0.19.0]")
    assert e.arch_support("MllamaForConditionalGeneration", "0.11.0").status == "removed"
    assert e.arch_support("Llama4ForCausalLM", "0.9.0").status == "removed"  # a gap
    assert e.arch_support("NoSuchForCausalLM", "0.14.0").status == "unknown"


def test_min_cc_and_dtypes():
    assert e.min_compute_capability("vllm", "0.20.0").cc == 75
    assert e.min_compute_capability("vllm", "0.14.0").cc == 70
    assert e.canonical_dtype("half") == "float16" and e.canonical_dtype("int8") is None
    assert e.float16_forbidden("gemma3_text", "0.14.0") and not e.float16_forbidden("gemma3_text", "0.8.4")
    assert e.bf16_auto_fallback("0.8.4") is False and e.bf16_auto_fallback("0.14.0") is True


def test_quant_support():
    assert e.quant_support("fp8", "0.8.4").min_cc == 80
    assert e.quant_support("fp8", "0.14.0").min_cc == 75
    assert e.quant_support("gguf", "0.33.0").present is False
    # exact removals (consecutive releases read): gguf last in 0.23.0, bitsandbytes last in 0.27.1
    assert e.quant_support("gguf", "0.23.0").present is True and e.quant_support("gguf", "0.22.1").present is True
    gone = e.quant_support("gguf", "0.24.0")
    assert (gone.present, gone.note) == (False, "removed in 0.24.0 (last in 0.23.0)")
    assert e.quant_support("bitsandbytes", "0.27.1").present is True
    assert e.quant_support("bitsandbytes", "0.28.0").present is False
    mid = e.quant_support("awq_marlin", "0.13.0")
    assert (mid.min_cc, mid.min_cc_low, mid.columns) == (80, 75, ("0.12.0", "0.14.0"))
    assert e.effective_quant_method("awq", 86, "0.14.0", explicit=False) == "awq_marlin"
    assert e.effective_quant_method("awq", 75, "0.10.1", explicit=False) == "awq"
    assert e.quant_method_from_config({"quantization_config": {"quant_method": "modelopt", "quant_algo": "NVFP4"}}) == "modelopt_fp4"


def test_other_engines_as_data():
    assert e.default_port("sglang") == 30000 and e.default_port("llama.cpp") == 8080 and e.default_port("vllm") == 8000
    assert e.engine_info("sglang")["long_context_env"] == "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN"
