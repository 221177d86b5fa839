"""The ``check`` console script: a plain check is parsed here, without importing click.

``check PATH... [--option value]...`` is what a pre-commit hook or a CI gate runs on every commit, and importing
click costs ~20 ms of a start-up budget of ~100 ms (issue 10: a 405B-shard check within 3x of a bare Python
process that reads the same headers). This module reads the check's options from their one declaration
(``modelcheck.check_options``, which the click CLI reads too) and accepts a strict subset of click's syntax:
long options as ``--name value`` or ``--name=value``, short options as ``-x value``, flags, repeated
``multiple`` options, paths anywhere between them.

Everything else goes to click unchanged, which then behaves and words its messages as it always does: help
and version, subcommands, an unknown or misspelled option, combined or attached short options, a value that
does not convert (click words that error), a path-typed option (click checks those on disk), a value that
starts with ``-``, ``--``, shell completion. The fast path never decides anything click would decide
differently: ``tests/test_launch.py`` compares both parsers on every option.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from modelcheck.check_options import GROUP_FLAGS, SUBCOMMANDS, Option
from modelcheck.check_options import options as declared_options


class _Unsupported(Exception):
    """Not for this parser: click takes the command line."""


def parse(argv: list[str]) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """(paths, every option's value as click would pass it to the check command), or None: click's turn."""
    if not argv or argv[0] in SUBCOMMANDS or argv[0] in GROUP_FLAGS:
        return None
    options = declared_options()
    by_opt = {decl: o for o in options for decl in o.decls}
    values: dict[str, Any] = {o.name: () if o.multiple else o.default for o in options}
    paths: list[str] = []
    i = 0
    try:
        while i < len(argv):
            token = argv[i]
            i += 1
            if not token.startswith("-"):
                paths.append(token)
                continue
            name, eq, inline = token.partition("=")
            o = by_opt.get(name) if eq else by_opt.get(token)
            # unknown; `-qv`, `-j2`; click reads `-i=x` as the value "=x" (a one-letter option)
            if o is None or (eq and len(name) == 2):
                raise _Unsupported
            if o.kind == "flag":
                if eq:
                    raise _Unsupported
                values[o.name] = True
                continue
            if eq:
                value = inline
            elif i < len(argv):
                value, i = argv[i], i + 1
            else:
                raise _Unsupported
            if value.startswith("-") and not eq:
                raise _Unsupported
            converted = _convert(o, value)
            values[o.name] = values[o.name] + (converted,) if o.multiple else converted
    except _Unsupported:
        return None
    if not paths:
        return None
    return tuple(paths), values


def _convert(o: Option, value: str) -> Any:
    """The value click's parameter type would produce (click/types.py@8.5.1: IntParamType / FloatParamType call
    int() / float(); Choice returns the declared spelling, matched casefolded when not case-sensitive), or
    _Unsupported."""
    kind = o.kind
    try:
        if kind == "str":
            return value
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except ValueError:
        raise _Unsupported from None
    if kind == "choice":
        fold = (lambda s: s) if o.case_sensitive else str.casefold
        for choice in o.choices:
            if fold(choice) == fold(value):
                return choice
    raise _Unsupported  # a bad choice; a path (click checks it on disk)


def main() -> None:
    """`check` / `modelcheck`: a plain check runs here; everything else is the click CLI's. Ends the process."""
    argv = sys.argv[1:]
    completing = any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ)
    parsed = None if completing else parse(argv)
    if parsed is None:
        from modelcheck.cli import main as click_main

        click_main()
        return
    paths, values = parsed
    from modelcheck.console import guard, run_check

    debug = bool(values.pop("debug"))
    try:
        guard(debug, run_check, list(paths), values)
    except SystemExit as done:
        if done.code is not None and not isinstance(done.code, int):
            raise
        # The report is out and nothing is left to clean up (files are closed, -j workers and smoke servers
        # stopped by their own `with`/`finally`). End the process here: Python's own shutdown would free every
        # object of the run one by one (a 405B folder: its parsed headers and tensor records), ~10 ms of a
        # ~110 ms check (bench/speed.py). This is why main() must only run as the process's entry point.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(done.code or 0)


if __name__ == "__main__":
    main()
