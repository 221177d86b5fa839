"""rules/security.py (SEC001-SEC011): one passing and one failing case per rule, on in-memory facts,
plus the ONNX / Keras / verify readers those rules rely on, on files made by the real libraries."""

from __future__ import annotations

import hashlib
import os
import zipfile
from modelcheck.record import replace
from pathlib import Path

import pytest

from modelcheck.facts.hashes import verify_hashes
from modelcheck.facts.keras import lambda_layers
from modelcheck.facts.onnx import external_locations
from modelcheck.model import CodeScan, FactError, FileEntry, PickleGlobal, PickleScan
from modelcheck.testing import make_facts, run_rule
from modelcheck_rules import security as sec
from modelcheck_rules import security_code, security_paths

EVIL = PickleScan("pytorch_model.bin", "torch-zip",
                  (PickleGlobal("torch._utils", "_rebuild_tensor_v2", "safe"), PickleGlobal("posix", "system", "dangerous")),
                  member="archive/data.pkl")
CLEAN = PickleScan("pytorch_model.bin", "torch-zip", (PickleGlobal("torch._utils", "_rebuild_tensor_v2", "safe"),),
                   member="archive/data.pkl")
ODD = PickleScan("training_args.bin", "torch-zip",
                 (PickleGlobal("transformers.training_args", "TrainingArguments", "unknown"),), member="archive/data.pkl")
UNLISTED = PickleScan("config.json:evil.pkl", "pickle", (PickleGlobal("evil_pkg", "Loader", "unlisted"),))


def _with_scan(**kw) -> object:
    return replace(make_facts(), scan=CodeScan(**kw))


def test_sec001_dangerous_global() -> None:
    assert run_rule(sec.dangerous_pickle_global, make_facts(pickles=[CLEAN])) == []
    [f] = run_rule(sec.dangerous_pickle_global, make_facts(pickles=[EVIL]))
    assert f.rule == "SEC001" and f.severity.label == "error" and f.path == "pytorch_model.bin"
    assert f.message == ("pytorch_model.bin (member archive/data.pkl) is a torch-zip pickle that imports "
                         "posix.system, which can run code: loading it calls them")
    assert f.data == {"file": "pytorch_model.bin", "member": "archive/data.pkl", "format": "torch-zip",
                      "globals": ["posix.system"], "dangerous": ["posix.system"], "unlisted": []}
    # allowlist semantics: a global off the list is an error too; a ':' in a file name is part of the name
    [u] = run_rule(sec.dangerous_pickle_global, make_facts(pickles=[UNLISTED]))
    assert u.path == "config.json:evil.pkl" and u.severity.label == "error"
    assert u.message == ("config.json:evil.pkl is a pickle that imports evil_pkg.Loader, which is not on the "
                         "allowlist of weight-reconstruction globals (torch.load(weights_only=True) refuses them): "
                         "loading it calls them")
    assert "do not deploy this file" in f.hint and "safetensors" in f.hint


def test_sec002_unknown_global() -> None:
    assert run_rule(sec.unknown_pickle_global, make_facts(pickles=[CLEAN, EVIL])) == []
    [f] = run_rule(sec.unknown_pickle_global, make_facts(pickles=[ODD]))
    assert f.severity.label == "warning" and "transformers.training_args.TrainingArguments" in f.message
    assert f.rule == "SEC002" and f.path == "training_args.bin"
    assert f.message == ("training_args.bin (member archive/data.pkl) imports training-state classes that are not "
                         "weights: transformers.training_args.TrainingArguments") and "remove it" in f.hint
    assert f.data["globals"] == ["transformers.training_args.TrainingArguments"]


def test_sec003_not_scanned() -> None:
    assert run_rule(sec.pickle_not_scanned, make_facts(errors=[FactError("json", "config.json", "bad")])) == []
    [f] = run_rule(sec.pickle_not_scanned,
                   make_facts(errors=[FactError("pickle", "m.pt", "member archive/data.pkl: stopped after 9 opcodes")]))
    assert f.path == "m.pt" and f.message.endswith("member archive/data.pkl: stopped after 9 opcodes")
    assert f.rule == "SEC003" and f.severity.label == "error" and "could not be scanned" in f.message
    assert f.data == {"file": "m.pt", "reason": "member archive/data.pkl: stopped after 9 opcodes"}
    assert "safetensors" in f.hint
    # a cap on the whole run (walk, budget) is an error too, not a silent pass
    [c] = run_rule(sec.pickle_not_scanned, make_facts(errors=[FactError("pickle", "", "the folder walk stopped")]))
    assert (c.severity.label, c.path, c.message) == ("error", None,
                                                     "the scan for code-running files stopped early: the folder walk stopped")


