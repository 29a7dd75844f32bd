#!/usr/bin/env python3
"""Reproduce kamcore's performance figures with the shared benchmark harness; write a Markdown table.

    python benchmarks/run.py [--harness ../shared/bench] [--rows 1000000] [--runs 5] [--out benchmarks/RESULTS.md]
                             [--skip-full] [--skip-scores-only] [--skip-model] [--skip-memory] [--skip-startup]
                             [--dask 1,2] [--zh] [--messy] [--parquet] [--gzip] [--xlsx ROWS] [--jsonl ROWS]

Every ratio is measured in one run, the two commands alternating in fresh processes (never absolute
seconds, which drift on a shared machine):
1. `kam score` vs the hand-written polars reference doing the same job (`compare.py --baseline reference`)
   and vs the parse-only floor (`--baseline parse`);
2. `kam score --scores-only` vs the parse-only floor and vs the reference writing scores only
   (`--baseline reference-scores`);
3. `kam score --model` vs `benchmarks/model_floor.py` (the parse floor plus the model's bare
   `predict_proba` on the same rows), with a model trained here on a generated history;
4. peak memory on 1M and 4M rows (`memory_flat.py --runs 3`: medians of 3 runs per size);
5. start-up: the median wall time of `kam --help` and `kam --version` over several fresh processes
   (the only absolute figure: the target is in seconds). Source files are byte-compiled before anything is timed, as an
   installed package is.
6. with ``--dask 1,2``: `kam score --engine dask --workers N` vs the parse-only floor, one row per N
   (needs the dask extra; a local cluster of N worker processes starts in every timed run);
7. with ``--zh``: `kam score` vs the reference and `--scores-only` vs the parse floor on a Chinese GB18030 export
   (`gen_export.py --headers zh --encoding gb18030 --seed 7`: amounts such as ¥850,000 and 120万, dates such as
   2009/5/1; both baselines decode GB18030 in memory first);
8. with ``--messy``: `kam score --scores-only` vs the parse floor on two variants of the English export, as CRMs
   and spreadsheets write them: purchase dates with a time of day (2024-06-03 03:23:56, a distinct value in
   nearly every row) and amounts with thousands separators and cents (1,166,911.50, the same);
9. with ``--parquet``: the English export written as Parquet with polars' inferred types, `kam score
   --scores-only` on it vs reading the Parquet file whole with polars (its parse floor), and the peak
   memory of `kam score` on the 1M- and 4M-row exports of `memory_flat.py` written as Parquet (medians of
   ``--memory-runs`` runs);
10. with ``--xlsx ROWS``: `kam score` on the export's first ROWS rows written as a workbook (inline strings, as
   openpyxl writes them; shared strings, as Excel does; up to 65,535 rows also as an Excel 97-2003 .xls, written
   by xlwt from the test extras) vs `kam score` on the same rows as CSV;
11. with ``--jsonl ROWS``: the same for the first ROWS rows as JSON Lines (amounts and margins as numbers; written
   by polars, every key on every line; by Python's json module, non-ASCII text escaped, null values left
   out, as many APIs write them; and by Python's json with the export's Chinese headers as keys, escaped as
   its default writes them, with an escaped emoji in every 50th note).
Needs GNU time at /usr/bin/time and the `kam` of this environment on PATH.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
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


def pairs_note(out: str) -> str:
    found = re.search(r"pairs: ([\d. ]+)\)", out)
    return f"pairs {found.group(1).strip()}" if found else ""


def alternate(harness: Path, floor: list[str], command: list[str], runs: int) -> dict:
    """compare.py's method for a baseline it does not know: one warm-up each, then ``runs`` pairs."""
    sys.path.insert(0, str(harness))
    from compare import measure  # the harness's own timing: /usr/bin/time -v in a fresh process

    print("$ alternate:", " ".join(floor), "<->", " ".join(command), flush=True)
    measure(floor), measure(command)
    results = {"floor": [], "cmd": []}
    for _ in range(runs):
        results["floor"].append(measure(floor))
        results["cmd"].append(measure(command))
    ratios = [c[0] / f[0] for f, c in zip(results["floor"], results["cmd"])]
    out = {"ratio": statistics.median(ratios), "ratios": ratios,
           "floor_s": statistics.median(r[0] for r in results["floor"]),
           "cmd_s": statistics.median(r[0] for r in results["cmd"]),
           "cmd_rss_mb": max(r[1] for r in results["cmd"])}
    print(f"  floor {out['floor_s']:.2f} s, cmd {out['cmd_s']:.2f} s, ratio {out['ratio']:.2f} "
          f"(pairs: {' '.join(f'{r:.2f}' for r in ratios)})", flush=True)
    return out


