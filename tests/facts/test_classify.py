"""Classification of every kind from real-format folders, incl. misleading names and empty folders."""

from __future__ import annotations

import json

import pytest

from modelcheck.facts import gather
from modelcheck.facts.classify import name_suggests
from fixtures.builders import (
    load_config,
    make_adapter,
    make_cosyvoice,
    make_diffusers,
    make_gguf,
    make_hf_llm,
    make_sd_checkpoint,
    write_safetensors_sparse,
)


def test_empty_folder(tmp_path):
    c = gather(str(tmp_path)).classification
    assert (c.kind, c.evidence, c.confidence) == ("unknown", ("no files",), 0.0)


def test_hf_llm(qwen_example):
    c = gather(str(qwen_example)).classification
    assert (c.kind, c.subtype, c.modalities, c.name_suggests) == ("hf-llm", None, ("text",), "hf-llm")
    assert c.evidence == ("config.json architectures=['Qwen2ForCausalLM']", "config.json model_type='qwen2'")


def test_vision_language_model(tmp_path):
    d = make_hf_llm(tmp_path / "Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct", shards=2)
    c = gather(str(d)).classification
    assert (c.kind, c.modalities) == ("hf-llm", ("text", "image")) and "vision_config present" in c.evidence


def test_embedding_model(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta"})
    )
    (tmp_path / "modules.json").write_text("[]")
    c = gather(str(tmp_path)).classification
    assert (c.kind, c.subtype) == ("hf-llm", "embedding")


@pytest.mark.parametrize(
    ("variant", "subtype", "tensor"),
    [
        ("sd15", "sd1", "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"),
        ("sd2", "sd2", "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"),
        ("sdxl", "sdxl", "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"),
        ("sd3", "sd3", "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight"),
        ("flux", "flux", "double_blocks.0.img_attn.qkv.weight"),
    ],
)
def test_single_file_diffusion_under_misleading_name(tmp_path, variant, subtype, tensor):
    make_sd_checkpoint(tmp_path / "model.safetensors", variant)
    d = tmp_path
    f = gather(str(d))
    c = f.classification
    assert (c.kind, c.subtype) == ("diffusion", subtype)
    assert f"model.safetensors tensor '{tensor}'" in c.evidence


def test_llama_named_folder_holding_sdxl_is_diffusion(tmp_path):
    d = tmp_path / "llama-3-8b"
    make_sd_checkpoint(d / "model.safetensors", "sdxl")
    c = gather(str(d)).classification
    assert (c.kind, c.name_suggests) == ("diffusion", "hf-llm")


@pytest.mark.parametrize(
    ("pipeline", "subtype"),
    [("StableDiffusionXLPipeline", "sdxl"), ("FluxPipeline", "flux"), ("StableDiffusionPipeline", "sd")],
)
def test_diffusers_pipeline(tmp_path, pipeline, subtype):
    f = gather(str(make_diffusers(tmp_path / "p", pipeline)))
    assert (f.kind, f.classification.subtype) == ("diffusion", subtype)
    assert f.classification.evidence[0] == f"model_index.json _class_name={pipeline!r}"
    assert f.json_files["vae/config.json"]["_class_name"] == "AutoencoderKL"


def test_diffusers_flux_transformer_folder(tmp_path):
    d = make_diffusers(tmp_path / "p", "FluxPipeline") / "transformer"
    c = gather(str(d)).classification
    assert (c.kind, c.subtype) == ("diffusion", "flux")


@pytest.mark.parametrize("version", [1, 2, 3])
def test_cosyvoice(tmp_path, version):
    f = gather(str(make_cosyvoice(tmp_path / "CosyVoice2-0.5B", version)))
    c = f.classification
    yname = "cosyvoice" if version == 1 else f"cosyvoice{version}"
    assert (c.kind, c.subtype, c.modalities) == ("tts", yname, ("text", "audio"))
    assert "CosyVoice weights ['flow.pt', 'hift.pt', 'llm.pt']" in c.evidence
    llm = f.yaml_files[f"{yname}.yaml"]["llm"]
    assert llm["!tag"] == "!new:cosyvoice.llm.llm.Qwen2LM" and llm["value"]["speech_token_size"] == 6561


