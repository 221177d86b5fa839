"""Engine arguments: the one declaration (``checker/catalog/engine_args.yaml``) and what it generates.

Everything that reads an engine argument goes through here, whichever way it arrives: the `check` flags
(:func:`click_options`), ``--engine-arg KEY=VALUE`` and the config's ``engine-args`` table
(:func:`coerce`), start commands of vLLM / SGLang / llama-server (:func:`from_argv`), and the config's
JSON Schema (:func:`json_schema`). Values are typed here; whether a value is in range (a
gpu_memory_utilization of 90) is judged once, by the ENG rules, so one value gets one verdict.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from modelcheck.errors import UsageError
from modelcheck.record import record

ENGINES = ("vllm", "sglang", "llama.cpp")
_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}
_TRUE = ("1", "true", "yes", "on", "")
_FALSE = ("0", "false", "no", "off")


@record
class EngineArg:
    name: str  # canonical key in Target.engine_args (vLLM's EngineArgs name)
    type: type
    flags: dict[str, tuple[str, ...]]  # engine -> its spellings, preferred first
    help: str = ""
    cli: bool = False  # a `check` option of its own
    short: str | None = None  # its alias as a `check` option
    sets: str | None = None  # another canonical key the same value sets
    plays: str | None = None  # the other engine's setting this one stands in for (fixes in the engine's syntax)
    words: tuple[str, ...] = ()  # values of another type the engine also accepts ("auto", "all")

    def flag(self, engine: str | None = "vllm") -> str:
        """How the engine's users write it (its first spelling): '--max-model-len', '-c' for llama-server."""
        spellings = self.flags.get(engine or "vllm") or next(iter(self.flags.values()), ())
        return (list(spellings) or ["--" + self.name.replace("_", "-")])[0]


@functools.lru_cache(maxsize=1)
def declared() -> dict[str, EngineArg]:
    """Every declared argument by canonical name (cached; read from the compiled JSON twin)."""
    from modelcheck import datafile

    out: dict[str, EngineArg] = {}
    for row in datafile.load("engine_args.yaml")["args"]:
        flags = {e: tuple(row[e]) for e in ENGINES if row.get(e)}
        out[row["name"]] = EngineArg(
            name=row["name"], type=_TYPES[row["type"]], flags=flags, help=row.get("help", ""),
            cli=bool(row.get("cli")), short=row.get("short"), sets=row.get("sets"),
            words=tuple(row.get("words") or ()), plays=row.get("plays"),
        )
    return out


@functools.lru_cache(maxsize=4)
def _by_flag(engine: str) -> dict[str, EngineArg]:
    return {spelling: arg for arg in declared().values() for spelling in arg.flags.get(engine, ())}


def _as_the_engine_reads(engine: str, flag: str) -> str | None:
    """The option ``flag`` stands for in the engine's own parser (modelcheck.catalog.flags, which knows each
    engine's rules per release: vLLM's --max_model_len is --max-model-len, SGLang's argparse takes a unique
    prefix --mem-frac for --mem-fraction-static), or None when that parser rejects it. Judged against the
    newest release we know: the start command carries no version; ENG020 judges the written flag per release.
    (vllm/utils/argparse_utils.py@0.32.0: FlexibleArgumentParser rewrites --a_b to --a-b and keeps argparse's
    allow_abbrev; checked with that release's parser: --gpu-memory-util 0.8 parses to 0.8.)"""
    from modelcheck.catalog import flags

    eng = flags.normalize_engine(engine)
    return flags.canonical_flag(eng, None, flag) if eng else None


def canonical(key: str) -> str:
    """A key as users write it in configs and --engine-arg ('--max-model-len', 'max-model-len') -> its name."""
    return key.strip().lstrip("-").replace("-", "_")


def lookup(key: str) -> EngineArg | None:
    return declared().get(canonical(key))


def spelling(setting: str, engine: str) -> str:
    """How ``engine``'s users write ``setting`` (a vLLM-style key) in a fix: its own flag for it, else the flag
    of the argument that sets or plays it there (max_model_len: SGLang --context-length, llama-server -c)."""
    arg = declared().get(setting)
    if arg is not None and engine in arg.flags:
        return arg.flag(engine)
    for other in declared().values():
        if engine in other.flags and setting in (other.sets, other.plays):
            return other.flag(engine)
    return "--" + setting.replace("_", "-")


