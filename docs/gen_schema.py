"""Generate docs/schema.md from src/kamcore/schema.py, and the format tables from the normaliser itself.

    python docs/gen_schema.py            # rewrite docs/schema.md
    python docs/gen_schema.py --check    # exit 1 if docs/schema.md is out of date

The column tables come from ``kamcore.schema``; the amount and date tables are made by running
sample values through kamcore (``score_frame`` with the default configuration), so every example
shown is what kamcore really does.
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "schema.md"

KINDS = {
    "id": "text, required: a row without one is rejected. An export with no id column gets ids `<file stem>-<row>`",
    "text": "text, passed through as given",
    "code": "one of the codes below; a value that matches no code is rejected (map it under `[values.<column>]`)",
    "amount": "a number: see [Amounts](#amounts)",
    "currency": "ISO 4217 code: `CNY`, `USD` … from 人民币, RMB, ¥, 美元, US$ …, or any three letters",
    "date": "a date: see [Dates](#dates)",
    "percent": "percentage points: `35%`, `35 %` and `35` are 35; `0.35` stays 0.35 (no guessing)",
    "level_or_amount": "a level code (high 高 · medium 中 · low 低) or an amount (into `<column>_amount`)",
    "count_or_names": "text kept as given; `competitor_count` is derived from it",
}

AMOUNTS = ["1200000", "1,200,000", "¥1,200,000", "￥120万", "120万", "120 万元", "1.2亿", "RMB 80万", "12万美元",
           "US$120,000", "$4.5m", "850k", "€640,000", "HK$3,000,000", "1.5bn", "１２０万", "100-200万", "$1m–$2m",
           "面议", "TBD", "100万-200", "一百万", "2.675", "-5000", "1.2E+06"]
DATES = ["2009-05-01", "2009/5/1", "20090501", "2009-05-01 10:30", "2009-05-01T10:30:00.000+0800", "2009.05", "2010.1", "2009.10", "2009-05", "2009年11月",
         "2009年11月5日", "２００９年５月", "2009-Q2", "2009年第2季度", "2009年", "05/01/2009", "25/12/2009", "25/12/2009 9:05 PM", "39934", "下半年"]


def config():
    """The default configuration (core + plugin defaults), ignoring any kam.toml around."""
    from kamcore.config import CORE_DEFAULTS, Config, deep_merge, parse_toml
    from kamcore.plugins import get_kam

    data = parse_toml(CORE_DEFAULTS, "core defaults")
    for section, text in get_kam().config_defaults().items():
        data = deep_merge(data, parse_toml(text, section))
    return Config(data=data)


def number(value) -> str:
    if value is None:
        return ""
    text = f"{value:,.2f}"
    return text[:-3] if text.endswith(".00") else text


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def codes(column) -> str:
    if not column.vocab:
        return ""
    parts = []
    for code, (label, *synonyms) in column.vocab.items():
        extra = [s for s in synonyms if s not in (code, label)]
        parts.append(f"`{code}` {label}" + (f" ({', '.join(extra)})" if extra else ""))
    return "<br>".join(cell(p) for p in parts)


def column_table(columns, personal: bool) -> list[str]:
    head = "| column | 中文 | English | kind | headers accepted | codes: `code` 中文 (other spellings) |"
    if personal:
        head += " personal |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for col in columns:
        aliases = [a for a in col.aliases if a not in (col.name, col.label_zh)]
        row = (f"| `{col.name}` | {col.label_zh} | {col.label_en} | {col.kind} | {cell(', '.join(aliases))} | "
               f"{codes(col)} |")
        if personal:
            row += " yes |" if col.personal else " |"
        rows.append(row)
    return rows


def samples():
    import polars as pl

    from kamcore import score_frame

    cfg = config()
    amounts = score_frame(pl.DataFrame({"编号": [str(i) for i in range(len(AMOUNTS))], "标的": AMOUNTS}), cfg)
    dates = score_frame(pl.DataFrame({"编号": [str(i) for i in range(len(DATES))], "采购时间": DATES}), cfg)
    unit = score_frame(pl.DataFrame({"编号": ["1"], "标的(单位: 亿)": ["1.5"]}), cfg)
    return cfg, amounts, dates, unit


def sample_table(result, values, column: str, shown: dict) -> list[str]:
    """One row per sample value: what ``column`` and the ``shown`` columns (name -> format) became, and
    the row's flag or its reject reason."""
    scored = {r["opportunity_id"]: r for r in result.scored.iter_rows(named=True)}
    reasons = dict(zip(result.rejects["opportunity_id"], result.rejects["reason"]))
    rows = ["| in the export | " + " | ".join(f"`{name}`" for name in shown) + " | flag or reject reason |",
            "|---|" + "---|" * (len(shown) + 1)]
    for i, value in enumerate(values):
        row = scored.get(str(i))
        note = cell(((row["value_flags"] or "") if row else reasons.get(str(i), "")).removeprefix(f"{column}: "))
        cells = [fmt(row[name]) for name, fmt in shown.items()] if row else ["rejected"] + [""] * (len(shown) - 1)
        rows.append(f"| `{value}` | " + " | ".join(cells) + f" | {note} |")
    return rows


