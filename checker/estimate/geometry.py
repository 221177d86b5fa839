"""Model geometry read from config.json / GGUF metadata, and the KV-cache bytes each token costs.

Pure functions over plain dicts. The KV formulas follow vLLM's own specs (``vllm/v1/kv_cache_interface.py``):
full attention stores K and V for every KV head (split by tensor parallelism, replicated when there are
fewer KV heads than ranks); MLA stores one latent of ``kv_lora_rank + qk_rope_head_dim`` per layer,
not split by TP; sliding-window layers hold at most ``window - 1 + max_num_batched_tokens`` tokens.
"""

from __future__ import annotations

from typing import Any

from modelcheck.memo import last_answer
from modelcheck.record import record, replace

GIB = 1 << 30
MIB = 1 << 20

DTYPE_BYTES = {
    "float32": 4, "float": 4, "fp32": 4,
    "bfloat16": 2, "float16": 2, "half": 2, "bf16": 2, "fp16": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1, "fp8_ds_mla": 1,
}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@record
class Geometry:
    """What the memory model needs to know about a transformer, whatever the source."""

    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_len: int | None  # vLLM's derived max_model_len (rope scaling applied)
    dtype: str | None  # torch_dtype / dtype of the checkpoint
    mla_latent: int | None = None  # kv_lora_rank + qk_rope_head_dim
    sliding_window: int | None = None
    sliding_layers: int = 0  # how many of num_layers use the sliding window
    attention_layers: int | None = None  # layers that hold a KV cache (hybrid models have fewer)
    moe_experts_per_tok: int = 0
    moe_intermediate: int = 0
    shared_intermediate: int = 0
    multimodal: bool = False
    model_type: str | None = None  # config.json model_type (top level for VLMs)
    quant_method: str | None = None  # config.json quantization_config.quant_method
    source: str = "config.json"
    moe_experts: int = 0  # routed experts per MoE layer (num_local_experts / num_experts / n_routed_experts)
    tie_word_embeddings: bool = False  # lm_head shares embed_tokens (one vocab x hidden matrix, not two)
    first_dense_layers: int = 0  # MoE models whose first layers are dense (first_k_dense_replace)
    mtp_layers: int = 0  # DeepSeek-style multi-token-prediction layers stored after the decoder layers
    attention_params: int = 0  # parameters of one attention block (MLA: its low-rank projections)


def _quant_method(cfg: dict[str, Any]) -> str | None:
    q = cfg.get("quantization_config")
    method = q.get("quant_method") if isinstance(q, dict) else None
    return method.lower() if isinstance(method, str) else None


