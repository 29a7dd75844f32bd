"""Turn raw export text into canonical values, as vectorised polars expressions.

Every typed column gets a *normalised* value and a *problem* (``null`` when fine, else the reason a
row cannot be accepted). Nothing here guesses: a value that matches no rule is a problem, reported
with the row, never a silent ``null``. Missing values (empty, ``-``, ``N/A``, ``#N/A``, ``未知`` …) are
``null`` and the scorecard says "unknown" for them.
"""

from __future__ import annotations

import polars as pl

from .schema import (AMOUNT, CODE, COUNT_OR_NAMES, CURRENCY, DATE, ID, LEVEL_OR_AMOUNT, MISSING_TOKENS, NONE_TOKENS,
                     PERCENT, Column)

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
AMOUNT_PATTERN = (rf"(?i)^{_CUR_PREFIX}?\s*([0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)\s*(亿|万|千|k|mn|m|bn)?\s*{_CUR_SUFFIX}?$")


def variants(word: str) -> set[str]:
    """The spellings of a vocabulary word matched without lower-casing every cell (which is slow)."""
    return {word, word.lower(), word.upper(), word.title(), word.capitalize()}


MISSING = sorted({v for token in MISSING_TOKENS for v in variants(token)})


def key(expr: pl.Expr) -> pl.Expr:
    """Trimmed text, missing tokens as null: what vocabularies are matched on."""
    text = expr.str.strip_chars()
    return pl.when(text.is_in(MISSING)).then(None).otherwise(text)


def vocabulary(column: Column, extra: dict[str, str]) -> dict[str, str | None]:
    """spelling -> code for one column: the schema's synonyms plus the user's ``[values.<column>]``,
    in upper, lower and title case. A user value mapped to ``""`` means "treat as missing"."""
    table: dict[str, str | None] = {}
    for code, synonyms in (column.vocab or {}).items():
        for synonym in (code, *synonyms):
            for spelling in variants(synonym):
                table.setdefault(spelling, code)
    for value, code in extra.items():
        for spelling in variants(str(value).strip()):
            table[spelling] = code or None
    return table


def lookup(text: pl.Expr, table: dict, dtype=pl.String) -> pl.Expr:
    """Map spellings to codes; unmatched text becomes null (the caller reports it).

    A when/is_in chain, one branch per code: ``replace_strict`` would make the streaming engine hold
    the whole column in memory.
    """
    by_code: dict = {}
    for spelling, code in table.items():
        if code is not None:
            by_code.setdefault(code, []).append(spelling)
    if not by_code:
        return pl.lit(None, dtype)
    expr = None
    for code, spellings in by_code.items():
        cond = text.is_in(spellings)
        expr = pl.when(cond).then(pl.lit(code, dtype)) if expr is None else expr.when(cond).then(pl.lit(code, dtype))
    return expr.otherwise(pl.lit(None, dtype))


CURRENCY_TABLE = {spelling: code for code, words in CURRENCY_WORDS.items()
                  for word in (code, *words) for spelling in variants(word)}


def currency_of(text: pl.Expr) -> pl.Expr:
    """ISO code for a currency word or symbol, else null."""
    return lookup(text, CURRENCY_TABLE)


_DATE_TIME_SUFFIX = r"[ Tt]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$"
DATE_PATTERN = (r"(?i)^(\d{4})\s*(?:[-/.年]\s*(\d{1,2})\s*(?:[-/.月]\s*(\d{1,2})\s*日?|月)?"
                r"|(?:年)?\s*[-/]?\s*(?:q|第)\s*([1-4])\s*(?:季度|季)?|年)?$")


class Stages:
    """Expressions in dependency order; a later stage may read the columns an earlier one made.

    Naming an intermediate result as a column lets polars compute it once per batch instead of once
    per use (the streaming engine does not share common subexpressions).
    """

    def __init__(self, depth: int = 6):
        self.stages: list[list[pl.Expr]] = [[] for _ in range(depth)]
        self.temporary: list[str] = []

    def add(self, stage: int, expr: pl.Expr, name: str, temporary: bool = True) -> pl.Expr:
        self.stages[stage].append(expr.alias(name))
        if temporary:
            self.temporary.append(name)
        return c(name)

    def apply(self, frame):
        for exprs in self.stages:
            if exprs:
                frame = frame.with_columns(exprs)
        return frame


