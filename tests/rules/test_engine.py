"""ENG rules: one passing and one failing case each, on in-memory facts and catalog targets."""

from __future__ import annotations

from modelcheck.model import Deployment
from modelcheck.testing import make_facts, make_target, run_rule
from modelcheck_rules import engine_arch as c
from modelcheck_rules import engine_features as compat_features
from modelcheck_rules import engine_flags as a
from modelcheck_rules import engine_quant as compat_quant

QWEN = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "num_attention_heads": 28,
        "max_position_embeddings": 32768, "torch_dtype": "bfloat16"}
CHAT = {"tokenizer_config.json": {"chat_template": "{{ messages }}"}}


def facts(**cfg):
    return make_facts(config={**QWEN, **cfg}, json_files=CHAT)


def test_eng001_architecture():
    q3 = facts(architectures=["Qwen3ForCausalLM"])
    assert run_rule(c.architecture_not_in_engine, q3, make_target(image="vllm:0.8.4-gpu")) == []
    (f,) = run_rule(c.architecture_not_in_engine, q3, make_target(image="vllm:0.8.3-gpu"))
    assert f.rule == "ENG001" and f.severity.label == "error" and f.path == "config.json:architectures"
    assert f.message == ("architecture Qwen3ForCausalLM is not registered in vLLM 0.8.3 (first registered in 0.8.4); "
                         "the server refuses to start")
    assert f.hint == "use an image with vLLM >= 0.8.4"
    assert f.data == {"architecture": "Qwen3ForCausalLM", "vllm": "0.8.3", "added_after": "0.8.3",
                      "present_since": "0.8.4"}
    (f,) = run_rule(c.architecture_not_in_engine, facts(architectures=["Gemma4ForConditionalGeneration"]),
                    make_target(image="vllm:0.18.0-gpu"))
    assert f.rule == "ENG001" and f.severity.label == "warning" and "(0.17.0, 0.19.0]" in f.message
    assert "may not be registered in vLLM 0.18.0" in f.message and f.hint == "to be certain use vLLM >= 0.19.0"
    assert (f.data["added_after"], f.data["present_since"]) == ("0.17.0", "0.19.0")
    (f,) = run_rule(c.architecture_not_in_engine, facts(architectures=["MllamaForConditionalGeneration"]),
                    make_target(image="vllm:0.14.0-gpu"))
    assert f.rule == "ENG001" and f.severity.label == "error" and "last seen in 0.10.2" in f.message
    assert "absent from 0.11.0" in f.message and "vLLM <= 0.10.2" in f.hint
    assert f.data == {"architecture": "MllamaForConditionalGeneration", "vllm": "0.14.0", "last_seen": "0.10.2",
                      "gone": "0.11.0"}


def test_eng002_gpu_minimum():
    assert run_rule(c.gpu_below_engine_minimum, facts(), make_target(image="vllm:0.19.0-gpu", gpu="v100")) == []
    (f,) = run_rule(c.gpu_below_engine_minimum, facts(), make_target(image="vllm:0.20.0-gpu", gpu="v100"))
    assert f.rule == "ENG002" and f.severity.label == "error"
    assert "Tesla V100 16GB has compute capability 7.0, below the 7.5 vllm 0.20.0 needs" in f.message
    assert "vLLM <= 0.19" in f.hint and "compute capability >= 7.5" in f.hint
    assert f.data == {"gpu": "Tesla V100 16GB", "compute_capability": "7.0", "min": "7.5", "engine": "vllm",
                      "version": "0.20.0"}


def test_eng003_bf16():
    assert run_rule(c.bf16_on_gpu_without_bf16, facts(), make_target(image="vllm:0.8.4-gpu", gpu="a10")) == []
    (f,) = run_rule(c.bf16_on_gpu_without_bf16, facts(), make_target(image="vllm:0.8.4-gpu", gpu="t4"))
    assert f.rule == "ENG003" and f.severity.label == "error" and f.hint == "pass --dtype half"
    assert f.path == "config.json:torch_dtype" and "Tesla T4 (compute capability 7.5) has no bfloat16" in f.message
    assert f.data == {"gpu": "Tesla T4", "compute_capability": "7.5", "checkpoint_dtype": "bfloat16", "dtype": None,
                      "float16_forbidden": False}
    (f,) = run_rule(c.bf16_on_gpu_without_bf16, facts(), make_target(image="vllm:0.14.0-gpu", gpu="t4",
                                                                      engine_args={"dtype": "bfloat16"}))
    assert f.rule == "ENG003" and f.severity.label == "error" and f.path == "engine_args.dtype"
    assert f.message.startswith("--dtype bfloat16 on Tesla T4") and "needs compute capability 8.0" in f.message
    assert f.hint == "use --dtype half" and f.data["dtype"] == "bfloat16"
    g = facts(model_type="gemma2", architectures=["Gemma2ForCausalLM"])
    (f,) = run_rule(c.bf16_on_gpu_without_bf16, g, make_target(image="vllm:0.14.0-gpu", gpu="t4"))
    assert f.rule == "ENG003" and f.severity.label == "warning" and "falls back to float32" in f.message
    assert "--dtype float32" in f.hint and f.data["float16_forbidden"] is True


