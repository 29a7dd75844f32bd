"""Turn raw export text into canonical values, as vectorised polars expressions.

Every typed column gets a *normalised* value and a *problem* (``null`` when fine, else the reason a
row cannot be accepted). Nothing here guesses: a value that matches no rule is a problem, reported
with the row, never a silent ``null``. Missing values (empty, ``-``, ``N/A``, ``#N/A``, ``未知`` …) are
``null`` and the scorecard says "unknown" for them.
"""

from __future__ import annotations

import polars as pl

from .schema import (AMOUNT, CODE, COUNT_OR_NAMES, CURRENCY, DATE, ID, LEVEL_OR_AMOUNT, MISSING_TOKENS, PERCENT,
                     Column)

c = pl.col
NORM = "__n__"  # prefix of normalised columns while both raw and normalised values are needed
PROBLEM = "__p__"  # prefix of per-column problem columns

CURRENCY_WORDS = {
    "CNY": ("cny", "rmb", "人民币", "元", "¥", "￥", "人民币元"),
    "USD": ("usd", "us$", "$", "美元", "美金"),
    "EUR": ("eur", "€", "欧元"),
    "HKD": ("hkd", "hk$", "港币", "港元"),
    "JPY": ("jpy", "日元", "円"),
    "GBP": ("gbp", "£", "英镑"),
}
_UNITS = {"亿": 1e8, "万": 1e4, "千": 1e3, "k": 1e3, "m": 1e6, "mn": 1e6, "bn": 1e9}
_CUR_PREFIX = r"(us\$|hk\$|\$|¥|￥|€|£|rmb|cny|usd|eur|hkd|gbp|jpy)"
_CUR_SUFFIX = r"(元|人民币|美元|美金|欧元|港币|港元|日元|英镑|rmb|cny|usd|eur|hkd|gbp|jpy)"
AMOUNT_PATTERN = (rf"^{_CUR_PREFIX}?\s*([0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)\s*(亿|万|千|k|mn|m|bn)?\s*{_CUR_SUFFIX}?$")


def key(expr: pl.Expr) -> pl.Expr:
    """Trimmed, lower-cased text with missing tokens as null: what vocabularies are matched on."""
    text = expr.str.strip_chars().str.to_lowercase()
    return pl.when(text.is_in(MISSING_TOKENS)).then(None).otherwise(text)


def vocabulary(column: Column, extra: dict[str, str]) -> dict[str, str]:
    """synonym -> code for one column: the schema's synonyms plus the user's ``[values.<column>]``.

    A user value mapped to ``""`` means "treat as missing".
    """
    table = {}
    for code, synonyms in (column.vocab or {}).items():
        table[code] = code
        for synonym in synonyms:
            table.setdefault(synonym.lower(), code)
    for value, code in extra.items():
        table[str(value).strip().lower()] = code
    return table


def lookup(text: pl.Expr, table: dict[str, str]) -> pl.Expr:
    """Map keys to codes; unmatched keys become null (the caller reports them)."""
    mapped = text.replace_strict(list(table), list(table.values()), default=None, return_dtype=pl.String)
    return pl.when(mapped == "").then(None).otherwise(mapped)


def parse_amount(raw: pl.Expr, default_unit: float = 1.0) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(amount, currency found in the text or null, is_valid) for texts like 1.2亿, ¥1,200,000, US$120,000."""
    text = key(raw).str.replace_all(r"[\s　]", "")
    parts = text.str.extract_groups(AMOUNT_PATTERN)
    number = parts.struct[1].str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False)
    unit = parts.struct[2]
    scale = pl.when(unit.is_null()).then(pl.lit(default_unit))
    for word, factor in _UNITS.items():
        scale = scale.when(unit == word).then(pl.lit(factor))
    amount = number * scale.otherwise(pl.lit(1.0))
    currency = currency_of(pl.coalesce(parts.struct[0], parts.struct[3]))
    return amount, currency, text.is_null() | number.is_not_null()


def currency_of(text: pl.Expr) -> pl.Expr:
    """ISO code for a currency word or symbol (already lower-cased), else null."""
    table = {word: code for code, words in CURRENCY_WORDS.items() for word in words}
    return text.replace_strict(list(table), list(table.values()), default=None, return_dtype=pl.String)


def parse_currency(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(ISO code, is_valid): 人民币, RMB, ¥, usd … or any three-letter code."""
    text = key(raw)
    word = currency_of(text)
    iso = pl.when(text.str.contains(r"^[a-z]{3}$")).then(text.str.to_uppercase())
    code = pl.coalesce(word, iso)
    return code, text.is_null() | code.is_not_null()


