"""Command line: ``check PATH... [options]`` plus ``check rules``, ``check explain CODE``, ``check plan PATH``,
``check images``, ``check instances``, ``check gpus``.

Exit codes (DESIGN.md): 0 nothing at or above --fail-on, 1 findings at or above it, 2 could not run.
Every CheckError becomes one line on stderr and exit 2; ``--debug`` shows the traceback instead.

The check itself is the hidden ``run`` command that ``check PATH`` dispatches to; ``check --help`` shows
its options grouped (target, engine arguments, output, selection, smoke) and usage errors name ``check``,
the command the user typed. How output looks (width, colour) is decided here, from the flags, the
environment (``COLUMNS``, ``NO_COLOR``, ``FORCE_COLOR``) and the terminal, and passed to the formatters.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from modelcheck import __version__
from modelcheck.errors import CheckError

_SUBCOMMANDS = ("rules", "explain", "plan", "images", "instances", "gpus", "run")
_GROUP_FLAGS = ("--help", "-h", "--version", "-V")

# `check --help`: the check options in the order users look for them (params not listed go to "Other")
_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Target", ("image", "chip", "instance", "gpu", "gpu_count", "engine_decl", "image_spec", "instance_spec",
                "service", "deploy_file", "serve_cmd", "catalog_files")),
    ("Engine arguments (as the engine spells them)", ("@engine",)),
    ("Output", ("fmt", "output", "quiet", "verbose", "color", "width")),
    ("Rule selection", ("select", "ignore", "fail_on", "severity_overrides", "exit_zero", "config_file",
                        "no_config")),
    ("Smoke test (start the model for real)", ("smoke", "force_smoke", "smoke_prompt", "smoke_expect",
                                               "smoke_python", "smoke_launch", "smoke_timeout")),
    ("Other", ("jobs", "online", "verify", "debug")),
)


def _section_names(title_names: tuple[str, ...]) -> tuple[str, ...]:
    if title_names == ("@engine",):
        from modelcheck import engine_args

        return (*engine_args.cli_names(), "engine_arg")
    return title_names


class _CheckContext(click.Context):
    """The context of the hidden ``run`` command: named like its parent, so usage errors and help say
    ``check [OPTIONS] PATHS...``, the command the user typed, never ``check run``."""

    @property
    def command_path(self) -> str:  # type: ignore[override]
        return self.parent.command_path if self.parent is not None else super().command_path


class CheckCommand(click.Command):
    """The check command: options grouped into sections in its help."""

    context_class = _CheckContext

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        params = [p for p in self.get_params(ctx) if isinstance(p, click.Option)]
        placed: set[str] = set()
        for title, names in _SECTIONS:
            wanted = _section_names(names)
            rows = []
            for name in wanted:
                for p in params:
                    if p.name == name and p.name not in placed:
                        rec = p.get_help_record(ctx)
                        if rec:
                            rows.append(rec)
                        placed.add(name)
            if title == "Other":
                for p in params:
                    if p.name not in placed:
                        rec = p.get_help_record(ctx)
                        if rec:
                            rows.append(rec)
                        placed.add(p.name or "")
                rows.extend(getattr(ctx, "_extra_help_rows", []))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class DefaultGroup(click.Group):
    """`check PATH` runs the default command: anything that is not a subcommand is a path or an option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:
            click.echo(ctx.get_help())
            ctx.exit(2)
        if args[0] not in self.commands and args[0] not in _GROUP_FLAGS:
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] PATHS...")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="       ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # the check options (the hidden `run` command's), then the group's own (-V, -h) under "Other"
        run = self.commands["run"]
        sub = _CheckContext(run, info_name=ctx.info_name, parent=ctx)
        sub._extra_help_rows = [  # type: ignore[attr-defined]
            rec for p in self.get_params(ctx) if (rec := p.get_help_record(ctx)) is not None
        ]
        run.format_options(sub, formatter)
        self.format_commands(ctx, formatter)


