"""Facts: the only code that reads a model folder. ``gather(path)`` -> ModelFacts.

Stats the tree (bounded), reads small JSON/YAML/text configs (size-capped), safetensors and GGUF
*headers* (our own bounded parsers), and code in any file (modelcheck.facts.scan: pickle opcodes, never unpickled).
Bad content never raises: it becomes a FactError inside the facts.
"""

from __future__ import annotations

import gc
import os
import re
from typing import Any

from modelcheck.facts import gguf as _gguf
from modelcheck.facts import jsonfile
from modelcheck.facts import safetensors as _st
from modelcheck.facts.classify import classify
from modelcheck.facts.resolve import resolve
from modelcheck.facts.scan import scan_folder
from modelcheck.facts.walk import WalkResult, _type_of, walk
from modelcheck.model import (
    FactError,
    FileEntry,
    GGUFInfo,
    ModelFacts,
    SafetensorsHeader,
    SourceInfo,
    WeightsSummary,
)
from modelcheck.record import replace

__all__ = ["gather"]

MAX_JSON_FILES = 200
MAX_YAML_FILES = 20
MAX_SAFETENSORS = 4096
MAX_GGUF = 64
MAX_TENSORS_TOTAL = 200_000  # the largest real checkpoints (1T-parameter MoE) hold ~150k tensors
OLLAMA_JSON_MEDIA = ("application/vnd.ollama.image.params", "application/vnd.docker.container.image.v1+json")
OLLAMA_TEXT_MEDIA = ("application/vnd.ollama.image.template", "application/vnd.ollama.image.system")


def gather(path: str, *, max_entries: int = 20000, online: bool = False, verify: bool = False) -> ModelFacts:
    """Gather every fact about the model at ``path`` (folder, single file, HF cache repo, Ollama store, or
    a hub reference: the local cache snapshot, or with ``online`` a metadata-only mirror).

    ``verify`` also hashes every weight file (reads all weight data: only on request) into ``hashes``.
    Raises modelcheck.errors.UsageError only when the path cannot be found.
    """
    from modelcheck.facts.source import locate

    local = locate(path, online=online)
    # Headers of 100k+ tensors create millions of small acyclic objects; the cyclic GC would rescan them
    # over and over (a third of the parse time), so it is paused while reading.
    paused = gc.isenabled()
    gc.disable()
    try:
        facts = _gather(local, max_entries)
    finally:
        if paused:
            gc.enable()
    if local != path:
        facts = replace(facts, input_path=path)
    if verify:
        from modelcheck.facts.hashes import tty_progress, verify_hashes

        facts = replace(facts, hashes=tuple(verify_hashes(facts, online=online, progress=tty_progress())))
    return facts


def _gather(path: str, max_entries: int) -> ModelFacts:
    r = resolve(path)
    if r.explicit is not None:
        w = _stat_explicit(r.explicit)
    else:
        w = walk(
            r.root,
            max_entries=max_entries,
            only=(r.single_file,) if r.single_file else None,
            allowed_roots=r.allowed_roots,
        )
    errors: list[FactError] = list(w.errors)
    index_skipped: list[str] = []
    readable = [f for f in w.files if f.type == "file" and not f.lfs_pointer and f.path in w.rel_to_abs]

    json_files, yaml_files, text_files = _read_configs(readable, w, errors, r.extra)
    heads: dict[str, bytes] = {}  # first bytes the safetensors reader read: the code scan sniffs those
    st_headers = _read_safetensors(readable, w, errors, heads)
    gguf_infos = _read_gguf(readable, w, errors, r.gguf_paths)
    _check_index(json_files, errors)
    pickles, code_scan, scan_errors = scan_folder(
        readable, w.rel_to_abs, r.root, json_files, walk_truncated=w.truncated, walk_errors=w.errors, heads=heads
    )
    errors.extend(scan_errors)

    files = tuple(w.files)
    weights = _summarise(files, json_files, st_headers, gguf_infos, index_skipped, errors)
    classification = classify(
        name=r.name,
        files=files,
        json_files=json_files,
        yaml_files=yaml_files,
        text_files=text_files,
        safetensors=st_headers,
        gguf=gguf_infos,
        source=r.source,
        extra=r.extra,
        picked_file=r.picked_file,
    )
    return ModelFacts(
        input_path=path,
        root=r.root,
        name=r.name,
        single_file=r.single_file,
        files=files,
        walk_truncated=w.truncated,
        json_files=json_files,
        safetensors=st_headers,
        gguf=gguf_infos,
        pickles=pickles,
        errors=tuple(errors),
        weights=weights,
        classification=classification,
        yaml_files=yaml_files,
        text_files=text_files,
        source=r.source,
        source_info=SourceInfo.from_resolver(r.extra),
        incomplete_downloads=tuple(w.incomplete_downloads),
        weights_not_in_index=tuple(index_skipped),
        scan=code_scan,
    )


