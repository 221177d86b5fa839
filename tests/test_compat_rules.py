"""ENG rules: one passing and one failing case each, on in-memory facts and catalog targets."""

from __future__ import annotations

from checker.testing import make_facts, make_target, run_rule
from rules import compat as c
from rules import compat_args as a
from rules import compat_features, compat_quant

QWEN = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "num_attention_heads": 28,
        "max_position_embeddings": 32768, "torch_dtype": "bfloat16"}
CHAT = {"tokenizer_config.json": {"chat_template": "{{ messages }}"}}


def facts(**cfg):
    return make_facts(config={**QWEN, **cfg}, json_files=CHAT)


def test_eng001_architecture():
    q3 = facts(architectures=["Qwen3ForCausalLM"])
    assert run_rule(c.architecture_not_in_engine, q3, make_target(image="vllm:0.8.4-gpu")) == []
    (f,) = run_rule(c.architecture_not_in_engine, q3, make_target(image="vllm:0.8.3-gpu"))
    assert f.severity.label == "error" and "first registered in 0.8.4" in f.message and "0.8.4" in f.hint
    (f,) = run_rule(c.architecture_not_in_engine, facts(architectures=["Gemma4ForConditionalGeneration"]),
                    make_target(image="vllm:0.18.0-gpu"))
    assert f.severity.label == "warning" and "(0.17.0, 0.19.0]" in f.message
    (f,) = run_rule(c.architecture_not_in_engine, facts(architectures=["MllamaForConditionalGeneration"]),
                    make_target(image="vllm:0.14.0-gpu"))
    assert f.severity.label == "error" and "last seen in 0.10.2" in f.message


def test_eng002_gpu_minimum():
    assert run_rule(c.gpu_below_engine_minimum, facts(), make_target(image="vllm:0.19.0-gpu", gpu="v100")) == []
    (f,) = run_rule(c.gpu_below_engine_minimum, facts(), make_target(image="vllm:0.20.0-gpu", gpu="v100"))
    assert f.data["min"] == "7.5" and "vLLM <= 0.19" in f.hint


def test_eng003_bf16():
    assert run_rule(c.bf16_on_gpu_without_bf16, facts(), make_target(image="vllm:0.8.4-gpu", gpu="a10")) == []
    (f,) = run_rule(c.bf16_on_gpu_without_bf16, facts(), make_target(image="vllm:0.8.4-gpu", gpu="t4"))
    assert f.severity.label == "error" and f.hint == "pass --dtype half"
    (f,) = run_rule(c.bf16_on_gpu_without_bf16, facts(), make_target(image="vllm:0.14.0-gpu", gpu="t4",
                                                                      engine_args={"dtype": "bfloat16"}))
    assert f.severity.label == "error" and "8.0" in f.message
    g = facts(model_type="gemma2", architectures=["Gemma2ForCausalLM"])
    (f,) = run_rule(c.bf16_on_gpu_without_bf16, g, make_target(image="vllm:0.14.0-gpu", gpu="t4"))
    assert f.severity.label == "warning" and "float32" in f.message


def test_eng004_float16_forbidden():
    g = facts(model_type="gemma2", architectures=["Gemma2ForCausalLM"])
    assert run_rule(c.float16_refused_by_model, g, make_target(image="vllm:0.14.0-gpu", gpu="a10")) == []
    (f,) = run_rule(c.float16_refused_by_model, g, make_target(image="vllm:0.14.0-gpu", gpu="t4",
                                                               engine_args={"dtype": "half"}))
    assert f.data["model_type"] == "gemma2" and "float32" in f.hint


def test_eng005_quant_gpu():
    fp8 = facts(quantization_config={"quant_method": "fp8"})
    assert run_rule(compat_quant.quantization_needs_newer_gpu, fp8, make_target(image="vllm:0.14.0-gpu", gpu="t4")) == []
    (f,) = run_rule(compat_quant.quantization_needs_newer_gpu, fp8, make_target(image="vllm:0.8.4-gpu", gpu="t4"))
    assert f.data["min_capability"] == 80 and f.data["method"] == "fp8"


