"""What ``check PATH...`` does once its arguments are parsed: run the pipeline, print the report, exit.

Click-free on purpose: ``modelcheck.launch`` parses a plain ``check PATH [options]`` without importing click
(~20 ms of a start-up budget of ~100 ms) and calls :func:`run_check` directly; the click CLI
(``modelcheck.cli``) calls the same function for everything else. How output looks (width, colour) is decided
here, from the flags, the environment (``COLUMNS``, ``NO_COLOR``, ``FORCE_COLOR``) and the terminal, and passed
to the formatters.

Exit codes (DESIGN.md): 0 nothing at or above --fail-on, 1 findings at or above it, 2 could not run.
Every CheckError becomes one line on stderr and exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from modelcheck.errors import CheckError

# what click.echo strips when colour is off (click/_compat.py@8.5.1 _ansi_re)
_ANSI = re.compile(r"\033\[[0-?]*[ -/]*[@-~]")


def echo(text: str, *, err: bool = False, nl: bool = True, color: bool | None = None) -> None:
    """``click.echo`` for text: to stdout (or stderr), colour codes kept only with ``color=True`` or on a
    terminal when ``color`` is None."""
    stream = sys.stderr if err else sys.stdout
    if color is False or (color is None and not isatty(stream)):
        text = _ANSI.sub("", text)
    stream.write(text + ("\n" if nl else ""))
    stream.flush()


def collect_engine_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    from modelcheck import engine_args

    return engine_args.from_cli(kwargs)


def fail(err: CheckError, debug: bool) -> None:
    if debug:
        raise err
    # one line, always: messages quoting a parser's multi-line error (PyYAML marks) are joined
    echo("error: " + " ".join(part.strip() for part in str(err).splitlines() if part.strip()), err=True)
    sys.exit(err.exit_code)


def guard(debug: bool, func: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a CLI action: CheckError -> one line + exit 2; anything unexpected -> one line + exit 2."""
    try:
        return func(*args, **kwargs)
    except CheckError as err:
        fail(err, debug)
    except KeyboardInterrupt:
        echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # never a traceback for users; --debug shows it
        if debug:
            raise
        echo(f"error: internal error: {type(exc).__name__}: {exc} (run with --debug for details)".splitlines()[0], err=True)
        sys.exit(2)


# -- how output looks: decided here, passed to the formatters -----------------------------------------


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def color_enabled(when: str | None, *, to_file: bool = False, stream: Any = None,
                  environ: Any = None) -> bool:
    """``--color always|never`` wins; ``auto``: FORCE_COLOR (any non-empty value, https://force-color.org)
    colours even a pipe, else NO_COLOR (https://no-color.org) turns it off, else only a terminal."""
    env = os.environ if environ is None else environ
    if when == "always":
        return True
    if when == "never" or to_file:
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("NO_COLOR"):
        return False
    return isatty(stream if stream is not None else sys.stdout)


