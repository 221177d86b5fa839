"""Decide what kind of model a folder holds, from what gather() already read (no I/O here).

Evidence strings quote concrete observations so the report can say *why* a kind was chosen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from modelcheck.model import Classification, FileEntry, GGUFInfo, SafetensorsHeader

LLM_MODEL_TYPES = {
    "llama",
    "mistral",
    "mixtral",
    "qwen",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
    "qwen2_vl",
    "qwen2_5_vl",
    "qwen3_vl",
    "qwen3_vl_moe",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3_text",
    "phi",
    "phi3",
    "phimoe",
    "chatglm",
    "glm",
    "glm4",
    "glm4_moe",
    "baichuan",
    "internlm",
    "internlm2",
    "internlm3",
    "deepseek",
    "deepseek_v2",
    "deepseek_v3",
    "yi",
    "falcon",
    "gpt2",
    "gpt_neox",
    "gptj",
    "gpt_bigcode",
    "bloom",
    "opt",
    "mpt",
    "starcoder2",
    "stablelm",
    "olmo",
    "olmo2",
    "cohere",
    "cohere2",
    "dbrx",
    "jamba",
    "mamba",
    "minicpm",
    "minicpmv",
    "exaone",
    "granite",
    "granitemoe",
    "llava",
    "llava_next",
    "mllama",
    "internvl_chat",
    "gpt_oss",
    "hunyuan",
    "ernie4_5",
    "ernie4_5_moe",
    "kimi_vl",
    "mimo",
}
TTS_MODEL_TYPES = {
    "vits",
    "speecht5",
    "bark",
    "parler_tts",
    "fastspeech2_conformer",
    "musicgen",
    "seamless_m4t",
}
EMBED_ARCH_SUFFIXES = ("Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification")
GEN_ARCH_RE = re.compile(
    r"(ForCausalLM|ForConditionalGeneration|LMHeadModel|ForVision2Seq|ChatModel|ForSpeechSeq2Seq)$"
)

NAME_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("adapter", re.compile(r"(^|[^a-z])(q?lora|adapter|peft)([^a-z]|$)")),
    ("gguf", re.compile(r"gguf|(^|[-_.])i?q\d(_[a-z0-9]+)*($|[-_.])")),
    (
        "tts",
        re.compile(
            r"cosyvoice|fish-?speech|(^|[^a-z])tts([^a-z]|$)|f5-?tts|chattts|gpt-?sovits|xtts|melotts"
        ),
    ),
    (
        "diffusion",
        re.compile(
            r"stable-?diffusion|sdxl|(^|[^a-z])sd(\d|[-_ ]|$)|flux|comfy|(^|[^a-z])unet|kolors|hunyuan-?dit|pixart"
        ),
    ),
    (
        "hf-llm",
        re.compile(
            r"llama|qwen|mistral|mixtral|baichuan|(^|[^a-z])glm|chatglm|deepseek|(^|[^a-z])phi|gemma|(^|[^a-z])yi([^a-z]|$)|internlm|minicpm|falcon|(^|[^a-z])olmo"
        ),
    ),
)


def name_suggests(name: str) -> str | None:
    low = name.lower()
    for kind, pat in NAME_HINTS:
        if pat.search(low):
            return kind
    return None


def sd_variant(names: Iterable[str]) -> tuple[str | None, str | None]:
    """(subtype, the tensor name that told us) for single-file diffusion checkpoints."""
    found: dict[str, str] = {}
    for n in names:
        for key, pat in _SD_PATTERNS:
            if key not in found and n.startswith(pat):
                found[key] = n
    for key in ("sd3", "flux", "flux-diffusers", "sdxl", "sd2", "sd1", "unet"):
        if key in found:
            sub = {"flux-diffusers": "flux", "unet": None}.get(key, key)
            return sub, found[key]
    return None, None


_SD_PATTERNS = (
    ("sd3", "model.diffusion_model.joint_blocks."),
    ("sd3", "text_encoders.clip_l."),
    ("sd3", "joint_blocks."),
    ("flux", "double_blocks."),
    ("flux", "model.diffusion_model.double_blocks."),
    ("flux", "single_blocks."),
    ("flux-diffusers", "single_transformer_blocks."),
    ("sdxl", "conditioner.embedders.1."),
    ("sdxl", "conditioner.embedders.0.transformer."),
    ("sd2", "cond_stage_model.model.transformer."),
    ("sd1", "cond_stage_model.transformer."),
    ("unet", "model.diffusion_model."),
)

DIFFUSERS_PIPELINES = (
    ("StableDiffusion3", "sd3"),
    ("StableDiffusionXL", "sdxl"),
    ("Flux", "flux"),
    ("Kolors", "kolors"),
    ("PixArt", "pixart"),
    ("HunyuanDiT", "hunyuan-dit"),
    ("StableDiffusion", "sd"),
)


def classify(
    *,
    name: str,
    files: tuple[FileEntry, ...],
    json_files: Mapping[str, Any],
    yaml_files: Mapping[str, Any],
    text_files: Mapping[str, str],
    safetensors: tuple[SafetensorsHeader, ...],
    gguf: tuple[GGUFInfo, ...],
    source: str,
    extra: Mapping[str, Any],
    picked_file: str | None = None,
) -> Classification:
    hint = name_suggests(name)
    real = [f for f in files if f.type in ("file", "symlink")]
    base = {f.name for f in real}
    suffixes = {f.suffix for f in real}
    ev: list[str] = []
    if picked_file:
        ev.append(f"PATH named {picked_file}, one weight file of this model folder: the folder's model is checked")

    def out(
        kind: str, conf: float, sub: str | None = None, mods: tuple[str, ...] = ("text",)
    ) -> Classification:
        return Classification(kind, conf, tuple(ev), hint, mods, sub)

    if not real:
        ev.append("no files")
        return out("unknown", 0.0, mods=())

    if source == "ollama":
        ev.append(f"Ollama manifest {extra.get('ollama_manifest')} ({extra.get('ollama_name')})")
        if gguf:
            ev.append(f"model blob {gguf[0].path} is GGUF, general.architecture={gguf[0].architecture!r}")
            return out("ollama", 0.95, gguf[0].architecture)
        ev.append("no readable GGUF model layer")
        return out("ollama", 0.6)

    adapter = json_files.get("adapter_config.json")
    if isinstance(adapter, dict) or any(b.startswith("adapter_model.") for b in base):
        if isinstance(adapter, dict):
            ev.append(
                "adapter_config.json "
                f"peft_type={adapter.get('peft_type')!r} r={adapter.get('r')!r} "
                f"base_model_name_or_path={adapter.get('base_model_name_or_path')!r}"
            )
        weights = sorted(b for b in base if b.startswith("adapter_model."))
        if weights:
            ev.append(f"adapter weights {weights[0]}")
        sub = str(adapter.get("peft_type", "lora")).lower() if isinstance(adapter, dict) else "lora"
        return out("adapter", 0.95 if isinstance(adapter, dict) and weights else 0.7, sub)

    mi = json_files.get("model_index.json")
    if isinstance(mi, dict) and isinstance(mi.get("_class_name"), str):
        cls = mi["_class_name"]
        ev.append(f"model_index.json _class_name={cls!r}")
        sub = next((s for p, s in DIFFUSERS_PIPELINES if cls.startswith(p)), None)
        comps = sorted(k for k, v in mi.items() if not k.startswith("_") and isinstance(v, list))
        if comps:
            ev.append(f"diffusers components {comps}")
        return out("diffusion", 0.95, sub, ("text", "image"))

    cosy = sorted(y for y in yaml_files if re.fullmatch(r"cosyvoice\d?\.yaml", y.rsplit("/", 1)[-1]))
    cosy_pts = sorted(b for b in base if b in ("llm.pt", "flow.pt", "hift.pt"))
    if cosy or len(cosy_pts) >= 2:
        if cosy:
            ev.append(f"CosyVoice config {cosy[0]}")
        if cosy_pts:
            ev.append(f"CosyVoice weights {cosy_pts}")
        onnx = sorted(b for b in base if b.endswith(".onnx"))
        if onnx:
            ev.append(f"onnx front-end models {onnx}")
        sub = cosy[0].rsplit("/", 1)[-1][:-5] if cosy else "cosyvoice"
        return out("tts", 0.95 if cosy and cosy_pts else 0.75, sub, ("text", "audio"))

    cfg = json_files.get("config.json")
    if isinstance(cfg, dict):
        return _from_config(cfg, json_files, base, ev, out, safetensors)

    params = json_files.get("params.json")
    if isinstance(params, dict) and {"dim", "n_layers"} <= params.keys():
        ev.append(
            f"params.json (Mistral native format) dim={params.get('dim')} n_layers={params.get('n_layers')}"
        )
        return out("hf-llm", 0.8, "mistral-native")

    if gguf and not any(x.tensors for x in gguf):
        # vocab-only GGUF (llama.cpp's models/ggml-vocab-*.gguf, `convert_hf_to_gguf.py --vocab-only`): the
        # tokenizer and the hyper-parameters of a model, 0 tensors. llama.cpp opens it only with vocab_only
        # (its tokenizer tests); loading it as a model fails on the first missing tensor. Nothing to serve.
        vocab = [g for g in gguf if _has_tokenizer(g)]
        if not vocab:
            ev.append(f"{gguf[0].path} is GGUF v{gguf[0].version} but holds no tensors and no tokenizer "
                      "(an empty or unfinished file)")
            return out("unknown", 0.3, "gguf-empty", ())
        for g in vocab[:3]:
            ev.append(vocab_only_evidence(g))
        if len(vocab) > 3:
            ev.append(f"{len(vocab)} vocab-only GGUF files")
        return out("unknown", 0.9, "gguf-vocab-only", ())
    if gguf:
        g = next((x for x in gguf if x.tensors), gguf[0])
        ev.append(f"{g.path} GGUF v{g.version} general.architecture={g.architecture!r}")
        if len(gguf) > 1:
            ev.append(f"{len(gguf)} GGUF files")
        mods = ("text", "image") if any("mmproj" in x.path.lower() for x in gguf) else ("text",)
        return out("gguf", 0.95, g.architecture, mods)
    if ".gguf" in suffixes:
        ev.append("a .gguf file whose header could not be read")
        return out("gguf", 0.6)

    for h in safetensors:
        sub, tensor = sd_variant(t.name for t in h.tensors)
        if tensor:
            ev.append(f"{h.path} tensor {tensor!r}")
            return out("diffusion", 0.9 if sub else 0.75, sub, ("text", "image"))
    for h in safetensors:
        llm = next((t.name for t in h.tensors if re.search(r"layers\.\d+\.self_attn\.", t.name)), None)
        if llm:
            ev.append(f"{h.path} tensor {llm!r} (decoder layers) but no config.json")
            return out("hf-llm", 0.5)

    if "config.pbtxt" in base or any(t.endswith("config.pbtxt") for t in text_files):
        ev.append("Triton model repository (config.pbtxt)")
        return out("custom", 0.9, "triton")
    if "saved_model.pb" in base:
        ev.append("TensorFlow SavedModel (saved_model.pb)")
        return out("custom", 0.9, "tf-savedmodel")
    if suffixes & {".h5", ".keras"}:
        ev.append("Keras model file (.h5/.keras)")
        return out("custom", 0.8, "keras")
    if ".onnx" in suffixes:
        ev.append(f"ONNX files {sorted(b for b in base if b.endswith('.onnx'))[:5]}")
        return out("custom", 0.8, "onnx")
    ckpt = sorted(b for b in base if b.endswith((".ckpt",)))
    if ckpt and hint == "diffusion":
        ev.append(f"{ckpt[0]} (pickle checkpoint) and the name suggests Stable Diffusion")
        return out("diffusion", 0.5, None, ("text", "image"))
    pt = sorted(b for b in base if b.endswith((".pt", ".pth", ".ckpt", ".bin", ".pkl")))
    if pt:
        ev.append(f"PyTorch/pickle files only {pt[:5]}")
        return out("custom", 0.6, "pytorch")
    if safetensors:
        ev.append(f"{safetensors[0].path}: safetensors without config.json and no recognised tensor names")
        return out("custom", 0.4, "safetensors")
    ev.append(f"no recognised model files among {len(real)} files")
    return out("unknown", 0.1 if hint is None else 0.2, mods=())


def _has_tokenizer(g: GGUFInfo) -> bool:
    return isinstance(g.metadata.get("tokenizer.ggml.model"), str) or "tokenizer.ggml.tokens" in g.metadata


def vocab_only_evidence(g: GGUFInfo) -> str:
    """What a tensorless GGUF holds, quoted from its metadata."""
    md = g.metadata
    tokens = md.get("tokenizer.ggml.tokens")
    n = tokens.get("length") if isinstance(tokens, dict) else (len(tokens) if isinstance(tokens, list) else None)
    tok = md.get("tokenizer.ggml.model")
    what = f"tokenizer {tok!r}" + (f" with {n:,} tokens" if isinstance(n, int) else "") if tok else "no tokenizer"
    return (f"{g.path} is a vocab-only GGUF v{g.version}: {what} and the hyper-parameters of "
            f"general.architecture={g.architecture!r}, 0 tensors (no weights)")


def _from_config(cfg, json_files, base, ev, out, safetensors) -> Classification:
    archs = [a for a in cfg.get("architectures") or [] if isinstance(a, str)]
    mt = cfg.get("model_type")
    cls = cfg.get("_class_name")
    if isinstance(cls, str):
        ev.append(f"config.json _class_name={cls!r} (diffusers component)")
        sub = "flux" if cls.startswith("Flux") else ("sd3" if cls.startswith("SD3") else None)
        return out("diffusion", 0.85, sub, ("text", "image"))
    if archs:
        ev.append(f"config.json architectures={archs}")
    if mt:
        ev.append(f"config.json model_type={mt!r}")
    mods = ["text"]
    if isinstance(cfg.get("vision_config"), dict) or "preprocessor_config.json" in json_files:
        mods.append("image")
        ev.append(
            "vision_config present"
            if isinstance(cfg.get("vision_config"), dict)
            else "preprocessor_config.json present"
        )
    if isinstance(cfg.get("audio_config"), dict) or any("Whisper" in a or "Audio" in a for a in archs):
        mods.append("audio")
    if mt in TTS_MODEL_TYPES or any(re.search(r"TextToSpeech|TTS|Vits|ForTextToWaveform", a) for a in archs):
        return out("tts", 0.85, str(mt) if mt else None, ("text", "audio"))
    if "sentence_bert_config.json" in json_files or "modules.json" in json_files:
        ev.append("sentence-transformers files (modules.json / sentence_bert_config.json)")
        return out("hf-llm", 0.85, "embedding", tuple(mods))
    if any(GEN_ARCH_RE.search(a) for a in archs):
        return out("hf-llm", 0.95, None, tuple(mods))
    if any(a.endswith(EMBED_ARCH_SUFFIXES) for a in archs):
        sub = "reranker" if any(a.endswith("ForSequenceClassification") for a in archs) else "embedding"
        return out("hf-llm", 0.8, sub, tuple(mods))
    if mt in LLM_MODEL_TYPES:
        return out("hf-llm", 0.75, None, tuple(mods))
    if archs or mt:
        return out("hf-llm", 0.5, None, tuple(mods))
    ev.append("config.json has neither architectures nor model_type")
    return out("unknown", 0.2, mods=())
