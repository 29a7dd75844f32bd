"""``kam report SCORED``: the portfolio at a glance, from the file ``kam score`` wrote.

What a key-account manager asks of a scored pipeline: how many deals are in each quadrant (全力争取 pursue,
培育机会 develop, 低成本处理 qualify out, 放弃 drop), each band and each sales stage, what they are worth
(``deal_size_base``, in the base currency) and what they are expected to bring (worth × ``win_probability``),
how many are qualified, which stakeholder red flags recur (no coach, decision maker unknown …: the
stakeholders plugin's own conditions), and which deals to put the team on first: the largest expected
values. Every
figure is a polars aggregation over the file; a column the file lacks (a ``--scores-only`` output has no
amounts) leaves its figures out, with a note. ``--format json`` gives the same for a program.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kamcore import hookimpl
from kamcore.headers import display_width
from kamcore_plugins.scoring.qualification import VERDICT_ZH as VERDICTS
from kamcore_plugins.scoring.scorecard import QUADRANT_ZH as QUADRANTS

FORMATS = ("text", "markdown", "json")
NUMBERS = ("deal_size_base", "win_probability", "total_score", "unknown_criteria")
# the coverage columns the stakeholder red flags are conditions on (kam score --stakeholders)
COVERAGE = ("stakeholder_count", "decision_maker_known", "decision_maker_stance", "coach_present",
            "technical_gatekeeper_known", "business_gatekeeper_known", "high_influence_opponents", "relationship_down")
COUNTS = ("stakeholder_count", "high_influence_opponents", "relationship_down")
FLAGGED = ("decision_maker_known", "coach_present", "technical_gatekeeper_known", "business_gatekeeper_known")
READ = ("opportunity_id", "account", "project_name", "stage", "outcome", "band", "quadrant", "qualification", *NUMBERS,
        *COVERAGE)
SHORT_OF_FACTS = 3  # unknown items from which a deal is "信息不足 / short of facts"


def read_scored(paths: list[Path], kam, extra: tuple[str, ...] = ()):
    """The scored rows of every file (through kam's importers: any format kam writes, packed or not), with the
    numbers as numbers: the columns the report reads, and ``extra`` (``--by``), which must be there."""
    import polars as pl
    from attrs import evolve

    from kamcore.errors import InputError
    from kamcore.pipeline import collect_source, open_sources
    from kamcore.registry import ReadOptions

    opened = open_sources(list(paths), kam, ReadOptions())
    try:
        frames = []
        for source, _ in opened:  # only the columns the report reads: a scan reads no more of the file
            names = source.frame.collect_schema().names()
            lacking = [n for n in extra if n not in names]
            if lacking:
                raise InputError(f"{source.path}: no column {lacking[0]!r} to report by",
                                 hint="columns: " + ", ".join(names))
            wanted = [n for n in READ if n in names] + [n for n in extra if n not in READ]
            frames.append(collect_source(evolve(source, frame=source.frame.select(wanted))))
    finally:
        for source, _ in opened:
            source.cleanup()
    frame = pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]
    if "opportunity_id" not in frame.columns or not {"total_score", "quadrant", "band"} & set(frame.columns):
        raise InputError(f"{paths[0]}: not a file kam score wrote (no opportunity_id and scores)",
                         hint="run kam report on kam score's output")
    frame = frame.with_columns(pl.col(n).cast(pl.Float64, strict=False) for n in (*NUMBERS, *COUNTS)
                               if n in frame.columns)
    return frame.with_columns(pl.col(n).cast(pl.String).str.to_lowercase().replace_strict(
        {"true": True, "false": False}, default=None, return_dtype=pl.Boolean) for n in FLAGGED if n in frame.columns)


def red_flags(frame) -> list[dict]:
    """How many deals carry each stakeholder red flag, most frequent first: the stakeholders plugin's own
    conditions on the coverage columns, and its words (without the per-deal count)."""
    from kamcore_plugins.scoring.stakeholders import FLAGS, flag_columns

    if not set(COVERAGE) <= set(frame.columns):
        return []
    counts = frame.select(cond.fill_null(False).sum().alias(flag) for flag, cond in flag_columns().items())
    flags = [{"flag": flag, "words": FLAGS[flag].replace(" {n} 人", "").replace(" ({n})", ""),
              "deals": int(counts[flag][0])} for flag in counts.columns]
    return sorted((f for f in flags if f["deals"]), key=lambda f: -f["deals"])


def _group(frame, column: str, order: list[str], labels: dict[str, str], value: bool) -> list[dict]:
    """Count, share, worth and expected worth per value of ``column``, in ``order`` (others after, by count)."""
    import polars as pl

    c = pl.col
    aggs = [pl.len().alias("deals")]
    if value:
        aggs += [c("deal_size_base").sum().alias("value"), c("__expected").sum().alias("expected")]
    if "win_probability" in frame.columns:
        aggs.append(c("win_probability").mean().alias("mean_win_probability"))
    grouped = frame.group_by(column).agg(aggs)
    rank = {code: i for i, code in enumerate(order)}
    rows = sorted(grouped.iter_rows(named=True),  # per-row ok: one row per group (a few)
                  key=lambda r: (rank.get(r[column], len(rank)), -r["deals"], str(r[column])))
    out = []
    for row in rows:
        code = row.pop(column)
        entry = {"code": code, "label_zh": labels.get(code, "") if code is not None else "（空）empty",
                 "share": round(row["deals"] / frame.height, 4), **row}
        out.append({k: (round(v, 4) if isinstance(v, float) else v) for k, v in entry.items()})
    return out


def portfolio(frame, top: int = 10, base: str = "CNY", by: tuple[str, ...] = ()) -> dict:
    """Every figure ``kam report`` shows, as a dict; ``by``: more columns to group by (owner, lead_source …),
    largest groups first."""
    import polars as pl

    from kamcore.schema import OPPORTUNITY

    c = pl.col
    notes = []
    value = "deal_size_base" in frame.columns
    if value:
        probability = c("win_probability") if "win_probability" in frame.columns else pl.lit(None, pl.Float64)
        frame = frame.with_columns((c("deal_size_base") * probability).alias("__expected"))
    else:
        notes.append("no deal_size_base column (a --scores-only output?): counts only, no amounts")
    report = {"deals": frame.height, "base_currency": base if value else None}
    if value:
        report["value"] = frame["deal_size_base"].sum()
        report["expected"] = frame["__expected"].sum()
        report["deals_without_amount"] = frame["deal_size_base"].null_count()
    groups = [("quadrant", list(QUADRANTS), QUADRANTS), ("band", ["A", "B", "C", "D"], {}),
              ("stage", list(OPPORTUNITY["stage"].vocab), {k: v[0] for k, v in OPPORTUNITY["stage"].vocab.items()}),
              ("qualification", list(VERDICTS), VERDICTS)]
    for column in by:
        spec = OPPORTUNITY.get(column)
        vocab = spec.vocab if spec is not None and spec.vocab else {}
        groups = [g for g in groups if g[0] != column] + [(column, list(vocab), {k: v[0] for k, v in vocab.items()})]
    for column, order, labels in groups:
        if column in frame.columns:
            report[f"by_{column}"] = _group(frame, column, order, labels, value)
    if "unknown_criteria" in frame.columns:
        report["short_of_facts"] = frame.filter(c("unknown_criteria") >= SHORT_OF_FACTS).height
    flags = red_flags(frame)
    if flags:
        report["red_flags"] = flags
    rank = [c("__expected")] if value else []
    rank += [c(n) for n in ("win_probability", "total_score") if n in frame.columns]
    shown = [n for n in ("opportunity_id", "account", "project_name", "stage", "band", "quadrant", "total_score",
                         "win_probability", "deal_size_base", "__expected") if n in frame.columns]
    shown += ["qualification"] if "qualification" in frame.columns else []
    if "quadrant" in frame.columns:  # the deals to put the team on: real and worth it, not disqualified, first
        first = (c("quadrant") == "pursue").fill_null(False)
        if "qualification" in frame.columns:
            first = first & (c("qualification") != "disqualified").fill_null(True)
        frame = frame.with_columns(first.alias("__first"))
        rank.insert(0, c("__first"))
    running = frame
    for column in ("stage", "outcome"):  # a deal won or lost is not one to win
        if column in running.columns:
            running = running.filter(~c(column).is_in(["won", "lost"]).fill_null(False))
    best = running.sort(rank, descending=True, nulls_last=True).head(top).select(shown) if rank else frame.head(0)
    report["top"] = [{("expected" if k == "__expected" else k): v for k, v in row.items()}
                     for row in best.iter_rows(named=True)]  # per-row ok: at most --top rows
    report["notes"] = notes
    return report


def _table(header: list[str], rows: list[list[str]], markdown: bool, numbers: set[int]) -> list[str]:
    """An aligned table (the ``numbers`` columns to the right), or a Markdown one."""
    if markdown:
        return ["| " + " | ".join(header) + " |",
                "|" + "".join("---:|" if i in numbers else "---|" for i in range(len(header)))] + \
               ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    widths = [max(display_width(cell) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        padded = []
        for i, (cell, w) in enumerate(zip(cells, widths)):
            pad = " " * (w - display_width(cell))
            padded.append(pad + cell if i in numbers else cell + pad)
        return "  ".join(padded).rstrip()
    return [line(header)] + [line(row) for row in rows]


def _money(value) -> str:
    return "" if value is None else f"{value:,.0f}"


def render(report: dict, fmt: str) -> str:
    """The report as text (aligned tables) or Markdown."""
    from kamcore.schema import OPPORTUNITY

    if fmt == "json":
        return json.dumps(report, ensure_ascii=False, indent=2) + "\n"
    markdown = fmt == "markdown"
    title = (lambda text: f"## {text}") if markdown else (lambda text: text)
    base = report.get("base_currency")
    lines = [title(f"{report['deals']:,} 个商机 / opportunities")
             + (f"，总额 / worth {base} {_money(report['value'])}，预期 / expected {base} {_money(report['expected'])}"
                if base else "")]
    names = {"quadrant": "按象限 / by quadrant", "band": "按等级 / by band", "stage": "按销售阶段 / by sales stage",
             "qualification": "按资格审查 / by qualification"}
    for key in (k for k in report if k.startswith("by_")):
        column = key[len("by_"):]
        spec = OPPORTUNITY.get(column)
        name = names.get(column) or (f"按{spec.label_zh} / by {column}" if spec is not None else f"by {column}")
        groups = report[key]
        if not groups:
            continue
        header = [name, "商机 / deals", "占比 / share"]
        header += [f"总额 / worth ({base})", f"预期 / expected ({base})"] if base else []
        header += ["平均赢率 / mean p"] if any("mean_win_probability" in g for g in groups) else []
        rows = []
        for g in groups:
            label = " ".join(part for part in (g["label_zh"], str(g["code"]) if g["code"] is not None else "")
                             if part)
            row = [label, f"{g['deals']:,}", f"{100 * g['share']:.1f}%"]
            row += [_money(g.get("value")), _money(g.get("expected"))] if base else []
            row += [f"{g['mean_win_probability']:.2f}" if g.get("mean_win_probability") is not None else ""] \
                if len(header) > len(row) else []
            rows.append(row)
        lines += ["", *_table(header, rows, markdown, set(range(1, len(header))))]
    if report["top"]:
        lines += ["", title(f"重点商机 / deals to win first (top {len(report['top'])})")]
        keys = [k for k in ("opportunity_id", "account", "project_name", "band", "quadrant", "qualification",
                            "win_probability", "expected") if k in report["top"][0]]
        rows = [[_money(row[k]) if k == "expected" else
                 (f"{row[k]:.2f}" if k == "win_probability" and row[k] is not None else str(row[k] or ""))
                 for k in keys] for row in report["top"]]
        numbers = {i for i, k in enumerate(keys) if k in ("win_probability", "expected")}
        lines += ["", *_table([k if k != "expected" else f"expected ({base})" for k in keys], rows, markdown,
                              numbers)]
    if report.get("red_flags"):
        lines += ["", *_table(["关键人物风险 / stakeholder red flags", "商机 / deals"],
                              [[f["words"], f"{f['deals']:,}"] for f in report["red_flags"]], markdown, {1})]
    if "short_of_facts" in report:
        n = report["short_of_facts"]
        lines += ["", f"信息不足 / short of facts: {n:,} deal{'s' if n != 1 else ''} with {SHORT_OF_FACTS} or more "
                      "items unknown (the reasons column names them)"]
    lines += [f"note: {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.argument("scored", nargs=-1, required=True,
                    type=click.Path(path_type=Path, exists=True, dir_okay=False, allow_dash=True))
    @click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
                  help="How many deals to list as the ones to win first.")
    @click.option("--by", "by", multiple=True, metavar="COLUMN",
                  help="Also sum up by this column of the scored file (owner, lead_source, account …; repeatable).")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
    @click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                  help="kam.toml, for the base currency of deal_size_base (default: ./kam.toml if present).")
    def report(scored, top, by, fmt, config_path):
        """The portfolio at a glance, from kam score's output: deals, worth and expected worth by quadrant,
        band, sales stage and qualification, and the deals to win first."""
        from kamcore.config import load_config
        from kamcore.plugins import get_kam

        kam = get_kam()
        config = load_config(config_path, kam.config_defaults())
        base = str(config.section("currency").get("base", "CNY"))
        by = tuple(dict.fromkeys(by))
        click.echo(render(portfolio(read_scored(list(scored), kam, by), top, base, by), fmt), nl=False)
