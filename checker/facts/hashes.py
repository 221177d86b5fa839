"""Integrity on request (``--verify``): hash weight files and compare with the sha256 they should have.

Expected hashes come from, in order:

1. the Hugging Face cache itself: a snapshot file is a symlink into ``blobs/`` and an LFS blob's file
   name IS its sha256 (64 hex digits); small git files are named by their git blob sha1 (40 hex);
2. a ``<file>.sha256`` sidecar next to the file (first hex token, ``sha256sum`` format);
3. with ``online=True``: the Hub's file metadata (``HfApi.model_info(files_metadata=True)``, lazy import).

Off by default: hashing reads every byte of the weights, unlike the rest of modelcheck.
``modelcheck.facts.gather(path, verify=True)`` stores the results in ``ModelFacts.hashes``; rule SEC011
reports mismatches.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable

from modelcheck.model import HashResult, ModelFacts

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".pkl", ".npz", ".npy",
                   ".h5", ".keras", ".msgpack", ".joblib", ".model", ".data")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_CHUNK = 8 * 1024 * 1024

Progress = Callable[[str, int, int], None]  # (path, bytes done in this file, file size)


def _hf_blob_reference(abs_path: str) -> tuple[str, str] | None:
    """(algorithm, hex) from the blob a HF-cache snapshot link points to."""
    if not os.path.islink(abs_path):
        return None
    real = os.path.realpath(abs_path)
    name = os.path.basename(real)
    if os.path.basename(os.path.dirname(real)) != "blobs":
        return None
    if _HEX64.match(name):
        return "sha256", name
    if _HEX40.match(name):
        return "git-sha1", name
    return None


def _sidecar_reference(abs_path: str) -> str | None:
    side = abs_path + ".sha256"
    try:
        with open(side, encoding="utf-8", errors="replace") as fh:
            text = fh.read(4096)
    except OSError:
        return None
    m = re.search(r"\b([0-9a-fA-F]{64})\b", text)
    return m.group(1).lower() if m else None


def _hub_references(facts: ModelFacts, repo_id: str | None, revision: str | None,
                    endpoint: str | None) -> tuple[dict[str, str], str | None]:
    """{rel_path: sha256} for LFS files on the Hub, or ({}, one-line error)."""
    repo = repo_id or (facts.name if "/" in facts.name else None)
    if not repo:
        return {}, "no Hub repository id known for this model (pass repo_id)"
    rev = revision or facts.source_info.revision
    try:
        from huggingface_hub import HfApi

        info = HfApi(endpoint=endpoint).model_info(repo, revision=rev, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - network, auth, 404: one line, the local checks still stand
        return {}, f"Hub lookup for {repo} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    out: dict[str, str] = {}
    for sib in info.siblings or ():
        lfs = getattr(sib, "lfs", None)
        sha = getattr(lfs, "sha256", None) if lfs is not None else None
        if sha is None and isinstance(lfs, dict):
            sha = lfs.get("sha256")
        if isinstance(sha, str) and _HEX64.match(sha):
            out[sib.rfilename] = sha
    return out, None


def _hash(abs_path: str, algorithm: str, rel: str, size: int, progress: Progress | None) -> str:
    h = hashlib.sha256() if algorithm == "sha256" else hashlib.sha1(b"blob %d\0" % size)
    done = 0
    with open(abs_path, "rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            h.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(rel, done, size)
    return h.hexdigest()


def verify_hashes(
    facts: ModelFacts,
    *,
    online: bool = False,
    progress: Progress | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    endpoint: str | None = None,
    suffixes: tuple[str, ...] = WEIGHT_SUFFIXES,
) -> list[HashResult]:
    """Hash the weight files of ``facts`` and compare with their expected digests (see module doc)."""
    hub: dict[str, str] = {}
    hub_error: str | None = None
    if online:
        hub, hub_error = _hub_references(facts, repo_id, revision, endpoint)
    results: list[HashResult] = []
    for f in facts.files:
        if f.suffix not in suffixes or f.type not in ("file", "symlink") or f.broken_link or f.escapes_root:
            continue
        abs_path = os.path.join(facts.root, f.path)
        ref: tuple[str, str, str] | None = None  # (algorithm, hex, source)
        blob = _hf_blob_reference(abs_path)
        if blob:
            ref = (blob[0], blob[1], "hf-cache")
        elif (side := _sidecar_reference(abs_path)) is not None:
            ref = ("sha256", side, "sidecar")
        elif f.path in hub:
            ref = ("sha256", hub[f.path], "hub")
        try:
            size = os.stat(abs_path).st_size
        except OSError as exc:
            results.append(HashResult(f.path, "error", None, None, None, None, f.size, f"cannot stat: {exc.strerror}"))
            continue
        if ref is None:
            why = hub_error or ("no sha256 known (not in a Hugging Face cache, no .sha256 sidecar"
                                + ("" if online else "; try --online") + ")")
            results.append(HashResult(f.path, "no-reference", None, None, None, None, size, why))
            continue
        algorithm, expected, source = ref
        try:
            actual = _hash(abs_path, algorithm, f.path, size, progress)
        except OSError as exc:
            results.append(HashResult(f.path, "error", algorithm, expected, None, source, size,
                                      f"cannot read: {exc.strerror or exc}"))
            continue
        status = "ok" if actual == expected else "mismatch"
        msg = "" if status == "ok" else f"{algorithm} is {actual[:16]}..., {source} expects {expected[:16]}..."
        results.append(HashResult(f.path, status, algorithm, expected, actual, source, size, msg))
    return results


def tty_progress(stream=None) -> Progress | None:
    """A tqdm progress callback when ``stream`` (stderr) is a terminal, else None."""
    stream = stream or sys.stderr
    if not getattr(stream, "isatty", lambda: False)():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bars: dict[str, tqdm] = {}

    def update(path: str, done: int, total: int) -> None:
        bar = bars.get(path)
        if bar is None:
            bar = bars[path] = tqdm(total=total, unit="B", unit_scale=True, desc=path[-40:], file=stream, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update