def test_sec004_remote_code() -> None:
    assert run_rule(security_code.remote_code_required, make_facts(config={"model_type": "llama"})) == []
    facts = make_facts(config={"auto_map": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}},
                       files={"modeling_x.py": 10, "configuration_x.py": 5})
    [f] = run_rule(security_code.remote_code_required, facts)
    assert f.message == ("the model needs --trust-remote-code, which runs its Python code in the server: "
                         "auto_map in config.json -> modeling_x.XForCausalLM; "
                         "Python files configuration_x.py, modeling_x.py")
    assert f.data["python_files"] == ["configuration_x.py", "modeling_x.py"]
    assert f.rule == "SEC004" and f.severity.label == "warning" and f.path == "config.json"
    assert f.data["auto_map"] == {"config.json": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}}
    assert "review these files" in f.hint


def test_sec005_symlink_escape() -> None:
    inside = FileEntry("a.json", 3, type="symlink", symlink_target="b.json")
    outside = FileEntry("tokenizer.json", 3, type="symlink", symlink_target="/etc/shadow", escapes_root=True)
    assert run_rule(security_paths.symlink_escapes_root, make_facts(files=[inside])) == []
    [f] = run_rule(security_paths.symlink_escapes_root, make_facts(files=[inside, outside]))
    assert f.path == "tokenizer.json" and "'/etc/shadow'" in f.message
    assert f.rule == "SEC005" and f.severity.label == "error" and "outside the model folder" in f.message
    assert f.data == {"target": "/etc/shadow"} and "copy the target file" in f.hint


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "sub/../../x", "C:\\x.bin", 5])
def test_sec006_weight_map_traversal(bad: object) -> None:
    ok = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "sub/../model-00002-of-00002.safetensors"}}
    assert run_rule(security_paths.weight_map_path_traversal,
                    make_facts(json_files={"model.safetensors.index.json": ok})) == []
    doc = {"weight_map": {"a": "model-00001.safetensors", "b": bad}}
    [f] = run_rule(security_paths.weight_map_path_traversal, make_facts(json_files={"model.safetensors.index.json": doc}))
    assert f.rule == "SEC006" and f.data["paths"] == [bad if isinstance(bad, str) else repr(bad)]
    assert f.severity.label == "error" and f.path == "model.safetensors.index.json"
    assert "weight_map points outside the model folder" in f.message and "weight_map" in f.hint


def _onnx_model(tmp_path: Path, location: str) -> Path:
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import set_external_data

    w = numpy_helper.from_array(np.zeros((4, 4), np.float32), "w")
    set_external_data(w, location=location, offset=0, length=64)
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [w, numpy_helper.from_array(np.ones(1000, np.float32), "internal")])
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_onnx_external_locations_and_sec007(tmp_path: Path) -> None:
    path = _onnx_model(tmp_path, "../../etc/passwd")
    locs, errs = external_locations(str(path), path.stat().st_size)
    assert (locs, errs) == (("../../etc/passwd",), ())
    [f] = run_rule(security_paths.onnx_external_data_escape, _with_scan(onnx_external={"onnx/model.onnx": locs}))
    assert f.path == "onnx/model.onnx" and f.data["locations"] == ["../../etc/passwd"]
    assert f.rule == "SEC007" and f.severity.label == "error"
    assert f.message == "onnx/model.onnx reads external tensor data from outside the model folder: ../../etc/passwd"
    assert run_rule(security_paths.onnx_external_data_escape,
                    _with_scan(onnx_external={"onnx/model.onnx": ("model.onnx_data",)})) == []


def test_onnx_reader_on_broken_files(tmp_path: Path) -> None:
    path = _onnx_model(tmp_path, "w.bin")
    data = path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    _locs, errs = external_locations(str(tmp_path / "cut.onnx"), 0)
    assert errs[0].kind == "onnx" and "past the end" in errs[0].message
    (tmp_path / "junk.onnx").write_bytes(b"\x0f" * 64)
    assert external_locations(str(tmp_path / "junk.onnx"), 64)[1][0].kind == "onnx"


