"""The ``check`` command's options, declared once as data.

Two readers: the click CLI (``modelcheck.cli`` makes its options from these) and the click-free launcher
(``modelcheck.launch`` parses a plain check with them). The engine arguments among them are declared in
``catalog/engine_args.yaml`` (rows with ``cli``) and come in where :data:`ENGINE_ARGS` stands: adding a vLLM
flag is still one row there. ``tests/test_launch.py`` holds both parsers to the same answers.
"""

from __future__ import annotations

from typing import Any

from modelcheck import engine_args
from modelcheck.record import record

# `check WORD ...`: a subcommand, not a path; `check FLAG`: the group's own flags (help, version)
SUBCOMMANDS = ("rules", "explain", "plan", "images", "instances", "gpus", "run")
GROUP_FLAGS = ("--help", "-h", "--version", "-V")


@record
class Option:
    decls: tuple[str, ...]  # as typed: ("--format", "-f")
    name: str  # the keyword the check receives (modelcheck.console.run_check)
    help: str = ""
    kind: str = "str"  # str | int | float | flag | choice | path (a file; click checks it on disk)
    choices: tuple[str, ...] = ()
    case_sensitive: bool = True
    multiple: bool = False
    default: Any = None  # what an option left out is (flags: False, engine-argument flags: None = not given)
    metavar: str | None = None
    hidden: bool = False
    show_default: bool = False
    writable: bool = False  # a path the check writes to (--output)


ENGINE_ARGS = "@engine-args"  # where the engine-argument options go (check --help: their own section)

