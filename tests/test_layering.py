"""The layering DESIGN.md asks for, checked on every test run: the import contracts in .importlinter (rules
read the Context only; formatters import no facts, estimator, planner or catalog; config sits below the
pipeline; only checker/facts reads the model) and no import cycle among the modules of checker/ and rules/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[test]'")
    out = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]
    assert "5 kept, 0 broken" in out.stdout


def test_no_import_cycles() -> None:
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "import_cycles.py")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and "import cycles: 0 among" in out.stdout, out.stdout + out.stderr
