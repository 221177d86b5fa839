"""README.md's sample outputs are what users really see: every fenced block that starts with
``$ check ...`` is run on the example models (built as the README's first command builds them) in a
100-column terminal width, and its output must equal the block."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def samples() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```\n(\$ check .*?)```", text, re.DOTALL):
        first, _, rest = block.partition("\n")
        out.append((first.removeprefix("$ "), rest))
    return out


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("readme")
    proc = subprocess.run([sys.executable, "-m", "fixtures.make_examples", "examples/models"], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return cwd


def test_readme_has_samples():
    cmds = [c for c, _ in samples()]
    assert any("--format concise" in c for c in cmds) and any(c.startswith("check instances") for c in cmds)
    assert any(c.startswith("check examples/models/Llama-3.1-8B-Instruct") for c in cmds)


@pytest.mark.parametrize("command,expected", samples(), ids=[c for c, _ in samples()])
def test_readme_sample_is_real_output(examples: Path, command: str, expected: str):
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "GITHUB_ACTIONS")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="100", NO_COLOR="1")
    words = shlex.split(command)
    assert words[0] == "check"
    paths = []
    for w in words[1:]:  # the shell's glob, in its order
        paths.extend(sorted(str(p.relative_to(examples)) for p in examples.glob(w)) if "*" in w else [w])
    proc = subprocess.run([sys.executable, "-m", "modelcheck", *paths], cwd=examples, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout == expected, f"README sample of `{command}` is not what it prints:\n{proc.stdout}"
