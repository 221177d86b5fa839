"""Engine knowledge as data: what a given vLLM (or SGLang / llama.cpp) version accepts.

Everything here is read from ``checker/catalog/vllm_support.yaml`` (facts taken from vLLM sdists, with
their sources) and answered per version. The data samples releases, so a version between two sampled
releases can be *uncertain*: answers carry ``certain`` and the sampled bounds, and rules only raise an
error when the data is certain.

Pure functions over parsed YAML and plain dicts; no model or network I/O. What vLLM *derives* from a model
(max_model_len, layer pattern, quantization, GGUF loading) is the engine view's: ``checker/engines/``.
"""

from __future__ import annotations

import functools
from typing import Any

from modelcheck.model import version_tuple
from modelcheck.record import record

Version = tuple[int, ...]

# vLLM's ModelDType choices (identical 0.6.1 .. 0.33.0) and the aliases it resolves.
DTYPE_ALIASES = {"half": "float16", "float": "float32"}
# Things people pass as --dtype that are quantizations or KV-cache types, with the flag that means them.
NOT_A_DTYPE = {
    "int8": "--quantization (e.g. a w8a8 / GPTQ 8-bit checkpoint) ",
    "int4": "--quantization awq / gptq with a 4-bit checkpoint",
    "fp8": "--quantization fp8 (weights) or --kv-cache-dtype fp8 (KV cache)",
    "fp8_e4m3": "--kv-cache-dtype fp8_e4m3",
    "fp8_e5m2": "--kv-cache-dtype fp8_e5m2",
    "fp4": "--quantization with an NVFP4/MXFP4 checkpoint",
    "nf4": "--quantization bitsandbytes",
    "awq": "--quantization awq",
    "gptq": "--quantization gptq",
    "fp16": "--dtype float16 (or half)",
    "bf16": "--dtype bfloat16",
    "fp32": "--dtype float32",
}
# model_type values whose config/model classes ship inside transformers (CONFIG_MAPPING, transformers
# >= 4.45), so a repo's auto_map is optional: with trust_remote_code=False transformers uses its own
# class (resolve_trust_remote_code: has_local_code). Conservative subset of common LLM types, e.g.
# microsoft/Phi-3-mini-4k-instruct keeps auto_map but serves without --trust-remote-code.
TRANSFORMERS_NATIVE_MODEL_TYPES = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "qwen2_vl", "qwen2_5_vl",
    "phi", "phi3", "phimoe", "gemma", "gemma2", "gemma3", "gemma3_text", "starcoder2", "falcon", "gpt2",
    "gpt_neox", "gptj", "gpt_bigcode", "bloom", "opt", "mpt", "cohere", "olmo", "olmo2", "stablelm", "dbrx",
    "jamba", "granite", "nemotron", "mllama", "llava", "llava_next", "idefics3",
})
# safetensors / torch dtype spellings -> vLLM dtype names
_CKPT_DTYPES = {
    "bf16": "bfloat16", "bfloat16": "bfloat16", "torch.bfloat16": "bfloat16",
    "f16": "float16", "fp16": "float16", "float16": "float16", "half": "float16", "torch.float16": "float16",
    "f32": "float32", "fp32": "float32", "float32": "float32", "float": "float32", "torch.float32": "float32",
}


@functools.lru_cache(maxsize=1)
def data() -> dict[str, Any]:
    """The parsed catalog file (cached). Lazy: only rules that need engine knowledge load it."""
    from modelcheck import datafile  # compiled JSON twin: parsing this YAML takes ~1 s

    return datafile.load("vllm_support.yaml")


def vt(version: str | Version | None) -> Version | None:
    """A version as a 3-tuple (padded), or None."""
    if version is None:
        return None
    t = version if isinstance(version, tuple) else version_tuple(str(version))
    if not t:
        return None
    return tuple(t) + (0,) * max(0, 3 - len(t))


def fmt(v: Version | None) -> str:
    return ".".join(str(x) for x in v) if v else "?"


def sampled_releases() -> tuple[Version, ...]:
    return tuple(sorted(vt(str(r)) for r in data()["sampled_releases"]))  # type: ignore[misc]


