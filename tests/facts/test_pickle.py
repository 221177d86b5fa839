"""modelcheck.facts.pickle: opcode scan of pickles, torch archives, numpy and joblib files; never unpickles."""

from __future__ import annotations

import ast
import importlib.util
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
from modelcheck.facts import pickle as pk
from modelcheck.facts.pickle import classify, scan_file

_BUILD = Path(__file__).resolve().parents[2] / "fixtures" / "malicious" / "build.py"
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
    assert [(s.path, s.member, s.format) for s in scans] == [("poisoned_zip_p4.bin", "model/data.pkl", "torch-zip")]
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
    assert classify("pathlib", "Path.write_text") == "unlisted"  # allowlist semantics: off the list is an error
    assert classify("sklearn.linear_model", "LogisticRegression") == "unlisted"
    assert classify("uuid", "_get_command_stdout") == "dangerous"
    assert classify("commands", "getoutput") == "dangerous"  # _compat_pickle maps it to subprocess
    assert classify("__builtin__", "set") == "safe"
    assert classify("numpy.lib._npyio_impl", "load") == "dangerous"
    assert classify("_compat_pickle", "IMPORT_MAPPING") == "dangerous"
    assert classify("copyreg", "add_extension") == "dangerous"
    assert classify("builtins", "object.__subclasses__") == "dangerous"
    assert classify("torch.fx.graph_module", "reduce_graph_module") == "dangerous"
    assert classify("torch.storage", "_load_from_bytes") == "dangerous"
    assert classify("functools", "partial") == "dangerous"
    assert classify("os\nsystem", "x") == "unlisted"  # (the machine never records a name it cannot import)


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
    (tmp_path / "c.bin").write_bytes(b"c" + bytes(range(256)) * 8)  # raw weights that start with GLOBAL's 'c'
    assert _scan(tmp_path / "c.bin") == ((), ())
    (tmp_path / "n.pkl").write_bytes(b"\x80\x02cmy-module\nmy class\n)R.")  # cannot be imported: inert
    scans, errors = _scan(tmp_path / "n.pkl")
    assert errors == () and scans[0].globals == ()
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
    monkeypatch.setattr(pk, "MAX_BLOB_BYTES", 1 << 20)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02" + b"N0" * (4 << 20) + b"N.")
    (tmp_path / "bomb.pt").write_bytes(buf.getvalue())
    _scans, errors = _scan(tmp_path / "bomb.pt")
    assert errors[0].message == (
        "member archive/data.pkl: only the first 1 MiB were scanned (1 MiB per member / per-run budget)")
    assert {e.path for e in errors} == {"bomb.pt"}


def test_zip_claiming_too_many_entries(tmp_path: Path) -> None:
    eocd = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFE, 0xFFFE, 10, 0, 0)
    data = b"PK\x03\x04" + b"\0" * 100 + eocd
    (tmp_path / "z.pt").write_bytes(data)
    scans, errors = _scan(tmp_path / "z.pt")
    assert scans == () and errors[0].kind == "pickle"
    big = b"PK\x03\x04" + b"\0" * 100 + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, 1 << 30, 0, 0)
    (tmp_path / "y.pt").write_bytes(big)
    assert "claims" in _scan(tmp_path / "y.pt")[1][0].message


def test_opcode_budget_is_per_run(tmp_path: Path) -> None:
    (tmp_path / "long.pkl").write_bytes(b"\x80\x02cos\nsystem\n" + b"N0" * 5000 + b"N.")
    (tmp_path / "late.pkl").write_bytes(b"\x80\x02N0N.")
    budget = pk.Budget(opcodes=1000)
    scans, errors = scan_file(str(tmp_path / "long.pkl"), "long.pkl", 0, budget)
    assert _dangerous(scans) == ["os.system"]
    assert errors[0].message == ("stopped after 1,000 opcodes: the per-run scan budget (1,000 pickle opcodes, "
                                 "96 MiB decompressed) is used up")
    assert budget.exhausted
    # the next file of the same run is not silently passed: a claimed pickle is reported as not scanned
    scans, errors = scan_file(str(tmp_path / "late.pkl"), "late.pkl", 0, budget)
    assert scans == () and errors[0].message.startswith("not scanned: the per-run scan budget")


