"""The terminal experience users of ruff / pre-commit expect (issue 14): grouped help, usage errors that
name `check`, -V, wrapping with hanging indents, --color / FORCE_COLOR / NO_COLOR, --format concise,
-q, collapsed passing paths, the catalog listings, JUnit without stages nobody asked for, -j in processes.

Runs use cwd=tmp and relative paths; outputs are asserted as text and exit codes, never timings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelcheck import __version__
from modelcheck.cli import color_enabled, main, output_width
from modelcheck.formatters.wrap import visible_len, wrap_line
from fixtures import builders

ROOT = Path(__file__).resolve().parent.parent
TARGET = ["--image", "vllm:0.14.0-gpu", "--gpu", "a10", "--no-config"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    builders.make_hf_llm(tmp_path / "good", "Qwen2.5-0.5B-Instruct")
    builders.make_hf_llm(tmp_path / "good2", "Qwen2.5-0.5B-Instruct")
    builders.make_hf_llm(tmp_path / "broken", "Qwen2.5-0.5B-Instruct", shards=3, truncate_shard=2, missing_shard=3)
    monkeypatch.chdir(tmp_path)
    for var in ("GITHUB_ACTIONS", "FORCE_COLOR", "NO_COLOR", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)


def shell(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """The CLI in a real process with stdout on a pipe (not a terminal)."""
    full = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "COLUMNS", "GITHUB_ACTIONS")}
    full.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "modelcheck", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=120, check=False)


# -- 1. help, usage errors, version ---------------------------------------------------------------


def test_help_lists_every_check_option_in_sections():
    r = invoke("--help")
    assert r.exit_code == 0
    out = r.stdout
    assert out.startswith("Usage: check [OPTIONS] PATHS...\n       check COMMAND [ARGS]...\n")
    sections = ["Target:", "Engine arguments (as the engine spells them):", "Output:", "Rule selection:",
                "Smoke test (start the model for real):", "Other:", "Commands:"]
    positions = [out.index("\n" + s + "\n") for s in sections]
    assert positions == sorted(positions)
    run = main.commands["run"]
    for param in run.params:
        if getattr(param, "hidden", False) or param.param_type_name != "option":
            continue
        assert param.opts[-1] in out, f"{param.opts} missing from check --help"
    # options land in their section
    target = out[out.index("\nTarget:"):out.index("\nEngine arguments")]
    assert "--instance" in target and "--gpu-count" in target and not re.search(r"^  --max-model-len ", target, re.MULTILINE)
    engine = out[out.index("\nEngine arguments"):out.index("\nOutput:")]
    assert "--max-model-len" in engine and "--engine-arg KEY=VALUE" in engine
    output = out[out.index("\nOutput:"):out.index("\nRule selection:")]
    for flag in ("--format", "-q, --quiet", "--color [auto|always|never]", "--width N"):
        assert flag in output
    assert "-V, --version" in out
    for cmd in ("rules", "explain", "plan", "images", "instances", "gpus"):
        assert re.search(rf"^  {cmd} ", out, re.MULTILINE), cmd
    assert not re.search(r"^  run ", out, re.MULTILINE)  # the hidden command stays hidden
    # `check run --help` (still accepted) shows the same grouped options
    assert "Engine arguments (as the engine spells them):" in invoke("run", "--help").stdout


@pytest.mark.parametrize("args,error", [
    (["good", "--bogus"], "No such option '--bogus'"),
    (["good", "--format", "nope"], "Invalid value for '--format'"),
    (["--image", "vllm:0.14.0-gpu"], "Missing argument 'PATHS...'"),
])
def test_usage_errors_name_the_command_the_user_typed(models, args, error):
    r = invoke(*args)
    assert r.exit_code == 2
    assert r.stderr.startswith("Usage: check [OPTIONS] PATHS...\nTry 'check --help' for help.\n")
    assert error in r.stderr
    assert "check run" not in r.stderr


def test_version_short_and_long():
    for flag in ("-V", "--version"):
        r = invoke(flag)
        assert r.exit_code == 0 and r.stdout == f"modelcheck {__version__}\n"


def test_quiet_is_q_and_quantization_keeps_its_long_flag(models):
    r = invoke("good", *TARGET, "--quantization", "nonsense-q", "-q")
    assert r.exit_code in (0, 1) and "No such option" not in r.output


# -- 2. wrapping and colour -----------------------------------------------------------------------


def test_wraps_to_80_columns_with_hanging_indents(models):
    r = invoke("broken", *TARGET, "--width", "80")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    start = next(i for i, line in enumerate(lines) if "FIL004 [truncated-weights]" in line)
    assert lines[start].startswith("  error   FIL004 [truncated-weights] model-00002-of-00003.safetensors is")
    # the message continues under the rule code, the fix under the fix text
    assert lines[start + 1].startswith(" " * 10) and not lines[start + 1].startswith(" " * 11)
    fix = next(i for i in range(start, len(lines)) if lines[i].lstrip().startswith("fix:"))
    assert lines[fix].startswith("          fix: delete model-00002-of-00003.safetensors")
    assert lines[fix + 1].startswith(" " * 15) and lines[fix + 1].strip()
    # nothing was lost: the unwrapped text has the same words in the same order
    flat = invoke("broken", *TARGET, "--width", "0").stdout
    assert " ".join(r.stdout.split()) == " ".join(flat.split())


def test_columns_env_wraps_and_a_pipe_does_not(models):
    piped = shell("broken", *TARGET, cwd=models)
    assert max(len(line) for line in piped.stdout.splitlines()) > 100  # not a terminal: one line each
    narrow = shell("broken", *TARGET, cwd=models, COLUMNS="80")
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    assert output_width(None, environ={}, stream=sys.stdin if False else _Pipe()) is None
    assert output_width(None, environ={"COLUMNS": "72"}, stream=_Pipe()) == 72
    assert output_width(100, environ={"COLUMNS": "72"}, stream=_Pipe()) == 100
    assert output_width(0, environ={"COLUMNS": "72"}, stream=_Pipe()) is None


class _Pipe:
    def isatty(self) -> bool:
        return False


class _Tty:
    def isatty(self) -> bool:
        return True


def test_wrap_never_breaks_words_and_ignores_colour_codes():
    long_path = "models/" + "x" * 90 + "/model.safetensors"
    out = wrap_line(f"  \x1b[31merror  \x1b[0m FIL004 [truncated-weights] {long_path} is short", 60)
    assert any(long_path in line for line in out)  # a word longer than the line stays whole
    assert all(visible_len(line) <= 60 or long_path in line for line in out)
    assert wrap_line("short", 60) == ["short"]


def test_color_decisions():
    assert color_enabled("always", stream=_Pipe(), environ={"NO_COLOR": "1"}) is True
    assert color_enabled("never", stream=_Tty(), environ={"FORCE_COLOR": "1"}) is False
    assert color_enabled("auto", stream=_Pipe(), environ={"FORCE_COLOR": "1"}) is True
    assert color_enabled("auto", stream=_Pipe(), environ={"FORCE_COLOR": ""}) is False
    assert color_enabled("auto", stream=_Tty(), environ={"NO_COLOR": "1"}) is False
    assert color_enabled("auto", stream=_Tty(), environ={}) is True
    assert color_enabled("auto", stream=_Pipe(), environ={}) is False
    assert color_enabled("always", to_file=True, stream=_Tty(), environ={}) is True


def test_color_always_and_force_color_colour_a_pipe(models):
    forced = shell("broken", *TARGET, "--color", "always", cwd=models)
    assert "\x1b[31merror  \x1b[0m FIL004" in forced.stdout and "\x1b[31mFAIL\x1b[0m" in forced.stdout
    env_forced = shell("broken", *TARGET, cwd=models, FORCE_COLOR="1")
    assert "\x1b[31m" in env_forced.stdout
    assert ANSI.sub("", env_forced.stdout) == shell("broken", *TARGET, cwd=models).stdout
    plain = shell("broken", *TARGET, "--color", "never", cwd=models, FORCE_COLOR="1")
    assert "\x1b[" not in plain.stdout
    assert "\x1b[" not in shell("broken", *TARGET, "--no-color", cwd=models, FORCE_COLOR="1").stdout
    # machine formats are never coloured
    doc = shell("broken", *TARGET, "--color", "always", "-f", "json", cwd=models)
    assert "\x1b[" not in doc.stdout and json.loads(doc.stdout)["summary"]["failed"] is True


# -- 3. concise, quiet, collapsed passing paths ---------------------------------------------------


def test_concise_is_one_line_per_finding_starting_with_the_path(models):
    r = invoke("good", "broken", *TARGET, "-f", "concise")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    doc = json.loads(invoke("good", "broken", *TARGET, "-f", "json").stdout)
    findings = [f for res in doc["results"] for f in res["findings"]]
    assert len(lines) == len(findings) == 2
    assert lines[0] == (
        "broken/model.safetensors.index.json: FIL003 [index-shard-missing] model.safetensors.index.json lists "
        "3 shard(s) but 1 are missing: model-00003-of-00003.safetensors (96 tensors have no data)"
    )
    assert lines[1].startswith("broken/model-00002-of-00003.safetensors: FIL004 [truncated-weights] ")
    assert invoke("good", *TARGET, "-f", "concise").stdout == ""


def test_concise_location_of_a_field_and_of_a_single_file(models):
    from modelcheck.formatters.concise import location
    from modelcheck.rule import Finding

    class R:  # the two attributes location() reads
        path = "models/qwen"

        class facts:
            single_file = None

    assert location(R, Finding("m", path="config.json:max_position_embeddings")) == \
        "models/qwen/config.json:max_position_embeddings"
    assert location(R, Finding("m")) == "models/qwen"
    builders.make_gguf(models / "tiny.gguf")
    r = invoke("tiny.gguf", "--image", "vllm:0.14.0-gpu", "--no-config", "-f", "concise", "--fail-on", "info")
    for line in r.stdout.splitlines():
        assert line.startswith("tiny.gguf"), line


def test_quiet_passing_model_prints_nothing(models):
    r = invoke("good", *TARGET, "-q")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    r = invoke("good", "broken", *TARGET, "-q")
    assert r.exit_code == 1
    assert r.stdout.splitlines()[0] == "broken"
    assert "good" not in r.stdout and "PASS" not in r.stdout and "FAIL" not in r.stdout
    assert "FIL004 [truncated-weights]" in r.stdout and "fix: delete model-00002-of-00003.safetensors" in r.stdout
    assert "memory (" not in r.stdout and "target:" not in r.stdout
    assert invoke("good", "broken", *TARGET, "-q", "-f", "concise").stdout.count("\n") == 2


def test_several_paths_collapse_passing_models_unless_verbose(models):
    r = invoke("good", "broken", "good2", *TARGET)
    assert r.exit_code == 1
    assert "\ngood\n" not in "\n" + r.stdout and "\ngood2\n" not in r.stdout
    assert "broken\n" in r.stdout
    assert "2 paths passed with no findings (-v shows them)\n" in r.stdout
    assert r.stdout.endswith("FAIL: 3 paths checked, 2 error(s), 0 warning(s), 0 info (failing at error)\n")
    v = invoke("good", "broken", "good2", *TARGET, "-v")
    assert v.stdout.startswith("good\n") and "\ngood2\n" in v.stdout and "passed with no findings" not in v.stdout
    # one path: its block is always shown
    assert invoke("good", *TARGET).stdout.startswith("good\n")


# -- 4. the catalogs ------------------------------------------------------------------------------


def test_check_images_instances_gpus_tables_and_json():
    from modelcheck import catalog

    cat = catalog.load()
    images = invoke("images")
    assert images.exit_code == 0
    assert images.stdout.splitlines()[0].split() == ["image", "category", "known", "versions", "chips", "serves"]
    names = [line.split()[0] for line in images.stdout.splitlines()[1:] if line and not line.startswith("write")]
    assert names == cat.image_families()
    assert [f["name"] for f in json.loads(invoke("images", "-f", "json").stdout)] == cat.image_families()

    aws = invoke("instances", "--cloud", "aws", "--gpu", "a10g")
    rows = aws.stdout.splitlines()[1:]
    assert rows and all(" aws " in row and "A10G" in row for row in rows)
    assert "g5.xlarge" in aws.stdout
    doc = json.loads(invoke("instances", "--cloud", "aws", "-f", "json").stdout)
    assert doc and {i["cloud"] for i in doc} == {"aws"}
    assert {i["name"] for i in doc} == {i.name for i in cat.instances(cloud="aws")}

    gpus = invoke("gpus")
    assert re.search(r"^A10 +22\.1 +8\.6 +Ampere +bf16 +a10, nvidia-a10, a10-24gb$", gpus.stdout, re.MULTILINE)
    assert [g["name"] for g in json.loads(invoke("gpus", "-f", "json").stdout)] == [g.name for g in cat.gpus()]


def test_catalog_listing_errors_are_one_line():
    r = invoke("instances", "--gpu", "a1O")
    assert r.exit_code == 2 and r.stderr.startswith("error: unknown GPU 'a1O'; did you mean") and r.stdout == ""
    r = invoke("instances", "--cloud", "mars")
    assert r.exit_code == 2 and r.stderr == "error: unknown cloud 'mars' (known: alibaba, aws, azure, gcp, pai)\n"


# -- 5. JUnit -------------------------------------------------------------------------------------


def test_junit_lists_only_rules_that_ran_and_real_skips(models):
    r = invoke("good", "--image", "vllm:0.14.0-gpu", "--no-config", "-f", "junit")
    root = ET.fromstring(r.stdout)
    cases = root.findall(".//testcase")
    names = [c.get("name") for c in cases]
    assert not any(n.startswith(("SMK", "DEP")) for n in names)  # no smoke run, no deployment spec
    skipped = {c.get("name").split()[0]: c.find("skipped").get("message") for c in cases if c.find("skipped") is not None}
    needs = {"no --instance or --gpu declared", "the target has no GPU", "no GPU memory known for the target",
             "no memory estimate for this model and target"}
    assert skipped and all(m in needs or m.startswith("applies to ") for m in skipped.values()), skipped
    assert skipped["CHP004"] == "no --instance or --gpu declared"
    suite = root.find("testsuite")
    assert int(suite.get("tests")) == len(cases) and int(suite.get("skipped")) == len(skipped)


# -- 6. -j in processes ---------------------------------------------------------------------------


def test_jobs_in_processes_give_the_serial_report(models):
    paths = ["good", "broken", "good2"]
    serial = json.loads(invoke(*paths, *TARGET, "-f", "json").stdout)
    parallel = invoke(*paths, *TARGET, "-f", "json", "-j", "3")
    assert parallel.exit_code == 1
    assert json.loads(parallel.stdout)["results"] == serial["results"]
    missing = invoke("good", "nope", "good2", *TARGET, "-j", "2")
    assert missing.exit_code == 2 and missing.stderr == "error: path does not exist: nope\n"


def test_api_run_uses_processes(models, monkeypatch):
    from modelcheck import api
    from modelcheck.options import Options

    seen = []
    real = api._check_in_processes
    monkeypatch.setattr(api, "_check_in_processes", lambda p, o, j: seen.append(j) or real(p, o, j))
    report = api.run(["good", "broken"], Options(image="vllm:0.14.0-gpu", gpu="a10", jobs=2, use_config=False))
    assert seen == [2] and [r.path for r in report.results] == ["good", "broken"]
    assert [f.rule for f in report.results[1].findings][:2] == ["FIL003", "FIL004"]