# ----------------------------------------------------------------------------------------------
# architectures


@record
class ArchSupport:
    """Whether a vLLM version registers an architecture name."""

    arch: str
    version: str
    status: str  # registered | not-yet | removed | uncertain | unknown
    certain: bool
    added_after: str | None = None  # last sampled release without it (None: before 0.2.0)
    present_since: str | None = None  # first sampled release with it
    gone: str | None = None  # first sampled release where it is absent again
    last_seen: str | None = None
    detail: str = ""


@functools.lru_cache(maxsize=1)
def _arch_entries() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    d = data()
    return ({e["arch"]: e for e in d["all_architectures"]["entries"]},
            {e["arch"]: e for e in d["key_architectures"]["entries"]})


@functools.lru_cache(maxsize=512)
def _arch_row(arch: str) -> dict[str, Any] | None:
    """One architecture's row, built when asked (a check asks for one or two of the ~500)."""
    every, key = _arch_entries()
    e = every.get(arch)
    row = ({"a": e.get("a"), "p": e["p"], "x": bool(e.get("x")), "gone": e.get("gone"),
            "gaps": tuple(str(g) for g in e.get("gaps") or ())} if e is not None else None)
    k = key.get(arch)
    if k is not None:
        if row is None:
            row = {"a": k.get("added_after"), "p": k["present_since"], "x": False, "gone": k.get("absent_from"),
                   "gaps": ()}
        if k.get("last_seen"):
            row["last_seen"] = k["last_seen"]
    if row is not None and row.get("gone") and not row.get("last_seen"):
        gone = vt(str(row["gone"]))
        before = [r for r in sampled_releases() if r < gone]  # type: ignore[operator]
        row["last_seen"] = fmt(before[-1]) if before else None
    return row


def _arch_table() -> dict[str, dict[str, Any]]:
    every, key = _arch_entries()
    return {arch: _arch_row(arch) for arch in {**every, **key}}  # type: ignore[misc]


def known_architectures() -> frozenset[str]:
    every, key = _arch_entries()
    return frozenset(every) | frozenset(key)


def first_release_known(arch: str) -> bool:
    """True when the release that first registered ``arch`` is known exactly, not only bracketed by two
    sampled releases."""
    return bool((_arch_row(arch) or {}).get("x"))


def arch_support(arch: str, version: str | Version | None) -> ArchSupport:
    """Is ``arch`` (config.json architectures[0]) registered in this vLLM version?

    Sampled data: a first release is only known to lie in (added_after, present_since]; removals in
    (last_seen, gone]. Inside such a range the answer is ``uncertain``.
    """
    v = vt(version)
    ver = fmt(v)
    row = _arch_row(arch)
    if row is None:
        return ArchSupport(arch, ver, "unknown", False, detail="not in any sampled vLLM registry")
    a = vt(str(row["a"])) if row["a"] else None
    p = vt(str(row["p"]))
    gone = vt(str(row["gone"])) if row.get("gone") else None
    last = vt(str(row["last_seen"])) if row.get("last_seen") else None
    info = {"added_after": str(row["a"]) if row["a"] else None, "present_since": str(row["p"]),
            "gone": str(row["gone"]) if row.get("gone") else None,
            "last_seen": str(row["last_seen"]) if row.get("last_seen") else None}
    if v is None:
        return ArchSupport(arch, ver, "uncertain", False, **info, detail="no engine version declared")
    if a is not None and v <= a:
        return ArchSupport(arch, ver, "not-yet", True, **info)
    if v < p:  # type: ignore[operator]
        if a is None:  # older than anything sampled
            return ArchSupport(arch, ver, "uncertain", False, **info, detail="older than the sampled releases")
        return ArchSupport(arch, ver, "uncertain", False, **info,
                           detail=f"first registered in a release in ({fmt(a)}, {fmt(p)}]")
    if ver in row["gaps"] or fmt(v) in row["gaps"]:
        return ArchSupport(arch, ver, "removed", True, **info, detail=f"absent from the {ver} registry")
    if gone is not None:
        if v >= gone:
            return ArchSupport(arch, ver, "removed", True, **info)
        if last is not None and v > last:
            return ArchSupport(arch, ver, "uncertain", False, **info,
                               detail=f"removed in a release in ({fmt(last)}, {fmt(gone)}]")
    for g in row["gaps"]:
        gv = vt(g)
        releases = sampled_releases()
        # between a gap and its sampled neighbours we do not know
        idx = releases.index(gv) if gv in releases else -1
        if idx >= 0:
            lo = releases[idx - 1] if idx > 0 else gv
            hi = releases[idx + 1] if idx + 1 < len(releases) else gv
            if lo < v < hi and v != gv:  # type: ignore[operator]
                return ArchSupport(arch, ver, "uncertain", False, **info,
                                   detail=f"absent from sampled {g}, present around it")
    return ArchSupport(arch, ver, "registered", True, **info)