def alternated_row(measure: str, r: dict, target: str = "") -> tuple:
    """A table row for an :func:`alternate` result: the median ratio, peak memory, seconds and every pair."""
    return (measure, f"{r['ratio']:.2f}×", target, f"{r['cmd_rss_mb']:.0f} MB",
            f"{r['cmd_s']:.2f} s vs {r['floor_s']:.2f} s; pairs " + " ".join(f"{x:.2f}" for x in r["ratios"]))


def startup(kam: str, args: list[str], runs: int) -> float:
    """Median wall seconds of ``kam ARGS`` in fresh processes (after one warm-up)."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([kam, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--harness", default=str(ROOT.parent / "shared" / "bench"))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    ap.add_argument("--skip-full", action="store_true", help="skip kam score (every column) vs reference and floor")
    ap.add_argument("--skip-scores-only", action="store_true", help="skip kam score --scores-only")
    ap.add_argument("--skip-model", action="store_true", help="skip kam score --model (slow: predict_proba)")
    ap.add_argument("--model-runs", type=int, default=None, help="pairs for the model path (default: --runs)")
    ap.add_argument("--skip-memory", action="store_true", help="skip the 1M/4M memory run (slow)")
    ap.add_argument("--memory-runs", type=int, default=3,
                    help="runs per size for the memory figure, medians reported (one run varies by about 50 MB)")
    ap.add_argument("--skip-startup", action="store_true", help="skip the kam --help / --version start-up times")
    ap.add_argument("--startup-runs", type=int, default=15)
    ap.add_argument("--dask", default="", metavar="N,N",
                    help="also time --engine dask with a local cluster of each number of workers (e.g. 1,2)")
    ap.add_argument("--zh", action="store_true", help="also time a Chinese GB18030 export (full and scores only)")
    ap.add_argument("--messy", action="store_true",
                    help="also time exports with timestamps and with formatted amounts (scores only)")
    ap.add_argument("--parquet", action="store_true",
                    help="also time a Parquet input and measure its peak memory on 1M and 4M rows")
    ap.add_argument("--xlsx", type=int, default=0, metavar="ROWS",
                    help="also time the first ROWS rows as a workbook (inline strings; shared strings, as Excel "
                         "writes them; a .xls up to 65,535 rows) against the same rows as CSV")
    ap.add_argument("--jsonl", type=int, default=0, metavar="ROWS",
                    help="also time the first ROWS rows as JSON Lines (as polars and as Python's json write them) "
                         "against the same rows as CSV")
    ap.add_argument("--gzip", action="store_true",
                    help="also time the export gzip-compressed (scores only) against the parse floor of the plain file")
    args = ap.parse_args()
    dask_workers = [int(n) for n in args.dask.split(",") if n.strip()]
    harness = Path(args.harness)
    py = sys.executable
    kam_exe = str(Path(py).with_name("kam")) if Path(py).with_name("kam").exists() else "kam"
    kam = [kam_exe, "score", "{file}", "-o", "{out}", "-q"]
    rows: list[tuple[str, str, str, str, str]] = []  # measure, ratio, target, peak memory, note
    size = f"{args.rows:,} rows, en, UTF-8"

    def compare(baseline: str, command: list[str], file: str | None = None) -> dict:
        out = run([py, str(harness / "compare.py"), "--file", file or export, "--runs", str(args.runs),
                   "--baseline", baseline, "--", *command])
        result = last_line(out, r"^ratio=")
        result["note"] = pairs_note(out)
        return result

    # byte-compile first, as an installed package is: with PYTHONDONTWRITEBYTECODE set, every timed run would
    # otherwise compile the modules changed since their last .pyc (a third of a second)
    run([py, "-m", "compileall", "-q", str(ROOT / "src"), str(ROOT / "plugins")])
    with tempfile.TemporaryDirectory(prefix="kam-bench-") as tmp:
        export = os.path.join(tmp, "export.csv")
        run([py, str(harness / "gen_export.py"), "--rows", str(args.rows), "--out", export])
        if not args.skip_full:
            for baseline, target in (("reference", "≤ 1.25×"), ("parse", "")):
                r = compare(baseline, kam)
                rows.append((f"`kam score` / {baseline} ({size})", f"{float(r['ratio']):.2f}×", target,
                             f"{r['cmd_rss_mb']} MB", f"{float(r['cmd_s']):.2f} s vs {float(r['floor_s']):.2f} s; "
                             + r["note"]))
        if not args.skip_scores_only:
            for baseline, target in (("parse", "≤ 1.5×"), ("reference-scores", "")):
                r = compare(baseline, kam + ["--scores-only"])
                rows.append((f"`kam score --scores-only` / {baseline} ({size})", f"{float(r['ratio']):.2f}×", target,
                             f"{r['cmd_rss_mb']} MB", f"{float(r['cmd_s']):.2f} s vs {float(r['floor_s']):.2f} s; "
                             + r["note"]))
        if not args.skip_model:
            history = os.path.join(tmp, "history.csv")
            model = os.path.join(tmp, "model")
            run([py, str(harness / "gen_export.py"), "--rows", "8000", "--seed", "3", "--out", history])
            run([kam_exe, "train", history, "--target", "stage", "--won", "won", "--lost", "lost", "--folds", "3",
                 "--repeats", "1", "-o", model])
            out_csv = os.path.join(tmp, "model-out.csv")
            r = alternate(harness, [py, str(ROOT / "benchmarks" / "model_floor.py"), export, model + ".joblib"],
                          [kam_exe, "score", export, "-o", out_csv, "-q", "--model", model + ".joblib"],
                          args.model_runs or args.runs)
            rows.append(alternated_row(f"`kam score --model` / (parse floor + bare `predict_proba`) ({size})", r,
                                       "≤ 1.3×"))
        for n in dask_workers:  # the client's memory only: the workers are other processes
            r = compare("parse", kam + ["--engine", "dask", "--workers", str(n)])
            rows.append((f"`kam score --engine dask --workers {n}` / parse ({size})", f"{float(r['ratio']):.2f}×", "",
                         f"{r['cmd_rss_mb']} MB (client)", f"{float(r['cmd_s']):.2f} s vs {float(r['floor_s']):.2f} s; "
                         + r["note"]))
        if args.zh:
            zh = os.path.join(tmp, "export-zh.csv")
            run([py, str(harness / "gen_export.py"), "--rows", str(args.rows), "--out", zh, "--headers", "zh",
                 "--encoding", "gb18030", "--seed", "7"])
            for extra, baseline in (([], "reference"), (["--scores-only"], "parse")):
                r = compare(baseline, kam + extra, zh)
                rows.append((f"`kam score{' ' if extra else ''}{' '.join(extra)}` / {baseline} "
                             f"({args.rows:,} rows, zh, GB18030)", f"{float(r['ratio']):.2f}×", "",
                             f"{r['cmd_rss_mb']} MB", f"{float(r['cmd_s']):.2f} s vs {float(r['floor_s']):.2f} s; "
                             + r["note"]))
        if args.messy:
            for label, variant in messy_variants(export, tmp):
                r = compare("parse", kam + ["--scores-only"], variant)
                rows.append((f"`kam score --scores-only` / parse ({args.rows:,} rows, en, {label})",
                             f"{float(r['ratio']):.2f}×", "", f"{r['cmd_rss_mb']} MB",
                             f"{float(r['cmd_s']):.2f} s vs {float(r['floor_s']):.2f} s; " + r["note"]))
        if args.parquet:
            rows += parquet_rows(harness, py, kam_exe, export, tmp, args)
        if args.gzip:
            rows.append(gzip_row(harness, py, kam_exe, export, tmp, args))
        if args.xlsx:
            rows += xlsx_rows(harness, kam_exe, export, tmp, args)
        if args.jsonl:
            rows += jsonl_rows(harness, kam_exe, export, tmp, args)
    if not args.skip_memory:
        out = run([py, str(harness / "memory_flat.py"), "--runs", str(args.memory_runs), "--", *kam])
        r = last_line(out, r"^rss_1m_mb=")
        rows.append(("peak RSS, 4M rows / 1M rows (`kam score`)", f"{float(r['ratio']):.2f}", "≤ 1.2, < 600 MB",
                     f"{r['rss_1m_mb']} MB → {r['rss_4m_mb']} MB", ""))
    if not args.skip_startup:
        for flag in ("--help", "--version"):
            seconds = startup(kam_exe, [flag], args.startup_runs)
            rows.append((f"`kam {flag}` start-up, median of {args.startup_runs} fresh processes", f"{seconds:.3f} s",
                         "≤ 0.3 s", "", f"`python -c pass`: {startup(py, ['-c', 'pass'], args.startup_runs):.3f} s"))
    table = ["| measure | result | target | peak memory | detail |", "|---|---:|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    from importlib.metadata import version

    versions = f"Python {sys.version.split()[0]}, polars {version('polars')}, {os.cpu_count()} cores"
    text = (f"# Benchmark results\n\nMeasured {date.today()} with `python benchmarks/run.py "
            + " ".join(sys.argv[1:]) + f"` ({versions}).\n\n" + "\n".join(table) + "\n")
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


def parquet_rows(harness: Path, py: str, kam_exe: str, export: str, folder: str, args) -> list[tuple]:
    """Scores only on the export as Parquet vs polars reading it whole; peak memory on 1M and 4M rows."""
    import polars as pl

    sys.path.insert(0, str(harness))
    from compare import measure
    from memory_flat import SIZES
    from memory_flat import export as cached_export

    def as_parquet(csv: str, name: str) -> str:
        path = os.path.join(folder, name)
        pl.read_csv(csv, infer_schema_length=100_000).write_parquet(path)
        return path

    parquet = as_parquet(export, "export.parquet")
    floor = [py, "-c", "import sys, polars as pl; print(pl.read_parquet(sys.argv[1]).height)", parquet]
    r = alternate(harness, floor, [kam_exe, "score", parquet, "-o", os.path.join(folder, "p.csv"), "-q",
                                   "--scores-only"], args.runs)
    out = [alternated_row(f"`kam score --scores-only` / `pl.read_parquet` ({args.rows:,} rows, en, Parquet)", r)]
    peaks = {}
    for size, n in SIZES.items():
        path = as_parquet(cached_export(n, "en", "utf-8"), f"memory-{size}.parquet")
        command = [kam_exe, "score", path, "-o", os.path.join(folder, "m.csv"), "-q"]
        peaks[size] = statistics.median(measure(command)[1] for _ in range(max(args.memory_runs, 1)))
        os.remove(path)
    out.append(("peak RSS, 4M rows / 1M rows (`kam score`, Parquet input)", f"{peaks['4m'] / peaks['1m']:.2f}", "",
                f"{peaks['1m']:.0f} MB → {peaks['4m']:.0f} MB", f"median of {max(args.memory_runs, 1)} runs each"))
    return out


def gzip_row(harness: Path, py: str, kam_exe: str, export: str, folder: str, args) -> tuple:
    """Scores only on the export gzip-compressed (level 6, as the gzip tool writes it) against the parse floor of
    the plain file: what inflating costs on top of the same run."""
    import gzip
    import shutil

    packed = os.path.join(folder, "export.csv.gz")
    with open(export, "rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    r = alternate(harness, [py, str(harness / "floor.py"), export],
                  [kam_exe, "score", packed, "-o", os.path.join(folder, "gz.csv"), "-q", "--scores-only"], args.runs)
    inflates = os.path.getsize(export) / os.path.getsize(packed)
    return alternated_row(f"`kam score --scores-only` on the export gzip-compressed / parse of the plain file "
                          f"({args.rows:,} rows, en, {inflates:.1f}× compressed)", r)


def xlsx_rows(harness: Path, kam_exe: str, export: str, folder: str, args) -> list[tuple]:
    """`kam score` on the export's first rows as a workbook, in both layouts, against the same rows as CSV:
    what reading a workbook costs on top of the same run."""
    import polars as pl

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from workbooks import with_shared_strings, write_workbook, write_xls

    csv = os.path.join(folder, "first.csv")
    pl.read_csv(export, infer_schema=False, n_rows=args.xlsx).write_csv(csv)
    inline = write_workbook(csv, Path(folder) / "first.xlsx")
    shared = with_shared_strings(inline, Path(folder) / "first-shared.xlsx")
    books = [("inline strings", inline), ("shared strings", shared)]
    if args.xlsx <= 65_535:  # what an Excel 97-2003 sheet holds
        books.append(("Excel 97-2003 .xls", write_xls(csv, Path(folder) / "first.xls")))
    floor = [kam_exe, "score", csv, "-o", os.path.join(folder, "x-csv.csv"), "-q"]
    out = []
    for label, book in books:
        r = alternate(harness, floor, [kam_exe, "score", str(book), "-o", os.path.join(folder, "x.csv"), "-q"],
                      args.runs)
        out.append(alternated_row(f"`kam score` on a workbook / the same rows as CSV ({args.xlsx:,} rows, en, {label})",
                                  r))
    return out


def jsonl_rows(harness: Path, kam_exe: str, export: str, folder: str, args) -> list[tuple]:
    """`kam score` on the export's first rows as JSON Lines, as two kinds of writer write them, against the
    same rows as CSV (the numbers written as the JSON Lines files write them)."""
    import json

    import polars as pl

    frame = pl.read_csv(export, infer_schema=False, n_rows=args.jsonl).with_columns(
        pl.col("deal_size", "margin").cast(pl.Float64))
    csv = os.path.join(folder, "first-jsonl.csv")
    frame.write_csv(csv)
    by_polars = os.path.join(folder, "first.jsonl")
    frame.write_ndjson(by_polars)
    by_python = os.path.join(folder, "first-escaped.jsonl")
    with open(by_python, "w", encoding="utf-8") as handle:
        for row in frame.iter_rows(named=True):  # per-row ok: writing a benchmark's input, not timed
            handle.write(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n")
    sys.path.insert(0, str(harness))
    from export_schema import COLUMNS  # the Chinese headers of the generated export

    chinese = os.path.join(folder, "first-chinese-escaped.jsonl")
    with open(chinese, "w", encoding="utf-8") as handle:
        for i, row in enumerate(frame.iter_rows(named=True)):  # per-row ok: writing a benchmark's input
            if i % 50 == 7:
                row["notes"] = (row["notes"] or "") + " 签约 🎉"
            handle.write(json.dumps({COLUMNS.get(k) or k: v for k, v in row.items()}) + "\n")
    floor = [kam_exe, "score", csv, "-o", os.path.join(folder, "j-csv.csv"), "-q"]
    out = []
    for label, path in (("every key, as polars writes it", by_polars),
                        ("text escaped, nulls left out, as Python's json writes it", by_python),
                        ("Chinese keys and text escaped, an emoji in every 50th note, as Python's json writes "
                         "them", chinese)):
        r = alternate(harness, floor, [kam_exe, "score", path, "-o", os.path.join(folder, "j.csv"), "-q"], args.runs)
        out.append(alternated_row(f"`kam score` on JSON Lines / the same rows as CSV ({args.jsonl:,} rows, en, {label})",
                                  r))
    return out


def messy_variants(export: str, folder: str) -> list[tuple[str, str]]:
    """The export with a time of day on every full purchase date, and with every deal size written with
    thousands separators and cents: (label, path) each, deterministic."""
    import polars as pl

    frame = pl.read_csv(export, infer_schema=False)
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    seconds = row * 7919 % 86400
    clock = pl.format("{}:{}:{}", *((part.cast(pl.String).str.zfill(2)) for part in
                                    (seconds // 3600, seconds // 60 % 60, seconds % 60)))
    stamps = frame.with_columns(pl.when(pl.col("purchase_date").str.len_chars() == 10)
                                .then(pl.format("{} {}", pl.col("purchase_date"), clock))
                                .otherwise(pl.col("purchase_date")).alias("purchase_date"))
    cents = (frame["deal_size"].cast(pl.Float64) + (pl.Series(range(frame.height)) * 37 % 100) / 100).to_list()
    formatted = frame.with_columns(pl.Series("deal_size", [None if v is None else f"{v:,.2f}" for v in cents]))
    out = []
    for label, variant in (("timestamps", stamps), ("amounts as 1,166,911.50", formatted)):
        path = os.path.join(folder, f"export-{len(out)}.csv")
        variant.write_csv(path)
        out.append((label, path))
    return out


if __name__ == "__main__":
    main()
