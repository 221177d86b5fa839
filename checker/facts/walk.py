"""Bounded directory walk: stats only, never follows links out of the allowed roots, never opens
special files. Small files are peeked at (first 64 bytes) to spot git-lfs pointers.

Paths in the result are relative to the root with forward slashes; names that are not valid UTF-8 are
shown with U+FFFD replacements (``rel_to_abs`` keeps the real path for readers).
"""

from __future__ import annotations

import os
import stat

from modelcheck.model import FactError, FileEntry
from modelcheck.record import field, record

LFS_PREFIX = b"version https://git-lfs.github.com/spec/v1"
LFS_MAX_SIZE = 1024  # pointer files are ~130 bytes
MAX_LFS_PEEKS = 4000
MAX_DEPTH = 16
SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints"}
HF_DOWNLOAD_DIR = ".cache/huggingface/download"  # huggingface_hub local_dir in-progress downloads


@record(frozen=False)
class WalkResult:
    files: list[FileEntry] = field(default_factory=list)
    truncated: bool = False
    errors: list[FactError] = field(default_factory=list)
    rel_to_abs: dict[str, str] = field(default_factory=dict)
    incomplete_downloads: list[str] = field(default_factory=list)


def _safe(name: str) -> tuple[str, bool]:
    try:
        name.encode("utf-8")
        return name, True
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), False


def _inside(real: str, roots: tuple[str, ...]) -> bool:
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _type_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "other"


def _lfs(abs_path: str, size: int) -> tuple[bool, int | None]:
    try:
        with open(abs_path, "rb") as f:
            head = f.read(LFS_MAX_SIZE)
    except OSError:
        return False, None
    if not head.startswith(LFS_PREFIX):
        return False, None
    promised = None
    for line in head.decode("ascii", "replace").splitlines():
        key, _, val = line.partition(" ")
        if key == "size" and val.strip().isdigit():
            promised = int(val.strip())
    return True, promised


def _sparse(st: os.stat_result) -> bool:
    blocks = getattr(st, "st_blocks", None)
    return blocks is not None and st.st_size > (1 << 20) and blocks * 512 < st.st_size // 2


def walk(
    root: str,
    *,
    max_entries: int = 20000,
    max_depth: int = MAX_DEPTH,
    only: tuple[str, ...] | None = None,
    allowed_roots: tuple[str, ...] = (),
) -> WalkResult:
    """Walk ``root``. ``only`` limits the walk to those names directly under root (single-file mode).
    Symlinks resolving inside ``root`` or ``allowed_roots`` (e.g. an HF cache repo's blobs/) are followed
    for stat; others are recorded as escapes and not opened."""
    res = WalkResult()
    real_root = os.path.realpath(root)
    roots = (real_root, *(os.path.realpath(r) for r in allowed_roots))
    seen_dirs: set[tuple[int, int]] = set()
    peeks = 0
    try:
        st = os.stat(real_root)
        seen_dirs.add((st.st_dev, st.st_ino))
    except OSError as e:
        res.errors.append(FactError("unreadable", "", f"cannot stat the model folder: {e.strerror or e}"))
        return res
    stack: list[tuple[str, str, int]] = [(real_root, "", 0)]
    count = 0
    while stack:
        dir_abs, dir_rel, depth = stack.pop()
        try:
            with os.scandir(dir_abs) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            res.errors.append(FactError("unreadable", dir_rel, f"cannot list directory: {e.strerror or e}"))
            continue
        subdirs: list[tuple[str, str, int]] = []
        for de in entries:
            if only is not None and depth == 0 and de.name not in only:
                continue
            name, ok = _safe(de.name)
            rel = f"{dir_rel}/{name}" if dir_rel else name
            if not ok:
                res.errors.append(FactError("walk", rel, "file name is not valid UTF-8"))
            if depth == 0 and de.name == ".cache":
                _walk_hf_download(de.path, res)
                continue
            if de.name in SKIP_DIRS:
                continue
            if count >= max_entries:
                res.truncated = True
                stack.clear()
                break
            count += 1
            res.rel_to_abs[rel] = de.path
            try:
                lst = de.stat(follow_symlinks=False)
            except OSError as e:
                res.errors.append(FactError("unreadable", rel, f"cannot stat: {e.strerror or e}"))
                continue
            target = None
            escapes = broken = False
            st = lst
            if stat.S_ISLNK(lst.st_mode):
                try:
                    target = os.readlink(de.path)
                except OSError:
                    target = "?"
                target = _safe(target)[0]
                try:
                    st = os.stat(de.path)
                except OSError as e:
                    broken = True
                    if e.errno == 40:  # ELOOP
                        res.errors.append(FactError("walk", rel, f"symlink loop ({target})"))
                else:
                    escapes = not _inside(os.path.realpath(de.path), roots)
                if broken or escapes:
                    res.files.append(
                        FileEntry(rel, 0 if broken else st.st_size, "symlink", target, escapes, broken)
                    )
                    continue
            ftype = _type_of(st.st_mode)
            if ftype == "dir":
                res.files.append(FileEntry(rel, 0, "dir", target))
                key = (st.st_dev, st.st_ino)
                if key in seen_dirs:
                    res.errors.append(FactError("walk", rel, f"directory link loop ({target})"))
                    continue
                seen_dirs.add(key)
                if depth + 1 >= max_depth:
                    res.errors.append(
                        FactError("walk", rel, f"directory nesting deeper than {max_depth}: not walked")
                    )
                    continue
                subdirs.append((de.path, rel, depth + 1))
                continue
            lfs, lfs_size = False, None
            if ftype == "file" and 0 < st.st_size < LFS_MAX_SIZE and peeks < MAX_LFS_PEEKS:  # /proc files are size 0
                peeks += 1
                lfs, lfs_size = _lfs(de.path, st.st_size)
            res.files.append(
                FileEntry(
                    rel,
                    st.st_size if ftype == "file" else 0,
                    ftype,
                    target,
                    lfs_pointer=lfs,
                    lfs_size=lfs_size,
                    sparse_hint=ftype == "file" and _sparse(st),
                )
            )
        stack.extend(reversed(subdirs))
    res.files.sort(key=lambda e: e.path)
    return res


def _walk_hf_download(cache_dir: str, res: WalkResult) -> None:
    """Record ``*.incomplete`` files left by an interrupted ``hf download --local-dir``."""
    base = os.path.join(cache_dir, "huggingface", "download")
    todo = [(base, 0)]
    found = 0
    while todo and found < 1000:
        d, depth = todo.pop()
        try:
            with os.scandir(d) as it:
                for de in it:
                    if de.is_dir(follow_symlinks=False) and depth < 8:
                        todo.append((de.path, depth + 1))
                    elif de.name.endswith(".incomplete") and de.is_file(follow_symlinks=False):
                        found += 1
                        rel = os.path.relpath(de.path, os.path.dirname(cache_dir)).replace(os.sep, "/")
                        rel = _safe(rel)[0]
                        try:
                            size = de.stat(follow_symlinks=False).st_size
                        except OSError:
                            size = 0
                        res.files.append(FileEntry(rel, size))
                        res.rel_to_abs[rel] = de.path
                        res.incomplete_downloads.append(rel)
        except OSError:
            continue