def _stat_explicit(items: list[tuple[str, str]]) -> WalkResult:
    w = WalkResult()
    for rel, abs_path in items:
        try:
            st = os.stat(abs_path)
        except OSError as e:
            w.errors.append(FactError("unreadable", rel, f"missing or unreadable: {e.strerror or e}"))
            continue
        ftype = _type_of(st.st_mode)  # a FIFO or device blob must never be opened
        w.files.append(FileEntry(rel, st.st_size if ftype == "file" else 0, ftype))
        w.rel_to_abs[rel] = abs_path
    return w


def _depth(p: str) -> int:
    return p.count("/")


def _read_configs(readable, w, errors, rextra):
    json_files: dict[str, Any] = {}
    yaml_files: dict[str, Any] = {}
    text_files: dict[str, str] = {}
    media = {layer["path"]: layer.get("mediaType") for layer in rextra.get("ollama_layers", [])}
    n_json = n_yaml = 0
    for f in readable:
        name, depth, abs_path = f.name, _depth(f.path), w.rel_to_abs[f.path]
        m = media.get(f.path)
        if f.path == rextra.get("ollama_manifest") or m in OLLAMA_JSON_MEDIA:
            val, err = jsonfile.read_json(abs_path, f.path, f.size, limit=1 << 20)
        elif m in OLLAMA_TEXT_MEDIA:
            val, err = jsonfile.read_text(abs_path, f.path, f.size)
            if val is not None:
                text_files[f.path] = val
            continue
        elif f.suffix == ".json" and n_json < MAX_JSON_FILES:
            if name == "tokenizer.json":
                if f.size > jsonfile.TOKENIZER_PARSE_LIMIT:
                    continue  # recorded in files; parsing 10+ MB of vocab buys the rules nothing
                val, err = jsonfile.read_json(abs_path, f.path, f.size)
            elif (
                (name in jsonfile.KNOWN_JSON and depth <= 2)
                or (name.endswith(".index.json") and depth <= 2)
                or depth <= 1
                and f.size <= (1 << 20)
                and name not in ("vocab.json",)
            ):
                val, err = jsonfile.read_json(abs_path, f.path, f.size)
            else:
                continue
            n_json += 1
        elif f.suffix in (".yaml", ".yml") and depth <= 1 and n_yaml < MAX_YAML_FILES:
            n_yaml += 1
            val, err = jsonfile.read_yaml(abs_path, f.path, f.size)
            if err:
                errors.append(err)
            else:
                yaml_files[f.path] = val
            continue
        elif name in jsonfile.TEXT_NAMES and depth <= 2:
            val, err = jsonfile.read_text(abs_path, f.path, f.size)
            if val is not None:
                text_files[f.path] = val
            if err:
                errors.append(err)
            continue
        elif name.lower() == "readme.md" and depth == 0:
            val, err = jsonfile.read_text(abs_path, f.path, f.size, limit=64 * 1024)
            fm = jsonfile.front_matter(val) if val else None
            if fm is not None:
                text_files[f.path + "#front-matter"] = fm
                parsed, _ = jsonfile.parse_yaml_text(fm, f.path)
                if isinstance(parsed, dict):
                    yaml_files[f.path + "#front-matter"] = parsed
            continue
        else:
            continue
        if err:
            errors.append(err)
        else:
            json_files[f.path] = val
    return json_files, yaml_files, text_files


def _read_safetensors(readable, w, errors, heads: dict[str, bytes] | None = None) -> tuple[SafetensorsHeader, ...]:
    out = []
    kept = 0  # tensor infos held in memory (~300 bytes each), bounded across all shards
    for f in readable:
        if f.suffix != ".safetensors" or f.path.startswith(".cache/"):
            continue
        if len(out) >= MAX_SAFETENSORS:
            errors.append(
                FactError("safetensors", "", f"more than {MAX_SAFETENSORS} safetensors files: rest not read")
            )
            break
        if kept > MAX_TENSORS_TOTAL:
            errors.append(FactError("safetensors", "", f"more than {MAX_TENSORS_TOTAL:,} tensors in total: rest not read"))
            break
        h, err = _st.parse_file(w.rel_to_abs[f.path], f.path, f.size, heads)
        if err:
            errors.append(err)
        else:
            out.append(h)
            kept += len(h.tensors)
    return tuple(out)


