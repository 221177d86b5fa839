"""`check` on folders built from real public files gives the verdict vLLM would (issue 11, items 1, 2, 5):
no false MEM003 on models that start, the max_model_len vLLM runs with in the JSON memory block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from modelcheck.cli import main
from tests.engines import realworld as R

H20 = ("--instance", "ecs.gn8v.4xlarge")  # 1x H20 96 GB
H20X8 = ("--instance", "ecs.gn8v-8x.16xlarge")
A10 = ("--instance", "ecs.gn7i-c16g1.4xlarge")  # 1x A10 24 GB
L20 = ("--instance", "ecs.gn8is.2xlarge")  # 1x L20 48 GB


def check(path: Path, *args: str) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    r = CliRunner().invoke(main, [str(path), *args, "--format", "json"], catch_exceptions=False)
    assert "Traceback" not in r.output and r.exit_code in (0, 1), r.output
    [res] = json.loads(r.stdout)["results"]
    return r.exit_code, res.get("memory") or {}, {f["rule"]: f for f in res["findings"]}


def test_gemma3_starts_with_131072_not_the_rope_scaled_million(tmp_path: Path):
    code, mem, found = check(R.folder("medgemma-27b-it", tmp_path), "--image", "vllm:0.17.0-gpu", *H20)
    assert code == 0 and "MEM003" not in found
    assert (mem["status"], mem["max_model_len"]) == ("ok", 131072)
    assert any("10 full-attention and 52 sliding-window layers (window 1024)" in a for a in mem["assumptions"])


def test_falcon_180b_runs_with_the_class_default_2048(tmp_path: Path):
    geometry = {**R.config("falcon-180B-chat"), "num_key_value_heads": 8, "intermediate_size": 4 * 14848}
    code, mem, found = check(R.folder("falcon-180B-chat", tmp_path, geometry), "--image", "vllm:0.17.0-gpu",
                             *H20X8, "--tensor-parallel-size", "8")
    assert code == 0 and "MEM003" not in found
    assert (mem["status"], mem["max_model_len"], mem["tensor_parallel_size"]) == ("ok", 2048, 8)
    # asking for more than the class default is what vLLM refuses
    code, _, found = check(R.folder("falcon-180B-chat", tmp_path / "b", geometry), "--image", "vllm:0.17.0-gpu",
                           *H20X8, "--tensor-parallel-size", "8", "--max-model-len", "4096")
    f = found["ENG011"]
    assert code == 1 and f["severity"] == "error" and f["data"]["limit"] == 2048
    assert "transformers' falcon config class default 2048" in f["message"]


def test_phi35_longrope_default_depends_on_the_release(tmp_path: Path):
    d = R.folder("Phi-3.5-mini-instruct", tmp_path)
    code, mem, found = check(d, "--image", "vllm:0.17.0-gpu", *A10)
    assert code == 0 and "MEM003" not in found and mem["max_model_len"] == 4096
    # 0.11.0 still defaults to the full 131072: the KV cache for one request does not fit an A10
    code, mem, found = check(d, "--image", "vllm:0.11.0-gpu", *A10)
    assert code == 1 and mem["max_model_len"] == 131072 and found["MEM003"]["severity"] == "error"


def test_embedder_uses_sentence_transformers_length(tmp_path: Path):
    geometry = {"hidden_size": 1024, "num_attention_heads": 16, "num_hidden_layers": 24, "intermediate_size": 4096,
                "vocab_size": 21128, "model_type": "bert"}
    code, mem, found = check(R.folder("bge-large-zh", tmp_path, geometry), "--image", "vllm:0.17.0-gpu", *A10)
    assert code == 0 and "MEM003" not in found and mem["max_model_len"] == 512


def test_gemma2_without_layer_types_is_hybrid(tmp_path: Path):
    d = R.folder("gemma-2-9b-it", tmp_path)
    code, mem, found = check(d, "--image", "vllm:0.17.0-gpu", *L20)
    assert code == 0 and mem["max_model_len"] == 8192 and "MEM003" not in found
    assert any("21 full-attention and 21 sliding-window layers (window 4096)" in a for a in mem["assumptions"])
    code, mem, _ = check(d, "--image", "vllm:0.6.3-gpu", *L20)  # capped at the window in 0.6.3-0.6.4
    assert code == 0 and mem["max_model_len"] == 4096


def test_mlx_folder_is_refused_on_vllm(tmp_path: Path):
    d, params = R.mlx_folder(tmp_path)
    code, _, found = check(d, "--image", "vllm:0.17.0-gpu", *H20)
    f = found["ENG019"]
    assert code == 1 and f["severity"] == "error" and f["path"] == "config.json:quantization_config"
    assert "MLX-quantized weights (mlx_lm format) cannot be loaded by vLLM" in f["message"]
    assert f["data"]["param_count"] == params and f["data"]["format"] == "mlx"
    assert "mlx_lm.server" in f["hint"]
