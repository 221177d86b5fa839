"""Command line: ``check PATH... [options]`` plus ``check rules``, ``check explain CODE``, ``check plan PATH``.

Exit codes (DESIGN.md): 0 nothing at or above --fail-on, 1 findings at or above it, 2 could not run.
Every CheckError becomes one line on stderr and exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from checker import __version__
from checker.errors import CheckError

_SUBCOMMANDS = ("rules", "explain", "plan", "run")


class DefaultGroup(click.Group):
    """`check PATH` runs the default command: anything that is not a subcommand is a path or an option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:
            click.echo(ctx.get_help())
            ctx.exit(2)
        if args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _engine_arg_options(func: Any) -> Any:
    """The engine flags users already type, generated from the one declaration (checker.engine_args)."""
    from checker import engine_args

    return engine_args.click_options(func)


def _collect_engine_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    from checker import engine_args

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


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="modelcheck")
def main() -> None:
    """modelcheck: will this model start and serve on this image and instance?

    \b
    check PATH... [--image IMAGE] [--instance TYPE | --gpu NAME --gpu-count N] [engine args]
    check rules            list the rules
    check explain CODE     show one rule's documentation
    check plan PATH        list catalog instances the model fits on
    """


@main.command("run", hidden=True)
@click.argument("paths", nargs=-1, required=True)
@click.option("--image", "-i", help="Serving image: vllm:0.14.0-gpu, sglang:0.5.8-gpu, llama.cpp, comfyui:2.2, a registry URI...")
@click.option("--chip", type=click.Choice(["GPU", "CPU", "PPU", "XPU"], case_sensitive=False), help="Chip type of the deployment.")
@click.option("--instance", help="Instance type (ecs.gn7i-c8g1.2xlarge, ml.gu7i.c16m60.1-gu30, g5.xlarge...) or 'local'.")
@click.option("--gpu", help="GPU model when there is no instance: t4, a10, a100-80gb, h100, rtx4090...")
@click.option("--gpu-count", type=int, help="Number of GPUs with --gpu (default 1).")
@click.option("--engine", "engine_decl", metavar="ENGINE[:VERSION]", help="Engine a private image runs, e.g. vllm:0.14.0.")
@click.option("--image-spec", type=click.Path(dir_okay=False), help="Image description JSON: PAI GetImage / ListImageLabels, docker or skopeo inspect.")
@click.option("--instance-spec", type=click.Path(dir_okay=False), help="Instance types JSON: PAI-EAS describe-machine-spec or AWS describe-instance-types.")
@_engine_arg_options
@click.option("--service", type=click.Path(dir_okay=False), help="PAI-EAS service JSON to check against.")
@click.option("--deploy", "deploy_file", type=click.Path(dir_okay=False), help="modelcheck deploy YAML (see docs/deploy.md).")
@click.option("--serve-cmd", help='The start command, e.g. "vllm serve /models/qwen --max-model-len 8192".')
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json", "sarif", "github", "junit"]), default=None, help="Output format (default text; github when GITHUB_ACTIONS=true).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write the report to FILE (the exit code still gates).")
@click.option("--select", multiple=True, help="Rules to run: code, prefix, name or ALL (repeatable, comma-separated).")
@click.option("--ignore", multiple=True, help="Rules to skip: code, prefix or name (repeatable, comma-separated).")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"], case_sensitive=False), default=None, help="Lowest severity that fails the run (default error).")
@click.option("--severity", "severity_overrides", multiple=True, metavar="CODE=LEVEL", help="Override a rule's severity, e.g. MEM004=error.")
@click.option("--exit-zero", is_flag=True, help="Always exit 0 when the check ran (for rollout).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Config file (default: discover .modelcheck.toml / pyproject.toml).")
@click.option("--no-config", is_flag=True, help="Ignore config files.")
@click.option("--catalog", "catalog_files", multiple=True, type=click.Path(dir_okay=False), help="Extra catalog YAML (private instances, GPUs, images).")
@click.option("--jobs", "-j", type=int, default=1, show_default=True, help="Check paths in parallel.")
@click.option("--online", is_flag=True, help="Allow hub access (metadata only) for hub references and --verify.")
@click.option("--verify", is_flag=True, help="Hash weight files against their expected sha256 (reads all weight data).")
@click.option("--smoke", is_flag=True, help="After the checks pass, start the model in vLLM and run a generation test.")
@click.option("--force-smoke", is_flag=True, help="Run the smoke stage even when the checks found errors.")
@click.option("--smoke-prompt", help='Smoke test prompt (default "What is 2+2?").')
@click.option("--smoke-expect", help="Regex the answer must match (default \\b4\\b).")
@click.option("--smoke-python", help="Python interpreter that has vLLM (default: $MODELCHECK_VLLM_PYTHON or this one).")
@click.option("--smoke-launch", help="Launch command template, e.g. '{python} -m vllm.entrypoints.openai.api_server'.")
@click.option("--smoke-timeout", type=float, help="Seconds to wait for the server and answers (default 600).")
@click.option("--color/--no-color", default=None, help="Colour output (default: only on a tty).")
@click.option("--verbose", "-v", is_flag=True, help="Text output: list every assumption behind the memory figures.")
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
    from checker.errors import UsageError
    from checker.rule import Severity

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
    from checker import api, formatters
    from checker.options import Options
    from checker.rule import Severity

    engine_args = _collect_engine_args(kw)
    deployment: Any = None
    target_kw: dict[str, Any] = {k: kw.get(k) for k in ("image", "chip", "instance", "gpu", "gpu_count")}
    if kw.get("service") or kw.get("deploy_file") or kw.get("serve_cmd"):
        from checker import deploy

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
        from checker import smoke

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
    report = api.run(paths, options)
    fmt = kw.get("fmt") or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text")
    output = kw.get("output")
    color = kw.get("color")
    if color is None:
        color = output is None and sys.stdout.isatty() and fmt == "text" and "NO_COLOR" not in os.environ
    rendered = formatters.get(fmt)(report, color=bool(color))
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(rendered)
        # keep a short human summary on the terminal when the report goes to a file
        click.echo(formatters.get("text")(report, color=False).splitlines()[-1], err=True)
    else:
        _emit(rendered)
    sys.exit(report.exit_code)


def _emit(text: str) -> None:
    """Print to stdout; a reader that closed the pipe early (`check ... | head`) is not an error."""
    try:
        click.echo(text, nl=False)
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

    from checker import registry

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
    from checker import registry
    from checker.errors import UsageError

    def show() -> None:
        from checker import docs

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
    from checker import catalog, facts, plan, target

    engine_args = _collect_engine_args(kw)
    cat = catalog.load()
    image = target.parse_image(kw["image"], cat) if kw.get("image") else None
    model = facts.gather(path)
    rows = plan.plan(model, cat, engine_args, image=image, clouds=tuple(kw.get("cloud") or ()) or None,
                     min_concurrency=kw.get("min_concurrency"))
    from checker.formatters import plan_table

    click.echo(plan_table.render(rows[: kw.get("limit") or 15], fmt=kw.get("fmt") or "text", model=model,
                                 min_concurrency=kw.get("min_concurrency")), nl=False)
    sys.exit(0 if rows else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