# ----------------------------------------------------------------------------------------------
# GPUs and dtypes


@record
class MinCC:
    cc: int  # major*10+minor
    certain: bool
    note: str


def min_compute_capability(engine: str | None, version: str | Version | None) -> MinCC | None:
    """The engine version's documented minimum compute capability (vLLM: 7.0, 7.5 from 0.20.0)."""
    v = vt(version)
    if engine == "vllm":
        if v is None:
            return None
        if v >= (0, 20, 0):
            return MinCC(75, True, "vLLM >= 0.20.0 documents compute capability 7.5 as the minimum (V100 dropped)")
        if v > (0, 19, 0):
            return MinCC(75, False, "the minimum rose from 7.0 to 7.5 between 0.19.0 and 0.20.0")
        return MinCC(70, True, "vLLM <= 0.19 documents compute capability 7.0 as the minimum")
    if engine == "sglang":
        raw = data()["other_engines"]["sglang"]["min_compute_capability"]
        major, _, minor = str(raw).partition(".")
        return MinCC(int(major) * 10 + int(minor or 0), False, data()["other_engines"]["sglang"]["min_compute_capability_note"])
    return None


def canonical_dtype(value: str | None) -> str | None:
    """vLLM's resolution of --dtype: 'half' -> 'float16'; None for values vLLM does not accept."""
    if value is None:
        return None
    low = str(value).strip().lower()
    valid = set(data()["dtype"]["valid_values"])
    if low not in valid:
        return None
    return DTYPE_ALIASES.get(low, low)


def valid_dtypes() -> tuple[str, ...]:
    return tuple(data()["dtype"]["valid_values"])


def checkpoint_dtype(config: dict[str, Any] | None, dominant_weight_dtype: str | None = None) -> str | None:
    """The dtype vLLM's --dtype auto starts from: config torch_dtype / dtype (text config first), else
    the dominant weight dtype."""
    cfgs: list[dict[str, Any]] = []
    if isinstance(config, dict):
        for key in ("text_config", "llm_config", "language_config"):
            sub = config.get(key)
            if isinstance(sub, dict):
                cfgs.append(sub)
        cfgs.insert(0, config)
    for cfg in cfgs:
        for key in ("torch_dtype", "dtype"):
            val = cfg.get(key)
            if isinstance(val, str) and val.lower() in _CKPT_DTYPES:
                return _CKPT_DTYPES[val.lower()]
    if dominant_weight_dtype and dominant_weight_dtype.lower() in _CKPT_DTYPES:
        return _CKPT_DTYPES[dominant_weight_dtype.lower()]
    return None


def _floor_key(keys: list[str], v: Version) -> str | None:
    best = None
    for k in sorted(keys, key=lambda s: vt(s)):  # type: ignore[arg-type,return-value]
        if vt(k) <= v:  # type: ignore[operator]
            best = k
    return best


def float16_forbidden(model_type: str | None, version: str | Version | None) -> bool:
    """vLLM raises for these model types with float16 (numerical instability)."""
    if not model_type:
        return False
    by = data()["dtype"]["float16_forbidden_model_types"]["by_version"]
    v = vt(version)
    key = _floor_key(list(by), v) if v else None
    if key is None:  # before 0.8.4 or unknown version: the union is the safe answer
        return any(model_type in types for types in by.values())
    return model_type in by[key]


