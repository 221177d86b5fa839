"""Third-party rules: the example plugin installed for real and seen running; a broken plugin becomes a
CHK002 finding, or exit 2 when the config lists it under plugins-required."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "modelcheck-example-plugin"

sys.path.insert(0, str(Path(__file__).parent))
from test_precommit import write_model


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example plugin pip-installed into its own folder, plus a plugin that raises on import."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"pip install of the example plugin failed: {proc.stderr[-2000:]}")
    # A broken plugin, as an installed distribution (dist-info with an entry point) would be.
    (target / "broken_plugin.py").write_text("raise ImportError('needs acme-sdk, which is not installed')\n")
    info = target / "broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[modelcheck.rules]\nbroken = broken_plugin\n")
    return target


def _check(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "NO_COLOR": "1"}
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run(
        [sys.executable, "-c", "from modelcheck.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_example_plugin_rules_are_listed_and_run(site: Path, tmp_path: Path) -> None:
    rules = json.loads(_check(site, "rules", "--format", "json", cwd=tmp_path).stdout)
    exa = {r["code"]: r for r in rules if r["code"].startswith("EXA")}
    assert sorted(exa) == ["EXA001", "EXA002"]
    assert exa["EXA001"]["name"] == "missing-model-card"
    assert exa["EXA001"]["module"] == "modelcheck_example_plugin.rules"

    write_model(tmp_path / "qwen")
    proc = _check(site, "qwen", "--format", "json", cwd=tmp_path)
    report = json.loads(proc.stdout)
    findings = {f["rule"]: f for f in report["results"][0]["findings"]}
    assert findings["EXA001"]["severity"] == "warning"
    assert findings["EXA001"]["message"].startswith("qwen has no model card")
    # the broken plugin did not take the run down: it is a warning finding
    assert findings["CHK002"]["message"] == (
        "rule plugin 'broken' failed to load: ImportError: needs acme-sdk, which is not installed"
    )
    assert findings["CHK002"]["severity"] == "warning"

    # rule options from the config reach plugin rules
    (tmp_path / "pyproject.toml").write_text(
        "[tool.modelcheck]\nrule-options = { EXA002 = { max_files = 1 } }\n"
    )
    (tmp_path / ".git").mkdir()
    report = json.loads(_check(site, "qwen", "--format", "json", cwd=tmp_path).stdout)
    exa2 = [f for f in report["results"][0]["findings"] if f["rule"] == "EXA002"]
    assert exa2 and exa2[0]["data"] == {"files": 4, "max_files": 1}


def test_required_plugin_that_fails_to_load_is_exit_2(site: Path, tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write_model(tmp_path / "qwen")
    (tmp_path / "pyproject.toml").write_text("[tool.modelcheck]\nplugins-required = ['example', 'broken']\n")
    proc = _check(site, "qwen", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: required rule plugin 'broken' failed to load: ImportError: needs acme-sdk, which is not "
        "installed (pyproject.toml)"
    )


def test_example_plugin_own_tests_pass(site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "2 passed" in proc.stdout
