"""Path forms: folder, single file, Hugging Face cache repo, Ollama store / manifest / pair folder."""

from __future__ import annotations

import os

import pytest

from modelcheck.errors import UsageError
from modelcheck.facts import gather
from fixtures.builders import make_gguf, make_hf_cache, make_ollama_store, make_sd_checkpoint


def test_missing_path_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="path does not exist: .*nope"):
        gather(str(tmp_path / "nope"))


def test_hf_cache_repo(tmp_path):
    repo = make_hf_cache(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct")
    f = gather(str(repo))
    assert f.source == "hf-cache" and f.name == "Qwen/Qwen2.5-0.5B-Instruct"
    assert f.root.endswith("snapshots/7ae557604adf67be50417f59c2c2f167def9a775")
    assert f.source_info.revision == "7ae557604adf67be50417f59c2c2f167def9a775"
    st = f.file("model.safetensors")
    assert st.type == "file" and not st.escapes_root and st.symlink_target.startswith("../../blobs/")
    assert f.kind == "hf-llm" and f.weights.param_count == 494_032_768 and f.errors == ()
    # the snapshot folder itself resolves the same way
    g = gather(f.root)
    assert (g.source, g.name, g.weights.total_bytes) == ("hf-cache", f.name, f.weights.total_bytes)


def test_hf_cache_without_refs_picks_snapshot(tmp_path):
    repo = make_hf_cache(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct")
    os.remove(repo / "refs" / "main")
    f = gather(str(repo))
    assert (
        f.source_info.notes == ("refs/main missing: picked the most recent snapshot",)
        and f.kind == "hf-llm"
    )


def test_ollama_store(tmp_path):
    store = make_ollama_store(tmp_path / "models", name="llama3", tag="8b")
    f = gather(str(store))
    assert f.source == "ollama" and f.name == "llama3:8b" and f.kind == "ollama"
    blob = f.source_info.ollama_model_blob
    assert blob.startswith("blobs/sha256-") and f.gguf[0].path == blob
    assert f.gguf[0].metadata["general.name"] == "llama3"
    assert (
        f.classification.evidence[0]
        == "Ollama manifest manifests/registry.ollama.ai/library/llama3/8b (llama3:8b)"
    )
    assert f.weights.format == "gguf" and f.weights.dominant_dtype == "Q4_K"
    params = next(v for k, v in f.json_files.items() if isinstance(v, dict) and "num_ctx" in v)
    assert params["num_ctx"] == 8192
    # a manifest file and a model folder inside the store resolve to the same model
    m = store / "manifests" / "registry.ollama.ai" / "library" / "llama3"
    assert gather(str(m / "8b")).source_info.ollama_model_blob == blob
    assert gather(str(m)).name == "llama3:8b"


def test_ollama_manifest_blob_pair_folder(tmp_path):
    store = make_ollama_store(tmp_path / "s", name="qwen2", tag="7b")
    pair = tmp_path / "export"
    pair.mkdir()
    (pair / "manifest.json").write_bytes(
        (store / "manifests/registry.ollama.ai/library/qwen2/7b").read_bytes()
    )
    for b in (store / "blobs").iterdir():
        os.link(b, pair / b.name)
    f = gather(str(pair))
    assert f.kind == "ollama" and f.source_info.ollama_model_blob.startswith("sha256-") and f.gguf


def test_single_file_gguf(tmp_path):
    make_gguf(tmp_path / "Qwen2.5-7B-Instruct-Q4_K_M.gguf")
    (tmp_path / "other.txt").write_text("ignored")
    f = gather(str(tmp_path / "Qwen2.5-7B-Instruct-Q4_K_M.gguf"))
    assert f.single_file == "Qwen2.5-7B-Instruct-Q4_K_M.gguf" and f.root == str(tmp_path)
    assert [x.path for x in f.files] == ["Qwen2.5-7B-Instruct-Q4_K_M.gguf"]
    assert (
        f.kind == "gguf"
        and f.name == "Qwen2.5-7B-Instruct-Q4_K_M"
        and f.classification.name_suggests == "gguf"
    )


def test_single_file_safetensors_checkpoint(tmp_path):
    make_sd_checkpoint(tmp_path / "juggernautXL.safetensors", "sdxl")
    f = gather(str(tmp_path / "juggernautXL.safetensors"))
    assert f.kind == "diffusion" and f.classification.subtype == "sdxl"
