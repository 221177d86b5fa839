"""checker.facts.pickle: opcode scan of pickles, torch archives, numpy and joblib files; never unpickles."""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from checker.facts import pickle as pk
from checker.facts.pickle import classify, scan_file

_BUILD = Path(__file__).resolve().parent.parent / "fixtures" / "malicious" / "build.py"
_spec = importlib.util.spec_from_file_location("corpus_build", _BUILD)
corpus_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus_build)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bool]]:
    dest = tmp_path_factory.mktemp("corpus")
    return dest, corpus_build.build(str(dest))


def _scan(path: Path):
    return scan_file(str(path), path.name, path.stat().st_size if path.exists() else 0)


def _dangerous(scans) -> list[str]:
    return sorted(f"{g.module}.{g.name}" for s in scans for g in s.dangerous)


# Expected dangerous globals per malicious corpus file (posix.system is how CPython pickles os.system).
EXPECTED = {
    "os_system_p0.pkl": ["posix.system"],
    "os_system_p5.pkl": ["posix.system"],
    "reverse_shell.pkl": ["builtins.exec"],
    "subprocess_popen.pt": ["subprocess.Popen"],
    "getattr_gadget.pkl": ["builtins.__import__", "builtins.getattr"],
    "inst_opcode.pkl": ["os.system"],
    "py2_builtin_eval.pkl": ["__builtin__.eval"],
    "memo_stack_global.pkl": ["os.system"],
    "second_pickle.pkl": ["posix.system"],
    "poisoned_zip.pt": ["posix.system"],
    "poisoned_zip_p4.bin": ["posix.system"],
    "poisoned_legacy.pth": ["posix.system"],
    "poisoned_legacy_obj.bin": ["posix.system"],
    "malicious_object.npy": ["posix.system"],
    "malicious.npz": ["builtins.exec"],
    "malicious.joblib": ["posix.system"],
    "malicious_z.joblib": ["builtins.exec"],
    "malicious_zlib.pkl": ["posix.system"],
    "global_operator.attrgetter.pkl": ["operator.attrgetter"],
    "global_torch.storage._load_from_bytes.pkl": None,  # not in corpus; see dedicated test
}


def test_every_malicious_file_is_caught_and_no_benign_one(corpus) -> None:
    dest, expected = corpus
    missed, false_pos = [], []
    for name, malicious in sorted(expected.items()):
        scans, errors = _scan(dest / name)
        found = _dangerous(scans)
        if malicious and not found:
            missed.append(name)
        if not malicious and (found or errors or any(s.unknown for s in scans)):
            false_pos.append((name, found, [e.message for e in errors]))
        if EXPECTED.get(name):
            assert found == EXPECTED[name], name
    assert missed == []
    assert false_pos == []
    assert sum(expected.values()) >= 40 and len(expected) - sum(expected.values()) >= 10


def test_torch_zip_member_path_and_format(corpus) -> None:
    dest, _ = corpus
    scans, errors = _scan(dest / "poisoned_zip_p4.bin")
    assert errors == ()
    assert [(s.path, s.format) for s in scans] == [("poisoned_zip_p4.bin:model/data.pkl", "torch-zip")]
    names = {(g.module, g.name): g.verdict for g in scans[0].globals}
    assert names[("torch._utils", "_rebuild_tensor_v2")] == "safe"
    assert names[("torch", "FloatStorage")] == "safe"
    assert names[("collections", "OrderedDict")] == "safe"


def test_benign_formats(corpus) -> None:
    dest, _ = corpus
    assert _scan(dest / "benign_float.npy") == ((), ())  # numeric .npy holds no pickle
    scans, _ = _scan(dest / "benign_legacy.pth")
    assert scans[0].format == "torch-legacy"
    scans, _ = _scan(dest / "benign.joblib")
    assert scans[0].format == "joblib"
    assert {g.name for g in scans[0].globals} >= {"NumpyArrayWrapper", "dtype"}


def test_classify_verdicts() -> None:
    assert classify("builtins", "set") == "safe"
    assert classify("__builtin__", "frozenset") == "safe"
    assert classify("builtins", "getattr") == "dangerous"
    assert classify("builtins", "print") == "dangerous"
    assert classify("_codecs", "encode") == "safe"
    assert classify("numpy.core.multiarray", "_reconstruct") == "safe"
    assert classify("numpy._core.multiarray", "_reconstruct") == "safe"
    assert classify("numpy.dtypes", "Float64DType") == "safe"
    assert classify("torch", "BFloat16Storage") == "safe"
    assert classify("torch", "bfloat16") == "safe"
    assert classify("torch._utils", "_rebuild_parameter") == "safe"
    assert classify("transformers.training_args", "TrainingArguments") == "unknown"
    assert classify("pathlib", "Path.write_text") == "unknown"
    assert classify("builtins", "object.__subclasses__") == "dangerous"
    assert classify("torch.fx.graph_module", "reduce_graph_module") == "dangerous"
    assert classify("torch.storage", "_load_from_bytes") == "dangerous"
    assert classify("functools", "partial") == "dangerous"
    assert classify("os\nsystem", "x") == "dangerous"


def test_unresolvable_stack_global_is_dangerous(tmp_path: Path) -> None:
    # module name produced by a call, not a literal: real writers never do this
    data = b"\x80\x04\x8c\x08builtins\x8c\x03str\x93\x8c\x02os\x85R\x8c\x06system\x93\x8c\x01x\x85R."
    p = tmp_path / "computed.pkl"
    p.write_bytes(data)
    scans, _ = _scan(p)
    assert [g.verdict for g in scans[0].globals] == ["safe", "dangerous"]