def amount_table(result, values) -> list[str]:
    return sample_table(result, values, "deal_size", {"deal_size": number, "currency": lambda v: v or "",
                                                       "deal_size_base": number})


def date_table(result, values) -> list[str]:
    return sample_table(result, values, "purchase_date", {"purchase_date": str, "purchase_date_precision": str})


def render() -> str:
    from kamcore import schema
    from kamcore.normalise import _UNITS, CURRENCY_WORDS

    cfg, amounts, dates, unit = samples()
    cur = cfg.section("currency")
    out = [
        "# The canonical schema",
        "",
        "<!-- generated by docs/gen_schema.py from src/kamcore/schema.py and src/kamcore/normalise.py; "
        "do not edit by hand -->",
        "",
        "Importers hand kamcore raw text columns; kamcore maps the headers onto these canonical columns "
        "and normalises the values into the codes below, so every plugin sees the same names and values "
        "whatever the export looked like. The names are stable once released. Each code keeps its Chinese "
        "label from the source documents (销售机会评估表, 信息初始表, 关键人物信息表).",
        "",
        "## How headers are matched",
        "",
        "- A header is compared after NFKC folding (full-width to half-width), removing zero-width "
        "characters, white space, underscores and hyphens, and lower-casing: `Opportunity ID`, "
        "`opportunity_id` and `Ｏｐｐｏｒｔｕｎｉｔｙ　ＩＤ` are the same header.",
        "- It matches a column's name, its 中文 and English labels and the headers listed below.",
        "- `[columns]` in kam.toml wins over the built-in headers: `\"Kundenname\" = \"account\"`.",
        "- Two headers that land on the same column are an error naming both.",
        "- A header kamcore does not know is kept (cleaned of invisible characters) and passed through "
        "to the output untouched; scorecard rules in kam.toml can read it by that name.",
        "- A unit in an amount header applies to its plain numbers: under `标的(单位: 亿)` (the seed's "
        "信息初始表) the value `1.5` means 1.5亿 = 150,000,000. Any amount header may end in a note of its "
        "unit and currency, in brackets or after a slash: `标的(万元)`, `合同金额（元）`, `预计金额/百万元`, "
        "`金额【单位：万美元】`, `Deal size (USD)`, `Amount (USD k)`, `Amount [$m]` (units 亿, 千万, 百万, "
        "十万, 万, 千, k/thousand, m/mn/million, bn/billion; the currency words of the amounts below). The "
        "unit applies to plain numbers, the currency to amounts that name none and have no `currency` "
        "column value; a unit or currency written in the cell wins. `我们的未来销售收入(万元)` (a level or an "
        "amount) takes the unit for its amounts. A percentage header may end in `(%)`: "
        "`我们的利润(%)`. Another note (`采购时间(预计)`) leaves the header unknown. `kam inspect` shows the "
        "unit and currency read. A header the user maps in `[columns]` that contains 亿 or 万 (`合同额万元`) "
        "means 亿 or 万.",
        "",
        "## Opportunity columns",
        "",
        "One row per opportunity. Items 1–10 of 销售机会评估表 read the columns marked in "
        "docs/scorecard.md.",
        "",
        *column_table(schema.OPPORTUNITY_COLUMNS, personal=False),
        "",
        "What each kind means:",
        "",
        "| kind | values |",
        "|---|---|",
        *[f"| {kind} | {text} |" for kind, text in KINDS.items()],
        "",
        "Codes are matched after trimming, in lower, upper or title case (`Clear`, `CLEAR`, `clear`). "
        "Add your own spellings per column in kam.toml; `\"\"` means \"treat as missing\":",
        "",
        "```toml",
        "[values.stage]",
        "\"跟进中\" = \"intent\"",
        "[values.budget_status]",
        "\"TBD\" = \"\"",
        "```",
        "",
        "## Derived columns",
        "",
        "The normaliser adds these beside their source column:",
        "",
        "| column | meaning |",
        "|---|---|",
        *[f"| `{name}` | {text} |" for name, text in schema.DERIVED_COLUMNS.items()],
        "",
        "`currency` is added too when the export has amounts but no currency column: the currency named "
        "in the amount (`12万美元` → USD), else `[currency] default`.",
        "",
        "## Missing values",
        "",
        "These cells are missing (after trimming; any letter case): "
        + ", ".join(f"`{t}`" if t else "the empty cell" for t in schema.MISSING_TOKENS) + ". "
        "A missing value is never a reject: the criterion it feeds is *unknown*, earns no points, and the "
        "reasons say `未知 / unknown`. Only the id is required.",
        "",
        "A missing column is treated the same way: every criterion reading it is *unknown* on every row. "
        "`kam score` then prints one warning naming the columns as an export names them, with the seed's "
        "header (`kam: WARNING: 9 column(s) the scorecard reads are not in the input: approval_status "
        "(客户的项目立项业务状况), …`; a derived column such as `deal_size_base` by the one it comes from, "
        "`deal_size (标的)`), and warns louder when the export has none of them (most likely not an "
        "opportunities export, or headers kam does not know: `kam inspect FILE` shows the mapping, "
        "`[columns]` in `kam.toml` or a profile fixes it). The run still succeeds (exit 0); the summary's "
        "`notes` name each missing column.",
        "",
        "## Amounts",
        "",
        f"A number with optional thousands commas and decimals, an optional unit "
        f"({', '.join(f'`{u}`' for u in _UNITS)}: 亿 = 10⁸, 万 = 10⁴, 千/k = 10³, m/mn = 10⁶, bn = 10⁹) and "
        "an optional currency before or after it. Currency words:",
        "",
        "| code | written as |",
        "|---|---|",
        *[f"| {code} | {cell(', '.join(f'`{w}`' for w in words))} |" for code, words in CURRENCY_WORDS.items()],
        "",
        f"An amount that names no currency is in `[currency] default` (`{cur.get('default')}`); "
        f"`deal_size_base` converts it to `[currency] base` (`{cur.get('base')}`) with `[currency.rates]` "
        f"(defaults: {', '.join(f'{k} {v}' for k, v in cur.get('rates', {}).items())}; update them to your "
        "rates). For `deal_size_base`, a currency named in the amount wins over the row's `currency` column "
        "(which is output as given). Examples, as "
        "kamcore reads them with the defaults:",
        "",
        *amount_table(amounts, AMOUNTS),
        "",
        "面议 (to be negotiated; also 价格面议, 待议, 待定, TBD, negotiable …) is a missing amount with a flag: "
        "the criterion reading it scores *unknown*. A range (`100-200万`, `100万~200万`, `$1m–$2m`) gives "
        "its midpoint, flagged; a range whose ends disagree on currency or unit is rejected. Full-width "
        "digits and signs (`１２０万`, `￥１，２００`) are read as their plain forms. Amounts in different "
        "currencies are never added up: each row keeps its `currency`, and `deal_size_base` is the only "
        "converted value. Amounts are kept to the cent, rounded from the number as read (`2.675` is "
        "the double just below 2.675, so 2.67), the same whichever way the amount is written; a sign or an "
        "exponent (`-5000`, `1.2E+06`) is not an amount.",
        "",
        f"With the seed's header `标的(单位: 亿)`, the plain value `1.5` becomes "
        f"{number(unit.scored['deal_size'][0])}.",
        "",
        "## Dates",
        "",
        "Year first: `-`, `/`, `.` or 年/月/日 between the parts, or `20090501`; a quarter as `Q2` or "
        "第2季度; a time of day is ignored, with its AM/PM and its zone (`10:30 PM`, `10:30:00Z`, "
        "`10:30:00.000+0800`: the date is the one written); full-width digits are read. A month, quarter or year becomes its "
        "first day, and `purchase_date_precision` says which it was. Note that `2010.1` is January, as in "
        "the seed's 信息初始表; write October as `2010.10`.",
        "",
        "Day/month/year dates (`05/06/2024`) are read only when one order makes sense (`25/12/2024`, "
        "flagged with the order used) or when kam.toml says which order the export uses "
        "(`[dates] order = \"dmy\"` or `\"mdy\"`; `--profile salesforce` sets `mdy`). Otherwise the row is "
        "rejected as ambiguous: kamcore does not guess. A 5-digit number (20000–80000) is an Excel serial "
        "date: it is read and flagged, because it usually means the column lost its date format.",
        "",
        *date_table(dates, DATES),
        "",
        "## Stakeholder columns",
        "",
        "One row per person on a deal (关键人物信息表 / 角色表), linked by `opportunity_id`; read by "
        "`kamcore.classify_stakeholders()` and the `classify_stakeholders` hook (docs/plugins.md). "
        "Columns marked *personal* (birthday, hometown, family, hobbies …) are tagged as personal data "
        "(`kamcore.schema.PERSONAL_FIELDS`): kamcore never logs them and shows them as `***` in any "
        "rejects preview, and plugins should treat them the same way.",
        "",
        *column_table(schema.STAKEHOLDER_COLUMNS, personal=True),
        "",
    ]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    from generated import write_or_check  # docs/generated.py, beside this script

    return write_or_check(OUT, render(), "gen_schema.py", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