def test_eng004_float16_forbidden():
    g = facts(model_type="gemma2", architectures=["Gemma2ForCausalLM"])
    assert run_rule(c.float16_refused_by_model, g, make_target(image="vllm:0.14.0-gpu", gpu="a10")) == []
    (f,) = run_rule(c.float16_refused_by_model, g, make_target(image="vllm:0.14.0-gpu", gpu="t4",
                                                               engine_args={"dtype": "half"}))
    assert f.rule == "ENG004" and f.severity.label == "error" and f.path == "engine_args.dtype"
    assert "--dtype half with model_type 'gemma2'" in f.message and "refuses float16" in f.message
    assert f.data == {"model_type": "gemma2", "dtype": "half"} and "--dtype float32" in f.hint


def test_eng005_quant_gpu():
    fp8 = facts(quantization_config={"quant_method": "fp8"})
    assert run_rule(compat_quant.quantization_needs_newer_gpu, fp8, make_target(image="vllm:0.14.0-gpu", gpu="t4")) == []
    (f,) = run_rule(compat_quant.quantization_needs_newer_gpu, fp8, make_target(image="vllm:0.8.4-gpu", gpu="t4"))
    assert f.rule == "ENG005" and f.severity.label == "error"
    assert f.path == "config.json:quantization_config.quant_method"
    assert "quantization fp8" in f.message and "needs compute capability 8.0" in f.message
    assert "Tesla T4 has 7.5" in f.message and "compute capability >= 8.0" in f.hint
    assert f.data == {"method": "fp8", "min_capability": 80, "gpu": "Tesla T4", "compute_capability": "7.5",
                      "vllm": "0.8.4"}


def test_eng006_quant_method_in_engine():
    from modelcheck.testing import make_facts as mf

    gg = mf(kind="gguf", files={"m.gguf": 10})
    assert run_rule(compat_quant.quantization_not_in_engine, gg, make_target(image="vllm:0.20.0-gpu")) == []
    # a GGUF file on vLLM 0.33 is reported once, by IMG002; ENG006 speaks only for an explicit flag
    assert run_rule(compat_quant.quantization_not_in_engine, gg, make_target(image="vllm:0.33.0-gpu")) == []
    (f,) = run_rule(compat_quant.quantization_not_in_engine, gg, make_target(image="vllm:0.33.0-gpu",
                                                                   engine_args={"quantization": "gguf"}))
    assert f.rule == "ENG006" and f.severity.label == "error" and f.path == "engine_args.quantization"
    assert "vLLM 0.33.0 has no quantization method 'gguf'" in f.message and "plugin" in f.message
    assert "gguf plugin" in f.hint and f.data["method"] == "gguf" and f.data["vllm"] == "0.33.0"
    (f,) = run_rule(compat_quant.quantization_not_in_engine, facts(), make_target(image="vllm:0.14.0-gpu",
                                                                        engine_args={"quantization": "int8"}))
    assert f.rule == "ENG006" and f.severity.label == "error"
    assert f.message == "quantization method 'int8' is unknown to vLLM 0.14.0 (--quantization)"
    assert "awq" in f.hint and "gptq" in f.hint and f.data == {"method": "int8", "vllm": "0.14.0"}


def test_eng007_quant_dtype():
    awq = facts(quantization_config={"quant_method": "awq"})
    assert run_rule(compat_quant.quantization_dtype_mismatch, awq, make_target(image="vllm:0.14.0-gpu", gpu="a10",
                                                                      engine_args={"dtype": "bfloat16"})) == []
    (f,) = run_rule(compat_quant.quantization_dtype_mismatch, awq, make_target(image="vllm:0.14.0-gpu", gpu="a10",
                                                                      engine_args={"dtype": "bfloat16", "quantization": "awq"}))
    assert f.rule == "ENG007" and f.severity.label == "error" and f.path == "engine_args.dtype"
    assert "--dtype bfloat16 is not supported by quantization awq" in f.message
    assert f.data == {"method": "awq", "dtype": "bfloat16", "supported": ["float16"]} and f.hint == "use --dtype half"


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
    assert f.rule == "ENG009" and f.severity.label == "error" and f.path == "engine_args.quantization"
    assert f.data == {"flag": "gptq", "checkpoint": "awq"}
    (f,) = run_rule(rule, facts(), make_target(image=vllm, engine_args={"quantization": "awq"}))
    assert f.data == {"flag": "awq", "checkpoint": None} and "--quantization fp8" in f.hint
    assert f.rule == "ENG009" and "config.json has no quantization_config" in f.message