def bf16_auto_fallback(version: str | Version | None) -> bool | None:
    """With --dtype auto and a bf16 checkpoint on a GPU without bf16: does this version fall back to
    float16 by itself (True), refuse to start (False), or do we not know (None)?"""
    # vllm/config.py _get_and_verify_dtype @0.9.0: "Falling back to %s for compatibility" (the
    # platform's supported_dtypes[0], float16 on T4 / V100); absent @0.8.5, where the worker raises
    # "Bfloat16 is only supported on GPUs with compute capability of at least 8.0".
    v = vt(version)
    if v is None:
        return None
    return v >= (0, 9, 0)


# ----------------------------------------------------------------------------------------------
# quantization

_QUANT_ALIASES = {
    "auto_round": "auto-round", "intel/auto-round": "auto-round", "compressed_tensors": "compressed-tensors",
    "bnb": "bitsandbytes", "nvfp4": "modelopt_fp4",
}


def quant_method_from_config(config: dict[str, Any] | None) -> str | None:
    """config.json quantization_config (or text_config's) -> the vLLM method name it selects."""
    if not isinstance(config, dict):
        return None
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        for key in ("text_config", "llm_config"):
            sub = config.get(key)
            if isinstance(sub, dict) and isinstance(sub.get("quantization_config"), dict):
                qc = sub["quantization_config"]
                break
    if not isinstance(qc, dict):
        return None
    method = qc.get("quant_method")
    if not isinstance(method, str):
        return None
    method = normalize_quant_method(method)
    if method == "modelopt":
        algo = str(qc.get("quant_algo") or "").upper()
        if "FP4" in algo:
            return "modelopt_fp4"
    return method


def normalize_quant_method(method: str) -> str:
    low = method.strip().lower()
    return _QUANT_ALIASES.get(low, low)


@record
class QuantSupport:
    method: str
    version: str
    present: bool | None  # None: uncertain between sampled releases
    min_cc: int | None  # the stricter bound when uncertain
    min_cc_low: int | None  # the looser bound (equal to min_cc when certain)
    columns: tuple[str, ...]  # sampled release(s) the answer came from
    known: bool  # method name appears anywhere in the data
    note: str = ""


def _cell(row: list[Any], idx: int) -> tuple[bool, int | None]:
    val = row[idx]
    if val == "-":
        return False, None
    return True, (int(val) if isinstance(val, int) and val >= 0 else None)


def quant_support(method: str, version: str | Version | None) -> QuantSupport:
    """Is the quantization method in this vLLM release, and its minimum compute capability."""
    method = normalize_quant_method(method)
    q = data()["quantization"]
    cols = [str(c) for c in q["min_compute_capability"]["columns"]]
    rows = q["min_compute_capability"]["rows"]
    listed = {m for vals in q["valid_values_by_version"].values() for m in vals}
    known = method in rows or method in listed
    v = vt(version)
    ver = fmt(v)
    if method not in rows:
        # in the valid lists but without a capability row: presence only
        key = _floor_key(list(q["valid_values_by_version"]), v) if v else None
        present = (method in q["valid_values_by_version"][key]) if key else None
        return QuantSupport(method, ver, present if known else None, None, None, (key,) if key else (), known)
    row = rows[method]
    gone = (q.get("removed_exact") or {}).get(method)
    if gone and v is not None:
        if v >= vt(str(gone["absent_from"])):  # type: ignore[operator]
            return QuantSupport(method, ver, False, None, None, (str(gone["absent_from"]),), True,
                                f"removed in {gone['absent_from']} (last in {gone['last_present']})")
        if v <= vt(str(gone["last_present"])) and v > vt(cols[-2]):  # type: ignore[operator]
            present, cc = _cell(row, len(cols) - 2)
            return QuantSupport(method, ver, present, cc, cc, (cols[-2], str(gone["last_present"])), True)
    if v is None:
        return QuantSupport(method, ver, None, None, None, (), True, "no engine version declared")
    cvs = [vt(c) for c in cols]
    if v in cvs:
        i = cvs.index(v)
        present, cc = _cell(row, i)
        return QuantSupport(method, ver, present, cc, cc, (cols[i],), True)
    lo = max((i for i, c in enumerate(cvs) if c < v), default=None)  # type: ignore[operator]
    hi = min((i for i, c in enumerate(cvs) if c > v), default=None)  # type: ignore[operator]
    if lo is None:
        present, cc = _cell(row, hi)  # type: ignore[arg-type]
        return QuantSupport(method, ver, present or None, cc, cc, (cols[hi],), True, "older than the sampled releases")  # type: ignore[index]
    if hi is None:  # newer than the newest sample: assume the newest
        present, cc = _cell(row, lo)
        return QuantSupport(method, ver, present, cc, cc, (cols[lo],), True, f"newer than {cols[lo]}; assumed as {cols[lo]}")
    p1, c1 = _cell(row, lo)
    p2, c2 = _cell(row, hi)
    present = p1 if p1 == p2 else None
    ccs = [c for c in (c1, c2) if c is not None]
    return QuantSupport(method, ver, present, max(ccs) if ccs else None, min(ccs) if ccs else None,
                        (cols[lo], cols[hi]), True,
                        "" if p1 == p2 and c1 == c2 else f"between sampled {cols[lo]} and {cols[hi]}")