def _read_gguf(readable, w, errors, extra_paths) -> tuple[GGUFInfo, ...]:
    out = []
    for f in readable:
        if f.suffix != ".gguf" and f.path not in extra_paths:
            continue
        if len(out) >= MAX_GGUF:
            errors.append(FactError("gguf", "", f"more than {MAX_GGUF} GGUF files: rest not read"))
            break
        g, err = _gguf.parse_file(w.rel_to_abs[f.path], f.path, f.size)
        if err:
            errors.append(err)
        else:
            out.append(g)
    return tuple(out)


def _check_index(json_files, errors) -> None:
    for rel, doc in json_files.items():
        if not rel.endswith(".index.json") or rel.endswith("model_index.json"):
            continue
        wm = doc.get("weight_map") if isinstance(doc, dict) else None
        if not isinstance(wm, dict) or not all(isinstance(v, str) for v in wm.values()):
            errors.append(
                FactError("index", rel, "weight_map is missing or does not map tensor names to file names")
            )


def _summarise(files, json_files, st_headers, gguf_infos, skipped: list[str], errors=()) -> WeightsSummary:
    counted: list[SafetensorsHeader] = []
    by_dir: dict[str, set[str]] = {}
    declared_total: dict[str, int] = {}  # index path -> metadata.total_size
    for rel, doc in json_files.items():
        if (
            rel.endswith(".safetensors.index.json")
            and isinstance(doc, dict)
            and isinstance(doc.get("weight_map"), dict)
        ):
            d = rel.rsplit("/", 1)[0] if "/" in rel else ""
            by_dir.setdefault(d, set()).update(v for v in doc["weight_map"].values() if isinstance(v, str))
            meta = doc.get("metadata")
            size = meta.get("total_size") if isinstance(meta, dict) else None
            if isinstance(size, str) and size.isdigit():
                size = int(size)
            if isinstance(size, (int, float)) and not isinstance(size, bool) and size > 0:
                declared_total[rel] = int(size)
    for h in st_headers:
        d, _, base = h.path.rpartition("/")
        if d in by_dir and base not in by_dir[d]:
            skipped.append(h.path)
            continue
        counted.append(h)
    dtype_bytes: dict[str, int] = {}
    from_sizes = False
    total = params = ntensors = 0
    used: list[str] = []
    for header in (*counted, *gguf_infos):  # safetensors and GGUF headers both list their tensors
        used.append(header.path)
        for t in header.tensors:
            dtype_bytes[t.dtype] = dtype_bytes.get(t.dtype, 0) + t.nbytes
            total += t.nbytes
            params += t.numel
            ntensors += 1
    if counted and gguf_infos:
        fmt = "mixed"
    elif counted:
        fmt = "safetensors"
    elif gguf_infos:
        fmt = "gguf"
    else:
        fmt = "none"
        for suffixes, name in (((".bin", ".pt", ".pth", ".ckpt"), "pytorch"), ((".onnx",), "onnx")):
            chosen = [
                f
                for f in files
                if f.type == "file"
                and f.suffix in suffixes
                and not f.lfs_pointer
                and not f.path.startswith(".cache/")
                and f.name != "training_args.bin"
            ]
            if chosen:
                # No tensor headers to read: the file sizes are the best figure (data dominates).
                fmt = name
                total = sum(f.size for f in chosen)
                used = [f.path for f in chosen]
                from_sizes = True
                break
    dominant = max(dtype_bytes, key=lambda k: (dtype_bytes[k], k)) if dtype_bytes else None
    mi = json_files.get("model_index.json")
    components = frozenset(k for k, v in mi.items() if not k.startswith("_") and isinstance(v, list)) if isinstance(mi, dict) else frozenset()
    declared, source, unknown, unread = _shortfall(files, by_dir, declared_total, counted, gguf_infos, fmt, errors,
                                                   components)
    if declared is None and unknown is None and fmt == "none" and not dtype_bytes:
        unknown = "no weight files in the folder"
    return WeightsSummary(fmt, total, params, dtype_bytes, dominant, ntensors, tuple(used),
                          from_file_sizes=from_sizes, declared_bytes=declared, declared_source=source, unknown_reason=unknown,
                          unread=tuple(unread))


_WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt")
_NOT_WEIGHTS = ("training_args.bin", "optimizer.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "openvino_model.bin")
_VARIANT = re.compile(r"\.(fp16|bf16|fp32|non_ema|ema)(?=\.[a-z]+$|-\d{5}-of-)")


def _loaded_weights(present, components: frozenset[str] = frozenset()) -> set[str]:
    """The weight files a loader would read, the way they choose: safetensors over .bin/.pt in a folder
    (vLLM, transformers, diffusers), no ``.fp16``-style variant when the plain file is there (diffusers
    loads one variant), nothing at the root of a diffusers pipeline (its components live in sub-folders)."""
    files = [f for f in present.values()
             if f.suffix in _WEIGHT_SUFFIXES and not f.path.startswith(".cache/") and f.name not in _NOT_WEIGHTS]
    by_dir: dict[str, list] = {}
    for f in files:
        by_dir.setdefault(f.path.rpartition("/")[0], []).append(f)
    pipeline = "model_index.json" in present
    out: set[str] = set()
    for d, group in by_dir.items():
        if pipeline and (d == "" or (components and d.split("/")[0] not in components)):
            continue
        if any(f.suffix == ".safetensors" for f in group):
            group = [f for f in group if f.suffix in (".safetensors", ".gguf")]
        names = {f.name for f in group}
        for f in group:
            plain = _VARIANT.sub("", f.name)
            if plain != f.name and plain in names:
                continue
            out.add(f.path)
    return out


def _shortfall(files, by_dir, declared_total, counted, gguf_infos, fmt, errors, components=frozenset()):
    """(declared_bytes, declared_source, unknown_reason, unread files) for weights that were not read.

    Unknown is not zero: a shard that is a git-lfs pointer, missing or unreadable leaves the read total
    short. The index's ``metadata.total_size`` (exact tensor bytes, written with the shards) is preferred,
    then the sizes the git-lfs pointers promise (file sizes, headers included); with neither the size is
    unknown. A GGUF with no tensors (vocab-only) holds no weights at all."""
    present = {f.path: f for f in files if f.type in ("file", "symlink")}
    read = {h.path for h in counted} | {g.path for g in gguf_infos}
    bad = {e.path for e in errors if e.kind in ("safetensors", "gguf", "unreadable")}
    unread: list[str] = []
    for d, shards in sorted(by_dir.items()):
        for s in sorted(shards):
            p = f"{d}/{s}" if d else s
            if p not in read:
                unread.append(p)
    indexed = {p for d, shards in by_dir.items() for p in ((f"{d}/{s}" if d else s) for s in shards)}
    for path in sorted(_loaded_weights(present, components) - indexed):
        f = present[path]
        if f.lfs_pointer or f.path in bad or f.broken_link:
            unread.append(f.path)
    if unread:
        idx_dirs = {(p.rsplit("/", 1)[0] if "/" in p else "") for p in unread if p in indexed}
        by_index = {rel: size for rel, size in declared_total.items()
                    if (rel.rsplit("/", 1)[0] if "/" in rel else "") in idx_dirs}
        others = [p for p in unread if p not in indexed]
        if idx_dirs and len(by_index) == len(idx_dirs):
            # every short index declares its total: read bytes of the other weights + the declared totals
            outside = sum(t.nbytes for h in counted if (h.path.rsplit("/", 1)[0] if "/" in h.path else "") not in idx_dirs
                          for t in h.tensors) + sum(t.nbytes for g in gguf_infos for t in g.tensors)
            lfs = [present[p].lfs_size for p in others]
            if all(isinstance(x, int) for x in lfs):
                src = " + ".join(f"{rel} metadata.total_size" for rel in sorted(by_index))
                return outside + sum(by_index.values()) + sum(lfs), src + (" + git-lfs pointer sizes" if lfs else ""), None, unread
        lfs_sizes = [present[p].lfs_size if p in present and present[p].lfs_pointer else None for p in unread]
        if all(isinstance(x, int) for x in lfs_sizes):
            read_bytes = sum(t.nbytes for h in (*counted, *gguf_infos) for t in h.tensors)
            return read_bytes + sum(lfs_sizes), "git-lfs pointer sizes (file sizes, headers included)", None, unread
        missing = [p for p, x in zip(unread, lfs_sizes) if x is None]
        why = "missing" if all(p not in present for p in missing) else "missing or unreadable"
        return None, None, (f"{len(missing)} weight file(s) {why} ({', '.join(missing[:3])}"
                            f"{' ...' if len(missing) > 3 else ''}) and no declared total size"), unread
    if gguf_infos and not counted and not any(g.tensors for g in gguf_infos):
        return None, None, "the GGUF file(s) hold no tensors (vocab-only: tokenizer and hyper-parameters)", unread
    return None, None, None, unread