def test_npy_header_claim_checked(tmp_path: Path) -> None:
    (tmp_path / "h.npy").write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 31) + b"{}")
    scans, errors = _scan(tmp_path / "h.npy")
    assert scans == () and errors[0].message.startswith(".npy header claims 2147483648 bytes")


@pytest.mark.parametrize("descr", ["'object'", "'|O8'", "[('a', '|O')]", "('O', (2,))", "'\\x4f'", "'<f8, O'"])
def test_npy_object_dtype_spellings(tmp_path: Path, descr: str) -> None:
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    payload = corpus_build.dumps(corpus_build.SYSTEM, 2)
    (tmp_path / "x.dat").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload)
    scans, errors = _scan(tmp_path / "x.dat")
    assert errors == () and [(s.format, _dangerous([s])) for s in scans] == [("numpy", ["posix.system"])]
    assert pk.descr_has_object(ast.literal_eval(descr)) is True
    assert pk.descr_has_object("<f4") is False and pk.descr_has_object([("a", "<i8"), ("b", "|S3")]) is False


def test_copyreg_extension_codes_are_dangerous(tmp_path: Path) -> None:
    (tmp_path / "e.pkl").write_bytes(b"\x80\x02\x83\x01\x02X\x01\x00\x00\x00x\x85R.")
    scans, errors = _scan(tmp_path / "e.pkl")
    assert errors == () and _dangerous(scans) == ["copyreg.extension code 513"]


def test_legacy_magic_spellings_and_pickles_without_proto(tmp_path: Path) -> None:
    rest = b"K\x01.}.cos\nsystem\n(S'x'\ntR.]." + b"\0" * 32
    for magic in (b"L119547037146038801333356L\n.", b"I119_547_037_146_038_801_333_356\n.", b"I0x1950A86A20F9469CFC6C\n."):
        (tmp_path / "m.pth").write_bytes(magic + rest)
        scans, errors = _scan(tmp_path / "m.pth")
        assert errors == () and [(s.format, _dangerous([s])) for s in scans] == [("torch-legacy", ["os.system"])]


def test_content_sniffing_finds_pickles_in_any_container(tmp_path: Path) -> None:
    import gzip
    import tarfile

    evil = corpus_build.dumps(corpus_build.SYSTEM, 2)
    (tmp_path / "g.pkl.gz").write_bytes(gzip.compress(evil))
    (tmp_path / "gguf.bin").write_bytes(b"GGUF\x03\x00\x00\x00\x000" + b"cos\nsystem\n(S'x'\ntR.")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/DATA.PKL", evil)
    (tmp_path / "case.bin").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("pickle")
        info.size = len(evil)
        tf.addfile(info, io.BytesIO(evil))
    (tmp_path / "legacy.tar").write_bytes(buf.getvalue())
    got = {n: [(s.member, s.format, _dangerous([s])) for s in _scan(tmp_path / n)[0]]
           for n in ("g.pkl.gz", "gguf.bin", "case.bin", "legacy.tar")}
    assert got == {"g.pkl.gz": [(None, "joblib", ["posix.system"])],
                   "gguf.bin": [(None, "pickle", ["os.system"])],
                   "case.bin": [("archive/DATA.PKL", "torch-zip", ["posix.system"])],
                   "legacy.tar": [("pickle", "torch-legacy", ["posix.system"])]}


def test_joblib_itemsize_derived_as_numpy_does(tmp_path: Path) -> None:
    import joblib
    import numpy as np

    buf = io.BytesIO()
    joblib.dump([np.arange(64, dtype=np.float64), corpus_build.SYSTEM], buf)
    data = buf.getvalue().replace(b"J\xff\xff\xff\xffJ\xff\xff\xff\xff", b"J\x01\x00\x00\x00J\xff\xff\xff\xff", 1)
    (tmp_path / "m.joblib").write_bytes(data)
    scans, errors = _scan(tmp_path / "m.joblib")
    assert errors == () and _dangerous(scans) == ["posix.system"]


def test_torchscript_archive_is_recorded(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m/data.pkl", corpus_build.dumps({}, 2))
        zf.writestr("m/constants.pkl", corpus_build.dumps((), 2))
        zf.writestr("m/code/__torch__.py", "def forward(self): ...\n")
    (tmp_path / "pytorch_model.bin").write_bytes(buf.getvalue())
    out = pk.scan_path(str(tmp_path / "pytorch_model.bin"), "pytorch_model.bin")
    assert out.torchscript == ["pytorch_model.bin"] and out.errors == []


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