def test_adapter(tmp_path):
    f = gather(str(make_adapter(tmp_path / "my-model", base="Qwen/Qwen2.5-7B-Instruct", r=8)))
    c = f.classification
    assert (c.kind, c.subtype) == ("adapter", "lora")
    assert (
        c.evidence[0]
        == "adapter_config.json peft_type='LORA' r=8 base_model_name_or_path='Qwen/Qwen2.5-7B-Instruct'"
    )
    assert f.weights.param_count == 28 * 2 * 2 * 8 * 3584


def test_gguf_folder_with_misleading_name(tmp_path):
    make_gguf(tmp_path / "stable-diffusion" / "model.gguf", arch="qwen2")
    c = gather(str(tmp_path / "stable-diffusion")).classification
    assert (c.kind, c.subtype, c.name_suggests) == ("gguf", "qwen2", "diffusion")


@pytest.mark.parametrize(
    ("files", "subtype"),
    [
        ({"resnet/config.pbtxt": "name: 'resnet'", "resnet/1/model.onnx": ""}, "triton"),
        ({"saved_model.pb": "", "variables/variables.index": ""}, "tf-savedmodel"),
        ({"model.h5": ""}, "keras"),
        ({"model.onnx": ""}, "onnx"),
        ({"weights.pth": ""}, "pytorch"),
    ],
)
def test_custom(tmp_path, files, subtype):
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    c = gather(str(tmp_path)).classification
    assert (c.kind, c.subtype) == ("custom", subtype)


def test_unknown_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    c = gather(str(tmp_path)).classification
    assert (c.kind, c.evidence) == ("unknown", ("no recognised model files among 1 files",))


def test_safetensors_without_config(tmp_path):
    write_safetensors_sparse(
        tmp_path / "model.safetensors", {"model.layers.0.self_attn.q_proj.weight": ("BF16", (64, 64))}
    )
    c = gather(str(tmp_path)).classification
    assert c.kind == "hf-llm" and c.confidence == 0.5


def test_mistral_native_params(tmp_path):
    (tmp_path / "params.json").write_text(
        json.dumps({"dim": 4096, "n_layers": 32, "head_dim": 128, "vocab_size": 32768})
    )
    write_safetensors_sparse(
        tmp_path / "consolidated.safetensors", {"tok_embeddings.weight": ("BF16", (32768, 4096))}
    )
    c = gather(str(tmp_path)).classification
    assert (c.kind, c.subtype) == ("hf-llm", "mistral-native")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Meta-Llama-3-8B", "hf-llm"),
        ("baichuan2-13b", "hf-llm"),
        ("chatglm3-6b", "hf-llm"),
        ("Yi-34B", "hf-llm"),
        ("internlm2-chat-7b", "hf-llm"),
        ("sdxl-turbo", "diffusion"),
        ("FLUX.1-dev", "diffusion"),
        ("ComfyUI-models", "diffusion"),
        ("stable-diffusion-v1-5", "diffusion"),
        ("CosyVoice2-0.5B", "tts"),
        ("fish-speech-1.5", "tts"),
        ("Qwen2.5-7B-Instruct-Q4_K_M", "gguf"),
        ("llama-lora-adapter", "adapter"),
        ("my-model", None),
        ("phi-3-mini", "hf-llm"),
        ("deepseek-coder", "hf-llm"),
    ],
)
def test_name_hints(name, kind):
    assert name_suggests(name) == kind


def test_moe_config_weights(tmp_path):
    f = gather(str(make_hf_llm(tmp_path / "DeepSeek-V2-Lite", "DeepSeek-V2-Lite", shards=4)))
    assert f.kind == "hf-llm" and f.weights.param_count == 15_706_484_224
    assert f.config["n_routed_experts"] == load_config("DeepSeek-V2-Lite")["n_routed_experts"] == 64
