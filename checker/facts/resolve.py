"""Turn what the user typed into the folder to walk: a model folder, a single weight file, a Hugging
Face cache repo (``models--org--name``), or an Ollama store / manifest."""

from __future__ import annotations

import json
import os
from typing import Any

from modelcheck.errors import UsageError
from modelcheck.record import field, record

OLLAMA_MODEL = "application/vnd.ollama.image.model"
MAX_MANIFEST = 1 << 20


@record(frozen=False)
class Resolved:
    root: str  # absolute folder to walk
    name: str
    single_file: str | None = None
    source: str = "local"
    extra: dict[str, Any] = field(default_factory=dict)
    allowed_roots: tuple[str, ...] = ()  # symlink targets inside these are not escapes
    explicit: list[tuple[str, str]] | None = None  # (rel, abs) to stat instead of walking (ollama)
    gguf_paths: tuple[str, ...] = ()  # rel paths to parse as GGUF regardless of suffix
    notes: list[str] = field(default_factory=list)
    picked_file: str | None = None  # PATH named this weight file; its folder is the model checked


def resolve(path: str) -> Resolved:
    if not path or not os.path.lexists(path):
        raise UsageError(f"path does not exist: {path}")
    absp = os.path.abspath(path)
    if os.path.isfile(absp):
        store = _ollama_store_above(absp)
        if store and os.path.commonpath([absp, os.path.join(store, "manifests")]) == os.path.join(
            store, "manifests"
        ):
            return _ollama(store, absp)
        parent, base = os.path.split(absp)
        if os.path.basename(parent) == "blobs" and _is_store(os.path.dirname(parent)):
            owner = _manifest_of_blob(os.path.dirname(parent), base)
            if owner is not None:  # a blob of an Ollama store: the model its manifest describes
                return _ollama(os.path.dirname(parent), owner)
        folder = _folder_of_weight(parent, base)
        if folder is not None:
            return folder
        stem = base.rsplit(".", 1)[0] if "." in base else base
        # an Ollama blob (sha256-<hex>) or any GGUF without the .gguf suffix is still read as GGUF
        sniffed = (base,) if not base.lower().endswith(".gguf") and _magic(absp) == b"GGUF" else ()
        return Resolved(root=parent, name=stem, single_file=base, gguf_paths=sniffed)
    if not os.path.isdir(absp):
        raise UsageError(f"not a file or folder: {path}")
    base = os.path.basename(absp.rstrip(os.sep))
    if _is_store(absp):
        return _ollama(absp, None)
    if _is_store(os.path.join(absp, "models")):  # ~/.ollama, the folder the ollama image mounts
        return _ollama(os.path.join(absp, "models"), None)
    store = _ollama_store_above(absp)
    if store:
        return _ollama(store, absp)
    pair = _ollama_pair(absp)
    if pair is not None:
        return pair
    if base.startswith("models--") and os.path.isdir(os.path.join(absp, "snapshots")):
        return _hf_cache(absp, None)
    parent = os.path.dirname(absp)
    if os.path.basename(parent) == "snapshots" and os.path.basename(os.path.dirname(parent)).startswith(
        "models--"
    ):
        return _hf_cache(os.path.dirname(parent), absp)
    return Resolved(root=absp, name=base)


def _magic(p: str) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(4)
    except OSError:
        return b""


# Files that make a folder a complete model an engine loads as a whole (vLLM/transformers read config.json,
# Mistral-format loaders params.json, diffusers model_index.json, PEFT adapter_config.json).
_MODEL_MARKERS = ("config.json", "params.json", "model_index.json", "adapter_config.json")
_FOLDER_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth")


def _folder_of_weight(parent: str, base: str) -> Resolved | None:
    """PATH names one weight file of a complete model folder (a shard, consolidated.safetensors,
    pytorch_model.bin): engines load the folder, never one shard, so the folder is the model.

    A single-file checkpoint (SD WebUI/ComfyUI .safetensors, a .gguf for llama.cpp) stays a file: only a
    folder that carries a model marker (config.json, params.json, ...) next to the file is taken."""
    if not base.lower().endswith(_FOLDER_WEIGHTS):
        return None
    if not any(os.path.isfile(os.path.join(parent, m)) for m in _MODEL_MARKERS):
        return None
    return Resolved(root=parent, name=os.path.basename(parent.rstrip(os.sep)) or base,
                    notes=[f"PATH named {base}, one weight file of this model folder: the folder is checked"],
                    picked_file=base)


# -- Hugging Face cache -------------------------------------------------------------------------


def _hf_cache(repo_dir: str, snapshot: str | None) -> Resolved:
    kind_org_name = os.path.basename(repo_dir).split("--")
    name = "/".join(kind_org_name[1:]) if len(kind_org_name) > 1 else os.path.basename(repo_dir)
    extra: dict[str, Any] = {"hf_cache_repo": repo_dir}
    notes: list[str] = []
    if snapshot is None:
        rev = None
        ref = os.path.join(repo_dir, "refs", "main")
        try:
            if not os.path.isfile(ref):  # a FIFO would block
                raise FileNotFoundError(ref)
            with open(ref, encoding="utf-8") as f:
                rev = f.read(200).strip()
        except (OSError, UnicodeDecodeError):
            notes.append("refs/main missing: picked the most recent snapshot")
        snaps_dir = os.path.join(repo_dir, "snapshots")
        if rev and os.path.isdir(os.path.join(snaps_dir, rev)):
            snapshot = os.path.join(snaps_dir, rev)
            extra["ref"] = "main"
        else:
            try:
                snaps = [e for e in os.scandir(snaps_dir) if e.is_dir()]
            except OSError:
                snaps = []
            if not snaps:
                raise UsageError(f"Hugging Face cache folder has no snapshots: {repo_dir}")
            if rev:
                notes.append(f"refs/main points to {rev[:12]} which is not in snapshots/")
            snapshot = max(snaps, key=lambda e: (e.stat().st_mtime, e.name)).path
        if len(os.listdir(snaps_dir)) > 1:
            extra["hf_cache_snapshots"] = sorted(os.listdir(snaps_dir))
    extra["revision"] = os.path.basename(snapshot)
    if notes:
        extra["resolve_notes"] = notes
    return Resolved(root=snapshot, name=name, source="hf-cache", extra=extra, allowed_roots=(repo_dir,))


