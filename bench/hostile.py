"""Run the hostile corpus (fixtures/hostile/build.py) through the real ``check`` command line.

    .venv/bin/python bench/hostile.py [--variants target-json,json,target-text] [--jobs 4] [--only SUBSTR]

Prints, per case and variant: exit code, wall time, peak RSS of the child and any contract violation;
then the worst cases (memory, time) and a summary. Exits 1 when any run broke the contract.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixtures.hostile import runner
from fixtures.hostile.build import build


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default=",".join(runner.VARIANTS))
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--only", default="")
    ap.add_argument("--keep", action="store_true", help="keep the corpus folder")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    base = tempfile.mkdtemp(prefix="modelcheck-hostile-")
    try:
        cases = [c for c in build(base) if args.only in c.name]
        runner.chmod_for_nobody(base)
        jobs = [(c, v) for c in cases for v in variants]

        def one(item):
            case, variant = item
            out = runner.run(case.args, variant, as_nobody=case.as_nobody, cwd=base)
            return case, variant, out, runner.judge(case, variant, out)

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(one, jobs))
        print(f"{'case':44s} {'variant':12s} {'rc':>3s} {'wall s':>7s} {'RSS MB':>7s}  problems")
        for case, variant, out, problems in rows:
            rc = "T/O" if out.rc is None else str(out.rc)
            print(f"{case.name[:44]:44s} {variant:12s} {rc:>3s} {out.wall_s:7.2f} {out.rss_mb:7.1f}  {'; '.join(problems)}")
        print("\nworst peak RSS:")
        for case, variant, out, _ in sorted(rows, key=lambda r: -r[2].rss_mb)[:8]:
            print(f"  {out.rss_mb:7.1f} MB  {case.name} [{variant}]")
        print("slowest:")
        for case, variant, out, _ in sorted(rows, key=lambda r: -r[2].wall_s)[:8]:
            print(f"  {out.wall_s:7.2f} s   {case.name} [{variant}]")
        failed = [r for r in rows if r[3]]
        cats = sorted({c.category for c in cases})
        print(f"\n{len(cases)} cases ({', '.join(cats)}), {len(rows)} runs, "
              f"exit 1: {sum(r[2].rc == 1 for r in rows)}, exit 2: {sum(r[2].rc == 2 for r in rows)}, "
              f"malicious cases: {sum(c.malicious for c in cases)}, contract violations: {len(failed)}")
        print(f"max RSS {max(r[2].rss_mb for r in rows):.1f} MB, max wall {max(r[2].wall_s for r in rows):.2f} s "
              f"(jobs={args.jobs}, so wall includes contention)")
        if args.keep:
            print(f"corpus kept in {base}")
        return 1 if failed else 0
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