def parse_amount(st: Stages, raw: pl.Expr, tag: str, default_unit: float = 1.0):
    """(amount, currency found in the text, is_valid) for 1.2亿, ¥1,200,000, US$120,000, 12万美元 …

    Plain numbers take a fast cast; only the rest go through the regular expression.
    """
    text = st.add(0, key(raw), f"__t__{tag}")
    number = text.cast(pl.Float64, strict=False)
    plain = st.add(1, pl.when(number.is_finite()).then(number), f"__f__{tag}")  # nan, inf: not amounts
    rest = pl.when(plain.is_null()).then(text.str.replace_all(r"[\s　]", ""))
    parts = st.add(2, rest.str.extract_groups(AMOUNT_PATTERN), f"__g__{tag}")
    number = parts.struct[1].str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False)
    unit = parts.struct[2].str.to_lowercase()
    scale = pl.when(unit.is_null()).then(pl.lit(default_unit))
    for word, factor in _UNITS.items():
        scale = scale.when(unit == word).then(pl.lit(factor))
    amount = st.add(3, pl.coalesce(plain * default_unit, number * scale.otherwise(pl.lit(1.0))).round(2),
                    f"__a__{tag}")  # 2.3亿 is 230000000, not 229999999.99999997
    found = st.add(3, currency_of(pl.coalesce(parts.struct[0], parts.struct[3])), f"__cur__{tag}")
    return amount, found, text.is_null() | amount.is_not_null()