def _engine_arg_options(func: Any) -> Any:
    """The engine flags users already type, generated from the one declaration (modelcheck.engine_args)."""
    from modelcheck import engine_args

    # `-q` is --quiet here, as in ruff and pre-commit: engine_args.yaml gives --quantization no short alias
    return engine_args.click_options(func)


def _collect_engine_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    from modelcheck import engine_args

    return engine_args.from_cli(kwargs)


def _fail(err: CheckError, debug: bool) -> None:
    if debug:
        raise err
    # one line, always: messages quoting a parser's multi-line error (PyYAML marks) are joined
    click.echo("error: " + " ".join(part.strip() for part in str(err).splitlines() if part.strip()), err=True)
    sys.exit(err.exit_code)


def _guard(debug: bool, func: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a CLI action: CheckError -> one line + exit 2; anything unexpected -> one line + exit 2."""
    try:
        return func(*args, **kwargs)
    except CheckError as err:
        _fail(err, debug)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # never a traceback for users; --debug shows it
        if debug:
            raise
        click.echo(f"error: internal error: {type(exc).__name__}: {exc} (run with --debug for details)".splitlines()[0], err=True)
        sys.exit(2)


# -- how output looks: decided here, passed to the formatters -----------------------------------------


def _isatty(stream: Any) -> bool:
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
    return _isatty(stream if stream is not None else sys.stdout)


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
    if to_file or not _isatty(stream if stream is not None else sys.stdout):
        return None
    try:  # what shutil.get_terminal_size does once COLUMNS is ruled out (shutil itself costs ~3 ms to import)
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


@click.group(cls=DefaultGroup, name="check",
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "-V", "--version", prog_name="modelcheck",
                      message="%(prog)s %(version)s")
def main() -> None:
    """modelcheck: will this model start and serve on this image and instance?

    Checks model folders or files (config.json, safetensors / GGUF headers, pickle opcodes; never the
    weights) against a declared serving image, chip and instance. Exit 0: passed; 1: findings at or
    above --fail-on; 2: could not run.

    \b
    Examples:
      check ./Qwen2.5-7B-Instruct --image vllm:0.14.0-gpu --instance ecs.gn7i-c8g1.2xlarge
      check models/* -j 4 --format concise
      check images          (also: check instances --cloud aws, check gpus)
    """


@main.command("run", hidden=True, cls=CheckCommand)
@click.argument("paths", nargs=-1, required=True)
@click.option("--image", "-i", help="Serving image: vllm:0.14.0-gpu, sglang:0.5.8-gpu, llama.cpp, comfyui:2.2, a registry URI... (`check images` lists them)")
@click.option("--chip", type=click.Choice(["GPU", "CPU", "PPU", "XPU"], case_sensitive=False), help="Chip type of the deployment.")
@click.option("--instance", help="Instance type (ecs.gn7i-c8g1.2xlarge, ml.gu7i.c16m60.1-gu30, g5.xlarge...) or 'local' (`check instances`).")
@click.option("--gpu", help="GPU model when there is no instance: t4, a10, a100-80gb, h100, rtx4090... (`check gpus`)")
@click.option("--gpu-count", type=int, help="Number of GPUs with --gpu (default 1).")
@click.option("--engine", "engine_decl", metavar="ENGINE[:VERSION]", help="Engine a private image runs, e.g. vllm:0.14.0.")
@click.option("--image-spec", type=click.Path(dir_okay=False), help="Image description JSON: PAI GetImage / ListImageLabels, docker or skopeo inspect.")
@click.option("--instance-spec", type=click.Path(dir_okay=False), help="Instance types JSON: PAI-EAS describe-machine-spec or AWS describe-instance-types.")
@_engine_arg_options
@click.option("--service", type=click.Path(dir_okay=False), help="PAI-EAS service JSON to check against.")
@click.option("--deploy", "deploy_file", type=click.Path(dir_okay=False), help="modelcheck deploy YAML (see docs/deploy.md).")
@click.option("--serve-cmd", help='The start command, e.g. "vllm serve /models/qwen --max-model-len 8192".')
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "concise", "json", "sarif", "github", "junit"]), default=None,
              help="Output format (default text; github when GITHUB_ACTIONS=true). concise: one line per finding.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write the report to FILE (the exit code still gates).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the findings of failing paths (a passing run prints nothing).")
@click.option("--select", multiple=True, help="Rules to run: code, prefix, name or ALL (repeatable, comma-separated).")
@click.option("--ignore", multiple=True, help="Rules to skip: code, prefix or name (repeatable, comma-separated).")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"], case_sensitive=False), default=None, help="Lowest severity that fails the run (default error).")
@click.option("--severity", "severity_overrides", multiple=True, metavar="CODE=LEVEL", help="Override a rule's severity, e.g. MEM004=error.")
@click.option("--exit-zero", is_flag=True, help="Always exit 0 when the check ran (for rollout).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Config file (default: discover .modelcheck.toml / pyproject.toml).")
@click.option("--no-config", is_flag=True, help="Ignore config files.")
@click.option("--catalog", "catalog_files", multiple=True, type=click.Path(dir_okay=False), help="Extra catalog YAML (private instances, GPUs, images).")
@click.option("--jobs", "-j", type=int, default=1, show_default=True, help="Check paths in N parallel processes.")
@click.option("--online", is_flag=True, help="Allow hub access (metadata only) for hub references and --verify.")
@click.option("--verify", is_flag=True, help="Hash weight files against their expected sha256 (reads all weight data).")
@click.option("--smoke", is_flag=True, help="After the checks pass, start the model in vLLM and run a generation test.")
@click.option("--force-smoke", is_flag=True, help="Run the smoke stage even when the checks found errors.")
@click.option("--smoke-prompt", help='Smoke test prompt (default "What is 2+2?").')
@click.option("--smoke-expect", help="Regex the answer must match (default \\b4\\b).")
@click.option("--smoke-python", help="Python interpreter that has vLLM (default: $MODELCHECK_VLLM_PYTHON or this one).")
@click.option("--smoke-launch", help="Launch command template, e.g. '{python} -m vllm.entrypoints.openai.api_server'.")
@click.option("--smoke-timeout", type=float, help="Seconds to wait for the server and answers (default 600).")
@click.option("--color", "color", type=click.Choice(["auto", "always", "never"]), default=None, metavar="[auto|always|never]",
              help="Colour: auto (default) colours a terminal, or a pipe when FORCE_COLOR is set; NO_COLOR turns it off.")
@click.option("--no-color", "no_color", is_flag=True, hidden=True, help="Same as --color never.")
@click.option("--width", type=int, default=None, metavar="N",
              help="Wrap text output at N columns (0: never). Default: $COLUMNS, else the terminal's width; a pipe is not wrapped.")
@click.option("--verbose", "-v", is_flag=True, help="Show every path (also passing ones in multi-path runs) and every assumption behind the memory figures.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def run_command(paths: tuple[str, ...], debug: bool, **kwargs: Any) -> None:
    """Check model folders or files against a declared image and instance."""
    _guard(debug, _run, list(paths), kwargs)


def _split_multi(values: tuple[str, ...] | None) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or ():
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return tuple(out)


def _parse_overrides(values: tuple[str, ...]) -> dict[str, Any]:
    from modelcheck.errors import UsageError
    from modelcheck.rule import Severity

    out = {}
    for item in _split_multi(values):
        code, sep, level = item.partition("=")
        if not sep:
            raise UsageError(f"--severity {item!r}: expected CODE=LEVEL (error, warning, info)")
        try:
            out[code.strip().upper()] = Severity.parse(level)
        except ValueError as exc:
            raise UsageError(f"--severity {item!r}: {exc}") from None
    return out


def _run(paths: list[str], kw: dict[str, Any]) -> None:
    from modelcheck import api, formatters
    from modelcheck.errors import UsageError
    from modelcheck.options import Options
    from modelcheck.rule import Severity

    engine_args = _collect_engine_args(kw)
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
        select=_split_multi(kw.get("select")),
        ignore=_split_multi(kw.get("ignore")),
        fail_on=Severity.parse(fail_on) if fail_on else None,
        severity_overrides=_parse_overrides(kw.get("severity_overrides") or ()),
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
            click.echo(formatters.summary_line(report), err=True)
    else:
        _emit(rendered, color=color if human else None)
        # concise output is findings only (one per line, machine-readable); a person at a terminal
        # also gets the verdict, on stderr
        if fmt == "concise" and not quiet and _isatty(sys.stderr):
            err_color = color_enabled(when, stream=sys.stderr)
            click.echo(formatters.summary_line(report, color=err_color), err=True, color=err_color)
    sys.exit(report.exit_code)


def _emit(text: str, color: bool | None = None) -> None:
    """Print to stdout; a reader that closed the pipe early (`check ... | head`) is not an error.
    ``color``: True keeps the formatter's colour codes even on a pipe (--color always, FORCE_COLOR);
    False strips any, even on a terminal."""
    try:
        click.echo(text, nl=False, color=color)
        sys.stdout.flush()
    except BrokenPipeError:
        # keep Python's exit-time flush from raising again on the closed pipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@main.command("rules")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--all", "show_all", is_flag=True, help="Include plugin rules' module names.")
def rules_command(fmt: str, show_all: bool) -> None:
    """List every rule: code, name, default severity, summary."""
    import json

    from modelcheck import registry

    reg = registry.load()
    if fmt == "json":
        data = [
            {
                "code": r.code,
                "name": r.name,
                "severity": r.severity.label,
                "summary": r.summary,
                "kinds": sorted(r.kinds) if r.kinds else None,
                "needs": sorted(r.needs),
                "options": r.options,
                "module": r.module,
            }
            for r in reg.rules
        ]
        _emit(json.dumps(data, indent=2) + "\n")
        return
    items = reg.rules
    width = max((len(r.name) for r in items), default=10)
    lines = []
    for r in items:
        extra = f"  ({r.module})" if show_all else ""
        lines.append(f"{r.code}  {r.name:<{width}}  {r.severity.label:<7}  {r.summary}{extra}\n")
    _emit("".join(lines))
    for name, reason in reg.load_errors:
        click.echo(f"plugin {name!r} failed to load: {reason}", err=True)


@main.command("explain")
@click.argument("code")
def explain_command(code: str) -> None:
    """Show the documentation of one rule (by code or name)."""
    from modelcheck import registry
    from modelcheck.errors import UsageError

    def show() -> None:
        from modelcheck import docs

        reg = registry.load()
        r = docs.find(code, reg)  # rules and the linter's own CHK codes, by code or name
        if r is None:
            close = registry.suggest(code, reg)
            raise UsageError(f"unknown rule {code!r}" + (f"; did you mean {close}?" if close else " (see `check rules`)"))
        click.echo(docs.explain_text(r), nl=False)

    _guard(False, show)


@main.command("plan")
@click.argument("path")
@click.option("--image", "-i", help="Serving image (default vllm, newest known version).")
@click.option("--cloud", multiple=True, help="Limit to clouds: alibaba, aws, gcp, azure, pai.")
@click.option("--limit", type=int, default=15, show_default=True, help="Rows to show.")
@click.option("--min-concurrency", "min_concurrency", type=click.FloatRange(min=0), default=None,
              help="Only instances whose predicted max concurrency (full-length requests in the KV cache) is >= N.")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text")
@_engine_arg_options
@click.option("--debug", is_flag=True)
def plan_command(path: str, debug: bool, **kwargs: Any) -> None:
    """List the catalog instances PATH fits on, smallest first, with predicted KV tokens and concurrency."""
    _guard(debug, _plan, path, kwargs)


def _plan(path: str, kw: dict[str, Any]) -> None:
    from modelcheck import catalog, facts, plan, target

    engine_args = _collect_engine_args(kw)
    cat = catalog.load()
    model = facts.gather(path)
    # no image: a Hugging Face LLM is planned on the newest vLLM the catalog knows (as `--image vllm` means)
    default = "vllm" if model.kind == "hf-llm" else None
    image = target.parse_image(kw.get("image") or default, cat) if (kw.get("image") or default) else None
    rows = plan.plan(model, cat, engine_args, image=image, clouds=tuple(kw.get("cloud") or ()) or None,
                     min_concurrency=kw.get("min_concurrency"))
    from modelcheck.formatters import plan_table

    click.echo(plan_table.render(rows[: kw.get("limit") or 15], fmt=kw.get("fmt") or "text", model=model,
                                 min_concurrency=kw.get("min_concurrency")), nl=False)
    sys.exit(0 if rows else 1)


# -- the catalogs, so users find the names the gate accepts -------------------------------------------


def _catalog_formats(func: Any) -> Any:
    func = click.option("--format", "-f", "fmt", type=click.Choice(["text", "table", "json"]), default="text",
                        show_default=True, help="Table or JSON.")(func)
    return click.option("--catalog", "catalog_files", multiple=True, type=click.Path(dir_okay=False),
                        help="Extra catalog YAML (private instances, GPUs, images).")(func)


def _load_catalog(files: tuple[str, ...]) -> Any:
    from modelcheck import catalog

    return catalog.load(tuple(files or ()))


@main.command("images")
@_catalog_formats
def images_command(fmt: str, catalog_files: tuple[str, ...]) -> None:
    """List the serving images (engine families) --image accepts."""
    from modelcheck.formatters import catalog_table

    def show() -> None:
        cat = _load_catalog(catalog_files)
        families = [cat.image_family(name) for name in cat.image_families()]
        _emit(catalog_table.images(families, fmt="json" if fmt == "json" else "text"))

    _guard(False, show)


@main.command("instances")
@click.option("--cloud", multiple=True, help="Only these clouds: alibaba, aws, gcp, azure, pai (repeatable).")
@click.option("--gpu", help="Only instances with this GPU (any name `check gpus` accepts).")
@click.option("--chip", type=click.Choice(["GPU", "CPU", "PPU", "XPU"], case_sensitive=False), help="Only this chip type.")
@_catalog_formats
def instances_command(cloud: tuple[str, ...], gpu: str | None, chip: str | None, fmt: str,
                      catalog_files: tuple[str, ...]) -> None:
    """List the instance types --instance accepts (name patterns such as ecs.g7.* are accepted too)."""
    from modelcheck.formatters import catalog_table

    def show() -> None:
        from modelcheck.errors import UsageError

        cat = _load_catalog(catalog_files)
        items = cat.instances(chip=chip)
        clouds = {c.strip().lower() for v in cloud for c in v.split(",") if c.strip()}
        if clouds:
            known = {i.cloud for i in cat.instances()}
            unknown = sorted(clouds - known)
            if unknown:
                raise UsageError(f"unknown cloud {unknown[0]!r} (known: {', '.join(sorted(known))})")
            items = [i for i in items if i.cloud in clouds]
        if gpu:
            want = cat.gpu(gpu).name  # unknown GPU: UsageError with "did you mean"
            items = [i for i in items if i.gpu is not None and i.gpu.name == want]
        items.sort(key=lambda i: (i.cloud, i.gpu.name if i.gpu else "", i.gpu_count, i.vcpu or 0, i.name))
        _emit(catalog_table.instances(items, fmt="json" if fmt == "json" else "text"))

    _guard(False, show)


@main.command("gpus")
@_catalog_formats
def gpus_command(fmt: str, catalog_files: tuple[str, ...]) -> None:
    """List the GPUs --gpu accepts, with the memory the driver reports and compute capability."""
    from modelcheck.formatters import catalog_table

    def show() -> None:
        cat = _load_catalog(catalog_files)
        items = [(g, tuple(cat.gpu_info(g.name).get("aliases") or ())) for g in cat.gpus()]
        _emit(catalog_table.gpus(items, fmt="json" if fmt == "json" else "text"))

    _guard(False, show)


if __name__ == "__main__":  # pragma: no cover
    main()
