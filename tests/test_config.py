"""Config discovery, validation with key paths, merge under flags, overrides, suppressions."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from modelcheck import config, registry
from modelcheck.options import Options, resolve
from modelcheck.linter import Result
from modelcheck.errors import ConfigError, PluginError
from modelcheck.rule import Finding, Severity, rule, rules_in

sys.path.insert(0, str(Path(__file__).parent))  # test_precommit.write_model


@rule("MEM904", severity=Severity.WARNING, options={"min_concurrency": 4, "ratio": 0.5})
def low_concurrency(ctx):
    """Fewer concurrent sequences than wanted."""
    yield from ()


@rule("ENG001")
def x(ctx):
    """A rule that suppressions below name."""
    yield from ()


@rule("FIL001")
def y(ctx):
    """Another rule that suppressions below name."""
    yield from ()


class _Rules:
    low_concurrency = low_concurrency
    x = x
    y = y


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch):
    from modelcheck import linter

    monkeypatch.setattr(registry, "_CACHE", registry.Registry(rules=(*rules_in(linter), *rules_in(_Rules))))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    for name in ("qwen2.5-7b", "qwen3-8b", "llama"):
        (root / "models" / name).mkdir(parents=True)
        (root / "models" / name / "config.json").write_text("{}")
    monkeypatch.chdir(root)
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


PYPROJECT = """
    [project]
    name = "deployments"

    [tool.modelcheck]
    image = "vllm:0.14.0-gpu"
    instance = "ecs.gn7i-c8g1.2xlarge"
    fail-on = "warning"
    engine-args = { max-model-len = 8192, gpu_memory_utilization = 0.85 }
    severity = { MEM904 = "error" }

    [[tool.modelcheck.overrides]]
    paths = ["models/qwen*"]
    instance = "ecs.gn7i-c16g1.4xlarge"
    engine-args = { tensor-parallel-size = 2 }
    rule-options = { MEM904 = { min_concurrency = 8 } }
