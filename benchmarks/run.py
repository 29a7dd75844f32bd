#!/usr/bin/env python3
"""Reproduce kamcore's performance figures with the shared benchmark harness; print a Markdown table.

    python benchmarks/run.py [--harness ../shared/bench] [--rows 1000000] [--runs 5] [--out benchmarks/RESULTS.md]
                             [--dask 1,2]

Runs, with the harness's own scripts (ratios measured in the same run, never absolute seconds):
1. `kam score` vs the hand-written polars reference doing the same job (`compare.py --baseline reference`);
2. `kam score` vs the parse-only floor (`compare.py --baseline parse`);
3. peak memory on 1M and 4M rows (`memory_flat.py`);
4. with ``--dask 1,2``: `kam score --engine dask --workers N` vs the parse-only floor, one row per N
   (needs the dask extra; a local cluster of N worker processes starts in every timed run).
Needs GNU time at /usr/bin/time and the `kam` of this environment on PATH.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def last_line(text: str, pattern: str) -> dict[str, str]:
    for line in reversed(text.strip().splitlines()):
        if re.match(pattern, line):
            return dict(part.split("=", 1) for part in line.split())
    raise SystemExit(f"no result line in:\n{text[-2000:]}")


def run(argv: list[str]) -> str:
    print("$", " ".join(argv), flush=True)
    proc = subprocess.run(argv, capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(proc.returncode)
    return proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--harness", default=str(ROOT.parent / "shared" / "bench"))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    ap.add_argument("--skip-memory", action="store_true", help="skip the 1M/4M memory run (slow)")
    ap.add_argument("--dask", default="", metavar="N,N",
                    help="also time --engine dask with a local cluster of each number of workers (e.g. 1,2)")
    args = ap.parse_args()
    dask_workers = [int(n) for n in args.dask.split(",") if n.strip()]
    harness = Path(args.harness)
    py = sys.executable
    kam = ["kam", "score", "{file}", "-o", "{out}", "-q"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kam-bench-") as tmp:
        export = os.path.join(tmp, "export.csv")
        run([py, str(harness / "gen_export.py"), "--rows", str(args.rows), "--out", export])
        for baseline in ("reference", "parse"):
            out = run([py, str(harness / "compare.py"), "--file", export, "--runs", str(args.runs),
                       "--baseline", baseline, "--", *kam])
            r = last_line(out, r"^ratio=")
            rows.append((f"`kam score` / {baseline} ({args.rows:,} rows, en, UTF-8)", f"{float(r['ratio']):.2f}×",
                         f"{r['cmd_rss_mb']} MB"))
        for n in dask_workers:  # the client's memory only: the workers are other processes
            out = run([py, str(harness / "compare.py"), "--file", export, "--runs", str(args.runs), "--baseline",
                       "parse", "--", *kam, "--engine", "dask", "--workers", str(n)])
            r = last_line(out, r"^ratio=")
            rows.append((f"`kam score --engine dask --workers {n}` / parse ({args.rows:,} rows)",
                         f"{float(r['ratio']):.2f}×", f"{r['cmd_rss_mb']} MB (client)"))
    if not args.skip_memory:
        out = run([py, str(harness / "memory_flat.py"), "--", *kam])
        r = last_line(out, r"^rss_1m_mb=")
        rows.append(("peak RSS 4M rows / 1M rows", f"{float(r['ratio']):.2f}",
                     f"{r['rss_1m_mb']} MB → {r['rss_4m_mb']} MB"))
    table = ["| measure | ratio | peak memory |", "|---|---:|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = f"# Benchmark results\n\nMeasured {date.today()} with `python benchmarks/run.py`.\n\n" + "\n".join(table) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
