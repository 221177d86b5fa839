"""Where rules come from: the built-in ``rules`` package and plugins under the ``modelcheck.rules``
entry-point group. Both are read the same way: every function decorated with ``@rule`` in the module."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from modelcheck.record import field, record
from modelcheck.rule import Rule, rules_in

ENTRY_POINT_GROUP = "modelcheck.rules"
_BUILTIN_SENTINEL = "modelcheck-builtin-rules"


@record
class Registry:
    rules: tuple[Rule, ...]
    load_errors: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (plugin, one-line reason)

    def by_code(self) -> dict[str, Rule]:
        return {r.code: r for r in self.rules}

    def find(self, code_or_name: str) -> Rule | None:
        key = code_or_name.strip()
        for r in self.rules:
            if r.code == key.upper() or r.name == key.lower():
                return r
        return None


def _builtin_modules() -> list[ModuleType]:
    import modelcheck_rules as package

    # A top-level package called `rules` can be shadowed by an unrelated install: fail loudly.
    if getattr(package, "SENTINEL", None) != _BUILTIN_SENTINEL:
        raise RuntimeError(
            f"the imported 'modelcheck_rules' package ({getattr(package, '__file__', '?')}) is not modelcheck's; "
            "another installed package shadows it"
        )
    # the package's *.py files (pkgutil.iter_modules would say the same, but imports inspect: ~8 ms a run)
    names = sorted({entry[:-3] for base in package.__path__ for entry in os.listdir(base)
                    if entry.endswith(".py") and not entry.startswith("_")})
    # the linter's own codes (CHK) are declared as rules too, so every listing sees them
    return [importlib.import_module("modelcheck.linter"), *(importlib.import_module(f"modelcheck_rules.{n}") for n in names)]


def plugin_entry_points(group: str = ENTRY_POINT_GROUP) -> list[tuple[str, str]]:
    """(name, "module[:attr]") for every entry point of ``group`` in the installed distributions.

    Reads the ``*.dist-info`` / ``*.egg-info`` ``entry_points.txt`` files on sys.path directly: the same
    answer as ``importlib.metadata.entry_points(group=...)`` (a test holds them equal), without its
    ~40 ms import and full metadata scan on every run. The first distribution of a name on sys.path
    wins, as with importlib.metadata."""
    found: list[tuple[str, str]] = []
    seen_dists: set[str] = set()
    header = f"[{group}]"
    for base in sys.path:
        try:
            names = sorted(os.listdir(base or "."))
        except OSError:
            continue
        for entry in names:
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            dist = entry.rsplit(".", 1)[0].split("-", 1)[0].lower().replace("_", "-").replace(".", "-")
            if dist in seen_dists:
                continue
            seen_dists.add(dist)
            try:
                with open(os.path.join(base or ".", entry, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read(1 << 20)
            except OSError:
                continue
            if header not in text:
                continue
            in_group = False
            for raw in text.splitlines():
                line = raw.strip()
                if line.startswith("["):
                    in_group = line == header
                elif in_group and "=" in line and not line.startswith(("#", ";")):
                    name, _, value = line.partition("=")
                    found.append((name.strip(), value.split("[", 1)[0].strip()))
    return found


def _load_entry_point(value: str) -> object:
    module_name, _, attr = value.partition(":")
    obj: object = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def _plugin_modules() -> tuple[list[ModuleType], list[tuple[str, str]]]:
    modules: list[ModuleType] = []
    errors: list[tuple[str, str]] = []
    for name, value in plugin_entry_points():
        try:
            loaded = _load_entry_point(value)
        except Exception as exc:  # a broken plugin must not take the gate down
            errors.append((name, f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__))
            continue
        if isinstance(loaded, ModuleType):
            modules.append(loaded)
        else:
            errors.append((name, f"entry point {value!r} is not a module"))
    return modules, errors


_CACHE: Registry | None = None


def load(plugins: bool = True) -> Registry:
    """All rules, built-ins first, sorted by code. Duplicate codes from plugins are load errors."""
    global _CACHE
    if _CACHE is not None and plugins:
        return _CACHE
    found: dict[str, Rule] = {}
    errors: list[tuple[str, str]] = []
    for module in _builtin_modules():
        for r in rules_in(module):
            if r.code in found:
                raise RuntimeError(f"duplicate built-in rule code {r.code} in {module.__name__}")
            found[r.code] = r
    if plugins:
        modules, errors = _plugin_modules()
        for module in modules:
            for r in rules_in(module):
                if r.code in found:
                    errors.append((module.__name__, f"rule code {r.code} is already taken by {found[r.code].module}"))
                    continue
                found[r.code] = r
    registry = Registry(rules=tuple(sorted(found.values(), key=lambda r: r.code)), load_errors=tuple(errors))
    if plugins:
        _CACHE = registry
    return registry


def matches(code: str, name: str, selector: str) -> bool:
    """The one selector matcher (--select/--ignore, config select/ignore, suppressions): a code (MEM001),
    a prefix (MEM, ME), a rule name (weights-exceed-vram) or ALL."""
    s = selector.strip()
    if not s:
        return False
    return s.upper() == "ALL" or code.startswith(s.upper()) or name == s.lower()


def select(rules: tuple[Rule, ...], select: list[str] | None, ignore: list[str] | None) -> tuple[Rule, ...]:
    """ruff-style selection. Ignore wins over select for the same rule."""
    chosen = [r for r in rules if not select or any(matches(r.code, r.name, s) for s in select)]
    if ignore:
        chosen = [r for r in chosen if not any(matches(r.code, r.name, s) for s in ignore)]
    return tuple(chosen)


def unknown_selectors(rules: tuple[Rule, ...], selectors: list[str] | tuple[str, ...]) -> list[str]:
    """Selectors that name no rule (a mistyped selector would otherwise select nothing and pass)."""
    return [s for s in selectors if s.strip() and not any(matches(r.code, r.name, s) for r in rules)]


def suggest(query: str, registry: Registry | None = None) -> str | None:
    """The closest code or name to a mistyped one (``MEM03`` -> ``MEM003``), or None."""
    import difflib

    rules = (registry or load()).rules
    q = query.strip()
    close = difflib.get_close_matches(q.upper(), [r.code for r in rules], n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(q.lower(), [r.name for r in rules], n=1, cutoff=0.6)
    return close[0] if close else None