"""


def test_pyproject_discovered_from_model_folder_and_merged_under_flags(repo: Path) -> None:
    write(repo / "pyproject.toml", PYPROJECT)
    opts = resolve("models/llama", Options()).options
    assert opts.image == "vllm:0.14.0-gpu"
    assert opts.instance == "ecs.gn7i-c8g1.2xlarge"
    assert opts.fail_on is Severity.WARNING
    assert opts.engine_args == {"max_model_len": 8192, "gpu_memory_utilization": 0.85}
    assert opts.severity_overrides == {"MEM904": Severity.ERROR}

    # flags win; engine args merge key-wise
    flagged = resolve(
        "models/llama",
        Options(instance="g5.xlarge", engine_args={"max_model_len": 4096}, fail_on=Severity.INFO),
    ).options
    assert flagged.instance == "g5.xlarge" and flagged.image == "vllm:0.14.0-gpu"
    assert flagged.engine_args == {"max_model_len": 4096, "gpu_memory_utilization": 0.85}
    assert flagged.fail_on is Severity.INFO


def test_overrides_apply_per_model_folder_glob(repo: Path) -> None:
    write(repo / "pyproject.toml", PYPROJECT)
    for name in ("qwen2.5-7b", "qwen3-8b"):
        opts = resolve(f"models/{name}", Options()).options
        assert opts.instance == "ecs.gn7i-c16g1.4xlarge"
        assert opts.engine_args == {
            "max_model_len": 8192,
            "gpu_memory_utilization": 0.85,
            "tensor_parallel_size": 2,
        }
        assert opts.rule_options == {"MEM904": {"min_concurrency": 8}}
    # an absolute path and a file inside the folder match too
    assert (
        resolve(str(repo / "models/qwen3-8b/config.json"), Options()).options.instance
        == "ecs.gn7i-c16g1.4xlarge"
    )
    assert resolve("models/llama", Options()).options.rule_options == {}


def test_nearest_config_wins_and_modelcheck_toml_takes_top_level_keys(repo: Path) -> None:
    write(repo / "pyproject.toml", PYPROJECT)
    write(repo / "models" / "llama" / ".modelcheck.toml", 'image = "sglang:0.5.8-gpu"\ngpu = "a10"\n')
    opts = resolve("models/llama", Options()).options
    assert (opts.image, opts.gpu, opts.instance) == ("sglang:0.5.8-gpu", "a10", None)
    assert resolve("models/qwen3-8b", Options()).options.image == "vllm:0.14.0-gpu"


def test_discovery_stops_at_repo_root(tmp_path: Path, repo: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT)  # above the repository: not ours
    assert resolve("models/llama", Options()).options == Options()
    assert config.discover("models/llama") is None


def test_explicit_config_file_is_the_only_one_used(repo: Path) -> None:
    write(repo / "pyproject.toml", PYPROJECT)
    other = write(repo / "ci" / "gpu.toml", '[tool.modelcheck]\ngpu = "h100"\ngpu-count = 2\n')
    opts = resolve("models/qwen3-8b", Options(config_file=str(other))).options
    assert (opts.gpu, opts.gpu_count, opts.image, opts.instance) == ("h100", 2, None, None)


def test_no_config_flag_ignores_files(repo: Path) -> None:
    write(repo / "pyproject.toml", PYPROJECT)
    assert resolve("models/llama", Options(use_config=False)).options == Options(use_config=False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "engine-args = { max-model-len = 'abc' }",
            "pyproject.toml: tool.modelcheck.engine-args.max-model-len: 'abc' is not of type 'integer'",
        ),
        ("imagee = 'vllm'", "pyproject.toml: tool.modelcheck.imagee: unknown key; did you mean 'image'?"),
        (
            "fail-on = 'fatal'",
            "pyproject.toml: tool.modelcheck.fail-on: 'fatal' is not one of ['error', 'warning', 'info']",
        ),
        (
            "[[tool.modelcheck.suppress]]\nrule = 'MEM904'",
            "pyproject.toml: tool.modelcheck.suppress[0]: 'reason' is a required property",
        ),
        (
            "[[tool.modelcheck.suppress]]\nrule = 'MEM904'\nreason = '  '",
            "pyproject.toml: tool.modelcheck.suppress[0].reason: a suppression needs a reason",
        ),
        (
            "[[tool.modelcheck.overrides]]\npaths = ['models/*']\ngpu-count = 0",
            "pyproject.toml: tool.modelcheck.overrides[0].gpu-count: 0 is less than the minimum of 1",
        ),
        ("severity = { MEM999 = 'error' }", "pyproject.toml: tool.modelcheck.severity.MEM999: unknown rule"),
        (
            "rule-options = { MEM904 = { min_conc = 2 } }",
            (
                "pyproject.toml: tool.modelcheck.rule-options.MEM904.min_conc: MEM904 has no option 'min_conc' "
                "(options: min_concurrency, ratio)"
            ),
        ),
        (
            "rule-options = { MEM904 = { min_concurrency = 'many' } }",
            (
                "pyproject.toml: tool.modelcheck.rule-options.MEM904.min_concurrency: 'many' is not of type 'int' "
                "(default 4)"
            ),
        ),
        ("image = [", "pyproject.toml: invalid TOML: "),
        # a mistyped rule selector is an error, as in ruff: it would otherwise select nothing and pass
        (
            "select = ['MEM0904']",
            "pyproject.toml: tool.modelcheck.select[0]: unknown rule 'MEM0904'; did you mean 'MEM904'?",
        ),
        (
            "[[tool.modelcheck.overrides]]\npaths = ['models/*']\nignore = ['MEM', 'low-concurency']",
            (
                "pyproject.toml: tool.modelcheck.overrides[0].ignore[1]: unknown rule 'low-concurency'; "
                "did you mean 'low-concurrency'?"
            ),
        ),
        (
            "[[tool.modelcheck.suppress]]\nrule = 'XYZ123'\nreason = 'r'",
            "pyproject.toml: tool.modelcheck.suppress[0].rule: unknown rule 'XYZ123' (see `check rules`)",
        ),
    ],
)
def test_errors_name_file_and_key_path(repo: Path, body: str, message: str) -> None:
    write(repo / "pyproject.toml", "[tool.modelcheck]\n" + body + "\n")
    with pytest.raises(ConfigError) as err:
        resolve("models/llama", Options()).options
    assert str(err.value).startswith(message)
    assert err.value.exit_code == 2


def test_suppressions_drop_findings_and_unused_ones_are_reported(repo: Path) -> None:
    write(
        repo / "pyproject.toml",
        """
        [tool.modelcheck]
        [[tool.modelcheck.suppress]]
        rule = "MEM904"
        paths = ["models/qwen*"]
        reason = "batch jobs, concurrency 1 is fine"

        [[tool.modelcheck.suppress]]
        rule = "ENG001"
        paths = ["models/qwen3-8b"]
        files = ["config.json"]
        reason = "rope scaling checked by hand"

        [[tool.modelcheck.suppress]]
        rule = "FIL001"
        paths = ["models/llama"]
        reason = "not about qwen: never reported for qwen"
        """,
    )
    mem = Finding("max concurrency 1.2 < 4").stamped("MEM904", "low-concurrency", Severity.WARNING)
    other = Finding("unrelated", path="tokenizer.json").stamped("ENG001", "x", Severity.ERROR)
    result = Result(findings=(other, mem), skipped=(), ran=("ENG001", "MEM904"))

    out = suppressed("models/qwen3-8b", Options(), result)
    codes = [(f.rule, f.severity) for f in out.findings]
    assert codes == [("ENG001", Severity.ERROR), ("CHK003", Severity.WARNING)]
    unused = out.findings[1]
    assert unused.name == "unused-suppression"
    assert unused.message == (
        "suppression tool.modelcheck.suppress[1] in pyproject.toml (rule ENG001, paths models/qwen3-8b) "
        "matched no finding for models/qwen3-8b"
    )
    assert unused.data["reason"] == "rope scaling checked by hand"

    # same suppressions on a folder no override covers: the MEM904 finding stays, FIL001 is unused
    out = suppressed("models/llama", Options(), result)
    assert [f.rule for f in out.findings] == ["ENG001", "CHK003", "MEM904"]
    assert "suppress[2]" in out.findings[1].message

    # --ignore CHK003 silences the unused-suppression report
    out = suppressed("models/llama", Options(ignore=("CHK003",)), result)
    assert [f.rule for f in out.findings] == ["ENG001", "MEM904"]


def suppressed(path: str, flags: Options, result: Result) -> Result:
    """What the linter keeps of ``result``'s findings under the suppressions the config has for ``path``."""
    from modelcheck import linter
    from modelcheck.model import Target
    from modelcheck.rule import Context
    from modelcheck.testing import make_facts

    resolved = resolve(path, flags)
    selected = registry.select(registry.load().rules, list(flags.select), list(flags.ignore))
    settings = linter.Settings(suppressions=resolved.suppressions, selected=selected, extra_findings=result.findings)
    from modelcheck.record import replace

    facts = replace(make_facts(name=path), input_path=path)
    ctx = Context(facts=facts, target=Target(image=None, instance=None, chip=None))
    return linter.run((), ctx, settings)