def quant_methods(version: str | Version | None) -> tuple[str, ...]:
    """--quantization values of the nearest sampled release at or below ``version``."""
    by = data()["quantization"]["valid_values_by_version"]
    v = vt(version)
    key = _floor_key(list(by), v) if v else None
    return tuple(by[key]) if key else ()


def quant_act_dtypes(method: str, version: str | Version | None) -> tuple[tuple[str, ...] | None, str | None]:
    """get_supported_act_dtypes() for the method, from the nearest sampled release (0.8.4 or 0.14.0)."""
    by = data()["quantization"]["supported_activation_dtypes"]
    v = vt(version)
    key = _floor_key(list(by), v) if v else None
    key = key or (min(by, key=lambda s: vt(s)) if by else None)  # type: ignore[arg-type,return-value]
    if key is None:
        return None, None
    vals = by[key].get(normalize_quant_method(method))
    return (tuple(vals) if vals else None), key


def marlin_variant(method: str) -> str | None:
    """vLLM upgrades awq/gptq checkpoints to their Marlin kernels when the GPU allows it."""
    return {"awq": "awq_marlin", "gptq": "gptq_marlin"}.get(normalize_quant_method(method))


def effective_quant_method(method: str, gpu_cc: int | None, version: str | Version | None, explicit: bool) -> str:
    """The method vLLM will run: an awq/gptq checkpoint becomes awq_marlin/gptq_marlin when the GPU
    meets the Marlin minimum and the user did not force --quantization awq/gptq."""
    method = normalize_quant_method(method)
    mv = marlin_variant(method)
    if explicit or mv is None or gpu_cc is None:
        return method
    s = quant_support(mv, version)
    if s.present and s.min_cc is not None and gpu_cc >= s.min_cc:
        return mv
    return method


# ----------------------------------------------------------------------------------------------
# other engines


def engine_info(engine: str | None) -> dict[str, Any]:
    """What we know about SGLang / llama.cpp (flags, defaults, rules), or {}."""
    if not engine:
        return {}
    return dict(data().get("other_engines", {}).get(engine, {}))


def default_port(engine: str | None) -> int | None:
    if engine == "vllm":
        return 8000
    info = engine_info(engine)
    port = info.get("default_port")
    return int(port) if isinstance(port, int) else None


__all__ = [
    "ArchSupport", "MinCC", "QuantSupport", "arch_support", "bf16_auto_fallback", "canonical_dtype",
    "checkpoint_dtype", "data", "default_port", "effective_quant_method",
    "engine_info", "float16_forbidden", "known_architectures", "marlin_variant", "min_compute_capability",
    "normalize_quant_method", "quant_act_dtypes", "quant_method_from_config", "quant_methods",
    "quant_support", "valid_dtypes",
]