def geometry_from_config(config: dict[str, Any] | None, text_config: dict[str, Any] | None) -> Geometry | None:
    cfg = text_config or config
    if not isinstance(cfg, dict):
        return None
    layers = _int(cfg.get("num_hidden_layers")) or _int(cfg.get("n_layer")) or _int(cfg.get("num_layers"))
    hidden = _int(cfg.get("hidden_size")) or _int(cfg.get("d_model")) or _int(cfg.get("n_embd"))
    heads = _int(cfg.get("num_attention_heads")) or _int(cfg.get("n_head"))
    if not (layers and hidden and heads):
        return None
    kv = _int(cfg.get("num_key_value_heads")) or _int(cfg.get("num_kv_heads"))
    if kv is None and cfg.get("multi_query"):
        kv = 1
    kv = kv or heads
    head_dim = _int(cfg.get("head_dim")) or hidden // heads
    inter = _int(cfg.get("intermediate_size")) or _int(cfg.get("ffn_dim")) or _int(cfg.get("n_inner")) or 4 * hidden
    vocab = _int(cfg.get("vocab_size")) or 32000
    mla = None
    if _int(cfg.get("kv_lora_rank")):
        mla = cfg["kv_lora_rank"] + (_int(cfg.get("qk_rope_head_dim")) or 0)
    # the layer pattern and the length are the engine view's (checker/engines/vllm.py), the one derivation;
    # here without a version (compute_vllm replaces them with the versioned view)
    from modelcheck.engines import vllm as engine_vllm

    full_cfg = config if isinstance(config, dict) else cfg
    lp = engine_vllm.layer_pattern(full_cfg)
    window = lp.window if lp else None
    sliding_layers = lp.sliding if lp and lp.window else 0
    attention_layers = (lp.full + lp.sliding) if lp and (lp.full + lp.sliding) else layers
    ml = engine_vllm.derive_max_len(full_cfg)
    max_len = ml.default if ml else None
    experts_per_tok = (_int(cfg.get("num_experts_per_tok")) or _int(cfg.get("experts_per_token"))
                       or _int(cfg.get("moe_topk")) or 0)
    moe_inter = _int(cfg.get("moe_intermediate_size")) or (inter if experts_per_tok else 0)
    shared = _int(cfg.get("shared_expert_intermediate_size")) or 0
    if not shared and _int(cfg.get("n_shared_experts")) and moe_inter:
        shared = cfg["n_shared_experts"] * moe_inter
    experts = (_int(cfg.get("num_local_experts")) or _int(cfg.get("num_experts"))
               or _int(cfg.get("n_routed_experts")) or 0) if experts_per_tok else 0
    first_dense = _int(cfg.get("first_k_dense_replace")) or 0 if experts_per_tok else 0
    mtp = _int(cfg.get("num_nextn_predict_layers")) or 0
    if mla:
        nope, rope = _int(cfg.get("qk_nope_head_dim")) or 128, _int(cfg.get("qk_rope_head_dim")) or 64
        v_dim, q_lora = _int(cfg.get("v_head_dim")) or 128, _int(cfg.get("q_lora_rank"))
        q_proj = (hidden * q_lora + q_lora * heads * (nope + rope)) if q_lora else hidden * heads * (nope + rope)
        attn = q_proj + hidden * mla + cfg["kv_lora_rank"] * heads * (nope + v_dim) + heads * v_dim * hidden
    else:
        attn = 2 * hidden * heads * head_dim + 2 * hidden * kv * head_dim
    tie = cfg.get("tie_word_embeddings")
    if tie is None and isinstance(config, dict):
        tie = config.get("tie_word_embeddings")
    dtype = cfg.get("torch_dtype") or cfg.get("dtype")
    if not isinstance(dtype, str) and isinstance(config, dict):
        dtype = config.get("torch_dtype") or config.get("dtype")
    multimodal = isinstance(config, dict) and any(
        isinstance(config.get(k), dict) for k in ("vision_config", "audio_config", "vision_tower"))
    return Geometry(
        num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=kv, head_dim=head_dim,
        intermediate_size=inter, vocab_size=vocab, max_len=max_len,
        dtype=dtype if isinstance(dtype, str) else None, mla_latent=mla, sliding_window=window,
        sliding_layers=sliding_layers, attention_layers=attention_layers,
        moe_experts_per_tok=experts_per_tok, moe_intermediate=moe_inter, shared_intermediate=shared,
        multimodal=multimodal,
        model_type=str((config if isinstance(config, dict) else cfg).get("model_type") or "") or None,
        quant_method=_quant_method(config if isinstance(config, dict) else cfg),
        moe_experts=experts, tie_word_embeddings=tie is True, first_dense_layers=first_dense, mtp_layers=mtp,
        attention_params=attn,
    )


