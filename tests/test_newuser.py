"""A new user, end to end, for real: a git repository with a models/ folder, the target configured once
in pyproject.toml, the pre-commit hook from .pre-commit-config.yaml with no args, a broken model commit
stopped with the rule code, the file and the fix; SARIF for code scanning; the commands of docs/ci.md
copied literally into a shell.

The hook runs two ways:
- default: ``repo: local`` with this checkout's interpreter (fast, offline);
- ``MODELCHECK_PRECOMMIT_REMOTE=1``: ``repo: <this checkout>`` at ``rev: HEAD``, exactly as a user
  references the published hook; pre-commit clones the commit and pip-installs modelcheck into its own
  virtualenv (needs PyPI; about 15 s the first time). Only committed changes are seen.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from fixtures import builders

ROOT = Path(__file__).resolve().parent.parent
SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
BIN = Path(sys.executable).parent
# a Qwen2 config shrunk to a few hundred KB of real safetensors headers + holes
SMALL = {
    **builders.load_config("Qwen2.5-0.5B-Instruct"),
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1024,
    "max_position_embeddings": 4096,
}
PYPROJECT = """\
[tool.modelcheck]
image = "vllm:0.14.0-gpu"
instance = "ecs.gn7i-c8g1.2xlarge"
"""

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pc-home"),
        "GIT_AUTHOR_NAME": "new user",
        "GIT_AUTHOR_EMAIL": "user@example.com",
        "GIT_COMMITTER_NAME": "new user",
        "GIT_COMMITTER_EMAIL": "user@example.com",
        "NO_COLOR": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("GITHUB_ACTIONS", None)
    return env


def _sh(
    cmd: list[str] | str, cwd: Path, env: dict[str, str], timeout: int = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        shell=isinstance(cmd, str),
    )


def _check_cmd() -> list[str]:
    script = BIN / "check"
    return [str(script)] if script.exists() else [sys.executable, "-m", "modelcheck"]


def healthy(repo: Path, name: str = "qwen-good") -> Path:
    return builders.make_hf_llm(repo / "models" / name, SMALL, shards=2)


def truncated(repo: Path, name: str = "qwen-trunc") -> Path:
    return builders.make_hf_llm(repo / "models" / name, SMALL, shards=2, truncate_shard=2)


def lfs_pointer(repo: Path, name: str = "qwen-lfs") -> Path:
    d = builders.make_hf_llm(repo / "models" / name, SMALL, shards=2)
    shard = d / "model-00002-of-00002.safetensors"
    builders.make_lfs_pointer(shard, shard.stat().st_size)
    return d


def new_repo(tmp_path: Path, env: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert _sh(["git", "init", "-q", "-b", "main"], repo, env).returncode == 0
    (repo / "pyproject.toml").write_text(PYPROJECT)
    return repo


# -- pre-commit -------------------------------------------------------------------------------------


def _commit_flow(repo: Path, env: dict[str, str], hook_timeout: int) -> None:
    pc = [sys.executable, "-m", "pre_commit"]
    installed = _sh([*pc, "install"], repo, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    healthy(repo)
    _sh(["git", "add", "-A"], repo, env)  # pre-commit sees tracked (or staged) files only
    first = _sh([*pc, "run", "--all-files"], repo, env, timeout=hook_timeout)
    assert first.returncode == 0, first.stdout + first.stderr
    assert re.search(r"modelcheck .*Passed", first.stdout)
    ok = _sh(["git", "commit", "-q", "-m", "healthy model"], repo, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # an interrupted download: the commit is stopped, the message names the rule, the file and the fix
    truncated(repo)
    _sh(["git", "add", "-A"], repo, env)
    bad = _sh(["git", "commit", "-q", "-m", "truncated model"], repo, env)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0, out
    assert re.search(r"modelcheck .*Failed", out)
    assert "models/qwen-trunc" in out and "models/qwen-good" not in out  # only what the commit touches
    assert "target: image vllm 0.14.0 (GPU); instance ecs.gn7i-c8g1.2xlarge" in out  # from pyproject
    assert re.search(
        r"error +FIL004 \[truncated-weights\] model-00002-of-00002\.safetensors is \d+ bytes but its header "
        r"describes \d+ bytes",
        out,
    )
    assert "fix: delete model-00002-of-00002.safetensors and download it again" in out
    _sh(["git", "reset", "-q"], repo, env)
    shutil.rmtree(repo / "models" / "qwen-trunc")

    # a clone without git-lfs: a pointer where a shard should be
    lfs_pointer(repo)
    _sh(["git", "add", "-A"], repo, env)
    bad = _sh(["git", "commit", "-q", "-m", "lfs pointer"], repo, env)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0, out
    assert "error   FIL005 [lfs-pointer] model-00002-of-00002.safetensors is a git-lfs pointer" in out
    assert "fix: run `git lfs install && git lfs pull`" in out
    log = _sh(["git", "log", "--format=%s"], repo, env).stdout.split("\n")
    assert log[0] == "healthy model" and "lfs pointer" not in log and "truncated model" not in log


def test_precommit_local_hook_stops_broken_model_commits(tmp_path: Path) -> None:
    env = _env(tmp_path)
    repo = new_repo(tmp_path, env)
    # the published hook definition, with this checkout's interpreter as entry and no args
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    assert hook["id"] == "modelcheck" and "args" not in hook
    hook.update(entry=f"{sys.executable} -m modelcheck.precommit", language="system")
    (repo / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": "local", "hooks": [hook]}]})
    )
    _commit_flow(repo, env, hook_timeout=120)


@pytest.mark.skipif(
    os.environ.get("MODELCHECK_PRECOMMIT_REMOTE") != "1",
    reason="set MODELCHECK_PRECOMMIT_REMOTE=1: clones this checkout's HEAD and pip-installs it (needs PyPI)",
)
def test_precommit_remote_hook_from_this_repository(tmp_path: Path) -> None:
    env = _env(tmp_path)
    head = _sh(["git", "rev-parse", "HEAD"], ROOT, env)
    if head.returncode != 0:
        pytest.skip("this checkout is not a git repository")
    repo = new_repo(tmp_path, env)
    config = {"repos": [{"repo": str(ROOT), "rev": head.stdout.strip(), "hooks": [{"id": "modelcheck"}]}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    _commit_flow(repo, env, hook_timeout=600)


# -- SARIF for code scanning ------------------------------------------------------------------------


def test_sarif_of_broken_models_is_valid_for_code_scanning(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_formatters import _code_scanning_problems

    env = _env(tmp_path)
    repo = new_repo(tmp_path, env)
    healthy(repo)
    truncated(repo)
    lfs_pointer(repo)
    (repo / "models" / "README.md").write_text("# our models\n")  # `models/*/` skips it
    # run from a sub-folder: the URIs are still relative to the repository root
    proc = _sh(
        [
            *_check_cmd(),
            *sorted(p.name + "/" for p in (repo / "models").iterdir() if p.is_dir()),
            "--format",
            "sarif",
            "--output",
            "../modelcheck.sarif",
            "--exit-zero",
            "-j",
            "2",
        ],
        repo / "models",
        env,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((repo / "modelcheck.sarif").read_text())
    assert list(jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).iter_errors(doc)) == []
    assert _code_scanning_problems(doc) == []
    located = {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
        for r in doc["runs"][0]["results"]
        if r["level"] == "error"
    }
    assert located == {
        ("FIL004", "models/qwen-trunc/model-00002-of-00002.safetensors"),
        ("FIL005", "models/qwen-lfs/model-00002-of-00002.safetensors"),
    }
    for path in {u for _, u in located}:
        assert (repo / path).is_file()  # GitHub shows the alert on a file that exists in the checkout


# -- configure once, run with no flags --------------------------------------------------------------


def test_config_once_no_flags_overrides_precedence_and_errors(tmp_path: Path) -> None:
    env = _env(tmp_path)
    repo = new_repo(tmp_path, env)
    healthy(repo, "qwen-a")
    healthy(repo, "qwen-b")
    check = _check_cmd()

    def run(*args: str, cwd: Path = repo) -> subprocess.CompletedProcess:
        return _sh([*check, *args], cwd, env)

    proc = run("models/qwen-a")
    assert proc.returncode == 0, proc.stderr
    assert "target: image vllm 0.14.0 (GPU); instance ecs.gn7i-c8g1.2xlarge [GPU, 1x A10]" in proc.stdout
    # per-folder override; a shell glob of folders, in parallel, reported in input order
    (repo / "pyproject.toml").write_text(
        PYPROJECT
        + '\n[[tool.modelcheck.overrides]]\npaths = ["models/qwen-b"]\ninstance = "ecs.gn6i-c4g1.xlarge"\n'
    )
    proc = _sh(f"{' '.join(check)} models/*/ -j 2 --format json", repo, env)
    doc = json.loads(proc.stdout)
    assert [(r["path"], r["target"]["instance"]["name"]) for r in doc["results"]] == [
        ("models/qwen-a/", "ecs.gn7i-c8g1.2xlarge"),
        ("models/qwen-b/", "ecs.gn6i-c4g1.xlarge"),
    ]
    # .modelcheck.toml nearer the model wins whole over pyproject.toml; --config names the only file used
    (repo / "models" / "qwen-a" / ".modelcheck.toml").write_text('image = "vllm:0.10.1-gpu"\ngpu = "t4"\n')
    proc = run("models/qwen-a", "--format", "json")
    target = json.loads(proc.stdout)["results"][0]["target"]
    assert (target["image"]["ref"], target["instance"]["gpu"]) == ("vllm:0.10.1-gpu", "Tesla T4")
    other = tmp_path / "ci.toml"
    other.write_text('[tool.modelcheck]\nimage = "vllm:0.14.0-gpu"\ngpu = "a100-80gb"\n')
    proc = run("models/qwen-a", "--config", str(other), "--format", "json")
    target = json.loads(proc.stdout)["results"][0]["target"]
    assert (target["image"]["ref"], target["instance"]["gpu"]) == ("vllm:0.14.0-gpu", "A100 80GB")

    # mistakes are exit 2 with one line naming the file and the key path
    cases = [
        ('instanse = "x"', "pyproject.toml: tool.modelcheck.instanse: unknown key; did you mean 'instance'?"),
        (
            'select = ["MEM0O3"]',
            "pyproject.toml: tool.modelcheck.select[0]: unknown rule 'MEM0O3'; did you mean 'MEM003'?",
        ),
        (
            '[[tool.modelcheck.suppress]]\nrule = "MEM005"',
            "pyproject.toml: tool.modelcheck.suppress[0]: 'reason' is a required property",
        ),
        (
            '[[tool.modelcheck.suppress]]\nrule = "MEM0005"\nreason = "typo"',
            "pyproject.toml: tool.modelcheck.suppress[0].rule: unknown rule 'MEM0005'; did you mean 'MEM005'?",
        ),
    ]
    for body, message in cases:
        (repo / "pyproject.toml").write_text(PYPROJECT + body + "\n")
        proc = run("models/qwen-b")
        assert (proc.returncode, proc.stderr) == (2, f"error: {message}\n"), body
    # a suppression that matches nothing is reported (CHK003), with the key to delete
    (repo / "pyproject.toml").write_text(
        PYPROJECT + '[[tool.modelcheck.suppress]]\nrule = "FIL004"\nreason = "known broken"\n'
    )
    proc = run("models/qwen-b")
    assert proc.returncode == 0
    assert (
        "warning CHK003 [unused-suppression] suppression tool.modelcheck.suppress[0] in pyproject.toml "
        "(rule FIL004) matched no finding for models/qwen-b" in proc.stdout
    )


# -- rule documentation -----------------------------------------------------------------------------


def test_rules_and_explain_as_a_user_types_them(tmp_path: Path) -> None:
    env = _env(tmp_path)
    check = _check_cmd()
    listing = _sh([*check, "rules"], tmp_path, env)
    assert listing.returncode == 0
    assert re.search(r"^MEM003  max-model-len-exceeds-kv-cache +error", listing.stdout, re.MULTILINE)
    assert re.search(r"^CHK003  unused-suppression +warning", listing.stdout, re.MULTILINE)
    rules = json.loads(_sh([*check, "rules", "--format", "json"], tmp_path, env).stdout)
    by_code = {r["code"]: r for r in rules}
    assert (
        by_code["MEM001"]["name"] == "weights-exceed-vram" and by_code["CHK003"]["module"] == "modelcheck.linter"
    )
    assert [r["code"] for r in rules] == sorted(by_code)
    for query in ("MEM003", "mem003", "max-model-len-exceeds-kv-cache"):
        out = _sh([*check, "explain", query], tmp_path, env)
        assert out.returncode == 0 and out.stdout.startswith("MEM003 (max-model-len-exceeds-kv-cache)")
        assert "## Why it matters" in out.stdout and "## How to fix" in out.stdout
    out = _sh([*check, "explain", "weights-exceed-vram"], tmp_path, env)
    assert out.stdout.startswith("MEM001 (weights-exceed-vram) - default severity: error")
    out = _sh([*check, "explain", "CHK003"], tmp_path, env)
    assert out.returncode == 0 and out.stdout.startswith("CHK003 (unused-suppression)")
    for typo, close in (("MEM03", "MEM003"), ("weights-exceed-vrm", "weights-exceed-vram")):
        out = _sh([*check, "explain", typo], tmp_path, env)
        assert (out.returncode, out.stderr) == (2, f"error: unknown rule {typo!r}; did you mean {close}?\n")


# -- the documentation's commands, copied literally -------------------------------------------------


def _ci_md_commands() -> list[str]:
    text = (ROOT / "docs" / "ci.md").read_text()
    cmds = re.findall(r"^\s+(?:run:|-) (check .+)$", text, re.MULTILINE)
    assert cmds, "docs/ci.md shows no check command"
    return cmds


def test_docs_ci_commands_work_when_pasted(tmp_path: Path) -> None:
    env = _env(tmp_path)
    repo = new_repo(tmp_path, env)
    text = (ROOT / "docs" / "ci.md").read_text()
    # the config block of docs/ci.md is valid as written
    toml_block = re.search(r"```toml\n(.*?)```", text, re.DOTALL).group(1)
    (repo / "pyproject.toml").write_text(toml_block)
    healthy(repo)
    lfs_pointer(repo)
    (repo / "models" / "README.md").write_text("# models\n")
    for cmd in _ci_md_commands():
        proc = _sh(cmd, repo, env)
        assert proc.returncode in (0, 1), f"{cmd}: {proc.stderr}"
        assert "README.md" not in proc.stdout, cmd  # the glob picks model folders only
        out = re.search(r"--output (\S+)", cmd)
        if out:
            assert (repo / out.group(1)).stat().st_size > 0, cmd
        if "--exit-zero" in cmd:
            assert proc.returncode == 0, cmd
        else:
            assert proc.returncode == 1 and "FIL005" in (
                proc.stdout + (repo / out.group(1)).read_text() if out else proc.stdout
            ), cmd
    # the workflow files of the page parse as YAML
    for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL):
        assert yaml.safe_load(block)
    # the Python API example runs (on a folder of the name it uses)
    healthy(repo, "qwen2.5-7b-instruct")
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)
    proc = _sh([sys.executable, "-c", code], repo, env)
    assert proc.returncode in (0, 1), proc.stderr
    assert re.match(r"^[A-Z]{3}\d{3} (error|warning|info) .+ -> ", proc.stdout), proc.stdout


def test_readme_quick_commands_work(tmp_path: Path) -> None:
    env = _env(tmp_path)
    repo = new_repo(tmp_path, env)
    healthy(repo)
    readme = (ROOT / "README.md").read_text()
    cmds = sorted(set(re.findall(r"`(check (?:rules|explain [A-Z]{3}\d{3}|models/\*/ -j 4))`", readme)))
    assert "check models/*/ -j 4" in cmds
    for cmd in cmds:
        proc = _sh(cmd, repo, env)
        assert proc.returncode == 0, f"{cmd}: {proc.stderr}"
        assert textwrap.dedent(proc.stdout).strip(), cmd
