"""ggml tensor types: id -> (name, weights per block, bytes per block).

Source: ggml-org/llama.cpp ggml/src/ggml-common.h (block_* structs and their static_asserts) and the
``ggml_type`` enum in ggml/include/ggml.h, as summarised in the team's reference data
(shared/data/gguf_quants.yaml, "tensor_types"). Ids 4, 5 and 31-33, 36-38 were removed upstream.
Q8_1 is an activation-only type; ggml-common.h gives 36 bytes per block (fp16 d + fp16 s + 32 int8).
"""

from __future__ import annotations

# id: (name, block size in weights, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}

GGML_TYPE_IDS: dict[str, int] = {name: tid for tid, (name, _, _) in GGML_TYPES.items()}


def tensor_nbytes(type_id: int, shape: tuple[int, ...]) -> int | None:
    """Bytes a tensor of this ggml type and shape occupies, or None if the type is unknown or the
    innermost dimension is not a whole number of blocks (ggml requires that)."""
    info = GGML_TYPES.get(type_id)
    if info is None:
        return None
    _, block, size = info
    numel = 1
    for d in shape:
        numel *= d
    if shape and shape[0] % block:
        return None
    return numel // block * size