def geometry_from_gguf(metadata: dict[str, Any]) -> Geometry | None:
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        return None

    def g(key: str) -> Any:
        return metadata.get(f"{arch}.{key}")

    layers = _int(g("block_count"))
    hidden = _int(g("embedding_length"))
    heads = g("attention.head_count")
    kv = g("attention.head_count_kv")
    # per-layer arrays are summarised by the reader; take the max as the conservative figure
    if isinstance(heads, list):
        heads = max(heads) if heads else None
    if isinstance(kv, list):
        kv = max(kv) if kv else None
    heads = _int(heads)
    if not (layers and hidden and heads):
        return None
    kv = _int(kv) or heads
    key_len = _int(g("attention.key_length"))
    val_len = _int(g("attention.value_length"))
    head_dim = key_len or hidden // heads
    vocab = metadata.get("tokenizer.ggml.tokens")
    vocab_n = _int(g("vocab_size"))
    if vocab_n is None and isinstance(vocab, dict):
        vocab_n = _int(vocab.get("length"))
    elif vocab_n is None and isinstance(vocab, list):
        vocab_n = len(vocab) or None
    mla = None
    if _int(g("attention.kv_lora_rank")):
        mla = g("attention.kv_lora_rank") + (_int(g("rope.dimension_count")) or 0)
    window = _int(g("attention.sliding_window"))
    return Geometry(
        num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=kv,
        head_dim=(head_dim + (val_len or head_dim)) // 2 if val_len else head_dim,
        intermediate_size=_int(g("feed_forward_length")) or 4 * hidden, vocab_size=vocab_n or 32000,
        max_len=_int(g("context_length")), dtype=None, mla_latent=mla, sliding_window=window,
        moe_experts_per_tok=_int(g("expert_used_count")) or 0,
        moe_intermediate=_int(g("expert_feed_forward_length")) or 0, source="gguf",
    )


def kv_dtype_bytes(kv_cache_dtype: str | None, model_dtype_bytes: int) -> int:
    if not kv_cache_dtype or kv_cache_dtype == "auto":
        return model_dtype_bytes
    return DTYPE_BYTES.get(str(kv_cache_dtype).lower(), model_dtype_bytes)


def kv_heads_per_gpu(geo: Geometry, tp: int) -> int:
    """vLLM replicates KV heads when there are fewer than TP ranks (max(1, kv // tp))."""
    return max(1, geo.num_kv_heads // max(1, tp))


def layer_kv_bytes_per_token(geo: Geometry, tp: int, kv_bytes: int) -> int:
    """Bytes one attention layer stores per token, per GPU."""
    if geo.mla_latent:
        return geo.mla_latent * kv_bytes
    return 2 * kv_heads_per_gpu(geo, tp) * geo.head_dim * kv_bytes


def layers_per_gpu(count: int, pp: int) -> int:
    return -(-count // max(1, pp))


@last_answer  # the same geometry and view for every estimate of a plan
def with_view(geo: Geometry, view: Any) -> Geometry:
    """The geometry with the engine view's versioned answers: the max_model_len the engine runs with by
    default and its layer pattern (modelcheck.engines)."""
    if view is None or geo.source == "gguf":
        return geo
    changes: dict[str, Any] = {}
    ml = getattr(view, "max_len", None)
    if ml is not None:
        changes["max_len"] = ml.default
    lp = getattr(view, "layers", None)
    if lp is not None:
        changes.update(sliding_window=lp.window, sliding_layers=lp.sliding if lp.window else 0,
                       attention_layers=(lp.full + lp.sliding) or geo.num_layers)
    return replace(geo, **changes) if changes else geo


def layer_params(geo: Geometry, index: int) -> int:
    """Parameters of decoder layer ``index`` (attention + dense MLP or routed/shared experts + router)."""
    attn = geo.attention_params or 4 * geo.hidden_size * geo.num_heads * geo.head_dim
    h = geo.hidden_size
    if geo.moe_experts_per_tok and geo.moe_experts and index >= geo.first_dense_layers:
        mlp = geo.moe_experts * 3 * h * geo.moe_intermediate + 3 * h * geo.shared_intermediate + h * geo.moe_experts
    else:
        mlp = 3 * h * geo.intermediate_size
    return attn + mlp


def embedding_params(geo: Geometry) -> int:
    return geo.vocab_size * geo.hidden_size
