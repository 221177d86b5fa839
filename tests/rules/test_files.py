"""FIL rules: one failing and one passing case each on in-memory facts, then real sparse folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelcheck import catalog, facts
from modelcheck.model import FactError, FileEntry, GGUFInfo, SafetensorsHeader, TensorInfo
from modelcheck.rule import Severity
from modelcheck.rule import Context
from modelcheck.testing import make_facts, make_target, run_rule
from fixtures import builders
from modelcheck_rules import files as fil
from modelcheck_rules import files_integrity as integrity, files_read as read_errors

CAT = catalog.load()
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
TOK = {"tokenizer.json": 100, "tokenizer_config.json": 10}


def st(path: str, nbytes: int = 100, file_size: int | None = None, header: int = 92) -> SafetensorsHeader:
    t = TensorInfo("w", "BF16", (nbytes // 2,), nbytes, 8 + header)
    return SafetensorsHeader(
        path, header, nbytes, 8 + header + nbytes if file_size is None else file_size, (t,)
    )


def run(func, f, target=None):
    return run_rule(func, f, target, catalog=CAT)


# -- FIL001 / FIL002 ----------------------------------------------------------------------------


def test_missing_config_json_fails_and_passes():
    bad = make_facts(files={"model.safetensors": 100, **TOK})
    [f] = run(fil.missing_config_json, bad, make_target(image="vllm:0.14.0-gpu"))
    assert f.rule == "FIL001" and f.path == "config.json"
    assert "config.json is missing" in f.message and "model.safetensors" in f.message
    assert "hf download" in f.hint
    assert f.severity == Severity.ERROR and f.data == {"weights": ["model.safetensors"]}
    assert run(fil.missing_config_json, make_facts(config=LLAMA, files=TOK)) == []
    # llama.cpp does not read config.json: the image rules speak there
    assert run(fil.missing_config_json, bad, make_target(image="llama.cpp")) == []


def test_missing_tokenizer_fails_and_passes():
    bad = make_facts(config=LLAMA, files={"model.safetensors": 100})
    [f] = run(fil.missing_tokenizer, bad)
    assert f.rule == "FIL002" and f.severity == Severity.ERROR and "no tokenizer" in f.message
    assert "--tokenizer" in f.hint and f.path == "tokenizer.json"
    assert {"tokenizer.json", "tokenizer.model", "vocab.json"} <= set(f.data["looked_for"])
    assert run(fil.missing_tokenizer, make_facts(config=LLAMA, files=TOK)) == []
    # --tokenizer elsewhere is fine
    assert (
        run(
            fil.missing_tokenizer,
            bad,
            make_target(image="vllm:0.14.0-gpu", engine_args={"tokenizer": "org/x"}),
        )
        == []
    )
    # sentencepiece tokenizer without tokenizer_config.json: warning about the chat template
    [w] = run(fil.missing_tokenizer, make_facts(config=LLAMA, files={"tokenizer.model": 5}))
    assert (
        w.severity == Severity.WARNING and w.path == "tokenizer_config.json" and "chat template" in w.message
    )
    assert w.rule == "FIL002" and "--chat-template FILE" in w.hint


# -- FIL003 / FIL009 / FIL010: the index ---------------------------------------------------------


def index(shards: list[str], total: int | None = None) -> dict:
    doc = {"weight_map": {f"t{i}": s for i, s in enumerate(shards)}}
    if total is not None:
        doc["metadata"] = {"total_size": total}
    return doc


def test_index_shard_missing():
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    bad = make_facts(
        config=LLAMA, files={shards[0]: 10}, json_files={"model.safetensors.index.json": index(shards)}
    )
    [f] = run(fil.index_shard_missing, bad)
    assert f.rule == "FIL003" and f.path == "model.safetensors.index.json"
    assert f.data == {"missing": [shards[1]], "listed": 2, "tensors_without_data": 1}
    assert shards[1] in f.message and shards[1] in f.hint
    ok = make_facts(
        config=LLAMA,
        files={s: 10 for s in shards},
        json_files={"model.safetensors.index.json": index(shards)},
    )
    assert run(fil.index_shard_missing, ok) == []


def test_index_total_size_mismatch():
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    headers = [st(shards[0], 1000), st(shards[1], 1000)]
    bad = make_facts(
        config=LLAMA,
        files={s: 1100 for s in shards},
        safetensors=headers,
        json_files={"model.safetensors.index.json": index(shards, 3000)},
    )
    [f] = run(fil.index_total_size_mismatch, bad)
    assert f.rule == "FIL009" and f.path == "model.safetensors.index.json:metadata.total_size"
    assert f.data == {"declared": 3000, "actual": 2000, "shards": 2} and "-33.3%" in f.message
    ok = make_facts(
        config=LLAMA,
        files={s: 1100 for s in shards},
        safetensors=headers,
        json_files={"model.safetensors.index.json": index(shards, 2000)},
    )
    assert run(fil.index_total_size_mismatch, ok) == []


def test_shards_not_in_index():
    listed = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    stray = "model-00001-of-00003.safetensors"
    bad = make_facts(
        config=LLAMA,
        files={**{s: 10 for s in listed}, stray: 10},
        json_files={"model.safetensors.index.json": index(listed)},
    )
    [f] = run(fil.shards_not_in_index, bad)
    assert f.rule == "FIL010" and f.path == stray and f.data["unlisted"] == [stray]
    assert f.severity == Severity.WARNING and f.data["index"] == "model.safetensors.index.json"
    assert "not in its weight_map: model-00001-of-00003.safetensors" in f.message and "stray" in f.hint
    ok = make_facts(
        config=LLAMA,
        files={s: 10 for s in listed},
        json_files={"model.safetensors.index.json": index(listed)},
    )
    assert run(fil.shards_not_in_index, ok) == []


# -- FIL004 truncated ---------------------------------------------------------------------------


def test_truncated_safetensors_and_gguf():
    short = st("model.safetensors", 4 * 2**30, file_size=2**30)
    [f] = run(integrity.truncated_weights, make_facts(config=LLAMA, safetensors=[short]))
    assert f.rule == "FIL004" and f.path == "model.safetensors" and "truncated download" in f.message
    assert f.data["missing_bytes"] == short.expected_file_size - 2**30
    long = st("model.safetensors", 100, file_size=8 + 92 + 150)
    [g] = run(integrity.truncated_weights, make_facts(config=LLAMA, safetensors=[long]))
    assert g.data["extra_bytes"] == 50 and "refuses" in g.message
    gg = GGUFInfo("m.gguf", 3, 1, 1, {}, (), file_size=10, data_offset=5, expected_file_size=100)
    [h] = run(integrity.truncated_weights, make_facts(kind="gguf", gguf=[gg]))
    assert h.path == "m.gguf" and h.data == {"file_size": 10, "expected_file_size": 100, "missing_bytes": 90}
    assert run(integrity.truncated_weights, make_facts(config=LLAMA, safetensors=[st("model.safetensors")])) == []


# -- FIL005 / FIL006 / FIL007 / FIL008 ---------------------------------------------------------------


def test_lfs_pointer():
    e = FileEntry("model.safetensors", 133, lfs_pointer=True, lfs_size=15_000_000_000)
    [f] = run(integrity.lfs_pointer, make_facts(config=LLAMA, files=[e]))
    assert f.rule == "FIL005" and f.path == "model.safetensors"
    assert "15000000000 bytes" in f.message and "git lfs pull" in f.hint
    assert f.data == {"size": 133, "promised_size": 15_000_000_000}
    assert run(integrity.lfs_pointer, make_facts(config=LLAMA, files={"model.safetensors": 10})) == []


def test_empty_file():
    [f] = run(integrity.empty_file, make_facts(config=LLAMA, files={"tokenizer.model": 0, "__init__.py": 0}))
    assert f.rule == "FIL006" and f.path == "tokenizer.model" and f.severity == Severity.ERROR
    # __init__.py may be empty: only the tokenizer is reported
    assert f.message == "tokenizer.model is empty (0 bytes): the engine cannot load it" and f.data == {"size": 0}
    assert "download tokenizer.model again" in f.hint
    [w] = run(integrity.empty_file, make_facts(config=LLAMA, files={"notes.txt": 0}))
    assert w.severity == Severity.WARNING and w.path == "notes.txt"
    assert w.rule == "FIL006" and w.message == "notes.txt is empty (0 bytes)"
    assert run(integrity.empty_file, make_facts(config=LLAMA, files={"tokenizer.model": 4})) == []


def test_incomplete_download():
    p = ".cache/huggingface/download/model.safetensors.abc123.incomplete"
    bad = make_facts(
        config=LLAMA, files={p: 4096, "model.safetensors.part": 10}, incomplete_downloads=[p]
    )
    [f] = run(integrity.incomplete_download, bad)
    assert f.rule == "FIL007" and f.data["files"] == [p, "model.safetensors.part"]
    assert f.data["bytes"] == 4106 and "interrupted" in f.message
    ok = make_facts(
        config=LLAMA, files={".cache/huggingface/download/model.safetensors.lock": 0, "model.safetensors": 5}
    )
    assert run(integrity.incomplete_download, ok) == []


def test_duplicate_weight_formats():
    bad = make_facts(config=LLAMA, files={"model.safetensors": 100, "pytorch_model.bin": 2**31})
    [f] = run(fil.duplicate_weight_formats, bad)
    assert f.rule == "FIL008" and f.path == "pytorch_model.bin"
    assert "model.safetensors" in f.message and "pytorch_model.bin" in f.message
    assert f.data["wasted_bytes"] == 2**31 and "delete pytorch_model.bin" in f.hint
    # training_args.bin is not a weight copy
    assert (
        run(
            fil.duplicate_weight_formats,
            make_facts(config=LLAMA, files={"model.safetensors": 1, "training_args.bin": 1}),
        )
        == []
    )


# -- FactError reporting: each kind exactly once ---------------------------------------------------


# the FIL family spans three modules
ALL_FILE_RULES = [
    v for m in (fil, integrity, read_errors) for v in vars(m).values() if hasattr(v, "__modelcheck_rule__")
]


def reporters(err: FactError, **kw) -> list[str]:
    f = make_facts(config=LLAMA, files=TOK, errors=[err], **kw)
    return sorted(
        x.rule
        for r in ALL_FILE_RULES
        for x in run(r, f)
        if err.path == (x.path or "") or x.data.get("error") == err.message
    )


@pytest.mark.parametrize(
    ("kind", "path", "code"),
    [
        ("safetensors", "model.safetensors", "FIL011"),
        ("gguf", "m.gguf", "FIL011"),
        ("json", "config.json", "FIL012"),
        ("yaml", "cosyvoice.yaml", "FIL012"),
        ("index", "model.safetensors.index.json", "FIL012"),
        ("unreadable", "model.safetensors", "FIL013"),
        ("walk", "loop", "FIL014"),
        ("something-new", "x.dat", "FIL013"),
        ("pickle", "pytorch_model.bin", None),
        ("onnx", "m.onnx", None),
        ("keras", "m.keras", None),
    ],
)
def test_each_fact_error_kind_reported_by_exactly_one_rule(kind, path, code):
    err = FactError(kind, path, f"broken {kind}")
    got = reporters(err)
    assert got == ([code] if code else [])


def test_invalid_json_severity_by_file():
    [f] = run(
        read_errors.invalid_json,
        make_facts(config=LLAMA, errors=[FactError("json", "config.json", "invalid JSON: x")]),
    )
    assert f.severity == Severity.ERROR and f.message == "config.json: invalid JSON: x"
    [w] = run(
        read_errors.invalid_json,
        make_facts(config=LLAMA, errors=[FactError("json", "runs/trainer_state.json", "bad")]),
    )
    assert w.severity == Severity.WARNING and w.rule == "FIL012" and w.path == "runs/trainer_state.json"
    assert w.message == "runs/trainer_state.json: bad" and w.data == {"kind": "json", "error": "bad"}
    assert "valid JSON" in w.hint


def test_header_error_of_lfs_pointer_is_not_reported_twice():
    e = FileEntry("model.safetensors", 133, lfs_pointer=True, lfs_size=10**9)
    err = FactError("safetensors", "model.safetensors", "header does not start with '{'")
    f = make_facts(config=LLAMA, files=[e], errors=[err])
    assert run(read_errors.invalid_weights_header, f) == []
    assert [x.rule for x in run(integrity.lfs_pointer, f)] == ["FIL005"]


def test_walk_truncated_special_and_broken_links():
    f = make_facts(config=LLAMA, files=TOK)
    assert run(read_errors.walk_truncated, f) == []
    from modelcheck.record import replace

    [t] = run(read_errors.walk_truncated, replace(f, walk_truncated=True))
    assert t.rule == "FIL015" and t.data == {"entries_seen": 3}
    [s] = run(integrity.special_file, make_facts(config=LLAMA, files=[FileEntry("model.safetensors", 0, "fifo")]))
    assert s.rule == "FIL016" and s.severity == Severity.ERROR and "fifo" in s.message
    assert run(integrity.special_file, f) == []
    link = FileEntry("model.safetensors", 0, "symlink", "../../blobs/abc", broken_link=True)
    [b] = run(integrity.broken_symlink, make_facts(config=LLAMA, files=[link]))
    assert b.rule == "FIL017" and b.severity == Severity.ERROR and "../../blobs/abc" in b.message
    assert run(integrity.broken_symlink, f) == []


# -- end to end on real sparse folders (fixtures.builders + facts.gather) ------------------------------


def tokenizer_json(d: Path) -> None:
    (d / "tokenizer.json").write_text(json.dumps(builders.tokenizer_json()))


def codes(path: Path, image: str | None = "vllm:0.14.0-gpu") -> dict[str, list]:
    from modelcheck import linter, registry

    fa = facts.gather(str(path))
    rules = tuple(r for r in registry.load(plugins=False).rules if r.family in ("FIL", "KND", "IMG", "CHP"))
    res = linter.run(rules, Context(facts=fa, target=make_target(image=image) if image else make_target(), catalog=CAT))
    out: dict[str, list] = {}
    for f in res.findings:
        out.setdefault(f.rule, []).append(f)
    return out


def test_e2e_healthy_sharded_folder_has_no_file_findings(tmp_path):
    d = builders.make_hf_llm(tmp_path / "Qwen2.5-7B-Instruct", "Qwen2.5-7B-Instruct", shards=2)
    tokenizer_json(d)
    assert codes(d) == {}


def test_e2e_truncated_shard(tmp_path):
    d = builders.make_hf_llm(
        tmp_path / "Qwen2.5-7B-Instruct", "Qwen2.5-7B-Instruct", shards=2, truncate_shard=2
    )
    tokenizer_json(d)
    found = codes(d)
    assert list(found) == ["FIL004"]
    [f] = found["FIL004"]
    assert f.path == "model-00002-of-00002.safetensors" and f.data["missing_bytes"] > 2**30
    assert os.path.getsize(d / f.path) == f.data["file_size"]


def test_e2e_missing_shard(tmp_path):
    d = builders.make_hf_llm(
        tmp_path / "Qwen2.5-7B-Instruct", "Qwen2.5-7B-Instruct", shards=3, missing_shard=2
    )
    tokenizer_json(d)
    found = codes(d)
    assert list(found) == ["FIL003"]
    assert found["FIL003"][0].data["missing"] == ["model-00002-of-00003.safetensors"]


def test_e2e_lfs_pointer_clone(tmp_path):
    d = builders.make_hf_llm(tmp_path / "Qwen2.5-7B-Instruct", "Qwen2.5-7B-Instruct")
    tokenizer_json(d)
    (d / "model.safetensors").unlink()
    builders.make_lfs_pointer(d / "model.safetensors", 15_231_233_024)
    found = codes(d)
    assert "FIL005" in found and "FIL011" not in found
    [f] = found["FIL005"]
    assert f.path == "model.safetensors" and f.data["promised_size"] == 15_231_233_024