def output_width(width: int | None, *, to_file: bool = False, stream: Any = None,
                 environ: Any = None) -> int | None:
    """Columns to wrap text at: ``--width N`` (0: never), else ``COLUMNS``, else the terminal's width
    when stdout is a terminal; a pipe or a file is not wrapped unless asked."""
    env = os.environ if environ is None else environ
    if width is not None:
        return width if width > 0 else None
    columns = (env.get("COLUMNS") or "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if to_file or not isatty(stream if stream is not None else sys.stdout):
        return None
    try:  # what shutil.get_terminal_size does once COLUMNS is ruled out (shutil itself costs ~3 ms to import)
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def split_multi(values: tuple[str, ...] | None) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or ():
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return tuple(out)


def parse_overrides(values: tuple[str, ...]) -> dict[str, Any]:
    from modelcheck.errors import UsageError
    from modelcheck.rule import Severity

    out = {}
    for item in split_multi(values):
        code, sep, level = item.partition("=")
        if not sep:
            raise UsageError(f"--severity {item!r}: expected CODE=LEVEL (error, warning, info)")
        try:
            out[code.strip().upper()] = Severity.parse(level)
        except ValueError as exc:
            raise UsageError(f"--severity {item!r}: {exc}") from None
    return out


def run_check(paths: list[str], kw: dict[str, Any]) -> None:
    from modelcheck import api, formatters
    from modelcheck.errors import UsageError
    from modelcheck.options import Options
    from modelcheck.rule import Severity

    engine_args = collect_engine_args(kw)
    deployment: Any = None
    target_kw: dict[str, Any] = {k: kw.get(k) for k in ("image", "chip", "instance", "gpu", "gpu_count")}
    if kw.get("service") or kw.get("deploy_file") or kw.get("serve_cmd"):
        from modelcheck import deploy

        spec = deploy.load(service=kw.get("service"), deploy=kw.get("deploy_file"), serve_cmd=kw.get("serve_cmd"),
                           online=bool(kw.get("online")))
        # flags on the command line override the spec
        for key in target_kw:
            if target_kw[key] is None and spec.get(key) is not None:
                target_kw[key] = spec[key]
        engine_args = {**spec.get("engine_args", {}), **engine_args}
        deployment = spec.get("deployment")
        if not paths and spec.get("model_path"):
            paths = [spec["model_path"]]
    smoke_opts = None
    if kw.get("smoke") or kw.get("force_smoke"):
        from modelcheck import smoke

        smoke_opts = smoke.options_from_cli(
            prompt=kw.get("smoke_prompt"),
            expect=kw.get("smoke_expect"),
            python=kw.get("smoke_python"),
            launch=kw.get("smoke_launch"),
            timeout=kw.get("smoke_timeout"),
            force=bool(kw.get("force_smoke")),
        )
    fail_on = kw.get("fail_on")
    options = Options(
        **target_kw,
        engine=kw.get("engine_decl"),
        image_spec=kw.get("image_spec"),
        instance_spec=kw.get("instance_spec"),
        engine_args=engine_args,
        select=split_multi(kw.get("select")),
        ignore=split_multi(kw.get("ignore")),
        fail_on=Severity.parse(fail_on) if fail_on else None,
        severity_overrides=parse_overrides(kw.get("severity_overrides") or ()),
        catalog_files=tuple(kw.get("catalog_files") or ()),
        deployment=deployment,
        exit_zero=bool(kw.get("exit_zero")),
        jobs=kw.get("jobs") or 1,
        online=bool(kw.get("online")),
        verify=bool(kw.get("verify")),
        smoke=smoke_opts,
        config_file=kw.get("config_file"),
        use_config=not kw.get("no_config"),
        verbose=bool(kw.get("verbose")),
    )
    if kw.get("width") is not None and kw["width"] < 0:
        raise UsageError(f"--width {kw['width']}: expected a number of columns >= 0 (0: never wrap)")
    report = api.run(paths, options)
    fmt = kw.get("fmt") or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text")
    output = kw.get("output")
    quiet = bool(kw.get("quiet"))
    human = fmt in ("text", "concise")
    when = kw.get("color") or ("never" if kw.get("no_color") else "auto")
    color = human and color_enabled(when, to_file=bool(output))
    width = output_width(kw.get("width"), to_file=bool(output)) if fmt == "text" else None
    rendered = formatters.get(fmt)(report, color=color, width=width, quiet=quiet)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(rendered)
        except OSError as exc:  # a missing folder, a read-only path: the user's, not ours (exit 2)
            raise UsageError(f"--output {output}: cannot write the report: {exc.strerror or exc}") from None
        # keep a short human summary on the terminal when the report goes to a file
        if not quiet or report.failed:
            echo(formatters.summary_line(report), err=True)
    else:
        emit(rendered, color=color if human else None)
        # concise output is findings only (one per line, machine-readable); a person at a terminal
        # also gets the verdict, on stderr
        if fmt == "concise" and not quiet and isatty(sys.stderr):
            err_color = color_enabled(when, stream=sys.stderr)
            echo(formatters.summary_line(report, color=err_color), err=True, color=err_color)
    sys.exit(report.exit_code)


def emit(text: str, color: bool | None = None) -> None:
    """Print to stdout; a reader that closed the pipe early (`check ... | head`) is not an error.
    ``color``: True keeps the formatter's colour codes even on a pipe (--color always, FORCE_COLOR);
    False strips any, even on a terminal."""
    try:
        echo(text, nl=False, color=color)
        sys.stdout.flush()
    except BrokenPipeError:
        # keep Python's exit-time flush from raising again on the closed pipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