def test_eng008_fp8_weight_only():
    fp8 = facts(quantization_config={"quant_method": "fp8", "weight_block_size": [128, 128]})
    assert run_rule(compat_quant.fp8_weight_only_on_gpu, fp8, make_target(image="vllm:0.14.0-gpu", gpu="h20")) == []
    (f,) = run_rule(compat_quant.fp8_weight_only_on_gpu, fp8, make_target(image="vllm:0.8.4-gpu", gpu="a10"))
    assert f.rule == "ENG008" and f.severity.label == "error" and f.path == "config.json:quantization_config"
    assert "block-wise FP8 checkpoint (weight_block_size) on A10" in f.message and "vLLM 0.8.4" in f.message
    assert "vLLM >= 0.9.0" in f.hint and f.data["block_quant"] is True and f.data["vllm"] == "0.8.4"
    (f,) = run_rule(compat_quant.fp8_weight_only_on_gpu, fp8, make_target(image="vllm:0.14.0-gpu", gpu="a10"))
    assert f.rule == "ENG008" and f.severity.label == "info" and "weight-only FP8 through Marlin" in f.message
    assert f.data == {"gpu": "A10", "compute_capability": "8.6", "block_quant": True, "vllm": "0.14.0"}


def test_eng010_dtype_name():
    assert run_rule(a.invalid_dtype, facts(), make_target(engine_args={"dtype": "half"})) == []
    (f,) = run_rule(a.invalid_dtype, facts(), make_target(engine_args={"dtype": "int8"}))
    assert f.rule == "ENG010" and f.severity.label == "error" and f.path == "engine_args.dtype"
    assert f.message.startswith("--dtype 'int8' is not a dtype") and "--quantization" in f.hint
    assert f.data == {"dtype": "int8", "valid": ["auto", "half", "float16", "bfloat16", "float", "float32"]}


def test_eng011_max_model_len():
    t = lambda n, **kw: make_target(image="vllm:0.14.0-gpu", engine_args={"max_model_len": n}, **kw)
    assert run_rule(a.max_model_len_exceeds_model, facts(), t(32768)) == []
    (f,) = run_rule(a.max_model_len_exceeds_model, facts(), t(65536))
    assert f.severity.label == "error" and f.data["limit"] == 32768 and "VLLM_ALLOW_LONG_MAX_MODEL_LEN" in f.hint
    assert f.rule == "ENG011" and f.path == "config.json:max_position_embeddings"
    assert "--max-model-len 65536 is above the model's limit 32768" in f.message and "--max-model-len 32768" in f.hint
    assert (f.data["requested"], f.data["env_override"]) == (65536, False)
    lin = facts(max_position_embeddings=8192, rope_scaling={"type": "linear", "factor": 4.0})
    assert run_rule(a.max_model_len_exceeds_model, lin, t(32768)) == []
    (f,) = run_rule(a.max_model_len_exceeds_model, facts(),
                    t(65536, deployment=Deployment(source="--serve-cmd", source_kind="serve-cmd",
                                                   env={"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"})))
    assert f.rule == "ENG011" and f.severity.label == "warning" and f.data["env_override"] is True
    assert "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 lets it start" in f.message and "nan/garbage" in f.message
    yarn = facts(rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768})
    # config/model.py@0.29.0 multiplies yarn's factor (original 32768 x 4), @0.30.0 no longer does
    assert run_rule(a.max_model_len_exceeds_model, yarn, t(131072)) == []
    assert run_rule(a.max_model_len_exceeds_model, yarn, make_target(
        image="vllm:0.29.0-gpu", engine_args={"max_model_len": 131072})) == []
    for image in ("vllm:0.30.0-gpu", "vllm:0.32.0-gpu"):
        (f,) = run_rule(a.max_model_len_exceeds_model, yarn, make_target(image=image, engine_args={"max_model_len": 131072}))
        assert f.rule == "ENG011" and f.severity.label == "error" and f.data["limit"] == 32768
        assert "rope_scaling yarn does not multiply it" in f.message
    # no version (a start command without an image): both readings are possible, a warning says so
    (f,) = run_rule(a.max_model_len_exceeds_model, yarn, make_target(
        engine_args={"max_model_len": 131072}, deployment=Deployment(source="--serve-cmd", source_kind="serve-cmd",
                                                                              launcher="vllm")))
    assert f.severity.label == "warning" and "may exceed the model's limit: yarn rope scaling" in f.message
    assert "derives 131072" in f.message and "derives 32768" in f.message
    assert f.hint == "use --max-model-len 32768 to be safe" and f.data["rope_type"] == "yarn"


