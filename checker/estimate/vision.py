"""The vision encoder's share of vLLM V1's profiling pass, from vision_config geometry.

V1 ``gpu_model_runner.profile_run`` (read @0.8.0, @0.14.0, @0.20.0: same structure) first runs the
multimodal encoder on a dummy batch, keeps its outputs in the encoder cache, then runs the usual
forward + sampler dummy pass, and only then clears the cache. The batch is ``max_items`` items of the
modality with the most tokens, each of the maximum feature size (``v1/worker/utils.py`` MultiModalBudget,
``v1/core/encoder_cache_manager.py`` compute_mm_encoder_budget @0.14.0)::

    budget    = max(max_num_encoder_input_tokens (= max_num_batched_tokens), max_tokens_per_item)
    max_items = max(1, min(budget // max_tokens_per_item,
                           max_num_seqs * max(1, min(limit_per_prompt, max_model_len // max_tokens_per_item))))

so the torch peak of the profile is ``max(encoder forward peak, encoder outputs + text forward/sampler)``.

Modelled families (anything else gets an assumption line instead of a figure):

- Qwen2-VL / Qwen2.5-VL / Qwen3-VL: one image of ``max_pixels`` (preprocessor_config.json, else the HF
  defaults 12845056 for Qwen2/2.5-VL, 16777216 for Qwen3-VL) = max_pixels / (patch * merge)^2 tokens, the
  ViT running over merge^2 patches per token (``qwen2_vl.py`` get_image_size_with_most_features).
- LLaVA-1.5 (576 tokens, one 336px crop) and LLaVA-NeXT (anyres: base crop + the largest grid pinpoint,
  newline per row: 2928 tokens over 5 crops for the default pinpoints).
- Gemma 3: one 896px SigLIP crop (4096 patches) pooled to ``mm_tokens_per_image`` (256).

The ViT's peak per layer is taken as positions x (4 x hidden + 2 x intermediate / tp) elements (residual,
norm, attention input/output, the MLP's two intermediate tensors; memory-efficient attention, no N^2
matrix), plus the pixel input; the encoder output held in the cache is items x tokens x text hidden.
"""

from __future__ import annotations

from typing import Any

from modelcheck.record import record

QWEN_DEFAULT_MAX_PIXELS = {"qwen2_vl": 12845056, "qwen2_5_vl": 12845056, "qwen3_vl": 16777216,
                           "qwen3_vl_moe": 16777216}
LLAVA_NEXT_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
DEFAULT_MM_LIMIT = 999  # per-prompt item limit when --limit-mm-per-prompt is not set (V1)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


@record
class VisionGeometry:
    family: str
    hidden: int  # ViT width
    intermediate: int  # ViT MLP width
    layers: int
    tokens_per_item: int  # LLM tokens one max-size image becomes
    positions_per_item: int  # ViT sequence positions one max-size image costs (all crops)
    pixel_elems_per_item: int  # elements of the pixel_values input of one item
    out_hidden: int  # width of the encoder output kept in the encoder cache


def _preproc_max_pixels(pre: dict[str, Any] | None) -> int | None:
    if not isinstance(pre, dict):
        return None
    size = pre.get("size") if isinstance(pre.get("size"), dict) else {}
    return _int(pre.get("max_pixels")) or _int(size.get("max_pixels")) or _int(size.get("longest_edge"))


