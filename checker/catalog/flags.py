"""Which command-line flags a serving engine's release accepts (vLLM, SGLang, llama-server).

Data: ``engine_flags.yaml`` (compiled twin in ``_compiled/``), extracted from each release's own sources by
``tools/extract_engine_flags.py``. Pure functions, no I/O beyond reading that file once:

- ``known_flags(engine, version)``: every option string the release's parser registers (short aliases and
  ``--no-X`` forms included).
- ``check_flag(engine, version, flag)`` -> ``FlagCheck(ok, suggestion)``: is ``flag`` accepted the way the
  engine's parser would accept it (vLLM: ``--max_model_len`` for ``--max-model-len``, ``--x.key`` for a JSON
  argument, ``-O3``; argparse engines: a unique prefix of a long option), with a did-you-mean when not.
- ``flag_releases(engine, version)`` -> which release(s) the answer comes from and why (newer than the newest
  known, between two extracted releases, no version given).

A version between two extracted releases is judged against both (a flag either knows is accepted): a gate
must not reject what the engine may accept. No version means the newest release we know; llama.cpp images
carry no version we can map to a llama.cpp build, so for llama.cpp every extracted snapshot counts.
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

__all__ = [
    "ENGINE_ALIASES",
    "FlagCheck",
    "FlagReleases",
    "canonical_flag",
    "check_flag",
    "engines",
    "flag_releases",
    "known_flags",
    "normalize_engine",
    "releases",
]

ENGINE_ALIASES = {
    "vllm": "vllm",
    "sglang": "sglang",
    "llama.cpp": "llama.cpp",
    "llama-cpp": "llama.cpp",
    "llamacpp": "llama.cpp",
    "llama-server": "llama.cpp",
}


class FlagCheck(NamedTuple):
    ok: bool
    suggestion: str | None  # did-you-mean (not ok), or the full option an abbreviation stands for (ok)


class FlagReleases(NamedTuple):
    engine: str
    releases: tuple[str, ...]  # the extracted release(s) the answer is built from
    note: str  # "" when the version is an extracted release


@functools.lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    from modelcheck import datafile

    return datafile.load("engine_flags.yaml")["engines"]


def normalize_engine(engine: str) -> str | None:
    """'vllm' / 'llama-server' / 'SGLang' -> the engine key in the data; None when we hold no flag list."""
    return ENGINE_ALIASES.get(str(engine or "").strip().lower())


def engines() -> tuple[str, ...]:
    return tuple(_data())


def _vkey(version: str) -> tuple[int, ...]:
    """'0.13.0rc2' sorts just below '0.13.0'; '0.4.6.post5' just above '0.4.6'."""
    m = re.match(r"^v?(\d+(?:\.\d+)*)(.*)$", str(version).strip())
    if not m:
        raise ValueError(f"not a version: {version!r}")
    nums = [int(x) for x in m.group(1).split(".")]
    nums += [0] * (4 - len(nums))
    rest = m.group(2).lower().lstrip(".-_")
    stage = 1  # a final release
    if rest.startswith(("rc", "a", "b", "dev", "alpha", "beta", "pre")):
        stage = 0
    elif rest.startswith("post"):
        stage = 2
    return (*nums[:4], stage)


@functools.cache
def _expanded(engine: str) -> dict[str, frozenset[str]]:
    body = _data()[engine]
    cur = set(body["base"])
    out = {str(body["base_version"]): frozenset(cur)}
    for rel in body["releases"]:
        cur = (cur - set(rel.get("removed") or ())) | set(rel.get("added") or ())
        out[str(rel["version"])] = frozenset(cur)
    return out


def releases(engine: str) -> tuple[str, ...]:
    """The extracted releases of ``engine``, oldest first."""
    eng = _engine(engine)
    return tuple(sorted(_expanded(eng), key=_vkey))


def _engine(engine: str) -> str:
    eng = normalize_engine(engine)
    if eng is None or eng not in _data():
        raise KeyError(f"no flag list for engine {engine!r} (known: {', '.join(_data())})")
    return eng


def flag_releases(engine: str, version: str | None) -> FlagReleases:
    """Which extracted release(s) stand for ``version`` of ``engine``, and a note when it is not one of them."""
    eng = _engine(engine)
    rels = releases(eng)
    newest = rels[-1]
    if version is None or not str(version).strip():
        if eng == "llama.cpp":
            return FlagReleases(eng, rels, "no llama.cpp build named: any extracted snapshot's flags are accepted")
        return FlagReleases(eng, (newest,), f"no version named: checked against {newest}, the newest release known")
    try:
        key = _vkey(version)
    except ValueError:
        return FlagReleases(eng, (newest,), f"version {version!r} not understood: checked against {newest}")
    keys = [_vkey(r) for r in rels]
    if key in keys:
        return FlagReleases(eng, (rels[keys.index(key)],), "")
    if key > keys[-1]:
        return FlagReleases(
            eng, (newest,), f"{version} is newer than {newest}, the newest release known: checked against {newest}"
        )
    if key < keys[0]:
        return FlagReleases(
            eng, (rels[0],), f"{version} is older than {rels[0]}, the oldest release known: checked against {rels[0]}"
        )
    lo = max(i for i, k in enumerate(keys) if k < key)
    hi = lo + 1
    return FlagReleases(
        eng, (rels[lo], rels[hi]), f"{version} lies between {rels[lo]} and {rels[hi]}: a flag either accepts passes"
    )


def known_flags(engine: str, version: str | None) -> frozenset[str]:
    """Every option string ``engine`` ``version`` accepts (see flag_releases for the release(s) used)."""
    fr = flag_releases(engine, version)
    table = _expanded(fr.engine)
    out: frozenset[str] = frozenset()
    for r in fr.releases:
        out |= table[r]
    return out


def _normalize(engine: str, flag: str) -> str:
    body = _data()[engine]
    f = str(flag).strip().split("=", 1)[0]
    if not f.startswith("-"):
        # an engine argument by name ("enable_prefix_caching", "max-model-len")
        f = "--" + f.replace("_", "-")
    elif f.startswith("--") and body.get("underscores"):
        f = "--" + f[2:].replace("_", "-")  # vLLM's FlexibleArgumentParser
    return f


def canonical_flag(engine: str, version: str | None, flag: str) -> str | None:
    """The option string ``flag`` resolves to in that release (``--max_model_len`` -> ``--max-model-len``,
    an unambiguous abbreviation -> the full option), or None when the parser would reject it."""
    ok, suggestion = check_flag(engine, version, flag)
    if not ok:
        return None
    return suggestion or _normalize(_engine(engine), flag)


def check_flag(engine: str, version: str | None, flag: str) -> FlagCheck:
    """Would ``engine`` ``version``'s command-line parser accept ``flag`` (``--x``, ``--x=v``, ``x_y``)?"""
    eng = _engine(engine)
    body = _data()[eng]
    known = known_flags(eng, version)
    f = _normalize(eng, flag)
    if f in known:
        return FlagCheck(True, None)
    if eng == "vllm" and f.startswith("-O") and ("-O" in known or "--optimization-level" in known):
        # vllm/utils/argparse_utils.py@0.14.0: "-O3" / "-O=3" / "-Odecode" become --optimization-level <x>
        # (earlier releases: -O / -O3 is --compilation-config's shorthand)
        return FlagCheck(True, None)
    if body.get("dotted_keys") and f.startswith("--") and "." in f:
        base = f.split(".", 1)[0]
        if base in known:
            return FlagCheck(True, None)  # --compilation-config.level 3
        hit = _closest(base, known)
        return FlagCheck(False, hit + f[len(base) :] if hit else None)
    if body.get("abbreviations") and f.startswith("--") and len(f) > 2:
        full = [k for k in known if k.startswith(f) and k.startswith("--")]
        if len(full) == 1:
            return FlagCheck(True, full[0])  # argparse allow_abbrev: a unique prefix is accepted
        if len(full) > 1:
            return FlagCheck(False, _closest(f, set(full)) or min(full))  # "ambiguous option"
    return FlagCheck(False, _closest(f, known))


def _closest(flag: str, known: frozenset[str] | set[str]) -> str | None:
    import difflib  # only when a flag is unknown

    pool = [k for k in known if k.startswith("--")] if flag.startswith("--") else list(known)
    hits = difflib.get_close_matches(flag, pool, n=1, cutoff=0.75)
    if hits:
        return hits[0]
    hits = difflib.get_close_matches(flag, list(known), n=1, cutoff=0.6)
    return hits[0] if hits else None