_DATE_TIME_SUFFIX = r"[ t]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$"
_DAY = r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$"
_MONTH = r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?$"
_QUARTER = r"^(\d{4})\s*(?:年)?\s*[-/]?\s*(?:q|第)\s*([1-4])\s*(?:季度|季)?$"
_YEAR = r"^(\d{4})\s*年?$"


def parse_date(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(date, precision, is_valid). Year first only: 2009-05-01, 2009/5/1, 2009.05, 2010.1 (= January),
    2009-Q2, 2009年第2季度, 2009年. A period becomes its first day; ``precision`` says which it was."""
    text = key(raw).str.replace(_DATE_TIME_SUFFIX, "")
    day = text.str.extract_groups(_DAY)
    month = text.str.extract_groups(_MONTH)
    quarter = text.str.extract_groups(_QUARTER)
    year = text.str.extract(_YEAR, 1)

    def make(y, m, d):
        return pl.format("{}-{}-{}", y, m, d).str.to_date("%Y-%m-%d", strict=False)

    q_month = (quarter.struct[1].cast(pl.Int32, strict=False) * 3 - 2).cast(pl.String)
    date = pl.coalesce(make(day.struct[0], day.struct[1], day.struct[2]),
                       make(month.struct[0], month.struct[1], pl.lit("1")),
                       make(quarter.struct[0], q_month, pl.lit("1")),
                       make(year, pl.lit("1"), pl.lit("1")))
    precision = (pl.when(date.is_null()).then(None)
                 .when(day.struct[0].is_not_null()).then(pl.lit("day"))
                 .when(month.struct[0].is_not_null()).then(pl.lit("month"))
                 .when(quarter.struct[0].is_not_null()).then(pl.lit("quarter"))
                 .otherwise(pl.lit("year")))
    return date, precision, text.is_null() | date.is_not_null()


def parse_percent(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(percent points, is_valid): 35%, 35.5, 35 % … (0.35 stays 0.35: no guessing)."""
    text = key(raw).str.replace_all(r"[\s%％]", "")
    number = text.cast(pl.Float64, strict=False)
    return number, text.is_null() | number.is_not_null()


class Plan:
    """The expressions that normalise one export, built from its mapped columns and the config.

    ``columns`` holds the output order: each input column under its canonical name, with derived
    columns (``deal_size_base``, ``purchase_date_precision`` …) right after their source.
    """

    def __init__(self, columns: list[str], schema: dict[str, Column], config, header_units: dict[str, float]):
        self.exprs: list[pl.Expr] = []
        self.problems: dict[str, pl.Expr] = {}
        self.columns: list[tuple[str, str]] = []  # (output name, working column)
        values = config.get("values", {})
        cur = config.get("currency", {})
        default_currency = cur.get("default", "CNY")
        rates = {str(k): float(v) for k, v in cur.get("rates", {}).items()}
        rates[cur.get("base", "CNY")] = 1.0
        present = set(columns)
        for name in columns:
            spec = schema.get(name)
            kind = spec.kind if spec else None
            n = NORM + name
            if kind == ID:
                self.columns.append((name, name))
                self.problems[name] = pl.when(c(name).is_null() | (c(name).str.strip_chars() == "")).then(
                    pl.lit("missing value: an opportunity needs an id"))
            elif kind == CODE or kind == LEVEL_OR_AMOUNT:
                table = vocabulary(spec, values.get(name, {}))
                text = key(c(name))
                mapped = lookup(text, table)
                self.exprs.append(mapped.alias(n))
                self.columns.append((name, n))
                known = ", ".join(sorted(spec.vocab))
                if kind == LEVEL_OR_AMOUNT:
                    amount, _, ok = parse_amount(c(name))
                    self.exprs.append(pl.when(mapped.is_null()).then(amount).alias(NORM + name + "_amount"))
                    self.columns.append((name + "_amount", NORM + name + "_amount"))
                    bad = text.is_not_null() & ~(text.is_in(list(table)) | (amount.is_not_null() & ok))
                    why = f"unknown value: expected one of {known}, or an amount"
                else:
                    bad = text.is_not_null() & ~text.is_in(list(table))
                    why = f"unknown value: expected one of {known} (or map it under [values.{name}] in kam.toml)"
                self.problems[name] = pl.when(bad).then(pl.lit(why))
            elif kind == AMOUNT:
                amount, found, ok = parse_amount(c(name), header_units.get(name, 1.0))
                self.exprs.append(amount.alias(n))
                self.columns.append((name, n))
                if "currency" in present:
                    given, _ = parse_currency(c("currency"))
                    currency = pl.coalesce(found, given, pl.lit(default_currency))
                else:
                    currency = pl.coalesce(found, pl.lit(default_currency))
                    self.exprs.append(pl.when(amount.is_not_null()).then(currency).alias(NORM + "currency"))
                    self.columns.append(("currency", NORM + "currency"))
                rate = currency.replace_strict(list(rates), list(rates.values()), default=None,
                                               return_dtype=pl.Float64)
                self.exprs.append((amount * rate).alias(NORM + name + "_base"))
                self.columns.append((name + "_base", NORM + name + "_base"))
                self.problems[name] = pl.when(~ok).then(pl.lit(
                    "not an amount: expected e.g. 1200000, 1,200,000, ¥1,200,000, 120万, 1.2亿, US$120,000"))
            elif kind == CURRENCY:
                code, ok = parse_currency(c(name))
                self.exprs.append(code.alias(n))
                self.columns.append((name, n))
                self.problems[name] = pl.when(~ok).then(pl.lit("not a currency: expected CNY, USD, 人民币, 美元 …"))
            elif kind == DATE:
                date, precision, ok = parse_date(c(name))
                self.exprs += [date.alias(n), precision.alias(n + "_precision")]
                self.columns += [(name, n), (name + "_precision", n + "_precision")]
                self.problems[name] = pl.when(~ok).then(pl.lit(
                    "not a date: expected year first, e.g. 2009-05-01, 2009/5/1, 2009.05, 2009-Q2, 2009年第2季度"))
            elif kind == PERCENT:
                number, ok = parse_percent(c(name))
                self.exprs.append(number.alias(n))
                self.columns.append((name, n))
                self.problems[name] = pl.when(~ok).then(pl.lit("not a percentage: expected e.g. 35%, 35.5"))
            elif kind == COUNT_OR_NAMES:
                text = key(c(name))
                count = (pl.when(text.str.contains(r"^\d+$")).then(text.cast(pl.Int32, strict=False))
                         .when(text.is_not_null())
                         .then(text.str.count_matches(r"[,;、，；/|]").cast(pl.Int32) + 1))
                self.exprs.append(count.alias("__n__competitor_count"))
                self.columns += [(name, name), ("competitor_count", "__n__competitor_count")]
            else:  # text, and columns kam does not know: passed through untouched
                self.columns.append((name, name))
        self.problem_columns = [PROBLEM + name for name in self.problems]
        self.exprs += [expr.alias(PROBLEM + name) for name, expr in self.problems.items()]
        self.ok = pl.all_horizontal([c(p).is_null() for p in self.problem_columns]) if self.problems else pl.lit(True)

    def output(self) -> list[pl.Expr]:
        """Select expressions giving the normalised columns under their output names, in order."""
        return [c(work).alias(out) for out, work in self.columns]
