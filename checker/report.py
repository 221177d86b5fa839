"""What one run produced, for every path checked, and the exit code a CI gate uses.

Each path carries its own exit policy (``fail_on``, ``exit_zero``), resolved from its flags and config:
the run fails when any path fails by its own policy.
"""

from __future__ import annotations

from typing import Any

from modelcheck.linter import Result, Skip
from modelcheck.model import Estimate, ModelFacts, Target
from modelcheck.record import record
from modelcheck.rule import Finding, Severity


@record
class PathReport:
    path: str  # as the user typed it
    facts: ModelFacts
    target: Target
    estimate: Estimate | None
    result: Result
    smoke: Any = None  # modelcheck.smoke.SmokeResult when the smoke stage ran
    fail_on: Severity = Severity.ERROR
    exit_zero: bool = False
    config: str | None = None  # the config file that governed this path
    repo_root: str | None = None  # the root its file paths are reported relative to (modelcheck.repo)

    @property
    def findings(self) -> tuple[Finding, ...]:
        extra = tuple(getattr(self.smoke, "findings", ()) or ())
        return self.result.findings + extra

    @property
    def skipped(self) -> tuple[Skip, ...]:
        return self.result.skipped

    @property
    def failed(self) -> bool:
        """Findings at or above this path's fail level (the verdict; --exit-zero changes only the exit code)."""
        return any((f.severity or Severity.ERROR) >= self.fail_on for f in self.findings)


@record
class Report:
    results: tuple[PathReport, ...]
    verbose: bool = False  # text output: show every assumption behind the memory figures

    def counts(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for r in self.results:
            for f in r.findings:
                counts[(f.severity or Severity.ERROR).label] += 1
        return counts

    @property
    def fail_on(self) -> Severity:
        """The fail level to show in summaries: the strictest of the paths' (error when none)."""
        return min((r.fail_on for r in self.results), default=Severity.ERROR)

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.results)

    @property
    def exit_code(self) -> int:
        return 1 if any(r.failed and not r.exit_zero for r in self.results) else 0
