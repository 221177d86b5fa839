"""Command line: ``check PATH... [options]`` plus ``check rules``, ``check explain CODE``, ``check plan PATH``,
``check images``, ``check instances``, ``check gpus``.

The check itself is the hidden ``run`` command that ``check PATH`` dispatches to; ``check --help`` shows
its options grouped (target, engine arguments, output, selection, smoke) and usage errors name ``check``,
the command the user typed. What the check does once parsed (run, print, exit codes) is
``modelcheck.console.run_check``; the options are declared once in ``modelcheck.check_options``, and the
``check`` console script (``modelcheck.launch``) parses a plain ``check PATH [options]`` from the same
declaration, coming here for the rest.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from modelcheck import __version__, check_options
from modelcheck.console import (  # noqa: F401 - color_enabled/output_width: part of this module's API
    collect_engine_args,
    color_enabled,
    emit,
    guard,
    output_width,
    run_check,
)

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
        if args[0] not in self.commands and args[0] not in check_options.GROUP_FLAGS:
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


def _click_option(o: check_options.Option) -> Any:
    """One declared option (modelcheck.check_options) as a click option."""
    kw: dict[str, Any] = {"help": o.help}
    if o.default is not None or o.kind == "flag":  # an engine-argument flag's None means "not given"
        kw["default"] = o.default
    if o.multiple:
        kw["multiple"] = True
    if o.metavar:
        kw["metavar"] = o.metavar
    if o.hidden:
        kw["hidden"] = True
    if o.show_default:
        kw["show_default"] = True
    if o.kind == "flag":
        kw["is_flag"] = True
    elif o.kind == "choice":
        kw["type"] = click.Choice(list(o.choices), case_sensitive=o.case_sensitive)
    elif o.kind == "path":
        kw["type"] = click.Path(dir_okay=False, writable=o.writable)
    elif o.kind in ("int", "float"):
        kw["type"] = {"int": int, "float": float}[o.kind]
    return click.option(*o.decls, o.name, **kw)


def _options(declared: Any) -> Any:
    """Decorate a command with the declared options, in their order."""

    def decorate(func: Any) -> Any:
        for o in reversed(declared()):
            func = _click_option(o)(func)
        return func

    return decorate


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
@_options(check_options.options)
def run_command(paths: tuple[str, ...], debug: bool, **kwargs: Any) -> None:
    """Check model folders or files against a declared image and instance."""
    guard(debug, run_check, list(paths), kwargs)


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
        emit(json.dumps(data, indent=2) + "\n")
        return
    items = reg.rules
    width = max((len(r.name) for r in items), default=10)
    lines = []
    for r in items:
        extra = f"  ({r.module})" if show_all else ""
        lines.append(f"{r.code}  {r.name:<{width}}  {r.severity.label:<7}  {r.summary}{extra}\n")
    emit("".join(lines))
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

    guard(False, show)


@main.command("plan")
@click.argument("path")
@click.option("--image", "-i", help="Serving image (default vllm, newest known version).")
@click.option("--cloud", multiple=True, help="Limit to clouds: alibaba, aws, gcp, azure, pai.")
@click.option("--limit", type=int, default=15, show_default=True, help="Rows to show.")
@click.option("--min-concurrency", "min_concurrency", type=click.FloatRange(min=0), default=None,
              help="Only instances whose predicted max concurrency (full-length requests in the KV cache) is >= N.")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text")
@_options(check_options.engine_options)
@click.option("--debug", is_flag=True)
def plan_command(path: str, debug: bool, **kwargs: Any) -> None:
    """List the catalog instances PATH fits on, smallest first, with predicted KV tokens and concurrency."""
    guard(debug, _plan, path, kwargs)


def _plan(path: str, kw: dict[str, Any]) -> None:
    from modelcheck import catalog, facts, plan, target

    engine_args = collect_engine_args(kw)
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
        emit(catalog_table.images(families, fmt="json" if fmt == "json" else "text"))

    guard(False, show)


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
        emit(catalog_table.instances(items, fmt="json" if fmt == "json" else "text"))

    guard(False, show)


@main.command("gpus")
@_catalog_formats
def gpus_command(fmt: str, catalog_files: tuple[str, ...]) -> None:
    """List the GPUs --gpu accepts, with the memory the driver reports and compute capability."""
    from modelcheck.formatters import catalog_table

    def show() -> None:
        cat = _load_catalog(catalog_files)
        items = [(g, tuple(cat.gpu_info(g.name).get("aliases") or ())) for g in cat.gpus()]
        emit(catalog_table.gpus(items, fmt="json" if fmt == "json" else "text"))

    guard(False, show)



if __name__ == "__main__":  # pragma: no cover
    main()
