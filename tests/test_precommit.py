"""The pre-commit hook: manifest valid for pre-commit, file -> model folder mapping, a real commit
stopped by the hook in a temporary git repository (pre-commit itself runs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import save_file

from modelcheck import precommit
from fixtures import builders

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "vocab_size": 32,
    "max_position_embeddings": 512,
    "torch_dtype": "float16",
    "rms_norm_eps": 1e-6,
}
TOKENIZER = builders.tokenizer_json()  # a word-level tokenizer in the tokenizers JSON format


def write_model(folder: Path, *, truncated: bool = False) -> Path:
    """A tiny Llama folder; weights written by safetensors. ``truncated`` cuts the data short."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "tokenizer.json").write_text(json.dumps(TOKENIZER))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "model_max_length": 512,
                "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}",
            }
        )
    )
    weights = folder / "model.safetensors"
    save_file(
        {
            "model.embed_tokens.weight": np.zeros((32, 64), np.float16),
            "lm_head.weight": np.zeros((32, 64), np.float16),
        },
        str(weights),
    )
    if truncated:
        with open(weights, "r+b") as fh:
            fh.truncate(weights.stat().st_size - 1000)
    return folder


def test_manifest_is_valid_for_pre_commit() -> None:
    from pre_commit.clientlib import load_manifest

    hooks = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    hook = {h["id"]: h for h in hooks}["modelcheck"]
    assert hook["entry"] == "modelcheck-precommit"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True and hook["require_serial"] is True
    text = (ROOT / "pyproject.toml").read_text()
    assert 'modelcheck-precommit = "modelcheck.precommit:main"' in text


def test_changed_files_map_to_model_folders(tmp_path: Path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    write_model(repo / "models" / "llama")
    (repo / "models" / "llama" / "sub").mkdir()
    (repo / "models" / "llama" / "sub" / "notes.txt").write_text("x")
    pipe = repo / "models" / "sdxl"
    (pipe / "unet").mkdir(parents=True)
    (pipe / "model_index.json").write_text("{}")
    (pipe / "unet" / "config.json").write_text("{}")
    (repo / "gguf").mkdir()
    (repo / "gguf" / "README.md").write_text("x")
    (repo / "gguf" / "tiny.Q4_K_M.gguf").write_bytes(b"GGUF")
    (repo / "README.md").write_text("x")
    monkeypatch.chdir(repo)
    files = [
        "models/llama/config.json",
        "models/llama/sub/notes.txt",
        "models/sdxl/unet/config.json",
        "gguf/README.md",
        "README.md",
        "models/llama/model.safetensors",
    ]
    assert precommit.model_folders(files) == ["models/llama", "models/sdxl", "gguf"]


def test_configured_model_globs_and_config_changes(tmp_path: Path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "deploy" / "qwen" / "weights").mkdir(parents=True)
    (repo / "deploy" / "qwen" / "weights" / "model.safetensors").write_bytes(b"")
    write_model(repo / "deploy" / "llama")
    (repo / "pyproject.toml").write_text('[tool.modelcheck]\nmodels = ["deploy/*"]\n')
    monkeypatch.chdir(repo)
    # a file deep in a configured folder maps to that folder, not to a marker below it
    assert precommit.model_folders(["deploy/qwen/weights/model.safetensors"]) == ["deploy/qwen"]
    # changing the config re-checks every configured model
    assert precommit.model_folders(["pyproject.toml"]) == ["deploy/llama", "deploy/qwen"]


def test_config_change_without_model_globs_rechecks_every_model_folder(tmp_path: Path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    write_model(repo / "models" / "llama")
    write_model(repo / "models" / "org" / "qwen")
    pipe = repo / "models" / "sdxl"
    (pipe / "unet").mkdir(parents=True)
    (pipe / "model_index.json").write_text("{}")
    (pipe / "unet" / "config.json").write_text("{}")
    write_model(repo / ".cache" / "hidden")  # hidden folders are not walked
    (repo / "pyproject.toml").write_text('[tool.modelcheck]\nimage = "vllm:0.14.0-gpu"\n')
    monkeypatch.chdir(repo)
    # the target changed: every model folder below the config is checked again (a pipeline once)
    assert precommit.model_folders(["pyproject.toml"]) == ["models/llama", "models/org/qwen", "models/sdxl"]
    # a pyproject.toml without [tool.modelcheck] is not a modelcheck config: nothing to re-check
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert precommit.model_folders(["pyproject.toml"]) == []


def test_split_args_passes_options_through(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text("{}")
    assert precommit.split_args(["--fail-on", "warning", "a.json"]) == (["--fail-on", "warning"], ["a.json"])
    assert precommit.split_args(["a.json"]) == ([], ["a.json"])


def _git(repo: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_real_pre_commit_stops_a_broken_model_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pc-home"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "NO_COLOR": "1",
    }
    env.pop("GITHUB_ACTIONS", None)
    assert _git(repo, "init", "-q", "-b", "main", env=env).returncode == 0
    # The hook exactly as published, run from this checkout's interpreter (no install from the network).
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    hook.update(entry=f"{sys.executable} -m modelcheck.precommit", language="system")
    (repo / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": "local", "hooks": [hook]}]})
    )
    # The target is configured once; the hook has no flags.
    (repo / "pyproject.toml").write_text(
        textwrap.dedent("""
        [tool.modelcheck]
        image = "vllm:0.14.0-gpu"
        gpu = "a10"
        engine-args = { max-model-len = 512 }
    """)
    )
    pc = [sys.executable, "-m", "pre_commit"]
    proc = subprocess.run(
        [*pc, "install"], cwd=repo, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr

    write_model(repo / "models" / "good")
    _git(repo, "add", "-A", env=env)
    ok = _git(repo, "commit", "-q", "-m", "good model", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    write_model(repo / "models" / "broken", truncated=True)
    _git(repo, "add", "-A", env=env)
    bad = _git(repo, "commit", "-q", "-m", "broken model", env=env)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "modelcheck" in out and "Failed" in out
    assert "models/broken" in out and "models/good" not in out  # only the changed folder is checked
    assert "FIL004" in out and "model.safetensors is 7368 bytes but its header describes 8368 bytes" in out
    assert "target: image vllm 0.14.0" in out  # the configured target was used
    assert "broken model" not in _git(repo, "log", "--oneline", env=env).stdout
