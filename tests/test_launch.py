"""The click-free launcher parses a plain check exactly as click does, and hands click everything else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelcheck import check_options, cli, launch

ROOT = Path(__file__).resolve().parent.parent


def _click(argv: list[str]) -> tuple[tuple[str, ...], dict]:
    params = dict(cli.run_command.make_context("check", list(argv)).params)
    return params.pop("paths"), params


def test_click_reads_the_same_declaration():
    declared = {o.name: o for o in check_options.options()}
    clicked = {p.name: p for p in cli.run_command.params if p.name != "paths"}
    assert list(declared) == list(clicked)  # same options, same order (check --help)
    for name, o in declared.items():
        assert tuple(clicked[name].opts) == o.decls and clicked[name].multiple == o.multiple, name


def _samples(o: check_options.Option) -> list[str]:
    kind = o.kind
    if kind == "str":
        return ["x", "a b", "=y", ""]
    if kind == "int":
        return ["3", " 7", "1_000", "-2"]
    if kind == "float":
        return ["0.5", "1e-3", "-1", "inf"]
    if kind == "choice":
        out = list(o.choices)
        if not o.case_sensitive:
            out += [c.lower() for c in o.choices] + [c.swapcase() for c in o.choices]
        return out
    return []


def _fast_cases() -> list[list[str]]:
    cases: list[list[str]] = [["m"], ["a", "b", "c"]]
    for o in check_options.options():
        for opt in o.decls:
            if o.kind == "flag":
                cases += [["m", opt], [opt, "m"], ["m", opt, opt]]
                continue
            for value in _samples(o):
                if not value.startswith("-"):
                    cases += [["m", opt, value], [opt, value, "m", "n"]]
                if len(opt) > 2:  # --name=value (also for negative numbers)
                    cases.append(["m", f"{opt}={value}"])
            if o.multiple and _samples(o):
                a, b = _samples(o)[:2]
                cases.append(["m", opt, a, "n", opt, b])
            elif _samples(o):
                a, b = _samples(o)[:2]
                cases.append(["m", opt, a, opt, b])  # repeated: the last one wins in both
    cases.append(["m", "--image", "vllm:0.14.0-gpu", "--instance", "ecs.gn7i-c8g1.2xlarge", "-q", "--format", "json",
                  "--select", "MEM,ENG", "--select", "SEC001", "--severity", "MEM004=error", "-j", "2",
                  "--max-model-len", "32k", "-tp", "2", "--engine-arg", "enable_chunked_prefill=false",
                  "--enforce-eager", "--no-config", "--debug"])
    return cases


@pytest.mark.parametrize("argv", _fast_cases(), ids=lambda a: " ".join(a)[:60])
def test_fast_path_equals_click(argv):
    fast = launch.parse(argv)
    assert fast is not None, "the launcher should take this command line itself"
    assert fast == _click(argv)


def test_every_parsable_option_is_exercised():
    taken = {o.name for o in check_options.options() if o.kind in ("str", "int", "float", "choice", "flag")}
    seen = set()
    for argv in _fast_cases():
        _, values = launch.parse(argv)
        _, defaults = launch.parse(["m"])
        seen |= {k for k in values if values[k] != defaults[k]}
    assert taken - seen == set()


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["-h"], ["m", "--help"], ["--version"], ["-V"], ["rules"], ["explain", "MEM001"], ["plan", "m"],
    ["images"], ["run", "m"],
    ["m", "--imagee", "x"],  # a typo: click suggests the flag
    ["m", "-qv"], ["m", "-j2"], ["m", "-i=x"], ["m", "--quiet=1"],
    ["m", "--jobs", "two"], ["m", "--chip", "gpux"], ["m", "--format", "JSON"],  # click words the error
    ["m", "--output", "r.json"], ["m", "--config", "c.toml"], ["m", "--catalog", "c.yaml"],  # paths: click checks
    ["m", "--"], ["--", "m"], ["m", "--image"], ["m", "--image", "-x"], ["--image", "x"], ["-"],
])
def test_click_takes_everything_else(argv):
    assert launch.parse(argv) is None


def _run(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1", **(env or {})})


@pytest.mark.parametrize("args", [
    ["fixtures/examples/qwen2.5-0.5b-instruct", "--image", "vllm:0.14.0-gpu", "--gpu", "t4", "--no-config"],
    ["fixtures/examples/qwen2.5-0.5b-instruct", "--image", "vllm:0.14.0-gpu", "--gpu", "t4", "--format", "json", "--no-config"],
    ["fixtures/examples/qwen2.5-0.5b-instruct", "--image", "vllm:0.14.0-gpu", "--gpu", "t4", "--max-model-len", "999999999",
     "--no-config"],
    ["fixtures/examples/qwen2.5-0.5b-instruct", "--image", "vlm:0.14.0-gpu", "--no-config"],  # a CheckError: one line, exit 2
    ["fixtures/examples/qwen2.5-0.5b-instruct", "--imagee", "vllm", "--no-config"],  # click's usage error, via the fallback
])
def test_launcher_and_click_cli_behave_the_same(args):
    if not (ROOT / args[0]).exists():
        pytest.skip(f"{args[0]} is not in this checkout")
    fast, slow = _run("modelcheck", *args), _run("modelcheck.cli", *args)
    # click names the program after how it was started: `python -m modelcheck` vs `python -m modelcheck.cli`
    slow_err = slow.stderr.replace("python -m modelcheck.cli", "python -m modelcheck")
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow_err)


def test_a_plain_check_does_not_import_click():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "modelcheck", "fixtures/examples/qwen2.5-0.5b-instruct",
                           "--gpu", "t4", "--no-config", "--format", "json"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode in (0, 1) and json.loads(proc.stdout)["results"]  # a report came out
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "modelcheck.console" in imported
    assert not {"click", "inspect", "dataclasses"} & imported


def test_the_subcommand_words_are_clicks():
    assert set(check_options.SUBCOMMANDS) == set(cli.main.commands)