def test_eng012_013_parallel():
    assert run_rule(a.tensor_parallel_splits_heads, facts(), make_target(engine_args={"tensor_parallel_size": 2})) == []
    (f,) = run_rule(a.tensor_parallel_splits_heads, facts(), make_target(engine_args={"tensor_parallel_size": 8}))
    assert f.rule == "ENG012" and f.severity.label == "error" and f.path == "config.json:num_attention_heads"
    assert "--tensor-parallel-size 8 does not divide the 28 attention heads" in f.message
    assert f.data == {"tensor_parallel_size": 8, "num_attention_heads": 28, "valid": [1, 2, 4, 7]}
    assert f.hint == "use --tensor-parallel-size in [1, 2, 4, 7]"
    assert run_rule(a.parallel_exceeds_gpus, facts(), make_target(gpu="a10", gpu_count=2,
                                                                  engine_args={"tensor_parallel_size": 2})) == []
    (f,) = run_rule(a.parallel_exceeds_gpus, facts(), make_target(instance="ecs.gn7i-c16g1.4xlarge",
                                                                  engine_args={"tensor_parallel_size": 2}))
    assert f.rule == "ENG013" and f.severity.label == "error" and f.path == "engine_args.tensor_parallel_size"
    assert "needs 2 GPUs, but ecs.gn7i-c16g1.4xlarge has 1" in f.message
    assert f.data == {"tensor_parallel_size": 2, "pipeline_parallel_size": 1, "gpus": 1}
    assert "--tensor-parallel-size 1" in f.hint


def test_eng014_memory_fraction():
    assert run_rule(a.memory_fraction_out_of_range, facts(), make_target(engine_args={"gpu_memory_utilization": 0.9})) == []
    (f,) = run_rule(a.memory_fraction_out_of_range, facts(), make_target(engine_args={"gpu_memory_utilization": 90.0}))
    assert f.rule == "ENG014" and f.severity.label == "error" and f.path == "engine_args.gpu_memory_utilization"
    assert "--gpu-memory-utilization 90.0 is outside (0, 1]" in f.message
    assert "--gpu-memory-utilization 0.9" in f.hint and f.data == {"gpu_memory_utilization": 90.0}


def test_eng015_016_remote_code():
    glm = facts(architectures=["ChatGLMModel"], model_type="chatglm",
                auto_map={"AutoConfig": "configuration_chatglm.ChatGLMConfig"})
    assert run_rule(compat_features.trust_remote_code_needed, glm, make_target(image="vllm:0.14.0-gpu",
                                                                 engine_args={"trust_remote_code": True})) == []
    (f,) = run_rule(compat_features.trust_remote_code_needed, glm, make_target(image="vllm:0.14.0-gpu"))
    assert f.severity.label == "error" and "--trust-remote-code" in f.hint
    assert f.rule == "ENG015" and f.path == "config.json:auto_map" and "--trust-remote-code is not set" in f.message
    assert f.data == {"reasons": ["config.json auto_map (AutoConfig)"], "architecture": "ChatGLMModel"}
    assert run_rule(compat_features.trust_remote_code_unneeded, facts(), make_target()) == []
    (f,) = run_rule(compat_features.trust_remote_code_unneeded, facts(), make_target(engine_args={"trust_remote_code": True}))
    assert f.rule == "ENG016" and f.severity.label == "info" and f.path == "engine_args.trust_remote_code"
    assert "no auto_map and no .py files" in f.message and f.hint == "remove --trust-remote-code"


def test_eng017_chat_template():
    assert run_rule(compat_features.no_chat_template, facts(), make_target(image="vllm:0.14.0-gpu")) == []
    base = make_facts(config=QWEN, json_files={"tokenizer_config.json": {"model_max_length": 32768}})
    (f,) = run_rule(compat_features.no_chat_template, base, make_target(image="vllm:0.14.0-gpu"))
    assert f.rule == "ENG017" and f.severity.label == "warning" and f.path == "tokenizer_config.json"
    assert "no chat template" in f.message and "/v1/chat/completions" in f.message
    assert "--chat-template" in f.hint


def test_eng018_vision_dropped():
    vl = make_facts(config={"architectures": ["Qwen2_5_VLForConditionalGeneration"], "vision_config": {"depth": 32}},
                    modalities=("text", "image"))
    assert run_rule(compat_features.vision_inputs_dropped, vl, make_target(image="vllm:0.14.0-gpu")) == []
    (f,) = run_rule(compat_features.vision_inputs_dropped, vl, make_target(engine_args={"limit_mm_per_prompt": '{"image": 0}'}))
    assert f.rule == "ENG018" and f.severity.label == "warning" and f.path == "engine_args.limit_mm_per_prompt"
    assert "image=0" in f.message and "vision-language model" in f.message
    assert "image=1" in f.hint and f.data == {"limit_mm_per_prompt": '{"image": 0}'}