def test_keras_lambda_and_sec008(tmp_path: Path) -> None:
    cfg = ('{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"name": "d"}},'
           ' {"class_name": "Lambda", "config": {"name": "evil_lambda", "function": "..."}}]}}')
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as zf:
        zf.writestr("config.json", cfg)
        zf.writestr("metadata.json", "{}")
    assert lambda_layers(str(tmp_path / "m.keras"), 0) == (("evil_lambda",), ())
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 5000 + cfg.encode() + b"\0" * 100)
    assert lambda_layers(str(tmp_path / "m.h5"), 0) == (("evil_lambda",), ())
    escaped = cfg.replace('"Lambda"', '"\\u004cambda"').replace('"class_name"', '"\\u0063lass_name"')
    (tmp_path / "e.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100 + escaped.encode() + b"\0" * 100)
    assert lambda_layers(str(tmp_path / "e.h5"), 0) == (("evil_lambda",), ())
    [f] = run_rule(security_code.keras_lambda_layer, _with_scan(keras_lambda={"m.keras": ("evil_lambda",)}))
    assert f.severity.label == "error" and "evil_lambda" in f.message
    assert f.rule == "SEC008" and f.path == "m.keras" and "loading it runs their code" in f.message
    assert f.data == {"layers": ["evil_lambda"]} and "safe_mode=True" in f.hint
    assert run_rule(security_code.keras_lambda_layer, _with_scan(keras_lambda={})) == []


def test_sec012_torchscript_archive() -> None:
    assert run_rule(security_code.torchscript_archive, make_facts()) == []
    [f] = run_rule(security_code.torchscript_archive, _with_scan(torchscript=(("pytorch_model.bin", None),)))
    assert (f.rule, f.severity.label, f.path) == ("SEC012", "error", "pytorch_model.bin")
    assert f.message == ("pytorch_model.bin is a TorchScript archive where weights are expected: torch.load runs its "
                         "code through torch.jit.load")
    [w] = run_rule(security_code.torchscript_archive, _with_scan(torchscript=(("1/model.pt", None),)))
    assert w.severity.label == "warning" and w.data["weights_expected"] is False


def test_sec004_auto_map_from_another_repository() -> None:
    cfg = {"model_type": "llama", "auto_map": {"AutoModel": "evil-org/evil-repo--modeling_evil.EvilModel"}}
    found = run_rule(security_code.remote_code_required, make_facts(config=cfg))
    [err] = [f for f in found if f.severity.label == "error"]
    assert err.rule == "SEC004" and err.path == "config.json" and err.data["remote"] == [
        "evil-org/evil-repo--modeling_evil.EvilModel"]
    assert "loads code from another repository: evil-org/evil-repo--modeling_evil.EvilModel" in err.message


def test_sec009_pickle_weights() -> None:
    scan = PickleScan("pytorch_model.bin", "torch-zip", (), member="archive/data.pkl")
    assert run_rule(sec.pickle_weights, make_facts(files={"model.safetensors": 10})) == []
    [f] = run_rule(sec.pickle_weights, make_facts(files={"pytorch_model.bin": 10, "model.safetensors": 10},
                                                  pickles=[scan]))
    assert f.severity.label == "info" and f.data == {"files": ["pytorch_model.bin"], "safetensors_present": True}
    assert f.rule == "SEC009" and f.path == "pytorch_model.bin" and "besides safetensors weights" in f.message


def test_sec010_side_format_errors() -> None:
    assert run_rule(security_code.model_code_scan_failed, make_facts()) == []
    [f] = run_rule(security_code.model_code_scan_failed, make_facts(errors=[FactError("onnx", "m.onnx", "truncated varint")]))
    assert f.message == "m.onnx (onnx) could not be checked: truncated varint"
    assert f.rule == "SEC010" and f.severity.label == "error" and f.path == "m.onnx"
    assert f.data == {"format": "onnx", "reason": "truncated varint"}


def _hf_cache(tmp_path: Path, content: bytes, blob_name: str | None = None) -> Path:
    repo = tmp_path / "models--org--m"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    name = blob_name or hashlib.sha256(content).hexdigest()
    (repo / "blobs" / name).write_bytes(content)
    os.symlink(f"../../blobs/{name}", snap / "model.safetensors")
    return snap


def test_verify_hf_cache_blob_names_and_sec011(tmp_path: Path) -> None:
    snap = _hf_cache(tmp_path, b"weights")
    facts = make_facts(files=[FileEntry("model.safetensors", 7, type="symlink")], source="hf-cache")
    facts = replace(facts, root=str(snap))
    seen: list[tuple[str, int, int]] = []
    [res] = verify_hashes(facts, progress=lambda p, d, t: seen.append((p, d, t)))
    assert (res.status, res.source, res.algorithm) == ("ok", "hf-cache", "sha256")
    assert seen == [("model.safetensors", 7, 7)]
    assert run_rule(sec.weight_hash_mismatch, make_facts(hashes=[res])) == []

    bad = _hf_cache(tmp_path / "x", b"tampered", blob_name=hashlib.sha256(b"weights").hexdigest())
    facts = replace(facts, root=str(bad))
    [res] = verify_hashes(facts)
    assert res.status == "mismatch" and res.expected == hashlib.sha256(b"weights").hexdigest()
    [f] = run_rule(sec.weight_hash_mismatch, make_facts(hashes=[res]))
    assert f.rule == "SEC011" and f.path == "model.safetensors" and f.data["source"] == "hf-cache"


def test_verify_sidecar_and_no_reference(tmp_path: Path) -> None:
    (tmp_path / "a.gguf").write_bytes(b"GGUF....")
    (tmp_path / "a.gguf.sha256").write_text(hashlib.sha256(b"GGUF....").hexdigest() + "  a.gguf\n")
    (tmp_path / "b.safetensors").write_bytes(b"x")
    facts = make_facts(files={"a.gguf": 8, "b.safetensors": 1, "config.json": 2})
    facts = replace(facts, root=str(tmp_path))
    res = {r.path: r for r in verify_hashes(facts)}
    assert set(res) == {"a.gguf", "b.safetensors"}
    assert (res["a.gguf"].status, res["a.gguf"].source) == ("ok", "sidecar")
    assert res["b.safetensors"].status == "no-reference" and "--online" in res["b.safetensors"].message
