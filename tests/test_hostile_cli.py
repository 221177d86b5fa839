"""The real ``check`` command on hostile and broken inputs (fixtures/hostile/build.py).

Every input must end in exit 1 with a finding (SEC001 for code-running pickles) or exit 2 with one
``error:`` line; never a traceback or a hang; ``--format json`` stdout is one JSON document; each run stays
under 200 MB peak RSS and 10 s. All runs happen once, in parallel, in a module fixture; the tests below
judge them by category and check the messages the nastiest inputs must produce.

Each non-pickle input runs under one target variant (rotating over ``--image vllm:0.14.0-gpu --gpu a10
--format json``, ``--format json`` and the text report with a target) to keep the suite under a minute;
single-file pickles run in batches of several paths per process. ``bench/hostile.py`` runs every input
under every variant.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from fixtures.hostile import runner
from fixtures.hostile.build import Case, build

CATEGORIES = ("path", "folder", "json", "yaml", "toml", "safetensors", "gguf", "pickle", "misnamed", "layout")
VARIANT_CYCLE = ("target-json", "json", "target-text")
PICKLE_BATCH = 12


def _can_run_as_nobody() -> bool:
    """Not root, or root with setpriv and a checkout uid 65534 may execute (a clone inside a 0700
    mktemp folder is not): otherwise the chmod-000 case cannot be staged and is left out."""
    if os.geteuid() != 0:
        return True
    if shutil.which("setpriv") is None:
        return False
    probe = subprocess.run([*runner.NOBODY, runner.CHECK, "--version"], check=False, capture_output=True, text=True)
    return probe.returncode == 0


CAN_DROP_ROOT = _can_run_as_nobody()


@dataclass(frozen=True)
class Run:
    cases: tuple[Case, ...]
    variant: str
    outcome: runner.Outcome
    problems: tuple[str, ...]

    @property
    def text(self) -> str:
        return self.outcome.stdout + self.outcome.stderr


def _plan(cases: list[Case]) -> list[tuple[tuple[Case, ...], str]]:
    jobs: list[tuple[tuple[Case, ...], str]] = []
    singles = [c for c in cases if c.category == "pickle" and len(c.args) == 1 and not c.files]
    for i, c in enumerate(c for c in cases if c not in singles):
        if c.as_nobody and not CAN_DROP_ROOT:
            continue
        jobs.append(((c,), VARIANT_CYCLE[i % len(VARIANT_CYCLE)]))
    for i in range(0, len(singles), PICKLE_BATCH):
        jobs.append((tuple(singles[i : i + PICKLE_BATCH]), "target-json"))
    return jobs


def _execute(base: str, job: tuple[tuple[Case, ...], str]) -> Run:
    cases, variant = job
    if len(cases) == 1:
        case = cases[0]
        out = runner.run(case.args, variant, as_nobody=case.as_nobody and os.geteuid() == 0, cwd=base)
        return Run(cases, variant, out, tuple(runner.judge(case, variant, out, max_wall_s=None)))
    args = tuple(c.args[0] for c in cases)
    out = runner.run(args, variant, cwd=base)
    return Run(cases, variant, out,
               tuple(runner.judge(None, variant, out, paths={c.args[0]: c for c in cases}, max_wall_s=None)))


@pytest.fixture(scope="module")
def runs() -> dict[str, list[Run]]:
    base = tempfile.mkdtemp(prefix="modelcheck-hostile-")
    try:
        cases = build(base)
        runner.chmod_for_nobody(base)
        workers = max(2, min(8, (os.cpu_count() or 2) * 2))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = list(pool.map(lambda j: _execute(base, j), _plan(cases)))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    by_cat: dict[str, list[Run]] = {c: [] for c in CATEGORIES}
    for r in done:
        by_cat.setdefault(r.cases[0].category, []).append(r)
    return by_cat


def _one(runs: dict[str, list[Run]], name: str) -> Run:
    for group in runs.values():
        for r in group:
            if any(c.name == name for c in r.cases):
                return r
    raise AssertionError(f"case {name} did not run")


@pytest.mark.parametrize("category", CATEGORIES)
def test_hostile_inputs_keep_the_contract(runs: dict[str, list[Run]], category: str) -> None:
    assert runs[category], f"no {category} case ran"
    broken = [f"{'+'.join(c.name for c in r.cases)} [{r.variant}] rc={r.outcome.rc} {r.outcome.wall_s:.1f}s "
              f"{r.outcome.rss_mb:.0f}MB: {'; '.join(r.problems)}" for r in runs[category] if r.problems]
    assert not broken, "\n".join(broken)


def test_every_code_running_pickle_raises_sec001(runs: dict[str, list[Run]]) -> None:
    malicious = {c.name: c for r in runs["pickle"] for c in r.cases if c.malicious}
    assert len(malicious) >= 60
    missed = []
    for r in runs["pickle"]:
        if "json" not in r.variant:
            assert "SEC001" in r.outcome.stdout, r.cases[0].name
            continue
        doc = json.loads(r.outcome.stdout)
        by_path = {res["path"]: res for res in doc["results"]}
        for c in r.cases:
            if not c.malicious:
                continue
            res = by_path[c.args[0]] if len(r.cases) > 1 else doc["results"][0]
            if not any(f["rule"] == "SEC001" and f["severity"] == "error" for f in res["findings"]):
                missed.append(c.name)
    assert missed == []


def test_padding_past_the_opcode_cap_does_not_hide_the_payload(runs: dict[str, list[Run]]) -> None:
    for name in ("pickle-padded_payload.pkl", "pickle-padded_stack_global.pkl"):
        r = _one(runs, name)
        doc = json.loads(r.outcome.stdout)
        path = next(c.args[0] for c in r.cases if c.name == name)
        res = next(x for x in doc["results"] if x["path"] == path)
        sec = [f for f in res["findings"] if f["rule"] == "SEC001"]
        assert sec and "posix.system" in sec[0]["data"]["globals"], name
        sec3 = [f["message"] for f in res["findings"] if f["rule"] == "SEC003"]
        assert any("stopped after" in m and "opcodes" in m for m in sec3), name
        assert any("a byte search past that point found posix.system" in m for m in sec3), name


def test_json_output_is_one_document(runs: dict[str, list[Run]]) -> None:
    json_runs = [r for group in runs.values() for r in group if "json" in r.variant]
    assert len(json_runs) > 100
    for r in json_runs:
        if r.outcome.rc == 2:
            assert r.outcome.stdout == "", r.cases[0].name
            continue
        doc = json.loads(r.outcome.stdout)  # raises on a second document or trailing text
        assert doc["schema_version"] == 1
        assert [res["path"] for res in doc["results"]] == [c.args[0] for c in r.cases] or len(r.cases) == 1


def test_bounds_measured(runs: dict[str, list[Run]]) -> None:
    every = [r for group in runs.values() for r in group]
    worst_rss = max(every, key=lambda r: r.outcome.rss_mb)
    assert worst_rss.outcome.rss_mb < runner.MAX_RSS_MB, worst_rss.cases[0].name
    # speed is bench/hostile.py's to report (tests never assert on wall-clock time); hangs are killed
    # after runner.TIMEOUT_S and fail the contract above as "hung"
    assert all(r.outcome.rc in (1, 2) or r.cases[0].exit0_ok for r in every)


@pytest.mark.parametrize(
    ("name", "rc", "expected"),
    [
        ("dev-zero", 2, "error: not a file or folder: /dev/zero"),
        ("fifo", 2, "not a file or folder"),
        ("symlink-loop", 2, "not a file or folder"),
        ("missing-path", 2, "path does not exist"),
        ("yaml-cosyvoice-bomb", 1, "aliases expand to more than 1,000,000 nodes"),
        ("catalog-billion-laughs", 2, "invalid catalog file"),
        ("catalog-bomb-in-valid-key", 2, "aliases expand to more than 1,000,000 nodes"),
        ("deploy-bomb-in-engine-args", 2, "aliases expand to more than 1,000,000 nodes"),
        ("deploy-2gb", 2, "invalid YAML: unacceptable character #x0000: special characters are not allowed"),
        ("toml-huge-explicit", 2, "2147483648 bytes is too large for a config file"),
        ("toml-huge-discovered", 2, "2147483648 bytes is too large for a config file"),
        ("toml-deep-explicit", 2, "invalid TOML: nested too deeply"),
        ("toml-binary-explicit", 2, "invalid TOML: not UTF-8"),
        ("service-100mb-nesting", 2, "invalid JSON: nested too deeply"),
        ("config-is-fifo", 2, "not a regular file"),
        ("deploy-is-dev-zero", 2, "not a regular file"),
        ("st-150k-tensors-8mb", 1, "declares 150,000 tensors, more than the 100,000"),
        ("st-600k-tensors-33mb", 1, "above the 16 MB this checker parses"),
        ("st-header-99mb-sparse", 1, "above the 16 MB this checker parses"),
        ("st-header-2^63", 1, "exceeds the 100 MB safetensors limit"),
        ("st-8-shards-60k-tensors", 1, "more than 200,000 tensors in total"),
        ("gguf-tensors-2^60", 1, "cannot fit in"),
        ("gguf-1m-tensors", 1, "tensor_count 1,000,000 / kv_count 0 are implausible"),
        ("gguf-array-of-1m-empty-arrays", 1, "array of 1,000,000 arrays"),
        ("gguf-version-1", 1, "holds no tensors"),
        ("json-nested-lists", 1, "nested deeper than 64 levels"),
    ],
)
def test_hostile_input_message(runs: dict[str, list[Run]], name: str, rc: int, expected: str) -> None:
    r = _one(runs, name)
    assert r.outcome.rc == rc, r.text[:500]
    assert expected in r.text.replace("\\n", "\n"), r.text[:800]
