"""Model folders built from the real public files in fixtures/realworld/ (see its PROVENANCE.md).

The real config / tokenizer / sentence-transformers files are copied as they are; what is too large to
vendor is added here and named as a stand-in: sparse safetensors (real header, data a hole) whose tensors
follow the config, and a minimal tokenizer where the real one is not vendored.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fixtures import builders

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "realworld"


def config(name: str) -> dict[str, Any]:
    return json.loads((REAL / name / "config.json").read_text())


def folder(name: str, dst: Path, tensor_config: dict[str, Any] | None = None, *, weights: bool = True,
           dtype: str = "BF16") -> Path:
    """A copy of fixtures/realworld/<name> with stand-in sparse weights and tokenizer files."""
    d = dst / name
    shutil.copytree(REAL / name, d)
    if weights:
        tensors = builders.llm_tensors(tensor_config or config(name), dtype)
        builders.write_safetensors_sparse(d / "model.safetensors", tensors, {"format": "pt"})
        for index in d.glob("*.safetensors.index.json"):
            index.unlink()  # the real index names shards the stand-in does not have
    if not (d / "tokenizer_config.json").exists():  # stand-in (the real one is not vendored)
        (d / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": "{{ messages }}"}))
    if not (d / "tokenizer.json").exists() and not (d / "vocab.txt").exists():
        (d / "tokenizer.json").write_text(json.dumps(builders.tokenizer_json()))
    return d


def mlx_folder(dst: Path) -> tuple[Path, int]:
    """Qwen3.5-9B-MLX-8bit as mlx_lm writes it: the real config.json, and the language model's linear
    weights U32-packed (4 values of 8 bits per element) beside BF16 .scales/.biases per group of 64 (the
    naming pattern of the real index, see the shared PROVENANCE). Returns (folder, parameters unpacked)."""
    d = dst / "Qwen3.5-9B-MLX-8bit"
    shutil.copytree(REAL / "Qwen3.5-9B-MLX-8bit", d)
    cfg = config("Qwen3.5-9B-MLX-8bit")
    plain = builders.llm_tensors(cfg["text_config"], "BF16")
    bits, group = cfg["quantization_config"]["bits"], cfg["quantization_config"]["group_size"]
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    params = 0
    for name, (dt, shape) in plain.items():
        n = 1
        for s in shape:
            n *= s
        params += n
        if name.endswith(".weight") and len(shape) == 2 and shape[1] % group == 0:
            stem = name[: -len(".weight")]
            tensors[name] = ("U32", (shape[0], shape[1] * bits // 32))
            tensors[f"{stem}.scales"] = ("BF16", (shape[0], shape[1] // group))
            tensors[f"{stem}.biases"] = ("BF16", (shape[0], shape[1] // group))
        else:
            tensors[name] = (dt, shape)
    builders.write_safetensors_sparse(d / "model.safetensors", tensors, {"format": "mlx"})
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "Qwen2TokenizerFast"}))
    (d / "tokenizer.json").write_text(json.dumps(builders.tokenizer_json()))
    return d, params