def vision_geometry(config: dict[str, Any] | None, preprocessor: dict[str, Any] | None = None,
                    text_hidden: int | None = None) -> VisionGeometry | None:
    """The max-size image geometry of the families this module models, or None."""
    if not isinstance(config, dict) or not isinstance(config.get("vision_config"), dict):
        return None
    mt = str(config.get("model_type") or "")
    vc = config["vision_config"]
    out = text_hidden or 0
    if mt in QWEN_DEFAULT_MAX_PIXELS:
        if mt == "qwen2_vl":
            hidden = _int(vc.get("embed_dim")) or 1280
            inter = hidden * int(vc.get("mlp_ratio") or 4)
            out = _int(vc.get("hidden_size")) or out
        else:
            hidden = _int(vc.get("hidden_size")) or 1280
            inter = _int(vc.get("intermediate_size")) or 4 * hidden
            out = _int(vc.get("out_hidden_size")) or out
        layers = _int(vc.get("depth")) or _int(vc.get("num_hidden_layers")) or 32
        patch = _int(vc.get("patch_size")) or (16 if mt.startswith("qwen3") else 14)
        merge = _int(vc.get("spatial_merge_size")) or 2
        temporal = _int(vc.get("temporal_patch_size")) or 2
        max_pixels = _preproc_max_pixels(preprocessor) or QWEN_DEFAULT_MAX_PIXELS[mt]
        tokens = max(1, max_pixels // (patch * merge) ** 2)
        positions = tokens * merge * merge
        return VisionGeometry(mt, hidden, inter, layers, tokens, positions, positions * 3 * temporal * patch * patch,
                              out)
    if mt in ("llava", "llava_next", "gemma3"):
        hidden = _int(vc.get("hidden_size"))
        inter = _int(vc.get("intermediate_size"))
        layers = _int(vc.get("num_hidden_layers"))
        image = _int(vc.get("image_size"))
        patch = _int(vc.get("patch_size"))
        if not (hidden and inter and layers and image and patch):
            return None
        side = image // patch
        if mt == "gemma3":
            tokens = _int(config.get("mm_tokens_per_image")) or 256
            return VisionGeometry(mt, hidden, inter, layers, tokens, side * side, 3 * image * image, out)
        crop_positions = side * side + 1  # CLIP's class token
        if mt == "llava":
            return VisionGeometry(mt, hidden, inter, layers, side * side, crop_positions, 3 * image * image, out)
        pinpoints = config.get("image_grid_pinpoints") or LLAVA_NEXT_PINPOINTS
        best_tokens, best_crops = side * side, 1
        for pp in pinpoints:
            if not (isinstance(pp, (list, tuple)) and len(pp) == 2 and all(_int(x) for x in pp)):
                continue
            h, w = pp[0] // image * side, pp[1] // image * side
            tokens = side * side + h * w + h  # base + unpadded grid + one newline per row
            if tokens > best_tokens:
                best_tokens, best_crops = tokens, 1 + (pp[0] // image) * (pp[1] // image)
        return VisionGeometry(mt, hidden, inter, layers, best_tokens, best_crops * crop_positions,
                              best_crops * 3 * image * image, out)
    return None


@record
class EncoderProfile:
    items: int
    encoder_peak_bytes: int  # transient, during the encoder forward
    held_bytes: int  # encoder outputs alive through the text forward and the sampler
    note: str


def encoder_profile(vg: VisionGeometry, max_num_batched_tokens: int, max_num_seqs: int, max_model_len: int | None,
                    tp: int, dtype_bytes: int) -> EncoderProfile:
    t = vg.tokens_per_item
    budget = max(max_num_batched_tokens, t)
    per_prompt = max(1, min(DEFAULT_MM_LIMIT, (max_model_len or t) // t))
    items = max(1, min(budget // t, max_num_seqs * per_prompt))
    positions = items * vg.positions_per_item
    tp = max(1, tp)
    per_position = 4 * vg.hidden + 2 * vg.intermediate // tp
    peak = positions * per_position * dtype_bytes + items * vg.pixel_elems_per_item * dtype_bytes
    held = items * t * (vg.out_hidden or vg.hidden) * dtype_bytes
    note = (f"multimodal profile ({vg.family}): encoder budget {budget} tokens = {items} image(s) of {t} tokens "
            f"({positions} ViT positions), encoder peak ~{peak / (1 << 30):.2f} GiB, "
            f"outputs held {held / (1 << 30):.2f} GiB")
    return EncoderProfile(items, peak, held, note)