CHECK: tuple[Option | str, ...] = (
    Option(("--image", "-i"), "image", "Serving image: vllm:0.14.0-gpu, sglang:0.5.8-gpu, llama.cpp, comfyui:2.2, "
           "a registry URI... (`check images` lists them)"),
    Option(("--chip",), "chip", "Chip type of the deployment.", kind="choice", choices=("GPU", "CPU", "PPU", "XPU"),
           case_sensitive=False),
    Option(("--instance",), "instance", "Instance type (ecs.gn7i-c8g1.2xlarge, ml.gu7i.c16m60.1-gu30, g5.xlarge...) "
           "or 'local' (`check instances`)."),
    Option(("--gpu",), "gpu", "GPU model when there is no instance: t4, a10, a100-80gb, h100, rtx4090... "
           "(`check gpus`)"),
    Option(("--gpu-count",), "gpu_count", "Number of GPUs with --gpu (default 1).", kind="int"),
    Option(("--engine",), "engine_decl", "Engine a private image runs, e.g. vllm:0.14.0.", metavar="ENGINE[:VERSION]"),
    Option(("--image-spec",), "image_spec", "Image description JSON: PAI GetImage / ListImageLabels, docker or "
           "skopeo inspect.", kind="path"),
    Option(("--instance-spec",), "instance_spec", "Instance types JSON: PAI-EAS describe-machine-spec or AWS "
           "describe-instance-types.", kind="path"),
    ENGINE_ARGS,
    Option(("--service",), "service", "PAI-EAS service JSON to check against.", kind="path"),
    Option(("--deploy",), "deploy_file", "modelcheck deploy YAML (see docs/deploy.md).", kind="path"),
    Option(("--serve-cmd",), "serve_cmd", 'The start command, e.g. "vllm serve /models/qwen --max-model-len 8192".'),
    Option(("--format", "-f"), "fmt", "Output format (default text; github when GITHUB_ACTIONS=true). concise: one "
           "line per finding.", kind="choice", choices=("text", "concise", "json", "sarif", "github", "junit")),
    Option(("--output", "-o"), "output", "Write the report to FILE (the exit code still gates).", kind="path",
           writable=True),
    Option(("--quiet", "-q"), "quiet", "Print only the findings of failing paths (a passing run prints nothing).",
           kind="flag", default=False),
    Option(("--select",), "select", "Rules to run: code, prefix, name or ALL (repeatable, comma-separated).",
           multiple=True),
    Option(("--ignore",), "ignore", "Rules to skip: code, prefix or name (repeatable, comma-separated).",
           multiple=True),
    Option(("--fail-on",), "fail_on", "Lowest severity that fails the run (default error).", kind="choice",
           choices=("error", "warning", "info"), case_sensitive=False),
    Option(("--severity",), "severity_overrides", "Override a rule's severity, e.g. MEM004=error.", multiple=True,
           metavar="CODE=LEVEL"),
    Option(("--exit-zero",), "exit_zero", "Always exit 0 when the check ran (for rollout).", kind="flag",
           default=False),
    Option(("--config",), "config_file", "Config file (default: discover .modelcheck.toml / pyproject.toml).",
           kind="path"),
    Option(("--no-config",), "no_config", "Ignore config files.", kind="flag", default=False),
    Option(("--catalog",), "catalog_files", "Extra catalog YAML (private instances, GPUs, images).", kind="path",
           multiple=True),
    Option(("--jobs", "-j"), "jobs", "Check paths in N parallel processes.", kind="int", default=1, show_default=True),
    Option(("--online",), "online", "Allow hub access (metadata only) for hub references and --verify.", kind="flag",
           default=False),
    Option(("--verify",), "verify", "Hash weight files against their expected sha256 (reads all weight data).",
           kind="flag", default=False),
    Option(("--smoke",), "smoke", "After the checks pass, start the model in vLLM and run a generation test.",
           kind="flag", default=False),
    Option(("--force-smoke",), "force_smoke", "Run the smoke stage even when the checks found errors.", kind="flag",
           default=False),
    Option(("--smoke-prompt",), "smoke_prompt", 'Smoke test prompt (default "What is 2+2?").'),
    Option(("--smoke-expect",), "smoke_expect", "Regex the answer must match (default \\b4\\b)."),
    Option(("--smoke-python",), "smoke_python", "Python interpreter that has vLLM (default: $MODELCHECK_VLLM_PYTHON "
           "or this one)."),
    Option(("--smoke-launch",), "smoke_launch", "Launch command template, e.g. '{python} -m "
           "vllm.entrypoints.openai.api_server'."),
    Option(("--smoke-timeout",), "smoke_timeout", "Seconds to wait for the server and answers (default 600).",
           kind="float"),
    Option(("--color",), "color", "Colour: auto (default) colours a terminal, or a pipe when FORCE_COLOR is set; "
           "NO_COLOR turns it off.", kind="choice", choices=("auto", "always", "never"), metavar="[auto|always|never]"),
    Option(("--no-color",), "no_color", "Same as --color never.", kind="flag", default=False, hidden=True),
    Option(("--width",), "width", "Wrap text output at N columns (0: never). Default: $COLUMNS, else the terminal's "
           "width; a pipe is not wrapped.", kind="int", metavar="N"),
    Option(("--verbose", "-v"), "verbose", "Show every path (also passing ones in multi-path runs) and every "
           "assumption behind the memory figures.", kind="flag", default=False),
    Option(("--debug",), "debug", "Show tracebacks.", kind="flag", default=False),
)


def engine_options() -> list[Option]:
    """The engine flags users already type (engine_args.yaml rows with ``cli``), plus ``--engine-arg KEY=VALUE``
    for the rest. Spelled as vLLM spells them; `-q` is --quiet here, as in ruff and pre-commit."""
    out: list[Option] = []
    for arg in engine_args.declared().values():
        if not arg.cli:
            continue
        decls = (arg.flag("vllm"), *((arg.short,) if arg.short else ()))
        if arg.type is bool:
            out.append(Option(decls, arg.name, arg.help, kind="flag", default=None))  # None: not given
        else:  # ints accept "32k": typed later by engine_args.coerce, which names the flag in its error
            out.append(Option(decls, arg.name, arg.help, kind="float" if arg.type is float else "str"))
    out.append(Option(("--engine-arg",), "engine_arg", "Any other engine argument, e.g. --engine-arg "
                      "enable_chunked_prefill=false.", multiple=True, metavar="KEY=VALUE"))
    return out


def options() -> list[Option]:
    """Every option of the check, in the order `check --help` lists them (the engine arguments in place)."""
    out: list[Option] = []
    for entry in CHECK:
        out.extend(engine_options() if entry == ENGINE_ARGS else [entry])  # type: ignore[list-item]
    return out


__all__ = ["CHECK", "ENGINE_ARGS", "GROUP_FLAGS", "SUBCOMMANDS", "Option", "engine_options", "options"]
