"""Side by side: modelcheck's pickle scanner vs picklescan, modelscan, modelaudit and fickling.

    .venv/bin/python bench/scanners.py [--venv /work/scanners-venv] [--keep DIR]
    .venv/bin/python bench/scanners.py --bypasses   # issue 12's bypass classes, one model folder each

``--bypasses`` builds fixtures/malicious/bypasses.py and runs the real ``check`` command line on each
folder (a malicious case must end in exit 1 with the expected error, a benign control without a SEC
error) and each other scanner on the same folder (a file-only scanner on every file in it).

The corpus is built by fixtures/malicious/build.py (malicious and benign pickles, torch zip and legacy
archives, numpy and joblib files). The other scanners run through their Python APIs inside a separate
virtualenv (``python -m venv V && V/bin/pip install picklescan modelscan modelaudit``) so that this
project's .venv stays clean; a scanner that is not installed there is reported as such. Prints per
scanner: detections, misses, false positives, errors and scan time (in-process, excluding start-up),
then every file where any scanner disagrees with the label.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Runs inside the scanners' virtualenv: {file: [detected, error, seconds]} as JSON on the last line.
_RUNNER = r"""
import json, sys, time, os, io, contextlib, logging
logging.disable(logging.CRITICAL)
which, files = sys.argv[1], sys.argv[2:]
out = {}
if which == "picklescan":
    from picklescan.scanner import scan_file_path
    def scan(f):
        r = scan_file_path(f)
        return r.issues_count > 0, bool(r.scan_err)
elif which == "fickling":
    from fickling.fickle import Pickled
    from fickling.analysis import check_safety, Severity
    def scan(f):
        with open(f, "rb") as fh:
            r = check_safety(Pickled.load(fh))
        return r.severity.value[0] >= Severity.SUSPICIOUS.value[0], False
elif which == "modelscan":
    from modelscan.modelscan import ModelScan
    def scan(f):
        r = ModelScan().scan(f)
        return bool(r.get("issues")), bool(r.get("errors"))
else:
    from modelaudit.core import scan_model_directory_or_file
    def scan(f):
        r = scan_model_directory_or_file(f)
        sev = [str(getattr(i, "severity", "")).lower() for i in r.issues]
        return any("critical" in s for s in sev), bool(getattr(r, "has_errors", False))
if files and files[0] == "--folders":
    folders, out = files[1:], {}
    for d in folders:
        t = time.perf_counter(); det = err = False
        paths = [d] if which in ("modelscan", "modelaudit") else [
            os.path.join(r, n) for r, _, ns in os.walk(d) for n in ns]
        for p in paths:
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    a, b = scan(p)
            except Exception:
                a, b = False, True
            det, err = det or a, err or b
        out[os.path.basename(d)] = [bool(det), bool(err), time.perf_counter() - t]
    print(json.dumps(out)); sys.exit(0)
for f in files:
    t = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            det, err = scan(f)
    except Exception as e:
        det, err = False, True
    out[os.path.basename(f)] = [bool(det), bool(err), time.perf_counter() - t]
print(json.dumps(out))
"""


def _build(dest: str) -> dict[str, bool]:
    spec = importlib.util.spec_from_file_location("corpus_build", ROOT / "fixtures" / "malicious" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build(dest)


def _ours(files: list[str]) -> dict[str, list]:
    from modelcheck.facts.pickle import scan_file

    out: dict[str, list] = {}
    for f in files:
        t = time.perf_counter()
        scans, errors = scan_file(f, os.path.basename(f), os.path.getsize(f))
        out[os.path.basename(f)] = [any(s.dangerous for s in scans) or bool(errors), bool(errors),
                                    time.perf_counter() - t]
    return out


def _external(which: str, venv: str, files: list[str]) -> dict[str, list] | str:
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        return f"no virtualenv at {venv}"
    env = dict(os.environ, DO_NOT_TRACK="1", PROMPTFOO_DISABLE_TELEMETRY="1", MODELAUDIT_DISABLE_TELEMETRY="1",
               POSTHOG_DISABLED="1", HF_HUB_OFFLINE="1")
    try:
        proc = subprocess.run([py, "-c", _RUNNER, which, *files], capture_output=True, text=True, timeout=1800, check=False,
                              env=env)
    except subprocess.TimeoutExpired:
        return "timed out"
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return f"not installed or failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:160]}"


def _check_cli(folder: str) -> tuple[int, list[str], float]:
    """(exit code, rules reporting errors, seconds) of the real ``check --format json`` on ``folder``."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "modelcheck", folder, "--format", "json"], capture_output=True,
                          text=True, timeout=120, check=False, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    wall = time.perf_counter() - t
    try:
        findings = json.loads(proc.stdout)["results"][0]["findings"]
    except (ValueError, KeyError, IndexError):
        findings = []
    return proc.returncode, sorted({f["rule"] for f in findings if f["severity"] == "error"}), wall


