"""gather() end to end: every ModelFacts field, sharded giants, broken downloads, bad configs, pickles."""

from __future__ import annotations

import modelcheck.record as _record
import json

from modelcheck.facts import gather
from modelcheck.model import ModelFacts
from fixtures.builders import (
    LLAMA_405B,
    llm_tensors,
    make_hf_llm,
    tensor_bytes,
    write_safetensors_sparse,
    write_torch_zip,
)


def test_example_fills_every_field(qwen_example):
    f = gather(str(qwen_example))
    assert isinstance(f, ModelFacts)
    assert (
        f.input_path == str(qwen_example)
        and f.root == str(qwen_example)
        and f.name == "Qwen2.5-0.5B-Instruct"
    )
    assert (f.single_file, f.walk_truncated, f.source, f.errors, f.gguf, f.pickles) == (
        None,
        False,
        "local",
        (),
        (),
        (),
    )
    assert sorted(f.json_files) == ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]
    assert f.text_config["hidden_size"] == 896 and f.architectures == ("Qwen2ForCausalLM",)
    (h,) = f.safetensors
    # 988,097,824 bytes is the size of the published model.safetensors: our header layout is the library's
    assert (h.file_size, h.expected_file_size, len(h.tensors), h.metadata) == (
        988_097_824,
        988_097_824,
        290,
        {"format": "pt"},
    )
    w = f.weights
    assert (w.format, w.param_count, w.total_bytes, w.dominant_dtype, w.tensor_count) == (
        "safetensors",
        494_032_768,
        988_065_536,
        "BF16",
        290,
    )
    assert w.dtype_bytes == {"BF16": 988_065_536} and w.files == ("model.safetensors",)
    for fld in _record.fields(ModelFacts):
        getattr(f, fld.name)


def _bytes_read_by_this_process() -> int | None:
    """rchar from /proc/self/io: every byte read() returned, holes included (Linux only)."""
    try:
        with open("/proc/self/io") as fh:
            return int(next(line for line in fh if line.startswith("rchar:")).split()[1])
    except (OSError, StopIteration, ValueError):
        return None


def test_405b_in_191_shards_headers_only(llama_405b):
    before = _bytes_read_by_this_process()
    f = gather(str(llama_405b))
    after = _bytes_read_by_this_process()
    assert len(f.safetensors) == 191 and f.errors == ()
    assert f.weights.param_count == 405_853_388_800
    total = tensor_bytes(llm_tensors(LLAMA_405B))
    assert (
        f.weights.total_bytes
        == total
        == f.json_files["model.safetensors.index.json"]["metadata"]["total_size"]
    )
    # headers only: every shard is a hole behind its header, and every header matches its file size
    assert all(x.sparse_hint for x in f.files if x.suffix == ".safetensors" and x.size > 1 << 20)
    assert all(h.expected_file_size == h.file_size for h in f.safetensors)
    # size independence, measured in bytes rather than seconds: 756 GiB of weights, a few MiB read
    if before is not None and after is not None:
        assert after - before < 32 * 2**20, f"gather read {after - before:,} bytes"


def test_truncated_and_missing_shards(tmp_path):
    d = make_hf_llm(tmp_path / "m", "Qwen2.5-7B-Instruct", shards=4, truncate_shard=2, missing_shard=3)
    f = gather(str(d))
    assert [h.path for h in f.safetensors] == [
        "model-00001-of-00004.safetensors",
        "model-00002-of-00004.safetensors",
        "model-00004-of-00004.safetensors",
    ]
    short = f.safetensors[1]
    assert short.file_size < short.expected_file_size and f.errors == ()
    assert (
        "model-00003-of-00004.safetensors"
        in f.json_files["model.safetensors.index.json"]["weight_map"].values()
    )


def test_index_limits_counted_weights(tmp_path):
    d = make_hf_llm(tmp_path / "Mistral-7B-Instruct-v0.3", "Mistral-7B-Instruct-v0.3", shards=3)
    write_safetensors_sparse(
        d / "consolidated.safetensors", {"tok_embeddings.weight": ("BF16", (32768, 4096))}
    )
    f = gather(str(d))
    assert f.weights.param_count == 7_248_023_552 and "consolidated.safetensors" not in f.weights.files
    assert f.weights_not_in_index == ("consolidated.safetensors",)


def test_bad_configs_become_errors(tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"],')
    (tmp_path / "generation_config.json").write_text("")
    (tmp_path / "tokenizer_config.json").write_text("[" * 5000 + "]" * 5000)
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": [1]}')
    (tmp_path / "cosyvoice.yaml").write_text("a: [unclosed")
    f = gather(str(tmp_path))
    got = {(e.kind, e.path): e.message for e in f.errors}
    assert got[("json", "config.json")].startswith("invalid JSON: Expecting")
    assert got[("json", "generation_config.json")] == "file is empty"
    assert got[("json", "tokenizer_config.json")] == "nested deeper than 64 levels"
    assert (
        got[("index", "model.safetensors.index.json")]
        == "weight_map is missing or does not map tensor names to file names"
    )
    assert got[("yaml", "cosyvoice.yaml")].startswith("invalid YAML: while parsing a flow sequence")
    assert "config.json" not in f.json_files


def test_large_tokenizer_recorded_not_parsed(qwen_example):
    (qwen_example / "tokenizer.json").write_text(
        json.dumps({"model": {"vocab": {f"t{i}": i for i in range(200_000)}}})
    )
    f = gather(str(qwen_example))
    assert f.file("tokenizer.json").size > 1 << 20 and "tokenizer.json" not in f.json_files


def test_readme_front_matter_and_text_files(tmp_path):
    (tmp_path / "README.md").write_text(
        "---\nlicense: apache-2.0\nbase_model: Qwen/Qwen2.5-7B\n---\n# Model\n"
    )
    (tmp_path / "Modelfile").write_text("FROM ./model.gguf\nPARAMETER num_ctx 8192\n")
    f = gather(str(tmp_path))
    assert f.yaml_files["README.md#front-matter"] == {
        "license": "apache-2.0",
        "base_model": "Qwen/Qwen2.5-7B",
    }
    assert f.text_files["Modelfile"].startswith("FROM ./model.gguf")


def test_pickle_files_are_scanned_not_loaded(tmp_path):
    write_torch_zip(tmp_path / "pytorch_model.bin", {"weight": [1, 2]})
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    )
    f = gather(str(tmp_path))
    assert f.weights.format == "pytorch" and f.weights.total_bytes == f.file("pytorch_model.bin").size
    assert f.weights.from_file_sizes is True
    assert [p.path for p in f.pickles] == ["pytorch_model.bin"] and f.pickles[0].dangerous == ()


def test_every_pickle_is_scanned_no_file_cap(tmp_path):
    for i in range(70):
        write_torch_zip(tmp_path / f"part{i:02d}.pt", {"i": i})
    f = gather(str(tmp_path))
    assert sorted(p.path for p in f.pickles) == [f"part{i:02d}.pt" for i in range(70)]
    assert f.scan.limits == () and f.scan.files_sniffed == 70 and f.errors_of("pickle") == ()