def test_eng006_quant_method_in_engine():
    from checker.testing import make_facts as mf

    gg = mf(kind="gguf", files={"m.gguf": 10})
    assert run_rule(compat_quant.quantization_not_in_engine, gg, make_target(image="vllm:0.20.0-gpu")) == []
    # a GGUF file on vLLM 0.33 is reported once, by IMG002; ENG006 speaks only for an explicit flag
    assert run_rule(compat_quant.quantization_not_in_engine, gg, make_target(image="vllm:0.33.0-gpu")) == []
    (f,) = run_rule(compat_quant.quantization_not_in_engine, gg, make_target(image="vllm:0.33.0-gpu",
                                                                   engine_args={"quantization": "gguf"}))
    assert "plugin" in f.message and f.data["method"] == "gguf"
    (f,) = run_rule(compat_quant.quantization_not_in_engine, facts(), make_target(image="vllm:0.14.0-gpu",
                                                                        engine_args={"quantization": "int8"}))
    assert "unknown" in f.message and "awq" in f.hint


def test_eng007_quant_dtype():
    awq = facts(quantization_config={"quant_method": "awq"})
    assert run_rule(compat_quant.quantization_dtype_mismatch, awq, make_target(image="vllm:0.14.0-gpu", gpu="a10",
                                                                      engine_args={"dtype": "bfloat16"})) == []
    (f,) = run_rule(compat_quant.quantization_dtype_mismatch, awq, make_target(image="vllm:0.14.0-gpu", gpu="a10",
                                                                      engine_args={"dtype": "bfloat16", "quantization": "awq"}))
    assert f.data["supported"] == ["float16"] and f.hint == "use --dtype half"


def test_eng009_quantization_flag_vs_checkpoint():
    awq = facts(quantization_config={"quant_method": "awq"})
    vllm = "vllm:0.14.0-gpu"
    rule = compat_quant.quantization_flag_contradicts_checkpoint
    assert run_rule(rule, awq, make_target(image=vllm, engine_args={"quantization": "awq_marlin"})) == []
    assert run_rule(rule, facts(), make_target(image=vllm, engine_args={"quantization": "fp8"})) == []
    (f,) = run_rule(rule, awq, make_target(image=vllm, engine_args={"quantization": "gptq"}))
    assert f.message == ("--quantization gptq contradicts the checkpoint's quantization_config.quant_method 'awq': "
                         "vLLM refuses mismatched quantization methods")
    assert f.hint == "drop --quantization (vLLM picks awq from config.json) or use --quantization awq_marlin"
    (f,) = run_rule(rule, facts(), make_target(image=vllm, engine_args={"quantization": "awq"}))
    assert f.data == {"flag": "awq", "checkpoint": None} and "--quantization fp8" in f.hint


def test_eng008_fp8_weight_only():
    fp8 = facts(quantization_config={"quant_method": "fp8", "weight_block_size": [128, 128]})
    assert run_rule(compat_quant.fp8_weight_only_on_gpu, fp8, make_target(image="vllm:0.14.0-gpu", gpu="h20")) == []
    (f,) = run_rule(compat_quant.fp8_weight_only_on_gpu, fp8, make_target(image="vllm:0.8.4-gpu", gpu="a10"))
    assert f.severity.label == "error" and "0.9.0" in f.hint
    (f,) = run_rule(compat_quant.fp8_weight_only_on_gpu, fp8, make_target(image="vllm:0.14.0-gpu", gpu="a10"))
    assert f.severity.label == "info"


def test_eng010_dtype_name():
    assert run_rule(a.invalid_dtype, facts(), make_target(engine_args={"dtype": "half"})) == []
    (f,) = run_rule(a.invalid_dtype, facts(), make_target(engine_args={"dtype": "int8"}))
    assert "not a dtype" in f.message and "--quantization" in f.hint


