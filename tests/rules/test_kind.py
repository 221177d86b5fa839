"""KND rules: failing and passing cases on in-memory facts, then real folders through facts.gather."""

from __future__ import annotations

from pathlib import Path

from modelcheck import catalog, facts, linter, registry
from modelcheck.model import GGUFInfo, SourceInfo, TensorInfo
from modelcheck.rule import Severity
from modelcheck.rule import Context
from modelcheck.testing import make_facts, make_target, run_rule
from fixtures import builders
from modelcheck_rules import kind as knd

CAT = catalog.load()
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}


def run(func, f, target=None):
    return run_rule(func, f, target, catalog=CAT)


def gguf(path: str, arch: str = "llama", split: int | None = None, *, vocab_only: bool = False) -> GGUFInfo:
    tensors = () if vocab_only else (TensorInfo("token_embd.weight", "Q4_K", (256, 32), 4608, 32),)
    return GGUFInfo(path, 3, len(tensors), 1, {"general.architecture": arch}, tensors, 5000, 32, 4640,
                    split_count=split)


def test_unrecognised_folder():
    bad = make_facts(
        kind="unknown",
        files={"notes.txt": 10, "data.csv": 20},
        evidence=["no recognised model files among 2 files"],
    )
    [f] = run(knd.unrecognised_folder, bad)
    assert (
        f.rule == "KND001" and "data.csv, notes.txt" in f.message and "no recognised model files" in f.message
    )
    assert "config.json" in f.hint and ".gguf" in f.hint
    assert f.data == {
        "files": ["data.csv", "notes.txt"],
        "file_count": 2,
        "evidence": ["no recognised model files among 2 files"],
    }
    assert f.severity == Severity.ERROR
    # an empty folder is KND002's
    assert run(knd.unrecognised_folder, make_facts(kind="unknown")) == []


def test_empty_folder():
    [f] = run(knd.empty_folder, make_facts(kind="unknown"))
    assert f.rule == "KND002" and f.message == "the folder is empty"
    assert f.severity == Severity.ERROR and "hf download" in f.hint and f.data == {"subfolders": []}
    assert run(knd.empty_folder, make_facts(config=LLAMA, files={"model.safetensors": 1})) == []


def test_name_contradicts_content():
    bad = make_facts(
        name="sdxl-turbo-v2",
        config=LLAMA,
        name_suggests="diffusion",
        evidence=["config.json architectures=['Qwen2ForCausalLM']"],
    )
    [f] = run(knd.name_contradicts_content, bad)
    assert f.rule == "KND003" and f.severity == Severity.WARNING
    assert "'sdxl-turbo-v2' suggests an image-generation (diffusion) model" in f.message
    assert "Hugging Face language model" in f.message and "Qwen2ForCausalLM" in f.message
    assert f.data == {"name": "sdxl-turbo-v2", "name_suggests": "diffusion", "kind": "hf-llm"}
    # a Qwen GGUF in a folder named qwen is no contradiction
    assert (
        run(knd.name_contradicts_content, make_facts(kind="gguf", name="qwen2.5-7b", name_suggests="hf-llm"))
        == []
    )


def test_adapter_without_base():
    cfg = {"peft_type": "LORA", "base_model_name_or_path": "Qwen/Qwen2.5-7B-Instruct", "r": 64}
    bad = make_facts(kind="adapter", name="qwen-lora-sql", json_files={"adapter_config.json": cfg})
    [f] = run(knd.adapter_without_base, bad)
    assert f.rule == "KND004" and f.path == "adapter_config.json:base_model_name_or_path"
    assert "LORA adapter for Qwen/Qwen2.5-7B-Instruct" in f.message
    assert (
        "vllm serve Qwen/Qwen2.5-7B-Instruct --enable-lora --lora-modules qwen-lora-sql=/models/qwen-lora-sql"
        in f.hint
    )
    assert "--max-lora-rank 64" in f.hint and "merge" in f.hint
    assert f.data == {"base_model": "Qwen/Qwen2.5-7B-Instruct", "peft_type": "LORA", "r": 64}
    # still an adapter when the base is unnamed: the hint names a placeholder
    [u] = run(knd.adapter_without_base, make_facts(kind="adapter"))
    assert u.rule == "KND004" and "LoRA adapter for an unnamed base model" in u.message
    assert "vllm serve BASE_MODEL --enable-lora" in u.hint
    assert u.data == {"base_model": None, "peft_type": None, "r": None}