def parse_currency(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(ISO code, is_valid): 人民币, RMB, ¥, usd … or any three-letter code."""
    text = key(raw)
    iso = pl.when(text.str.contains(r"^[A-Za-z]{3}$")).then(text.str.to_uppercase())
    code = pl.coalesce(currency_of(text), iso)
    return code, text.is_null() | code.is_not_null()


def parse_date(st: Stages, raw: pl.Expr, tag: str):
    """(date, precision, is_valid). Year first only: 2009-05-01, 2009/5/1, 2009.05, 2010.1 (= January),
    2009-Q2, 2009年第2季度, 2009年. A period becomes its first day; ``precision`` says which it was.

    ISO days and months take a fast path; only the rest go through the regular expression.
    """
    text = st.add(0, key(raw).str.replace(_DATE_TIME_SUFFIX, ""), f"__t__{tag}")
    iso_day = st.add(1, text.str.to_date("%Y-%m-%d", strict=False), f"__dd__{tag}")
    iso_month = st.add(1, (text + "-1").str.to_date("%Y-%m-%d", strict=False), f"__dm__{tag}")
    rest = pl.when(iso_day.is_null() & iso_month.is_null()).then(text)
    parts = st.add(2, rest.str.extract_groups(DATE_PATTERN), f"__g__{tag}")
    year, month, day, quarter = (parts.struct[i] for i in range(4))
    q_month = (quarter.cast(pl.Int32, strict=False) * 3 - 2).cast(pl.String)
    parsed = (pl.format("{}-{}-{}", year, pl.coalesce(month, q_month, pl.lit("1")), pl.coalesce(day, pl.lit("1")))
              .str.to_date("%Y-%m-%d", strict=False))
    date = st.add(3, pl.coalesce(iso_day, iso_month, parsed), f"__d__{tag}")
    precision = (pl.when(date.is_null()).then(None)
                 .when(iso_day.is_not_null() | day.is_not_null()).then(pl.lit("day"))
                 .when(iso_month.is_not_null() | month.is_not_null()).then(pl.lit("month"))
                 .when(quarter.is_not_null()).then(pl.lit("quarter"))
                 .otherwise(pl.lit("year")))
    return date, precision, text.is_null() | date.is_not_null()


def parse_percent(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(percent points, is_valid): 35%, 35.5, 35 % … (0.35 stays 0.35: no guessing)."""
    text = key(raw)
    number = text.str.strip_chars_end("%％ ").cast(pl.Float64, strict=False)
    number = pl.when(number.is_finite()).then(number)  # nan, inf: not percentages
    return number, text.is_null() | number.is_not_null()


class Plan:
    """The expressions that normalise one export, built from its mapped columns and the config.

    ``columns`` holds the output order: each input column under its canonical name, with derived
    columns (``deal_size_base``, ``purchase_date_precision`` …) right after their source.
    ``problems`` maps a column to the name of its problem column (null when the value is fine).
    """

    def __init__(self, columns: list[str], schema: dict[str, Column], config, header_units: dict[str, float]):
        st = self.stages = Stages()
        self.problems: dict[str, str] = {}
        self.columns: list[tuple[str, str]] = []  # (output name, working column)
        values = config.get("values", {})
        cur = config.get("currency", {})
        default_currency = cur.get("default", "CNY")
        rates = {str(k): float(v) for k, v in cur.get("rates", {}).items()}
        rates[cur.get("base", "CNY")] = 1.0
        present = set(columns)

        def output(name: str, stage: int, expr: pl.Expr) -> pl.Expr:
            self.columns.append((name, NORM + name))
            return st.add(stage, expr, NORM + name, temporary=False)

        def problem(name: str, bad: pl.Expr, why: str, also: tuple[pl.Expr, str] | None = None) -> None:
            self.problems[name] = PROBLEM + name
            expr = pl.when(bad).then(pl.lit(why))
            if also is not None:
                expr = expr.when(also[0]).then(pl.lit(also[1]))
            st.add(5, expr, PROBLEM + name, temporary=False)

        for name in columns:
            spec = schema.get(name)
            kind = spec.kind if spec else None
            if kind == ID:
                self.columns.append((name, name))
                problem(name, c(name).is_null() | (c(name).str.strip_chars() == ""),
                        "missing value: an opportunity needs an id")
            elif kind in (CODE, LEVEL_OR_AMOUNT):
                table = vocabulary(spec, values.get(name, {}))
                text = st.add(0, key(c(name)), f"__k__{name}")
                first = st.add(1, lookup(text, table), f"__l__{name}")
                # other spellings (eMail, CLOSED won): lower-case only the few cells the table missed
                rest = st.add(2, pl.when(first.is_null()).then(text).str.to_lowercase(), f"__r__{name}")
                lower = {k.lower(): v for k, v in table.items()}
                mapped = output(name, 3, pl.coalesce(first, lookup(rest, lower)))
                known = ", ".join(sorted(spec.vocab))
                if kind == LEVEL_OR_AMOUNT:
                    amount, _, ok = parse_amount(st, c(name), name)
                    output(name + "_amount", 4, pl.when(mapped.is_null()).then(amount))
                    bad = text.is_not_null() & mapped.is_null() & ~rest.is_in(list(lower)) & ~(amount.is_not_null() & ok)
                    why = f"unknown value: expected one of {known}, or an amount"
                else:
                    bad = text.is_not_null() & mapped.is_null() & ~rest.is_in(list(lower))
                    why = f"unknown value: expected one of {known} (or map it under [values.{name}] in kam.toml)"
                problem(name, bad, why)
            elif kind == AMOUNT:
                amount, found, ok = parse_amount(st, c(name), name, header_units.get(name, 1.0))
                output(name, 4, amount)
                if "currency" in present:
                    given = c(NORM + "currency")
                    conflict = st.add(4, found.is_not_null() & given.is_not_null() & (found != given),
                                      f"__conflict__{name}")  # read before the next line replaces `given`
                    written = key(c("currency")).is_not_null()  # an unreadable currency stays null (and rejected)
                    currency = st.add(4, pl.when(written & given.is_null()).then(None)
                                      .when(amount.is_not_null())
                                      .then(pl.coalesce(found, given, pl.lit(default_currency)))
                                      .otherwise(given), NORM + "currency", temporary=False)
                else:
                    conflict = pl.lit(False)
                    currency = output("currency", 4, pl.when(amount.is_not_null())
                                      .then(pl.coalesce(found, pl.lit(default_currency))))
                rate = lookup(currency, rates, pl.Float64)
                output(name + "_base", 5, amount * rate)
                problem(name, ~ok, "not an amount: expected e.g. 1200000, 1,200,000, ¥1,200,000, 120万, 1.2亿, "
                                   "US$120,000",
                        also=(conflict, "the amount names a currency that contradicts the currency column"))
            elif kind == CURRENCY:
                code, ok = parse_currency(c(name))
                output(name, 1, code)
                problem(name, ~ok, "not a currency: expected CNY, USD, 人民币, 美元 …")
            elif kind == DATE:
                date, precision, ok = parse_date(st, c(name), name)
                output(name, 4, date)
                output(name + "_precision", 4, precision)
                problem(name, ~ok, "not a date: expected year first, e.g. 2009-05-01, 2009/5/1, 2009.05, 2009-Q2, "
                                   "2009年第2季度")
            elif kind == PERCENT:
                number, ok = parse_percent(c(name))
                output(name, 1, number)
                problem(name, ~ok, "not a percentage: expected e.g. 35%, 35.5")
            elif kind == COUNT_OR_NAMES:
                text = key(c(name))
                none = sorted({v for token in NONE_TOKENS for v in variants(token)})
                count = (pl.when(text.str.contains(r"^\d+$")).then(text.cast(pl.Int32, strict=False))
                         .when(text.is_in(none)).then(pl.lit(0, pl.Int32))
                         .when(text.is_not_null())
                         .then(text.str.count_matches(r"[,;、，；/|]").cast(pl.Int32) + 1))
                self.columns.append((name, name))
                self.columns.append(("competitor_count", NORM + "competitor_count"))
                st.add(0, count, NORM + "competitor_count", temporary=False)
            else:  # text, and columns kam does not know: passed through untouched
                self.columns.append((name, name))
        self.ok = (pl.all_horizontal([c(p).is_null() for p in self.problems.values()]) if self.problems
                   else pl.lit(True))

    def apply(self, frame):
        """Add the normalised, temporary and problem columns to a frame of raw text."""
        return self.stages.apply(frame)

    def output(self) -> list[pl.Expr]:
        """Select expressions giving the normalised columns under their output names, in order."""
        return [c(work).alias(out) for out, work in self.columns]