def bypasses(args: argparse.Namespace) -> int:
    spec = importlib.util.spec_from_file_location("bypasses", ROOT / "fixtures" / "malicious" / "bypasses.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bypasses"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    dest = args.keep or tempfile.mkdtemp(prefix="mcbypass-")
    cases = mod.build(dest)
    folders = [os.path.join(dest, n) for n in cases]
    others = {w: _external(w, args.venv, ["--folders", *folders]) for w in args.only}
    names = [w for w, r in others.items() if not isinstance(r, str)]
    for w, r in others.items():
        if isinstance(r, str):
            print(f"{w}: {r}")
    print(f"{'case':44s} label  {'check':>12s} " + " ".join(f"{n[:10]:>10s}" for n in names))
    ours_ok = 0
    tally = {n: 0 for n in names}
    missed_but_caught = []
    for name, case in cases.items():
        rc, errs, wall = _check_cli(os.path.join(dest, name))
        sec = [e for e in errs if e.startswith(("SEC", "FIL011"))]
        ok = (rc == 1 and case.expect in errs) if case.malicious else not sec
        ours_ok += ok
        marks = []
        for n in names:
            det = others[n].get(name, [False])[0]  # type: ignore[union-attr]
            tally[n] += det == case.malicious
            marks.append("D" if det else "-")
            if det and case.malicious and not ok:
                missed_but_caught.append((name, n))
        label = "MAL" if case.malicious else "ok "
        verdict = f"rc={rc} " + ("ok" if ok else "WRONG")
        print(f"{name[:44]:44s} {label}  {verdict:>12s} "
              + " ".join(f"{m:>10s}" for m in marks) + f"   {wall:4.2f}s {','.join(errs)}")
    n_cases = len(cases)
    print(f"\ncorrect verdicts: check {ours_ok}/{n_cases}; " + "; ".join(f"{n} {tally[n]}/{n_cases}" for n in names))
    print(f"cases another scanner catches and check misses: {missed_but_caught or 'none'}")
    return 0 if ours_ok == n_cases else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", default=os.environ.get("SCANNERS_VENV", "/work/scanners-venv"))
    ap.add_argument("--keep", default=None, help="build the corpus here and keep it")
    ap.add_argument("--only", nargs="*", default=["picklescan", "modelscan", "modelaudit", "fickling"])
    ap.add_argument("--bypasses", action="store_true", help="run issue 12's bypass corpus through `check`")
    args = ap.parse_args()
    if args.bypasses:
        return bypasses(args)
    dest = args.keep or tempfile.mkdtemp(prefix="mccorpus-")
    labels = _build(dest)
    files = [os.path.join(dest, n) for n in sorted(labels)]
    results: dict[str, dict[str, list] | str] = {"modelcheck": _ours(files)}
    for which in args.only:
        results[which] = _external(which, args.venv, files)
    n_bad = sum(labels.values())
    print(f"corpus: {len(labels)} files, {n_bad} malicious, {len(labels) - n_bad} benign ({dest})")
    print(f"{'scanner':12s} {'caught':>8s} {'missed':>7s} {'false+':>7s} {'errors':>7s} {'time s':>8s} {'max file s':>10s}")
    for name, res in results.items():
        if isinstance(res, str):
            print(f"{name:12s} {res}")
            continue
        caught = sum(1 for f, bad in labels.items() if bad and res.get(f, [False])[0])
        fp = sum(1 for f, bad in labels.items() if not bad and res.get(f, [False])[0])
        errs = sum(1 for f in labels if res.get(f, [0, True])[1])
        total = sum(v[2] for v in res.values())
        worst = max((v[2] for v in res.values()), default=0.0)
        print(f"{name:12s} {caught:>5d}/{n_bad:<2d} {n_bad - caught:>7d} {fp:>7d} {errs:>7d} {total:>8.3f} {worst:>10.3f}")
    print("\nfiles where a scanner disagrees with the label (D = flagged as malicious):")
    names = [n for n, r in results.items() if not isinstance(r, str)]
    print(f"  {'file':46s} label  " + " ".join(f"{n[:10]:>10s}" for n in names))
    for f, bad in sorted(labels.items()):
        marks = ["D" if results[n].get(f, [False])[0] else "-" for n in names]  # type: ignore[union-attr]
        if any((m == "D") != bad for m in marks):
            print(f"  {f:46s} {'MAL' if bad else 'ok ':5s}  " + " ".join(f"{m:>10s}" for m in marks))
    ours = results["modelcheck"]
    missed_by_us = [f for f, bad in labels.items() if bad and not ours[f][0]]  # type: ignore[index]
    return 1 if missed_by_us else 0


if __name__ == "__main__":
    raise SystemExit(main())