def test_ollama_store():
    blob = "blobs/sha256-" + "a" * 64
    bad = make_facts(
        kind="ollama",
        source="ollama",
        gguf=[gguf(blob)],
        source_info=SourceInfo(ollama_model_blob=blob, ollama_name="llama3:8b", ollama_manifest="manifests/x"),
    )
    [f] = run(knd.ollama_store, bad)
    assert f.rule == "KND005" and f.path == blob and "llama3:8b" in f.message
    assert f"ln {blob} model.gguf" in f.hint and "llama-server -m model.gguf" in f.hint
    assert f.severity == Severity.WARNING and "engines other than Ollama do not find" in f.message
    assert f.data == {"ollama_name": "llama3:8b", "model_blob": blob, "manifest": "manifests/x"}
    assert f.data["model_blob"] == blob


def test_multiple_models():
    bad = make_facts(
        kind="gguf",
        gguf=[gguf("a-Q4_K_M.gguf"), gguf("b-Q8_0.gguf", "qwen2"), gguf("mmproj-f16.gguf", "clip")],
    )
    [f] = run(knd.multiple_models, bad)
    assert f.rule == "KND006" and f.data == {
        "gguf_models": ["a-Q4_K_M.gguf", "b-Q8_0.gguf"],
        "architectures": ["llama", "qwen2"],
    }
    assert "llama-server -m a-Q4_K_M.gguf" in f.hint
    assert f.severity == Severity.WARNING and f.path == "a-Q4_K_M.gguf"
    assert f.message.startswith("2 GGUF models in one folder (a-Q4_K_M.gguf, b-Q8_0.gguf;")
    # split parts of one model are one model; a projector does not count
    parts = [gguf(f"m-Q4-0000{i}-of-00002.gguf", split=2) for i in (1, 2)]
    assert run(knd.multiple_models, make_facts(kind="gguf", gguf=[*parts, gguf("mmproj.gguf", "clip")])) == []
    mixed = make_facts(config=LLAMA, files={"model.safetensors": 5}, gguf=[gguf("m.gguf")])
    [m] = run(knd.multiple_models, mixed)
    assert "both a Hugging Face model" in m.message and m.data == {"gguf_models": ["m.gguf"], "hf_model": True}
    assert m.rule == "KND006" and m.path == "m.gguf" and "own folder" in m.hint


# -- end to end ---------------------------------------------------------------------------------


def kind_findings(path: Path, image: str | None = None) -> dict[str, list]:
    fa = facts.gather(str(path))
    rules = tuple(r for r in registry.load(plugins=False).rules if r.family == "KND")
    res = linter.run(rules, Context(facts=fa, target=make_target(image=image), catalog=CAT))
    out: dict[str, list] = {}
    for f in res.findings:
        out.setdefault(f.rule, []).append(f)
    return out


def test_e2e_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert list(kind_findings(tmp_path / "empty")) == ["KND002"]


def test_e2e_adapter_alone(tmp_path):
    d = builders.make_adapter(tmp_path / "sql-adapter", base="Qwen/Qwen2.5-7B-Instruct", r=16)
    found = kind_findings(d, "vllm:0.14.0-gpu")
    assert list(found) == ["KND004"]
    assert found["KND004"][0].data["base_model"] == "Qwen/Qwen2.5-7B-Instruct"


def test_e2e_ollama_store(tmp_path):
    d = builders.make_ollama_store(tmp_path / "models")
    found = kind_findings(d)
    assert list(found) == ["KND005"]
    [f] = found["KND005"]
    assert f.path.startswith("blobs/sha256-") and "llama3:8b" in f.message


def test_e2e_misleading_name(tmp_path):
    d = builders.make_hf_llm(tmp_path / "sdxl-lightning", "Qwen2.5-0.5B-Instruct")
    found = kind_findings(d)
    assert list(found) == ["KND003"]
    assert found["KND003"][0].data == {
        "name": "sdxl-lightning",
        "name_suggests": "diffusion",
        "kind": "hf-llm",
    }
