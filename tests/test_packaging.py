"""modelcheck installs side by side with unrelated distributions: its import names are `modelcheck` and
`modelcheck_rules` (the folders stay checker/ and rules/), so PyPI's `rules` (django-rules) or a `checker`
package on the path change nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_works_next_to_pypis_rules_and_a_checker_package(tmp_path: Path) -> None:
    site = tmp_path / "site"
    # what `pip install rules` puts on the path (django-rules: importing it needs django), and a `checker`
    for name in ("rules", "checker"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text("raise ImportError(\"No module named 'django'\")\n")
    env = {**os.environ, "PYTHONPATH": str(site), "NO_COLOR": "1"}
    listing = subprocess.run([sys.executable, "-m", "modelcheck.cli", "rules", "--format", "json"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert listing.returncode == 0, listing.stderr
    codes = {r["code"] for r in json.loads(listing.stdout)}
    assert {"CHK001", "ENG020", "SEC001", "MEM003"} <= codes
    assert all(r["module"].startswith(("modelcheck_rules.", "modelcheck.")) for r in json.loads(listing.stdout))


def test_the_distribution_declares_only_its_own_import_names() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    doc = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    packages = doc["tool"]["setuptools"]["packages"]
    assert {p.split(".")[0] for p in packages} == {"modelcheck", "modelcheck_rules"}
    assert doc["tool"]["setuptools"]["package-dir"] == {"modelcheck": "checker", "modelcheck_rules": "rules"}
    assert doc["project"]["scripts"]["check"] == "modelcheck.launch:main"  # click-free for a plain check