def test_plugins_required_missing_is_exit_2(repo: Path) -> None:
    write(repo / "pyproject.toml", "[tool.modelcheck]\nplugins-required = ['no-such-plugin']\n")
    with pytest.raises(PluginError, match="required rule plugin 'no-such-plugin' is not installed"):
        resolve("models/llama", Options()).options


def test_plugins_required_broken_is_exit_2(repo: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        registry,
        "_CACHE",
        registry.Registry(rules=tuple(rules_in(_Rules)), load_errors=(("acme", "ImportError: boom"),)),
    )
    write(repo / "pyproject.toml", "[tool.modelcheck]\nplugins-required = ['acme']\n")
    with pytest.raises(PluginError) as err:
        resolve("models/llama", Options()).options
    assert str(err.value) == "required rule plugin 'acme' failed to load: ImportError: boom (pyproject.toml)"
    assert err.value.exit_code == 2


def test_catalog_files_resolve_relative_to_config(repo: Path) -> None:
    write(repo / "pyproject.toml", "[tool.modelcheck]\ncatalog = ['catalog/private.yaml']\n")
    opts = resolve("models/llama", Options(catalog_files=("extra.yaml",))).options
    assert opts.catalog_files == (str(repo / "catalog" / "private.yaml"), "extra.yaml")


def test_published_schema_is_current() -> None:
    committed = json.loads(config.SCHEMA_PATH.read_text())
    assert committed == config.build_schema(), (
        "checker/schemas/config.schema.json is stale: run "
        "`python -m modelcheck.config --schema > checker/schemas/config.schema.json`"
    )


def test_cli_target_from_config_no_flags_parallel_in_input_order(tmp_path: Path, monkeypatch) -> None:
    """Configure the target once; `check a b c -j 3` runs with no target flags, one report in input order."""
    import subprocess
    import sys

    from test_precommit import write_model

    monkeypatch.undo()  # the real registry: this runs the real CLI in a subprocess
    root = tmp_path / "deployments"
    (root / ".git").mkdir(parents=True)
    for name in ("c-model", "a-model", "b-model"):
        write_model(root / "models" / name)
    write(
        root / "pyproject.toml",
        """
        [tool.modelcheck]
        image = "vllm:0.14.0-gpu"
        gpu = "a10"
        engine-args = { max-model-len = 512 }

        [[tool.modelcheck.overrides]]
        paths = ["models/b-*"]
        engine-args = { max-model-len = 256 }
        """,
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "GITHUB_ACTIONS"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from modelcheck.cli import main; main()",
            "models/c-model",
            "models/a-model",
            "models/b-model",
            "-j",
            "3",
            "--format",
            "json",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    report = json.loads(proc.stdout)
    assert [r["path"] for r in report["results"]] == ["models/c-model", "models/a-model", "models/b-model"]
    assert {r["target"]["image"]["ref"] for r in report["results"]} == {"vllm:0.14.0-gpu"}
    assert [r["target"]["engine_args"]["max_model_len"] for r in report["results"]] == [512, 512, 256]
    assert report["results"][0]["target"]["instance"]["gpu"].startswith("A10")
