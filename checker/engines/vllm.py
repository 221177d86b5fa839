"""vLLM's derivations from a model folder, per version (the vLLM part of the engine view).

Every rule below was read in the vLLM wheel of the named release (``/work/src/get.sh vllm X``); where
behaviour changed between two read releases the first release was found by reading the releases in
between (bisected downloads). Releases read: 0.6.3, 0.6.4, 0.6.5, 0.6.6, 0.7.0-0.7.3, 0.8.0, 0.8.5,
0.9.0, 0.9.1, 0.9.2, 0.10.0-0.10.2, 0.11.0, 0.11.1, 0.12.0, 0.14.0, 0.17.0, 0.20.0-0.24.0, 0.25.0,
0.26.0, 0.27.0, 0.27.1, 0.28.0-0.30.0, 0.32.0. Older than 0.6.3 was not read: answers for it are marked
uncertain.

max_model_len (``_get_and_verify_max_len``: ``vllm/config.py`` up to 0.9.2, ``vllm/config/__init__.py``
0.10.1-0.10.2, ``vllm/config/model.py`` from 0.11.0; the key scan moved to
``transformers_utils/model_arch_config_convertor.py`` in 0.14.0):

1. the smallest of the length keys of the *text* config, read with ``getattr`` on transformers' config
   object, so a key absent from config.json takes the config class's default (FalconConfig
   max_position_embeddings=2048, ``transformers/models/falcon/configuration_falcon.py``@4.57.1);
   ``model_max_length`` in config.json overrides it (Command-R, @0.8.5+); none at all -> 2048.
2. Gemma 2 with a sliding window: 0.6.3-0.6.4 disable the window and cap the length at it
   (``config.py``@0.6.4 "has interleaved attention, which is currently not supported by vLLM"); from 0.6.5
   only with VLLM_ATTENTION_BACKEND=XFORMERS (FLASHINFER too from 0.7.3).
3. tokenizer_config.json ``model_max_length``: never up to 0.9.0; 0.9.1 takes the min with the final
   value for every model (``config.py``@0.9.1 get_and_verify_max_len); 0.9.2 only for pooling runners;
   from 0.10.0 only for pooling runners whose config has position_embedding_type "absolute" (BERT-likes:
   ``config.py``@0.10.0). Applied before the rope factor from 0.9.2.
4. rope factor multiplies, except for su/longrope/llama3 (all releases read), yarn & deepseek yarn
   from 0.30.0 (``config/model.py``@0.30.0; 0.29.0 and earlier: yarn gives
   original_max_position_embeddings x factor), and never for Gemma 3 (``"gemma3" not in model_type``,
   from 0.8.0, the release that registered Gemma 3).
5. a sentence-transformers ``sentence_bert_config.json`` (with both max_seq_length and do_lower_case,
   ``transformers_utils/config.py`` get_sentence_transformer_tokenizer_config) replaces the length with
   its max_seq_length (from 0.6.4; absent in 0.6.3).
6. default with no --max-model-len: LongRoPE models (Phi-3/3.5/4-mini) run with
   ``original_max_position_embeddings`` from 0.11.1 (``config/model.py``@0.11.1, absent @0.11.0); the
   limit a user may ask for stays the derived one.
7. a user's --max-model-len above the limit is refused unless <= config ``model_max_length`` or
   VLLM_ALLOW_LONG_MAX_MODEL_LEN=1.
"""

from __future__ import annotations

import math
from typing import Any

from modelcheck.catalog import support
from modelcheck.engines import EngineView, GgufLoad, LayerPattern, MaxLen, QuantView
from modelcheck.memo import last_answer
from modelcheck.model import Deployment, ModelFacts

Version = tuple[int, ...]