# -- Ollama -------------------------------------------------------------------------------------


def _is_store(d: str) -> bool:
    return os.path.isdir(os.path.join(d, "manifests")) and os.path.isdir(os.path.join(d, "blobs"))


def _manifest_of_blob(store: str, blob: str) -> str | None:
    """The manifest (the "latest" tag first) whose layers include ``blob`` (``sha256-<hex>``)."""
    digest = blob.replace("-", ":", 1)
    found = []
    for m in _manifests_under(os.path.join(store, "manifests")):
        doc = _load_manifest(m)
        if doc and any(isinstance(x, dict) and x.get("digest") == digest for x in doc["layers"]):
            found.append(m)
    found.sort(key=lambda p: (os.path.basename(p) != "latest", p))
    return found[0] if found else None


def _ollama_store_above(p: str) -> str | None:
    cur = p
    for _ in range(8):
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        if os.path.basename(cur) == "manifests" and os.path.isdir(os.path.join(parent, "blobs")):
            return parent
        cur = parent
    return None


def _load_manifest(path: str) -> dict[str, Any] | None:
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_MANIFEST:  # a FIFO would block
            return None
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("layers"), list) else None


def _manifests_under(d: str, limit: int = 500) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(d):
        dirnames.sort()
        for fn in sorted(filenames):
            out.append(os.path.join(dirpath, fn))
            if len(out) >= limit:
                return out
    return out


def _ollama(store: str, where: str | None) -> Resolved:
    mroot = os.path.join(store, "manifests")
    candidates = [where] if where and os.path.isfile(where) else _manifests_under(where or mroot)
    if not candidates:
        raise UsageError(f"Ollama store has no manifests: {store}")
    # Prefer the "latest" tag when a model folder with several tags was given.
    candidates.sort(key=lambda p: (os.path.basename(p) != "latest", p))
    manifest_path = candidates[0]
    rel_manifest = os.path.relpath(manifest_path, store).replace(os.sep, "/")
    parts = rel_manifest.split("/")
    tag = parts[-1]
    model = parts[-2] if len(parts) >= 3 else parts[-1]
    ns = parts[-3] if len(parts) >= 4 else None
    name = f"{model}:{tag}" if ns in (None, "library") else f"{ns}/{model}:{tag}"
    extra: dict[str, Any] = {"ollama_manifest": rel_manifest, "ollama_name": name}
    if len(candidates) > 1:
        extra["ollama_models"] = [os.path.relpath(c, mroot).replace(os.sep, "/") for c in candidates[:50]]
    return _ollama_from_manifest(store, manifest_path, rel_manifest, name, extra, blobs_dir="blobs")


def _ollama_from_manifest(store, manifest_path, rel_manifest, name, extra, blobs_dir) -> Resolved:
    doc = _load_manifest(manifest_path)
    explicit = [(rel_manifest, manifest_path)]
    gguf_paths: list[str] = []
    layers_out = []
    if doc is None:
        extra["ollama_manifest_invalid"] = True
    else:
        for layer in doc.get("layers", [])[:64]:
            if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
                continue
            blob = layer["digest"].replace(":", "-")
            if "/" in blob or blob.startswith("."):
                continue
            rel = f"{blobs_dir}/{blob}" if blobs_dir else blob
            explicit.append((rel, os.path.join(store, rel)))
            media = layer.get("mediaType")
            layers_out.append(
                {"mediaType": media, "digest": layer["digest"], "size": layer.get("size"), "path": rel}
            )
            if media == OLLAMA_MODEL:
                gguf_paths.append(rel)
                extra.setdefault("ollama_model_blob", rel)
    extra["ollama_layers"] = layers_out
    return Resolved(
        root=store, name=name, source="ollama", extra=extra, explicit=explicit, gguf_paths=tuple(gguf_paths)
    )


def _ollama_pair(d: str) -> Resolved | None:
    """A folder holding one Ollama manifest JSON next to its ``sha256-<hex>`` blobs."""
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return None
    if len(names) > 200 or not any(n.startswith(("sha256-", "sha256:")) for n in names):
        return None
    for n in names:
        p = os.path.join(d, n)
        if n.startswith("sha256") or not os.path.isfile(p):
            continue
        doc = _load_manifest(p)
        if doc and any(isinstance(x, dict) and x.get("mediaType") == OLLAMA_MODEL for x in doc["layers"]):
            name = os.path.basename(d)
            extra = {"ollama_manifest": n, "ollama_name": name}
            return _ollama_from_manifest(d, p, n, name, extra, blobs_dir="")
    return None