def coerce(key: str, value: Any, where: str = "engine argument", error: type[Exception] = UsageError) -> Any:
    """``value`` as the engine would parse it. A value of the wrong type is a UsageError (exit 2);
    undeclared keys pass through unchanged (the strict gate judges unknown flags per engine version)."""
    arg = lookup(key)
    if arg is None or value is None:
        return value
    kind = arg.type
    if isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip().lower() in arg.words:
        return value.strip().lower()
    try:
        if kind is bool:
            if isinstance(value, str) and value.strip().lower() in _TRUE:
                return True
            if isinstance(value, str) and value.strip().lower() in _FALSE:
                return False
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if isinstance(value, bool):
            raise ValueError(value)
        if kind is int and isinstance(value, str) and value.strip().lower().endswith("k"):
            return int(float(value.strip()[:-1]) * 1024)
        if kind is int and isinstance(value, float):
            if not value.is_integer():
                raise ValueError(value)
            return int(value)
        return kind(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        what = "a number" if kind in (int, float) else f"a valid {kind.__name__}"
        raise error(f"{where}: {arg.flag()} {value!r} is not {what}") from None


def coerce_all(args: dict[str, Any], where: str = "engine argument", error: type[Exception] = UsageError) -> dict[str, Any]:
    """Canonical keys, typed values; a value that also sets another key (--context-length) sets it."""
    out: dict[str, Any] = {}
    for key, value in args.items():
        name = canonical(key) if not key.startswith("_") else key
        out[name] = coerce(name, value, where, error)
    for name, value in list(out.items()):
        arg = declared().get(name)
        if arg is not None and arg.sets and value is not None:
            out.setdefault(arg.sets, value)
    return out


# -- start commands ---------------------------------------------------------------------------------

_NEGATIVE_NUMBER = re.compile(r"^-\d")


@record
class ParsedArgs:
    args: dict[str, Any]  # canonical name -> typed value
    unknown: dict[str, Any]  # flag as written -> raw value (True for a bare flag)
    positional: tuple[str, ...]
    flags: tuple[str, ...] = ()  # every flag as written (before any "="), for the engine's own parser check


def from_argv(engine: str, argv: Iterable[str], where: str = "start command",
              error: type[Exception] = UsageError) -> ParsedArgs:
    """Parse an engine's command-line flags with the engine's own spellings.

    Declared flags are typed (a bad value is a UsageError naming ``where``); bool flags take no value
    (``--flag=false`` and vLLM's ``--no-flag`` set False); flags we do not declare are kept raw in
    ``unknown`` so the strict gate can check them against the engine version's own flag list."""
    table = _by_flag(engine)
    tokens = list(argv)
    args: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    positional: list[str] = []
    written: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if not tok.startswith("-") or tok == "-" or _NEGATIVE_NUMBER.match(tok):
            positional.append(tok)
            continue
        flag, eq, inline = tok.partition("=")
        written.append(flag)
        has_next = i < len(tokens) and not (tokens[i].startswith("-") and not _NEGATIVE_NUMBER.match(tokens[i]))
        arg = table.get(flag)
        negated = False
        if arg is None:
            full = _as_the_engine_reads(engine, flag) or flag
            arg = table.get(full)
            if arg is None and full.startswith("--no-"):  # vLLM's BooleanOptionalAction: --no-X sets X False
                base = table.get("--" + full[5:])
                if base is not None and base.type is bool:
                    arg, negated = base, True
        if arg is None:
            if eq:
                unknown[flag] = inline
            elif has_next:
                unknown[flag] = tokens[i]
                i += 1
            else:
                unknown[flag] = True
            continue
        if arg.type is bool:
            value: Any = (not negated) if not eq else coerce(arg.name, inline, where, error)
            if not eq and not negated and has_next and tokens[i].strip().lower() in ("true", "false"):
                value = tokens[i].strip().lower() == "true"  # argparse type=bool style: --flag false
                i += 1
            args[arg.name] = value
            continue
        if arg.name == "flash_attn" and not eq and not has_next:
            args[arg.name] = "on"  # llama-server before b6000: a bare -fa
            continue
        if eq:
            raw = inline
        elif has_next:
            raw = tokens[i]
            i += 1
        else:
            raise error(f"{where}: {flag} needs a value")
        args[arg.name] = coerce(arg.name, raw, where, error)
    return ParsedArgs(args=coerce_all(args, where, error), unknown=unknown, positional=tuple(positional),
                      flags=tuple(written))


# -- generated views --------------------------------------------------------------------------------


def cli_names() -> tuple[str, ...]:
    return tuple(a.name for a in declared().values() if a.cli)


def from_cli(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the engine-argument options out of click's kwargs: canonical name -> typed value."""
    out: dict[str, Any] = {}
    for name in cli_names():
        value = kwargs.pop(name, None)
        if value is not None:
            out[name] = value
    for item in kwargs.pop("engine_arg", ()) or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--engine-arg {item!r}: expected KEY=VALUE")
        out[canonical(key)] = value.strip()
    return coerce_all(out, "engine argument")


def json_schema() -> dict[str, Any]:
    """The config's ``engine-args`` table: declared keys typed (dashes or underscores), others any scalar."""
    jtype = {int: "integer", float: "number", bool: "boolean", str: "string"}
    props: dict[str, Any] = {}
    for arg in declared().values():
        spec: dict[str, Any] = {"type": jtype[arg.type], "description": arg.help or arg.flag()}
        props[arg.name.replace("_", "-")] = spec
        props[arg.name] = spec
    return {
        "type": "object",
        "description": "Engine arguments with the engine's names (dashes or underscores); values are typed "
        "here and judged by the ENG rules.",
        "properties": props,
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    }


__all__ = ["EngineArg", "ParsedArgs", "canonical", "spelling", "coerce", "coerce_all", "declared",
           "from_argv", "from_cli", "json_schema", "lookup"]
