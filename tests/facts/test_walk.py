"""The bounded walk: links, special files, odd names, caps, lfs pointers, sparse hints, download caches."""

from __future__ import annotations

import os

import pytest

from modelcheck.facts import gather
from modelcheck.facts.walk import walk
from fixtures.builders import make_lfs_pointer, write_safetensors_sparse


def _entry(res, path):
    return next(f for f in res.files if f.path == path)


def test_symlinks_escape_broken_and_inside(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"x" * 10)
    (root / "config.json").write_text("{}")
    os.symlink(tmp_path / "outside.bin", root / "escape.bin")
    os.symlink(root / "nowhere", root / "broken.bin")
    os.symlink("config.json", root / "alias.json")
    res = walk(str(root))
    esc = _entry(res, "escape.bin")
    assert (esc.type, esc.escapes_root, esc.size, esc.symlink_target) == (
        "symlink",
        True,
        10,
        str(tmp_path / "outside.bin"),
    )
    br = _entry(res, "broken.bin")
    assert (br.type, br.broken_link) == ("symlink", True)
    alias = _entry(res, "alias.json")
    assert (alias.type, alias.symlink_target, alias.escapes_root) == ("file", "config.json", False)


def test_directory_link_loop_is_reported_once(tmp_path):
    root = tmp_path / "m"
    (root / "sub").mkdir(parents=True)
    os.symlink("..", root / "sub" / "up")
    res = walk(str(root))
    assert [e.message for e in res.errors] == ["directory link loop (..)"]
    assert _entry(res, "sub/up").type == "dir"


def test_self_loop_symlink(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    os.symlink("self", root / "self")
    res = walk(str(root))
    assert _entry(res, "self").broken_link is True
    assert res.errors[0].kind == "walk" and res.errors[0].message == "symlink loop (self)"


def test_fifo_recorded_not_opened(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    os.mkfifo(root / "model.safetensors")
    f = gather(str(root))  # would hang if the fifo were opened
    assert f.file("model.safetensors").type == "fifo"
    assert f.safetensors == () and f.errors == ()


def test_non_utf8_name(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    bad = os.path.join(os.fsencode(root), b"w\xff.bin")
    with open(bad, "wb") as fh:
        fh.write(b"0")
    res = walk(str(root))
    assert [f.path for f in res.files] == ["w\ufffd.bin"]
    assert res.errors[0].kind == "walk" and res.errors[0].message == "file name is not valid UTF-8"


def test_entry_cap_truncates(tmp_path):
    for i in range(30):
        (tmp_path / f"f{i:02d}.txt").write_text("x")
    res = walk(str(tmp_path), max_entries=10)
    assert res.truncated and len(res.files) == 10
    assert gather(str(tmp_path), max_entries=10).walk_truncated is True


def test_depth_cap(tmp_path):
    d = tmp_path
    for i in range(5):
        d = d / f"d{i}"
    d.mkdir(parents=True)
    res = walk(str(tmp_path), max_depth=3)
    assert [e.message for e in res.errors] == ["directory nesting deeper than 3: not walked"]
    assert res.errors[0].path == "d0/d1/d2"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any directory")
def test_unreadable_dir(tmp_path):
    (tmp_path / "locked").mkdir()
    os.chmod(tmp_path / "locked", 0)
    try:
        res = walk(str(tmp_path))
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert res.errors[0].kind == "unreadable" and res.errors[0].path == "locked"
    assert res.errors[0].message == "cannot list directory: Permission denied"


def test_unreadable_dir_simulated(tmp_path, monkeypatch):
    # the chmod test above is skipped under root (CI containers): simulate EACCES so the path always runs
    import errno

    (tmp_path / "locked").mkdir()
    (tmp_path / "config.json").write_text("{}")
    real_scandir = os.scandir

    def scandir(path):
        if os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    res = walk(str(tmp_path))
    assert [(e.kind, e.path, e.message) for e in res.errors] == [
        ("unreadable", "locked", "cannot list directory: Permission denied")
    ]
    # the locked folder is still listed (as a dir), and its siblings are walked
    assert [(f.path, f.type) for f in res.files] == [("config.json", "file"), ("locked", "dir")]


def test_lfs_pointer_and_sparse_hint(tmp_path):
    make_lfs_pointer(tmp_path / "model-00001-of-00002.safetensors", 4_976_698_672)
    write_safetensors_sparse(tmp_path / "model-00002-of-00002.safetensors", {"w": ("BF16", (4096, 4096))})
    f = gather(str(tmp_path))
    ptr = f.file("model-00001-of-00002.safetensors")
    assert (ptr.lfs_pointer, ptr.lfs_size) == (True, 4_976_698_672)
    real = f.file("model-00002-of-00002.safetensors")
    assert real.sparse_hint is True and real.lfs_pointer is False
    # the pointer is not parsed as safetensors (no error), the real shard is
    assert [h.path for h in f.safetensors] == ["model-00002-of-00002.safetensors"] and f.errors == ()


def test_git_skipped_and_hf_incomplete_downloads(tmp_path):
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref")
    dl = tmp_path / ".cache" / "huggingface" / "download"
    dl.mkdir(parents=True)
    (dl / "model.safetensors.metadata").write_text("x")
    (dl / "abc123.incomplete").write_bytes(b"\0" * 100)
    (tmp_path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    f = gather(str(tmp_path))
    assert [x.path for x in f.files] == [".cache/huggingface/download/abc123.incomplete", "config.json"]
    assert f.incomplete_downloads == (".cache/huggingface/download/abc123.incomplete",)
