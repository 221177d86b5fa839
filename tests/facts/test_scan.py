"""modelcheck.facts.scan through gather(): index-listed files under .cache/, the walk cap and the per-run budget
fail closed, terminal escaping of model-supplied names, and the bypass corpus end to end through ``check``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelcheck.cli import main
from modelcheck.escape import for_terminal
from modelcheck.facts import gather
from modelcheck.facts import pickle as pk
from modelcheck.facts.scan import scan_folder

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bypasses", ROOT / "fixtures" / "malicious" / "bypasses.py")
bypasses = importlib.util.module_from_spec(_spec)
sys.modules["bypasses"] = bypasses
_spec.loader.exec_module(bypasses)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    dest = tmp_path_factory.mktemp("bypasses")
    return dest, bypasses.build(str(dest))


def _check(path: Path) -> tuple[int, list[dict]]:
    res = CliRunner().invoke(main, [str(path), "--format", "json"])
    return res.exit_code, json.loads(res.output)["results"][0]["findings"]


def test_every_bypass_fails_the_gate_and_benign_controls_pass(corpus) -> None:
    dest, cases = corpus
    wrong = []
    for name, case in cases.items():
        rc, findings = _check(dest / name)
        errors = sorted({f["rule"] for f in findings if f["severity"] == "error"})
        if case.malicious and not (rc == 1 and case.expect in errors):
            wrong.append((name, rc, errors))
        if not case.malicious and any(e.startswith(("SEC", "FIL011")) for e in errors):
            wrong.append((name, rc, errors))
    assert wrong == []
    assert sum(c.malicious for c in cases.values()) >= 50 and sum(not c.malicious for c in cases.values()) >= 8


def test_colon_and_control_characters_in_names(corpus) -> None:
    dest, _ = corpus
    _, findings = _check(dest / "colon-name")
    [sec] = [f for f in findings if f["rule"] == "SEC001"]
    assert sec["path"] == "config.json:evil.pkl" and sec["data"]["file"] == "config.json:evil.pkl"
    res = CliRunner().invoke(main, [str(dest / "escape-name"), "--no-color"])
    assert res.exit_code == 1
    assert "\x1b" not in res.output and "\x07" not in res.output and "\r" not in res.output
    assert "evil\\x1b]0;owned\\a\\r.pkl is a pickle that imports os.system" in res.output


def test_for_terminal_escapes_controls() -> None:
    assert for_terminal("a\rb\x1b]0;t\x07c\u202ed") == "a\\rb\\x1b]0;t\\ac\\u202ed"
    assert for_terminal("model.safetensors") == "model.safetensors"


def test_index_listed_file_under_cache_is_scanned(corpus) -> None:
    dest, _ = corpus
    f = gather(str(dest / "index-listed-in-cache"))
    assert [(p.path, p.member, [g.name for g in p.dangerous]) for p in f.pickles] == [
        (".cache/pytorch_model-00001.bin", "archive/data.pkl", ["system"])]


def test_walk_cap_and_budget_fail_closed(tmp_path: Path) -> None:
    for i in range(12):
        (tmp_path / f"f{i:02d}.txt").write_text("x")
    f = gather(str(tmp_path), max_entries=10)
    assert f.scan.limits == ("the folder walk stopped after 10 entries: files after that were not scanned for code",)
    assert [(e.path, e.message) for e in f.errors_of("pickle")] == [("", f.scan.limits[0])]
    # one budget for the run: once spent, the files left are named, not passed
    for i in range(3):
        (tmp_path / f"p{i}.pkl").write_bytes(b"\x80\x02" + b"N0" * 600 + b"N.")
    files = [e for e in gather(str(tmp_path)).files if e.type == "file"]
    rel = {e.path: str(tmp_path / e.path) for e in files}
    _, scan, errors = scan_folder(files, rel, str(tmp_path), {}, budget=pk.Budget(opcodes=1500))
    assert scan.limits and scan.limits[0].startswith("the per-run scan budget (1,500 pickle opcodes")
    assert "files were not scanned for code" in scan.limits[0]
    assert any(e.path == "p1.pkl" and "stopped after" in e.message for e in errors)


def test_files_the_safetensors_reader_opened_are_sniffed_from_its_bytes_and_reopened_when_needed(tmp_path):
    """gather hands the safetensors reader's first 4 KiB to the scan: a real shard is decided from them; a
    pickle dressed as a shard is caught from them; one whose payload sits after the first 4 KiB makes the scan
    open the whole file (the verdict never rests on bytes it did not see)."""
    import pickle

    from safetensors.numpy import save_file

    np = pytest.importorskip("numpy")
    save_file({"w": np.zeros((4, 4), dtype=np.float32)}, str(tmp_path / "model-00001-of-00003.safetensors"))
    (tmp_path / "model-00002-of-00003.safetensors").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    # a list of 6,000 harmless ints first (well past 4 KiB), then the call
    late = pickle.dumps(list(range(6000)), protocol=2)[:-1] + pickle.POP + b"cos\nsystem\n(S'echo pwned'\ntR."
    assert late.index(b"cos\nsystem") > 4096
    (tmp_path / "model-00003-of-00003.safetensors").write_bytes(late)
    facts = gather(str(tmp_path))
    flagged = {s.path for s in facts.pickles if any(g.verdict == "dangerous" for g in s.globals)}
    assert flagged == {"model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"}
    assert [h.path for h in facts.safetensors] == ["model-00001-of-00003.safetensors"]


def test_an_hdf5_keras_file_is_found_by_its_first_bytes_whatever_its_name(tmp_path):
    cfg = ('{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", '
           '"config": {"name": "evil_lambda", "function": "..."}}]}}')
    (tmp_path / "weights.dat").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 5000 + cfg.encode() + b"\0" * 100)
    (tmp_path / "notes.dat").write_bytes(b"\x89HDX" + b"\0" * 64)
    assert gather(str(tmp_path)).scan.keras_lambda == {"weights.dat": ("evil_lambda",)}