FIRST_READ: Version = (0, 6, 3)
# config.json keys vLLM reads for the model's length, in its order (max_target_positions from 0.8.x)
MAX_LEN_KEYS = (
    "max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "model_max_length",
    "max_target_positions", "max_sequence_length", "max_seq_length", "seq_len",
)
# transformers config-class defaults of those keys, used by vLLM's getattr when config.json lacks the key
# (transformers/models/<type>/configuration_<type>.py@4.57.1)
CLASS_LENGTH_DEFAULTS: dict[str, dict[str, int]] = {
    "falcon": {"max_position_embeddings": 2048}, "llama": {"max_position_embeddings": 2048},
    "mistral": {"max_position_embeddings": 131072}, "mixtral": {"max_position_embeddings": 131072},
    "qwen2": {"max_position_embeddings": 32768}, "qwen2_moe": {"max_position_embeddings": 32768},
    "qwen3": {"max_position_embeddings": 32768}, "qwen3_moe": {"max_position_embeddings": 32768},
    "phi3": {"max_position_embeddings": 4096}, "phi": {"max_position_embeddings": 2048},
    "gemma": {"max_position_embeddings": 8192}, "gemma2": {"max_position_embeddings": 8192},
    "gemma3_text": {"max_position_embeddings": 131072}, "gpt2": {"n_positions": 1024},
    "gpt_neox": {"max_position_embeddings": 2048}, "gptj": {"n_positions": 2048},
    "opt": {"max_position_embeddings": 2048}, "mpt": {"max_seq_len": 2048},
    "starcoder2": {"max_position_embeddings": 4096}, "cohere": {"max_position_embeddings": 8192},
    "cohere2": {"max_position_embeddings": 8192}, "bert": {"max_position_embeddings": 512},
    "roberta": {"max_position_embeddings": 512}, "xlm-roberta": {"max_position_embeddings": 512},
    "stablelm": {"max_position_embeddings": 4096}, "gpt_bigcode": {"n_positions": 1024},
}
# Phi3Config original_max_position_embeddings=4096 (configuration_phi3.py@4.57.1)
CLASS_ORIGINAL_DEFAULTS = {"phi3": 4096}
# config classes whose position_embedding_type defaults to "absolute" (configuration_bert.py etc. @4.57.1)
ABSOLUTE_POSITION_TYPES = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "electra", "ernie",
                                     "data2vec-text", "xlm-roberta-xl", "mpnet"})