def test_eng011_max_model_len():
    t = lambda n, **kw: make_target(image="vllm:0.14.0-gpu", engine_args={"max_model_len": n}, **kw)
    assert run_rule(a.max_model_len_exceeds_model, facts(), t(32768)) == []
    (f,) = run_rule(a.max_model_len_exceeds_model, facts(), t(65536))
    assert f.severity.label == "error" and f.data["limit"] == 32768 and "VLLM_ALLOW_LONG_MAX_MODEL_LEN" in f.hint
    lin = facts(max_position_embeddings=8192, rope_scaling={"type": "linear", "factor": 4.0})
    assert run_rule(a.max_model_len_exceeds_model, lin, t(32768)) == []
    (f,) = run_rule(a.max_model_len_exceeds_model, facts(),
                    t(65536, deployment={"env": {"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"}}))
    assert f.severity.label == "warning"
    yarn = facts(rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768})
    (f,) = run_rule(a.max_model_len_exceeds_model, yarn, t(131072))
    assert f.severity.label == "warning"  # 0.14: between the old (131072) and new (32768) readings
    (f,) = run_rule(a.max_model_len_exceeds_model, yarn, make_target(image="vllm:0.32.0-gpu",
                                                                      engine_args={"max_model_len": 131072}))
    assert f.severity.label == "error"


def test_eng012_013_parallel():
    assert run_rule(a.tensor_parallel_splits_heads, facts(), make_target(engine_args={"tensor_parallel_size": 2})) == []
    (f,) = run_rule(a.tensor_parallel_splits_heads, facts(), make_target(engine_args={"tensor_parallel_size": 8}))
    assert f.data["num_attention_heads"] == 28 and 4 in f.data["valid"]
    assert run_rule(a.parallel_exceeds_gpus, facts(), make_target(gpu="a10", gpu_count=2,
                                                                  engine_args={"tensor_parallel_size": 2})) == []
    (f,) = run_rule(a.parallel_exceeds_gpus, facts(), make_target(instance="ecs.gn7i-c16g1.4xlarge",
                                                                  engine_args={"tensor_parallel_size": 2}))
    assert f.data["gpus"] == 1


def test_eng014_memory_fraction():
    assert run_rule(a.memory_fraction_out_of_range, facts(), make_target(engine_args={"gpu_memory_utilization": 0.9})) == []
    (f,) = run_rule(a.memory_fraction_out_of_range, facts(), make_target(engine_args={"gpu_memory_utilization": 90.0}))
    assert "0.9" in f.hint


def test_eng015_016_remote_code():
    glm = facts(architectures=["ChatGLMModel"], model_type="chatglm",
                auto_map={"AutoConfig": "configuration_chatglm.ChatGLMConfig"})
    assert run_rule(compat_features.trust_remote_code_needed, glm, make_target(image="vllm:0.14.0-gpu",
                                                                 engine_args={"trust_remote_code": True})) == []
    (f,) = run_rule(compat_features.trust_remote_code_needed, glm, make_target(image="vllm:0.14.0-gpu"))
    assert f.severity.label == "error" and "--trust-remote-code" in f.hint
    assert run_rule(compat_features.trust_remote_code_unneeded, facts(), make_target()) == []
    (f,) = run_rule(compat_features.trust_remote_code_unneeded, facts(), make_target(engine_args={"trust_remote_code": True}))
    assert f.rule == "ENG016"


def test_eng017_chat_template():
    assert run_rule(compat_features.no_chat_template, facts(), make_target(image="vllm:0.14.0-gpu")) == []
    base = make_facts(config=QWEN, json_files={"tokenizer_config.json": {"model_max_length": 32768}})
    (f,) = run_rule(compat_features.no_chat_template, base, make_target(image="vllm:0.14.0-gpu"))
    assert "--chat-template" in f.hint


def test_eng018_vision_dropped():
    vl = make_facts(config={"architectures": ["Qwen2_5_VLForConditionalGeneration"], "vision_config": {"depth": 32}},
                    modalities=("text", "image"))
    assert run_rule(compat_features.vision_inputs_dropped, vl, make_target(image="vllm:0.14.0-gpu")) == []
    (f,) = run_rule(compat_features.vision_inputs_dropped, vl, make_target(engine_args={"limit_mm_per_prompt": '{"image": 0}'}))
    assert "image=0" in f.message
