"""Layouts of real public artifacts (fixtures/realworld, see its PROVENANCE.md) read truthfully: vocab-only
GGUF, an Ollama home, a Mistral-format folder, a weight file inside its folder, tokenizer auto_map, and
weights that are declared but not read (git-lfs pointers, index total_size) or unknown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelcheck.cli import main
from modelcheck.facts import gather
from modelcheck.catalog.tokenizers import tokenizer_needs_remote_code
from fixtures import builders
from fixtures.realworld import layouts as L

RW = Path(__file__).resolve().parents[2] / "fixtures" / "realworld"
A10 = ["--instance", "ecs.gn7i-c8g1.2xlarge"]


def check(path: Path, image: str, *extra: str) -> tuple[int, dict]:
    r = CliRunner().invoke(main, [str(path), "--image", image, *A10, *extra, "--format", "json"])
    return r.exit_code, json.loads(r.output)["results"][0]


def codes(res: dict) -> dict[str, str]:
    return {f["rule"]: f["severity"] for f in res["findings"]}


# -- vocab-only GGUF -------------------------------------------------------------------------------


@pytest.fixture
def vocab_dir(tmp_path: Path) -> Path:
    return L.build_gguf_vocab_only(RW / "gguf-vocab-only", tmp_path / "gguf-vocab-only")


def test_vocab_only_gguf_is_whole_without_padding(vocab_dir: Path) -> None:
    f = gather(str(vocab_dir / "ggml-vocab-phi-3.gguf"))
    [g] = f.gguf
    # 726019 bytes: the metadata ends there; the 32-byte aligned data offset would be 726048
    assert (g.tensor_count, g.file_size, g.expected_file_size, g.data_offset) == (0, 726019, 726019, 726048)
    assert g.architecture == "phi3"
    assert f.kind == "unknown" and f.classification.subtype == "gguf-vocab-only"
    assert "vocab-only GGUF v3: tokenizer 'llama' with 32,064 tokens" in f.classification.evidence[0]
    assert f.weights.figure_bytes is None and "hold no tensors" in f.weights.unknown_reason


def test_vocab_only_gguf_check_says_tokenizer_only_not_truncated(vocab_dir: Path) -> None:
    rc, res = check(vocab_dir / "ggml-vocab-llama-spm.gguf", "llama.cpp:server-cuda")
    assert rc == 1 and res["kind"] == "unknown"
    assert codes(res) == {"KND001": "error"}
    [f] = res["findings"]
    assert "ggml-vocab-llama-spm.gguf holds a tokenizer and the hyper-parameters of llama but 0 tensors" in f["message"]
    assert "vocab-only GGUF" in f["message"] and f["path"] == "ggml-vocab-llama-spm.gguf"
    assert res["memory"] is None  # no memory estimate for a file that holds no tensors


def test_folder_of_vocab_only_ggufs_is_not_several_models(vocab_dir: Path) -> None:
    rc, res = check(vocab_dir, "llama.cpp:server-cuda")
    assert rc == 1 and codes(res) == {"KND001": "error"}  # no FIL004, no KND006, no MEM
    assert res["findings"][0]["data"]["architectures"] == ["llama", "phi3"]


def test_truncated_vocab_only_gguf_is_still_an_error(vocab_dir: Path, tmp_path: Path) -> None:
    src = (vocab_dir / "ggml-vocab-phi-3.gguf").read_bytes()
    cut = tmp_path / "cut" / "ggml-vocab-phi-3.gguf"
    cut.parent.mkdir()
    cut.write_bytes(src[:-10])  # inside the last metadata value
    rc, res = check(cut, "llama.cpp:server-cuda")
    assert rc == 1 and "FIL011" in codes(res)
    assert "unexpected end of file" in next(f["message"] for f in res["findings"] if f["rule"] == "FIL011")


def test_gguf_with_tensors_keeps_its_padded_size(vocab_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "full" / "llama-spm-Q4_0.gguf"
    out.parent.mkdir()
    size = L.gguf_with_tensors(vocab_dir / "ggml-vocab-llama-spm.gguf", out, geometry={"layers": 2})
    f = gather(str(out))
    assert f.kind == "gguf" and f.gguf[0].expected_file_size == size and f.weights.complete
    with open(out, "r+b") as fh:
        fh.truncate(size - 64)
    rc, res = check(out, "llama.cpp:server-cuda")
    assert rc == 1 and codes(res).get("FIL004") == "error"


# -- Ollama home -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ollama_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("o")
    vocab = L.build_gguf_vocab_only(RW / "gguf-vocab-only", d / "v") / "ggml-vocab-llama-spm.gguf"
    return L.build_ollama_home(RW / "ollama" / "gemma-2b.manifest.json", vocab, d / "home" / ".ollama")


BLOB = "sha256-c1864a5eb19305c40519da12cc543519e48a0697ecd30e15d5ac228644957d12"


@pytest.mark.parametrize(
    "rel",
    [
        ".",
        "models",
        "models/manifests",
        "models/manifests/registry.ollama.ai/library/gemma/2b",
        f"models/blobs/{BLOB}",
    ],
)
def test_ollama_home_resolves_from_every_entry_point(ollama_home: Path, rel: str) -> None:
    f = gather(str(ollama_home / rel))
    assert f.kind == "ollama" and f.source == "ollama" and f.name == "gemma:2b"
    assert f.root == str(ollama_home / "models")
    assert [g.path for g in f.gguf] == [f"blobs/{BLOB}"] and f.gguf[0].architecture == "gemma"
    assert f.gguf[0].file_size == 1678447520  # the registry's size, as the manifest declares


def test_ollama_home_passes_on_ollama_and_fails_on_llama_cpp(ollama_home: Path) -> None:
    rc, res = check(ollama_home, "ollama:0.6.5")
    assert rc == 0 and res["kind"] == "ollama" and codes(res) == {}
    rc, res = check(ollama_home, "llama.cpp:server-cuda")
    assert rc == 1 and codes(res) == {"KND005": "error"}
    assert f"blobs/{BLOB}" in res["findings"][0]["message"]


def test_blob_outside_a_store_is_read_as_gguf(ollama_home: Path, tmp_path: Path) -> None:
    lone = tmp_path / "blobs" / "sha256-0123"  # a "blobs" folder without manifests: not a store
    lone.parent.mkdir()
    L.gguf_with_tensors(ollama_home / "models" / "blobs" / BLOB, lone, geometry={"layers": 1})
    f = gather(str(lone))
    assert f.kind == "gguf" and f.single_file == "sha256-0123" and f.gguf[0].architecture == "gemma"


# -- Mistral format, weight file inside its folder ---------------------------------------------------


@pytest.fixture(scope="module")
def devstral(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = L.build_hf(RW / "Devstral-Small-2507", tmp_path_factory.mktemp("d") / "Devstral-Small-2507")
    # tekken.json is 19 MB (the fixture holds the mirror's git-lfs pointer): a marked stand-in
    (d / "tekken.json").write_text(json.dumps({"_note": "stand-in for mistralai's tekken.json", "vocab": []}))
    return d


def test_mistral_format_folder_needs_no_tokenizer_config(devstral: Path) -> None:
    rc, res = check(devstral, "vllm:0.14.0-gpu", "--instance", "ecs.gn8v-8x.16xlarge")
    assert res["kind"] == "hf-llm" and "FIL002" not in codes(res)
    assert not [c for c in codes(res) if c.startswith(("FIL", "KND"))]


def test_weight_file_inside_a_complete_folder_is_that_folders_model(devstral: Path) -> None:
    shard = devstral / "model-00001-of-00010.safetensors"
    f = gather(str(shard))
    assert f.single_file is None and f.root == str(devstral) and f.name == "Devstral-Small-2507"
    assert f.kind == "hf-llm" and f.config is not None and f.weights.total_bytes == 47144806400
    assert f.classification.evidence[0].startswith("PATH named model-00001-of-00010.safetensors, one weight file")
    rc, res = check(shard, "vllm:0.14.0-gpu", "--instance", "ecs.gn8v-8x.16xlarge")
    assert not {"FIL001", "FIL002"} & set(codes(res))


def test_lone_checkpoint_file_stays_a_single_file(tmp_path: Path) -> None:
    p = tmp_path / "ckpts" / "sd_xl_base_1.0.safetensors"
    p.parent.mkdir()
    builders.make_sd_checkpoint(p, "sdxl")
    (p.parent / "notes.txt").write_text("no model marker here")
    f = gather(str(p))
    assert f.single_file == "sd_xl_base_1.0.safetensors" and f.kind == "diffusion"


# -- tokenizer auto_map -----------------------------------------------------------------------------


def test_tokenizer_auto_map_with_a_transformers_class_needs_no_remote_code() -> None:
    tok = json.loads((RW / "stella_en_1.5B_v5" / "tokenizer_config.json").read_text())
    assert tok["auto_map"]["AutoTokenizer"][0] == "tokenization_qwen.Qwen2Tokenizer"
    assert tok["tokenizer_class"] == "Qwen2Tokenizer"
    assert tokenizer_needs_remote_code(tok) is False
    assert tokenizer_needs_remote_code({**tok, "tokenizer_class": "QWenTokenizer"}) is True
    assert tokenizer_needs_remote_code({**tok, "tokenizer_class": None}) is True
    assert tokenizer_needs_remote_code({"auto_map": {"AutoProcessor": "p.P"}, "tokenizer_class": "X"}) is False


# -- unknown is not zero ----------------------------------------------------------------------------


def test_lfs_pointer_weights_are_declared_not_zero(tmp_path: Path) -> None:
    d = L.build_hf(RW / "granite-3.1-1b-a400m-instruct", tmp_path / "granite-3.1-1b-a400m-instruct")
    (d / "tokenizer.json").write_text(json.dumps(builders.tokenizer_json()))  # stand-in (the real one is 2 MB)
    f = gather(str(d))
    w = f.weights
    assert (w.total_bytes, w.declared_bytes, w.unread) == (0, 2669283096, ("model.safetensors",))
    assert w.declared_source.startswith("git-lfs pointer sizes") and w.figure_bytes == 2669283096
    rc, res = check(d, "vllm:0.14.0-gpu")
    assert rc == 1 and codes(res)["FIL005"] == "error"
    mem = res["memory"]
    assert mem["weights_bytes"] == 2669283096
    assert any("as declared by git-lfs pointer sizes" in a and "not read" in a for a in mem["assumptions"])


def test_index_total_size_is_the_declared_size_of_lfs_shards(tmp_path: Path) -> None:
    d = L.build_hf(RW / "WizardLM-2-8x22B", tmp_path / "WizardLM-2-8x22B", lfs_from="lfs")
    (d / "tokenizer.model").write_text("stand-in for the sentencepiece model\n")
    f = gather(str(d))
    w = f.weights
    index = json.loads((d / "model.safetensors.index.json").read_text())
    assert w.declared_bytes == int(index["metadata"]["total_size"]) == 281241268224
    assert w.declared_source == "model.safetensors.index.json metadata.total_size" and len(w.unread) == 59
    rc, res = check(d, "vllm:0.14.0-gpu", "--instance", "ecs.gn8v-8x.16xlarge", "--tensor-parallel-size", "8")
    assert rc == 1 and "FIL005" in codes(res)
    assert res["memory"]["weights_bytes"] == 281241268224


def test_missing_shards_without_a_declared_total_are_unknown(tmp_path: Path) -> None:
    d = L.build_hf(RW / "WizardLM-2-8x22B", tmp_path / "w", lfs_from="lfs")
    index = json.loads((d / "model.safetensors.index.json").read_text())
    del index["metadata"]
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    for p in d.glob("model-0000[2-9]-*.safetensors"):
        p.unlink()
    f = gather(str(d))
    assert f.weights.figure_bytes is None and f.weights.declared_bytes is None
    assert f.weights.unknown_reason.startswith("8 weight file(s) missing (model-00002-of-00059.safetensors")
    rc, res = check(d, "vllm:0.14.0-gpu", "--instance", "ecs.gn8v-8x.16xlarge")
    assert rc == 1 and "FIL003" in codes(res) and res["memory"] is None


def test_config_without_any_weights_is_an_error_not_a_zero(tmp_path: Path) -> None:
    d = tmp_path / "stella_en_1.5B_v5"
    L.copy_case(RW / "stella_en_1.5B_v5", d)
    for p in (d / "model.safetensors", d / "2_Dense" / "model.safetensors"):
        p.unlink()
    (d / "tokenizer.json").write_text(json.dumps(builders.tokenizer_json()))
    rc, res = check(d, "vllm:0.14.0-gpu")
    assert rc == 1 and codes(res).get("FIL018") == "error" and res["memory"] is None
    assert "Cannot find any model weights" in next(f["message"] for f in res["findings"] if f["rule"] == "FIL018")
    assert "ENG015" not in codes(res)  # stella's AutoTokenizer auto_map names transformers' Qwen2Tokenizer


def test_weights_only_in_a_subfolder_are_named(tmp_path: Path) -> None:
    d = tmp_path / "stella_en_1.5B_v5"
    L.copy_case(RW / "stella_en_1.5B_v5", d)
    (d / "model.safetensors").unlink()
    shutil.rmtree(d / "2_Dense")
    builders.write_safetensors_sparse(d / "2_Dense" / "model.safetensors", {"linear.weight": ("F32", (1024, 1536))})
    (d / "tokenizer.json").write_text(json.dumps(builders.tokenizer_json()))
    rc, res = check(d, "vllm:0.14.0-gpu")
    f = next(f for f in res["findings"] if f["rule"] == "FIL018")
    assert f["data"]["subfolder_weights"] == ["2_Dense/model.safetensors"] and "2_Dense/model.safetensors" in f["message"]