# sentence-transformers configs vLLM looks for (transformers_utils/config.py@0.8.5 .. @0.32.0)
SENTENCE_CONFIGS = (
    "sentence_bert_config.json", "sentence_roberta_config.json", "sentence_distilbert_config.json",
    "sentence_camembert_config.json", "sentence_albert_config.json", "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
ROPE_NO_FACTOR = frozenset({"su", "longrope", "llama3"})
ROPE_NO_FACTOR_FROM_0_30 = frozenset({"yarn", "deepseek_yarn", "deepseek_llama_scaling"})
YARN_NO_FACTOR_FROM: Version = (0, 30, 0)  # config/model.py@0.30.0; @0.29.0 still multiplies
LONGROPE_DEFAULT_FROM: Version = (0, 11, 1)  # config/model.py@0.11.1; absent @0.11.0
SENTENCE_CONFIG_FROM: Version = (0, 6, 4)  # config.py@0.6.4; absent @0.6.3
GEMMA3_NO_FACTOR_FROM: Version = (0, 8, 0)
TOKENIZER_MIN_ALL: Version = (0, 9, 1)  # config.py@0.9.1 (every model, after everything else)
TOKENIZER_MIN_POOLING: Version = (0, 9, 2)  # config.py@0.9.2 (pooling runners only)
TOKENIZER_MIN_ABSOLUTE: Version = (0, 10, 0)  # config.py@0.10.0 (pooling + absolute positions)
GEMMA2_CAP_LAST: Version = (0, 6, 4)  # config.py@0.6.4 caps gemma2 at its window; @0.6.5 only with XFORMERS
# GGUF: model_loader/gguf_loader.py (loader.py GGUFModelLoader before 0.10) present through 0.23.0;
# 0.24.0 has no GGUF loader, no "gguf" quantization and no transformers_utils/gguf_utils.py
GGUF_REMOVED_FROM: Version = (0, 24, 0)
GGUF_LAST_PRESENT: Version = (0, 23, 0)
# vLLM builds the HF config of a .gguf through transformers (AutoConfig(gguf_file=...)):
# GGUF_SUPPORTED_ARCHITECTURES of transformers/modeling_gguf_pytorch_utils.py@4.57.1 (general.architecture
# values; qwen2moe/qwen3moe are renamed there; llama with "mistral" in general.name becomes mistral)
GGUF_ARCHS_TRANSFORMERS = frozenset({
    "llama", "mistral", "qwen2", "qwen2moe", "lfm2", "qwen3", "qwen3moe", "falcon", "phi3", "bloom", "t5",
    "stablelm", "gpt2", "starcoder2", "mamba", "nemotron", "gemma2", "gemma3", "umt5", "deci", "t5encoder",
})
GGUF_ARCHS_TRANSFORMERS_VERSION = "4.57.1"
EMBEDDING_ARCH_SUFFIXES = ("Model", "ForSequenceClassification", "ForMaskedLM", "ForTokenClassification")


def vt(version: Any) -> Version | None:
    return support.vt(version)


def fmt(v: Version | None) -> str:
    return support.fmt(v)


def text_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """get_hf_text_config: text_config (VLMs) else the config itself."""
    if not isinstance(config, dict):
        return {}
    for key in ("text_config", "llm_config", "language_config"):
        sub = config.get(key)
        if isinstance(sub, dict) and sub:
            return sub
    return config


def _num(val: Any) -> float | None:
    return float(val) if isinstance(val, (int, float)) and not isinstance(val, bool) else None


def rope_params(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """rope_scaling / rope_parameters, one dict per layer type when nested (transformers 5), with
    patch_rope_scaling's renames (type -> rope_type, su -> longrope, mrope -> default)."""
    out: list[dict[str, Any]] = []
    for key in ("rope_scaling", "rope_parameters"):
        rp = cfg.get(key)
        if isinstance(rp, dict) and rp:
            if all(isinstance(v, dict) for v in rp.values()):
                out.extend(v for v in rp.values() if v)
            else:
                out.append(rp)
            break
    norm = []
    for rp in out:
        rtype = str(rp.get("rope_type") or rp.get("type") or "default")
        rtype = {"su": "longrope", "mrope": "default"}.get(rtype, rtype)
        norm.append({**rp, "rope_type": rtype})
    return norm


def _model_type(config: dict[str, Any] | None) -> str:
    t = text_config(config)
    return str(t.get("model_type") or (config or {}).get("model_type") or "")


def sentence_config(json_files: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The sentence-transformers config vLLM uses (needs max_seq_length and do_lower_case)."""
    for name in SENTENCE_CONFIGS:
        d = json_files.get(name)
        if isinstance(d, dict) and d:
            if all(k in d for k in ("max_seq_length", "do_lower_case")):
                return name, d
            return None
    return None


def is_pooling(facts: ModelFacts, args: dict[str, Any]) -> bool:
    """vLLM's runner type: pooling for embedding/classification architectures, sentence-transformers
    folders with a Pooling module (config/model.py@0.32.0 _get_default_runner_type: get_pooling_config),
    or --task embed / --runner pooling."""
    for key in ("task", "runner", "convert"):
        val = str(args.get(key) or "").lower()
        if val in ("embed", "embedding", "pooling", "classify", "score", "reward"):
            return True
    modules = facts.json_files.get("modules.json")
    if isinstance(modules, list) and any(isinstance(m, dict) and "Pooling" in str(m.get("type", "")) for m in modules):
        return True
    return any(a.endswith(EMBEDDING_ARCH_SUFFIXES) and not a.endswith("ForCausalLM") for a in facts.architectures[:1])


def derive_max_len(
    config: dict[str, Any] | None,
    version: Any = None,
    *,
    tokenizer_config: dict[str, Any] | None = None,
    sentence: tuple[str, dict[str, Any]] | None = None,
    pooling: bool = False,
    attention_backend: str | None = None,
) -> MaxLen | None:
    """vLLM's ``_get_and_verify_max_len`` for this version (see the module docstring for the sources).

    ``version`` None: the newest behaviour read, with ``certain=False`` where releases disagree."""
    if not isinstance(config, dict):
        return None
    v = vt(version)
    notes: list[str] = []
    text = text_config(config)
    mt = _model_type(config)
    defaults = CLASS_LENGTH_DEFAULTS.get(str(text.get("model_type") or mt), {})
    derived = math.inf
    key_used: str | None = None
    class_default: int | None = None
    for key in MAX_LEN_KEYS:
        val = _num(text.get(key)) if key in text else _num(defaults.get(key))
        if key == "max_target_positions" and v is not None and v < (0, 8, 0):
            continue  # added to the key list between 0.7.0 and 0.8.5 (Whisper)
        if val is not None:
            if val < derived:
                key_used = key
                class_default = None if key in text else int(val)
            derived = min(derived, val)
    if class_default is not None and key_used:
        notes.append(f"config.json has no {key_used}: transformers' {mt} config class default {class_default} applies")
    mml = _num(text.get("model_max_length"))
    if mml:  # Command-R / Cohere: config model_max_length wins (config.py@0.8.5 onward)
        derived, key_used = mml, "model_max_length"
    # Gemma 2 with its window: capped in 0.6.3-0.6.4 and with XFORMERS/FLASHINFER backends later
    window = _num(text.get("sliding_window"))
    if mt == "gemma2" and "sliding_window" not in text:
        window = 4096.0
    backend = (attention_backend or "").upper()
    capped_backends = ("XFORMERS", "FLASHINFER") if v is None or v >= (0, 7, 3) else ("XFORMERS",)
    interleaved = mt in ("gemma2", "gemma3_text", "cohere2", "gemma3") and bool(window) and derived != math.inf
    capped = (v is not None and v <= GEMMA2_CAP_LAST and mt == "gemma2") or backend in capped_backends
    if interleaved and capped and window and window < derived:
        derived, key_used = window, "sliding_window"
        notes.append(f"vLLM {fmt(v)} disables {mt}'s interleaved sliding window and caps the length at "
                     f"the window ({int(window)})" + (f" with VLLM_ATTENTION_BACKEND={backend}" if backend else ""))
    # tokenizer_config.json model_max_length, before the rope factor (>= 0.9.2)
    tml = _num((tokenizer_config or {}).get("model_max_length")) if isinstance(tokenizer_config, dict) else None
    absolute = str(text.get("position_embedding_type") or ("absolute" if mt in ABSOLUTE_POSITION_TYPES else "")) == "absolute"
    if tml is not None and v is not None and v >= TOKENIZER_MIN_POOLING:
        applies = pooling and (absolute or v < TOKENIZER_MIN_ABSOLUTE)
        if applies and tml < derived:
            derived, key_used = tml, "tokenizer_config.json:model_max_length"
    elif tml is not None and v is None and pooling and absolute and tml < derived:
        derived, key_used = tml, "tokenizer_config.json:model_max_length"
    if derived == math.inf:
        derived, key_used = 2048.0, None
        notes.append("config.json has none of the length keys: vLLM assumes 2048")
    base = int(derived)
    params = rope_params(text)
    factor_new = factor_old = 1.0
    old_base = derived
    rope_type = None
    gemma3_skip = "gemma3" in mt and (v is None or v >= GEMMA3_NO_FACTOR_FROM)
    if params and not gemma3_skip:
        for rp in params:
            rope_type = rp["rope_type"]
            f = _num(rp.get("factor"))
            f = 1.0 if f is None else f
            if rope_type not in ROPE_NO_FACTOR and rope_type not in ROPE_NO_FACTOR_FROM_0_30:
                factor_new = f
            if rope_type not in ROPE_NO_FACTOR:
                factor_old = f
                if rope_type == "yarn" and _num(rp.get("original_max_position_embeddings")):
                    old_base = float(rp["original_max_position_embeddings"])
    elif params:
        rope_type = params[0]["rope_type"]
        if _num(params[0].get("factor")) not in (None, 1.0):
            notes.append(f"Gemma 3's max_position_embeddings already includes its rope factor "
                         f"{params[0].get('factor')}: vLLM does not multiply it")
    new_val = derived * factor_new
    old_val = old_base * factor_old
    certain = True
    if new_val == old_val or (v is not None and v >= YARN_NO_FACTOR_FROM):
        value = strict = new_val
        factor = factor_new
    elif v is not None:
        value = strict = old_val
        factor = old_val / base if base else factor_old
    else:
        value, strict, certain = max(new_val, old_val), min(new_val, old_val), False
        factor = factor_new
        notes.append(f"yarn rope scaling: vLLM <= 0.29 derives {int(old_val)} (original_max_position_embeddings x "
                     f"factor), >= {fmt(YARN_NO_FACTOR_FROM)} derives {int(new_val)}")
    # sentence-transformers max_seq_length replaces the length (>= 0.6.4)
    if sentence is not None and (v is None or v >= SENTENCE_CONFIG_FROM):
        name, d = sentence
        msl = _num(d.get("max_seq_length"))
        if msl:
            value = strict = msl
            key_used = f"{name}:max_seq_length"
            notes.append(f"sentence-transformers {name} sets max_seq_length {int(msl)}")
    # 0.9.1 alone: min with tokenizer_config after everything, for every model
    if tml is not None and v is not None and TOKENIZER_MIN_ALL <= v < TOKENIZER_MIN_POOLING and tml < value:
        value = strict = tml
        key_used = "tokenizer_config.json:model_max_length"
    default = int(value)
    longrope = any(rp["rope_type"] == "longrope" for rp in params)
    if longrope:
        orig = _num(text.get("original_max_position_embeddings"))
        if orig is None:
            orig = float(CLASS_ORIGINAL_DEFAULTS.get(mt, 0)) or None
        if orig and (v is None or v >= LONGROPE_DEFAULT_FROM):
            default = int(orig)
            notes.append(f"LongRoPE: without --max-model-len vLLM >= {fmt(LONGROPE_DEFAULT_FROM)} runs with "
                         f"original_max_position_embeddings {int(orig)} (up to {int(value)} when asked)")
    if v is not None and v < FIRST_READ:
        certain = False
        notes.append(f"vLLM {fmt(v)} is older than the releases read ({fmt(FIRST_READ)}+): derived as {fmt(FIRST_READ)}")
    return MaxLen(
        value=int(value), key=key_used, base=base, factor=float(factor), rope_type=rope_type,
        strict_value=int(strict), certain=certain, default=default,
        model_max_length=int(mml) if mml else None, notes=tuple(notes),
    )


# ----------------------------------------------------------------------------------------------
# layer pattern


def layer_pattern(config: dict[str, Any] | None) -> LayerPattern | None:
    """Attention layer kinds as transformers' config class fills them in (vLLM's models read
    ``config.layer_types`` / the class's alternation):

    - ``layer_types`` in config.json wins;
    - Gemma 2: alternating, even layers sliding (configuration_gemma2.py@4.57.1: ``(i + 1) % 2``),
      window 4096 when absent;
    - Gemma 3: 5 sliding then 1 full (``sliding_window_pattern`` 6), window 4096 when absent
      (configuration_gemma3.py@4.57.1); Cohere 2: pattern 4 (configuration_cohere2.py@4.57.1);
    - Qwen2/Qwen3: only with use_sliding_window, layers from max_window_layers on
      (configuration_qwen2.py@4.57.1);
    - Mistral: every layer slides; sliding_window 4096 when the key is absent, none when null
      (configuration_mistral.py@4.57.1); other models: every layer slides when sliding_window is set."""
    if not isinstance(config, dict):
        return None
    text = text_config(config)
    mt = _model_type(config)
    layers = text.get("num_hidden_layers") or text.get("n_layer") or text.get("num_layers")
    if not isinstance(layers, int) or isinstance(layers, bool) or layers <= 0:
        return None
    window_raw = text.get("sliding_window")
    window = int(window_raw) if isinstance(window_raw, int) and not isinstance(window_raw, bool) and window_raw > 0 else None
    types = text.get("layer_types")
    if isinstance(types, list) and types and all(isinstance(t, str) for t in types):
        full = sum(1 for t in types if t in ("full_attention", "attention", "chunked_attention"))
        sliding = sum(1 for t in types if t == "sliding_attention")
        if mt in ("gemma2", "gemma3_text", "gemma3", "cohere2") and window is None and "sliding_window" not in text:
            window = 4096
        if not window:
            full, sliding = full + sliding, 0
        other = len(types) - full - sliding
        return LayerPattern(layers, full, sliding, max(0, other), window if sliding else None,
                            "config.json:layer_types")
    pattern = None
    source = ""
    if mt == "gemma2":
        pattern, source = 2, "transformers Gemma2Config default: sliding and full layers alternate"
    elif mt in ("gemma3_text", "gemma3"):
        p = text.get("sliding_window_pattern")
        pattern = p if isinstance(p, int) and p > 0 else 6
        source = f"transformers Gemma3TextConfig default: {pattern - 1} sliding layers per full layer"
    elif mt == "cohere2":
        p = text.get("sliding_window_pattern")
        pattern = p if isinstance(p, int) and p > 0 else 4
        source = f"transformers Cohere2Config default: {pattern - 1} sliding layers per full layer"
    if pattern:
        if window is None and "sliding_window" not in text:
            window = 4096
        if window is None:
            return LayerPattern(layers, layers, 0, 0, None, "config.json: sliding_window null")
        sliding = sum(1 for i in range(layers) if (i + 1) % pattern)
        return LayerPattern(layers, layers - sliding, sliding, 0, window, source)
    if mt in ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe"):
        if not text.get("use_sliding_window") or not window:
            return LayerPattern(layers, layers, 0, 0, None, "config.json (use_sliding_window false)")
        mwl = text.get("max_window_layers")
        mwl = mwl if isinstance(mwl, int) and mwl >= 0 else layers
        sliding = max(0, layers - mwl)
        return LayerPattern(layers, layers - sliding, sliding, 0, window if sliding else None,
                            "transformers Qwen2Config: sliding layers from max_window_layers on")
    if mt == "mistral" and "sliding_window" not in text:
        return LayerPattern(layers, 0, layers, 0, 4096,
                            "transformers MistralConfig default sliding_window 4096 (key absent)")
    if window:
        return LayerPattern(layers, 0, layers, 0, window, "config.json:sliding_window (every layer)")
    return LayerPattern(layers, layers, 0, 0, None, "config.json (no sliding window)")


# ----------------------------------------------------------------------------------------------
# quantization and parameter counts


def _quant_cfg(config: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(config, dict):
        return None
    qc = config.get("quantization_config")
    if isinstance(qc, dict):
        return qc
    for key in ("text_config", "llm_config"):
        sub = config.get(key)
        if isinstance(sub, dict) and isinstance(sub.get("quantization_config"), dict):
            return sub["quantization_config"]
    return None


def mlx_evidence(facts: ModelFacts) -> list[str]:
    """What marks an MLX-quantized folder: quantization_config with group_size/bits and no quant_method
    (mlx_lm's convert writes it, also as ``quantization``), U32-packed weights beside .scales/.biases."""
    ev: list[str] = []
    cfg = facts.config
    qc = _quant_cfg(cfg)
    raw = (cfg or {}).get("quantization")
    for name, q in (("quantization_config", qc), ("quantization", raw)):
        if isinstance(q, dict) and "bits" in q and "group_size" in q and not q.get("quant_method"):
            ev.append(f"config.json:{name} has group_size {q.get('group_size')} / bits {q.get('bits')} and no quant_method")
            break
    names = {t.name for h in facts.safetensors for t in h.tensors}
    packed = [t for h in facts.safetensors for t in h.tensors if t.dtype == "U32" and t.name.endswith(".weight")]
    with_scales = [t for t in packed if t.name[: -len("weight")] + "scales" in names and t.name[: -len("weight")] + "biases" in names]
    if with_scales:
        ev.append(f"{len(with_scales)} U32-packed weights with .scales/.biases (e.g. {with_scales[0].name})")
    return ev


def _index_total_parameters(facts: ModelFacts) -> int | None:
    for name, d in facts.json_files.items():
        if name.endswith(".safetensors.index.json") and isinstance(d, dict):
            meta = d.get("metadata")
            tp = meta.get("total_parameters") if isinstance(meta, dict) else None
            if isinstance(tp, int) and not isinstance(tp, bool) and tp > 0:
                return tp
    return None


@last_answer
def true_param_count(facts: ModelFacts, bits: int | None = None) -> tuple[int | None, str]:
    """Parameters of the model, not elements as stored: the index's metadata.total_parameters when the
    exporter wrote it, else the stored elements with packed integer tensors (U32/I32 packing 32/bits
    values: MLX, GPTQ, AWQ; U8 packing 2 values: bitsandbytes 4-bit) unpacked and MLX/GPTQ/AWQ scales,
    biases, zeros and g_idx left out."""
    tp = _index_total_parameters(facts)
    if tp:
        return tp, "model.safetensors.index.json:metadata.total_parameters"
    tensors = [t for h in facts.safetensors for t in h.tensors]
    if not tensors:
        return (facts.weights.param_count or None), "stored elements"
    qc = _quant_cfg(facts.config) or (facts.config or {}).get("quantization") or {}
    b = bits or (qc.get("bits") if isinstance(qc, dict) and isinstance(qc.get("bits"), int) else None)
    method = str(qc.get("quant_method") or "").lower() if isinstance(qc, dict) else ""
    names = {t.name for t in tensors}
    total = 0
    packed = False
    for t in tensors:
        n = 1
        for d in t.shape:
            n *= d
        stem = t.name.rsplit(".", 1)[0]
        suffix = t.name.rsplit(".", 1)[-1]
        if suffix in ("scales", "biases", "qzeros", "scales_zeros", "g_idx", "absmax", "quant_map",
                      "nested_absmax", "nested_quant_map", "quant_state") or ".quant_state." in t.name \
                or (suffix == "biases" and f"{stem}.scales" in names):
            continue
        if t.dtype in ("U32", "I32") and (suffix in ("weight", "qweight")) and b:
            n = n * (32 // b)
            packed = True
        elif t.dtype == "U8" and method == "bitsandbytes" and suffix == "weight":
            n *= 2
            packed = True
        total += n
    return total, ("stored elements with packed tensors unpacked" if packed else "stored elements")


def quant_view(facts: ModelFacts, args: dict[str, Any], version: Version | None) -> QuantView | None:
    explicit = args.get("quantization")
    mlx = mlx_evidence(facts)
    if mlx:
        # _verify_quantization (config/model.py@0.17.0, config.py@0.8.5): quant_method = qc.get("quant_method", "")
        # -> "" -> None: loaded as an unquantized model, whose loader then meets U32 tensors and
        # .scales/.biases names no vLLM layer declares.
        return QuantView(
            method=None, source="; ".join(mlx), loadable=False, fmt="mlx",
            reason="MLX-quantized weights (mlx_lm format) cannot be loaded by vLLM: quantization_config has no "
                   "quant_method, so vLLM loads the folder as unquantized and fails on the U32-packed "
                   "weights and their .scales/.biases tensors",
        )
    method = support.quant_method_from_config(facts.config)
    if explicit:
        return QuantView(method=support.normalize_quant_method(str(explicit)), source="--quantization", loadable=None)
    if method:
        return QuantView(method=method, source="config.json:quantization_config.quant_method", loadable=None,
                         fmt=method)
    if facts.kind == "gguf":
        return QuantView(method="gguf", source="GGUF file", loadable=None, fmt="gguf")
    return None


# ----------------------------------------------------------------------------------------------
# GGUF


def gguf_load(facts: ModelFacts, version: Version | None, deployment: Deployment | None) -> GgufLoad | None:
    """Can vLLM load this GGUF as deployed?

    vLLM takes a single ``.gguf`` *file* as the model (``transformers_utils/utils.py`` check_gguf_file
    @0.6.3-@0.23.0: ``Path(model).is_file()`` and suffix .gguf / GGUF magic); a folder holding one is read
    as a Hugging Face folder and fails without config.json. The loader is gone from 0.24.0."""
    ggufs = [g for g in facts.gguf if "mmproj" not in g.path.lower()]
    if not ggufs and not facts.files_with_suffix(".gguf"):
        return None
    g = ggufs[0] if ggufs else None
    file = g.path if g else facts.files_with_suffix(".gguf")[0].path
    arch = g.architecture if g else None
    data: dict[str, Any] = {"file": file, "architecture": arch, "version": fmt(version) if version else None}
    if version is not None and version >= GGUF_REMOVED_FROM:
        return GgufLoad(file, False, True,
                        f"vLLM {fmt(version)} has no GGUF loader (removed in {fmt(GGUF_REMOVED_FROM)}; "
                        f"{fmt(GGUF_LAST_PRESENT)} is the last release with it)",
                        fix="serve the GGUF with llama.cpp, or use vLLM <= 0.23 with the .gguf file path",
                        architecture=arch, data=data)
    ref = str((deployment.model_ref if deployment is not None else None) or "")
    points_at_file = ref.lower().endswith(".gguf") or bool(facts.single_file and facts.single_file.lower().endswith(".gguf"))
    if not points_at_file:
        where = f"the start command's model {ref!r}" if ref else "the mounted folder"
        return GgufLoad(file, False, True,
                        f"vLLM loads a GGUF only when given the .gguf file itself; {where} is a folder, which vLLM "
                        "reads as a Hugging Face folder (no config.json: it fails to start)",
                        fix=f"point the start command at the file: `vllm serve /path/to/{file} --tokenizer ORG/ORIGINAL`",
                        architecture=arch, data={**data, "model_ref": ref or None})
    if arch and arch not in GGUF_ARCHS_TRANSFORMERS:
        return GgufLoad(file, False, False,
                        f"GGUF architecture {arch!r} is not one transformers {GGUF_ARCHS_TRANSFORMERS_VERSION} can "
                        "build a config from (vLLM reads a GGUF's config through transformers); the image's "
                        "transformers may differ",
                        fix="serve it with llama.cpp, or deploy the Hugging Face original",
                        architecture=arch, data=data)
    note = "" if version is not None else " (image version unknown)"
    return GgufLoad(file, True, version is not None and version >= FIRST_READ,
                    f"vLLM's GGUF support is experimental (slower, tokenizer converted from GGUF){note}",
                    fix=f"pass the original tokenizer: `vllm serve {file} --tokenizer ORG/ORIGINAL`",
                    architecture=arch, data=data)


# ----------------------------------------------------------------------------------------------
# the view


def view(
    facts: ModelFacts, version: Any, args: dict[str, Any] | None = None,
    deployment: Deployment | None = None, engine: str = "vllm",
) -> EngineView:
    v = vt(version)
    args = dict(args or {})
    env = dict(deployment.env if deployment is not None else {})
    notes: list[str] = []
    pooling = is_pooling(facts, args)
    max_len = None
    layers = None
    if facts.config is not None:
        max_len = derive_max_len(
            facts.config, v, tokenizer_config=facts.json_files.get("tokenizer_config.json"),
            sentence=sentence_config(facts.json_files), pooling=pooling,
            attention_backend=env.get("VLLM_ATTENTION_BACKEND"),
        )
        layers = layer_pattern(facts.config)
        if v is None:
            notes.append("no vLLM version declared: max_model_len derived with the newest rules read")
    dtype_arg = args.get("dtype")
    dtype = support.canonical_dtype(str(dtype_arg)) if dtype_arg and str(dtype_arg).lower() != "auto" else None
    if dtype is None:
        dtype = support.checkpoint_dtype(facts.config, facts.weights.dominant_dtype)
    quant = quant_view(facts, args, v)
    count, src = true_param_count(facts, None)
    arch = support.arch_support(facts.architectures[0], v) if facts.architectures else None
    gguf = gguf_load(facts, v, deployment) if facts.kind == "gguf" else None
    return EngineView(
        engine=engine, version=v, max_len=max_len, layers=layers, dtype=dtype, quant=quant, arch=arch,
        gguf=gguf, param_count=count, param_source=src, runner="pooling" if pooling else "generate",
        notes=tuple(notes),
    )


def check_user_len(ml: MaxLen, requested: int) -> str | None:
    """vLLM's verdict on --max-model-len ``requested``: None when accepted, else "refused" or "uncertain"."""
    if requested <= ml.strict_value:
        return None
    if ml.model_max_length and requested <= ml.model_max_length:
        return None
    return "uncertain" if requested <= ml.value else "refused"


__all__ = [
    "derive_max_len", "gguf_load", "is_pooling", "layer_pattern", "mlx_evidence", "quant_view",
    "sentence_config", "text_config", "true_param_count", "view",
]
