"""Which files to scan for code, in what budget: the one entry point ``modelcheck.facts.gather`` calls.

Every regular file the walk found is sniffed by content (modelcheck.facts.pickle: pickles also inside
zip/tar/compressed/npy containers, whatever the name), plus the files a sharded-weights index lists
wherever they are (also under ``.cache/``, which the walk skips). Keras files get the Lambda-layer scan,
ONNX files the external-data scan. One :class:`~modelcheck.facts.pickle.Budget` bounds the whole run
(pickle opcodes and protobuf messages walked, bytes decompressed); a cap or an exhausted budget is
recorded as a ``FactError(kind="pickle")`` so the gate fails closed (SEC003), never silently.
"""

from __future__ import annotations

import os
import posixpath

from modelcheck.facts.keras import lambda_layers
from modelcheck.facts.onnx import external_locations
from modelcheck.facts.pickle import Budget, claims_pickle, scan_path
from modelcheck.model import CodeScan, FactError, FileEntry, PickleScan

__all__ = ["scan_folder"]

MAX_FILES = 20_000  # files sniffed (the walk stops at its own cap first)
MAX_SEARCH_AFTER_BUDGET = 32  # claimed pickles byte-searched (8 MiB each) once the walk budget is spent
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_FIRST = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin", ".joblib", ".npy", ".npz", ".tar", ".nemo", ".zip")


def index_listed(json_files: dict[str, object]) -> list[str]:
    """Relative paths that ``*.index.json`` weight maps name (inside the folder; escapes are SEC006's)."""
    out: list[str] = []
    for rel, doc in json_files.items():
        if not rel.endswith(".index.json") or not isinstance(doc, dict):
            continue
        wm = doc.get("weight_map")
        if not isinstance(wm, dict):
            continue
        base = posixpath.dirname(rel)
        for v in dict.fromkeys(v for v in wm.values() if isinstance(v, str)):  # each shard once, not per tensor
            if not isinstance(v, str) or not v or v.startswith(("/", "\\")) or "\\" in v or "\0" in v:
                continue
            p = posixpath.normpath(posixpath.join(base, v))
            if p != ".." and not p.startswith(("../", "/")):
                out.append(p)
    return list(dict.fromkeys(out))


def _extra_files(root: str, wanted: list[str], known: dict[str, str]) -> list[tuple[str, str]]:
    """(rel, abs) of index-listed regular files the walk did not list, resolved inside ``root``."""
    real_root = os.path.realpath(root)
    out = []
    for rel in wanted:
        if rel in known:
            continue
        abs_path = os.path.join(root, *rel.split("/"))
        real = os.path.realpath(abs_path)
        if not (real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)):
            continue
        if os.path.isfile(real):
            out.append((rel, abs_path))
    return out


def scan_folder(
    files: list[FileEntry],
    rel_to_abs: dict[str, str],
    root: str,
    json_files: dict[str, object],
    *,
    walk_truncated: bool = False,
    walk_errors: list[FactError] | tuple[FactError, ...] = (),
    budget: Budget | None = None,
    heads: dict[str, bytes] | None = None,
) -> tuple[tuple[PickleScan, ...], CodeScan, list[FactError]]:
    """Scan the folder's files for code. Returns (pickle scans, CodeScan, FactErrors); never raises.
    ``heads``: first bytes of files another reader already opened (each is sniffed from those)."""
    heads = heads or {}
    budget = budget if budget is not None else Budget()
    errors: list[FactError] = []
    limits: list[str] = []
    if walk_truncated:
        limits.append(f"the folder walk stopped after {len(files):,} entries: files after that were not scanned "
                      "for code")
    for e in walk_errors:
        if e.kind == "walk" and "not walked" in e.message:
            limits.append(f"{e.path}: {e.message}, so not scanned for code")
    sizes = {f.path: f.size for f in files}
    cands = [(f.path, rel_to_abs[f.path]) for f in files
             if f.type == "file" and not f.lfs_pointer and f.path in rel_to_abs]
    listed = index_listed(json_files)
    extra = _extra_files(root, listed, rel_to_abs)
    for rel, abs_path in extra:
        sizes[rel] = os.path.getsize(abs_path)
    cands += extra
    listed_set = set(listed)
    # likely pickles first, small before big: an exhausted budget then leaves the fewest files unscanned
    cands.sort(key=lambda c: (not (c[0] in listed_set or claims_pickle(c[0]) or c[0].lower().endswith(_FIRST)),
                              sizes.get(c[0], 0), c[0]))
    if len(cands) > MAX_FILES:
        limits.append(f"{len(cands) - MAX_FILES:,} of {len(cands):,} files were not scanned for code "
                      f"(limit {MAX_FILES:,})")
        cands = cands[:MAX_FILES]
    pickles: list[PickleScan] = []
    torchscript: list[tuple[str, str | None]] = []
    keras: dict[str, tuple[str, ...]] = {}
    onnx: dict[str, tuple[str, ...]] = {}
    sniffed = searched = 0
    left: list[str] = []
    for rel, abs_path in cands:
        if budget.exhausted:
            # no walk left: the first few likely pickles still get the bounded byte search (names a visible
            # payload); every file after that is listed as not scanned
            if searched >= MAX_SEARCH_AFTER_BUDGET or not (rel in listed_set or claims_pickle(rel)):
                left.append(rel)
                continue
            searched += 1
        sniffed += 1
        out = scan_path(abs_path, rel, budget, head=heads.get(rel), size=sizes.get(rel))
        pickles.extend(out.scans)
        errors.extend(out.errors)
        torchscript.extend((rel, None if m == rel else m) for m in out.torchscript)
        lower = rel.lower()
        if lower.endswith(KERAS_SUFFIXES) or out.magic == HDF5_MAGIC:
            found, errs = lambda_layers(abs_path, 0)
            errors.extend(FactError(e.kind, rel, e.message) for e in errs)
            if found:
                keras[rel] = tuple(found)
        if lower.endswith(".onnx"):
            found, errs = external_locations(abs_path, 0, budget=budget)
            errors.extend(FactError(e.kind, rel, e.message) for e in errs)
            if found:
                onnx[rel] = tuple(found)
    if left:
        limits.append(f"{budget.describe()}: {len(left):,} files were not scanned for code "
                      f"({', '.join(left[:3])}{' ...' if len(left) > 3 else ''})")
    errors.extend(FactError("pickle", "", msg) for msg in limits)
    scan = CodeScan(
        files_sniffed=sniffed,
        opcodes=budget.opcodes_used,
        bytes_read=budget.bytes_used,
        limits=tuple(limits),
        keras_lambda=keras,
        onnx_external=onnx,
        torchscript=tuple(dict.fromkeys(torchscript)),
    )
    return tuple(pickles), scan, errors