def test_nested_load_from_bytes_is_scanned(tmp_path: Path) -> None:
    inner = corpus_build.dumps(corpus_build.SYSTEM, 2)
    outer = corpus_build.dumps(corpus_build.Call(corpus_build.Ref("torch.storage", "_load_from_bytes"), (inner,)), 2)
    (tmp_path / "a.pkl").write_bytes(outer)
    scans, _ = _scan(tmp_path / "a.pkl")
    assert _dangerous(scans) == ["posix.system", "torch.storage._load_from_bytes"]
    clean = corpus_build.dumps(corpus_build.Call(corpus_build.Ref("torch.storage", "_load_from_bytes"),
                                                 (corpus_build.dumps({"a": 1}, 2),)), 2)
    (tmp_path / "b.pkl").write_bytes(clean)
    scans, _ = _scan(tmp_path / "b.pkl")
    assert _dangerous(scans) == []


def test_truncated_pickle_keeps_globals_and_reports(tmp_path: Path) -> None:
    data = corpus_build.dumps(corpus_build.SYSTEM, 4)
    p = tmp_path / "t.pkl"
    p.write_bytes(data[:-3])
    scans, errors = _scan(p)
    assert _dangerous(scans) == ["posix.system"]
    assert len(errors) == 1 and errors[0].kind == "pickle" and "malformed pickle" in errors[0].message


def test_not_a_pickle(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(os.urandom(0) + b"\xff\xfe" * 100)
    assert _scan(tmp_path / "w.bin") == ((), ())  # a .bin may be raw tensors
    (tmp_path / "g.bin").write_bytes(b"ggjt" + b"\0" * 100)
    assert _scan(tmp_path / "g.bin") == ((), ())
    (tmp_path / "x.pkl").write_bytes(b"\xff" * 10)
    scans, errors = _scan(tmp_path / "x.pkl")
    assert scans == () and "could not be scanned: not a pickle: invalid opcode 0xff at byte 0" in errors[0].message


def test_huge_length_claims_do_not_allocate(tmp_path: Path) -> None:
    p = tmp_path / "claim.pkl"
    p.write_bytes(b"\x80\x04cos\nsystem\n\x8d" + struct.pack("<Q", 1 << 62) + b"abc")
    scans, errors = _scan(p)
    assert _dangerous(scans) == ["os.system"]
    assert "truncated" in errors[0].message


def test_special_files_and_missing(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pkl"
    os.mkfifo(fifo)
    assert scan_file(str(fifo), "pipe.pkl", 0)[1][0].message == "not a regular file; not scanned"
    assert scan_file(str(tmp_path), "dir.pkl", 0)[1][0].message == "not a regular file; not scanned"
    assert "could not be opened" in scan_file(str(tmp_path / "nope.pkl"), "nope.pkl", 0)[1][0].message


def test_zip_bomb_member_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pk, "MAX_PICKLE_BYTES", 1 << 20)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02" + b"N0" * (4 << 20) + b"N.")
    (tmp_path / "bomb.pt").write_bytes(buf.getvalue())
    _scans, errors = _scan(tmp_path / "bomb.pt")
    assert [e.message for e in errors][-1] == "member larger than the 1 MiB scan limit"


def test_zip_claiming_too_many_entries(tmp_path: Path) -> None:
    eocd = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFE, 0xFFFE, 10, 0, 0)
    data = b"PK\x03\x04" + b"\0" * 100 + eocd
    (tmp_path / "z.pt").write_bytes(data)
    scans, errors = _scan(tmp_path / "z.pt")
    assert scans == () and errors[0].kind == "pickle"
    big = b"PK\x03\x04" + b"\0" * 100 + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, 1 << 30, 0, 0)
    (tmp_path / "y.pt").write_bytes(big)
    assert "claims" in _scan(tmp_path / "y.pt")[1][0].message


def test_opcode_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pk, "MAX_OPCODES", 1000)
    (tmp_path / "long.pkl").write_bytes(b"\x80\x02cos\nsystem\n" + b"N0" * 5000 + b"N.")
    scans, errors = _scan(tmp_path / "long.pkl")
    assert _dangerous(scans) == ["os.system"]
    assert errors[0].message == "stopped after 1,000 opcodes"


def test_npy_header_claim_checked(tmp_path: Path) -> None:
    (tmp_path / "h.npy").write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 31) + b"{}")
    scans, errors = _scan(tmp_path / "h.npy")
    assert scans == () and errors[0].message.startswith(".npy header claims 2147483648 bytes")


def test_unknown_globals_reported(tmp_path: Path) -> None:
    obj = corpus_build.Call(corpus_build.Ref("transformers.training_args", "TrainingArguments"), ())
    (tmp_path / "training_args.bin").write_bytes(corpus_build.torch_zip(corpus_build.dumps(obj)))
    scans, errors = _scan(tmp_path / "training_args.bin")
    assert errors == ()
    assert [(g.module, g.name) for g in scans[0].unknown] == [("transformers.training_args", "TrainingArguments")]


def test_real_stdlib_pickles_of_plain_data_are_clean(tmp_path: Path) -> None:
    import collections
    import datetime

    value = {"a": [1, 2.5, "x", b"y", None, True], "s": {1, 2}, "f": frozenset({3}), "c": 1 + 2j,
             "od": collections.OrderedDict(a=1), "d": datetime.date(2024, 1, 1), "ba": bytearray(b"z")}
    for proto in range(6):
        (tmp_path / "p.pkl").write_bytes(pickle.dumps(value, protocol=proto))
        scans, errors = _scan(tmp_path / "p.pkl")
        assert errors == ()
        assert _dangerous(scans) == [] and scans[0].unknown == (), proto
