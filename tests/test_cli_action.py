"""The GitHub Action (action.yml), for real: its shell steps run in order in a temporary git repository
the way the runner runs a composite action (bash, the step's ``env`` with its ``${{ }}`` expressions
evaluated, ``GITHUB_OUTPUT`` collected between steps), with this checkout's `check` on PATH.

Not run here: ``actions/setup-python`` and the SARIF upload (``uses:`` steps, GitHub's own), and the
``pip install`` step (it needs PyPI; asserted to install from the action's own checkout instead).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fixtures import builders

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SMALL = {
    **builders.load_config("Qwen2.5-0.5B-Instruct"),
    "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": 1024, "max_position_embeddings": 4096,
}
PYPROJECT = '[tool.modelcheck]\nimage = "vllm:0.14.0-gpu"\ninstance = "ecs.gn7i-c8g1.2xlarge"\n'

pytestmark = pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None,
                                reason="needs git and bash")


def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def _sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False)


def _env(tmp: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),  # the console scripts import this checkout
        "RUNNER_TEMP": str(tmp / "runner-temp"),
        "GITHUB_ACTIONS": "true",
        "NO_COLOR": "1",
    }
    (tmp / "runner-temp").mkdir(exist_ok=True)
    return env


class Runner:
    """Runs the composite action's shell steps the way the Actions runner does."""

    def __init__(self, repo: Path, env: dict[str, str], inputs: dict[str, str], event: dict[str, str]):
        self.repo, self.env, self.event = repo, env, event
        spec = action()
        self.inputs = {k: str(v.get("default", "")) for k, v in spec["inputs"].items()} | inputs
        self.steps = spec["runs"]["steps"]
        self.outputs: dict[str, dict[str, str]] = {}
        self.logs: dict[str, subprocess.CompletedProcess] = {}

    def expr(self, text: str) -> str:
        def one(m: re.Match) -> str:
            e = m.group(1).strip()
            if e.startswith("inputs."):
                return self.inputs[e.removeprefix("inputs.")]
            if m2 := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", e):
                return self.outputs.get(m2.group(1), {}).get(m2.group(2), "")
            if e == "github.event.pull_request.base.sha || github.event.before":
                return self.event.get("pull_request.base.sha") or self.event.get("before", "")
            if e == "github.action_path":
                return str(ROOT)
            raise AssertionError(f"action.yml uses an expression this test does not know: {e}")
        return re.sub(r"\$\{\{(.*?)\}\}", one, str(text))

    def run(self) -> None:
        for step in self.steps:
            if "uses" in step or step.get("id") == "install":
                continue
            out = Path(self.env["RUNNER_TEMP"]) / f"output-{step['id']}"
            out.write_text("")
            env = {**self.env, "GITHUB_OUTPUT": str(out)}
            env.update({k: self.expr(v) for k, v in (step.get("env") or {}).items()})
            assert step["shell"] == "bash"
            proc = _sh(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], self.repo, env)
            self.logs[step["id"]] = proc
            self.outputs[step["id"]] = dict(
                line.split("=", 1) for line in out.read_text().splitlines() if "=" in line
            )
            if proc.returncode != 0:
                return  # later steps without `if: always()` do not run


def _repo(tmp: Path, env: dict[str, str]) -> tuple[Path, str]:
    repo = tmp / "repo"
    repo.mkdir()
    _sh(["git", "init", "-q", "-b", "main"], repo, env)
    (repo / "pyproject.toml").write_text(PYPROJECT)
    builders.make_hf_llm(repo / "models" / "qwen-good", SMALL, shards=2)
    _sh(["git", "add", "-A"], repo, env)
    _sh(["git", "commit", "-q", "-m", "base"], repo, env)
    base = _sh(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()
    return repo, base


def test_action_is_a_composite_that_installs_from_its_own_checkout():
    spec = action()
    assert spec["runs"]["using"] == "composite"
    install = next(s for s in spec["runs"]["steps"] if s.get("id") == "install")
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}" and '"$ACTION_PATH"' in install["run"]
    upload = next(s for s in spec["runs"]["steps"] if "upload-sarif" in s.get("uses", ""))
    assert upload["with"]["sarif_file"] == "${{ steps.check.outputs.sarif }}" and "always()" in upload["if"]
    # inputs reach the scripts through env, never spliced into the script text (no script injection)
    for step in spec["runs"]["steps"]:
        assert "${{" not in step.get("run", "")


def test_pull_request_checks_only_the_changed_model_folder_and_writes_sarif(tmp_path: Path):
    env = _env(tmp_path)
    repo, base = _repo(tmp_path, env)
    builders.make_hf_llm(repo / "models" / "qwen-trunc", SMALL, shards=2, truncate_shard=2)
    (repo / "models" / "README.md").write_text("# models\n")
    _sh(["git", "add", "-A"], repo, env)
    _sh(["git", "commit", "-q", "-m", "add a model"], repo, env)

    runner = Runner(repo, env, {}, {"pull_request.base.sha": base})
    runner.run()
    changed = runner.logs["changed"]
    assert changed.returncode == 0, changed.stderr
    assert runner.outputs["changed"]["count"] == "1"
    assert Path(runner.outputs["changed"]["list"]).read_text() == "models/qwen-trunc\n"
    check = runner.logs["check"]
    assert re.search(r"^::error file=models/qwen-trunc/model-00002-of-00002\.safetensors,line=1,"
                     r"title=FIL004 truncated-weights::", check.stdout, re.MULTILINE), check.stdout
    assert "qwen-good" not in check.stdout
    assert runner.outputs["check"]["exit-code"] == "1"
    sarif = json.loads((repo / runner.outputs["check"]["sarif"]).read_text())
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for res in sarif["runs"][0]["results"] for loc in res["locations"]}
    assert "models/qwen-trunc/model-00002-of-00002.safetensors" in uris
    assert all(u.startswith("models/qwen-trunc/") for u in uris)
    assert runner.logs["gate"].returncode == 1  # the job fails after the upload


def test_no_model_change_passes_without_checking(tmp_path: Path):
    env = _env(tmp_path)
    repo, base = _repo(tmp_path, env)
    (repo / "NOTES.md").write_text("notes\n")
    _sh(["git", "add", "-A"], repo, env)
    _sh(["git", "commit", "-q", "-m", "docs"], repo, env)
    runner = Runner(repo, env, {}, {"before": base})
    runner.run()
    assert runner.outputs["changed"]["count"] == "0"
    assert "no model folder changed: nothing to check" in runner.logs["check"].stdout
    assert runner.outputs["check"] == {"exit-code": "0", "sarif": ""}
    assert runner.logs["gate"].returncode == 0


def test_new_branch_push_checks_every_model_folder(tmp_path: Path):
    env = _env(tmp_path)
    repo, _base = _repo(tmp_path, env)
    builders.make_hf_llm(repo / "models" / "qwen-trunc", SMALL, shards=2, truncate_shard=2)
    runner = Runner(repo, env, {"args": "--fail-on error"}, {"before": "0" * 40})
    runner.run()
    assert runner.outputs["changed"]["count"] == "2"
    assert Path(runner.outputs["changed"]["list"]).read_text() == "models/qwen-good\nmodels/qwen-trunc\n"
    assert runner.outputs["check"]["exit-code"] == "1"
    assert "modelcheck FAIL: 2 paths checked" in runner.logs["check"].stdout
    assert runner.logs["gate"].returncode == 1
