"""Turn raw export text into canonical values, one batch at a time.

Every typed column gets a *normalised* value and a *problem* (``null`` when fine, else the reason a
row cannot be accepted). Nothing here guesses: a value that matches no rule is a problem, reported
with the row, never a silent ``null``. Missing values (empty, ``-``, ``N/A``, ``#N/A``, ``未知`` …) are
``null`` and the scorecard says "unknown" for them.

Why one function per batch rather than expressions: coded columns hold a few dozen distinct values
in ten thousand rows, so each batch maps its *distinct* values in Python (cached across batches) and
applies the result with one vectorised ``replace_strict``; amounts and dates take vectorised fast
paths and only the leftovers are parsed. That is an order of magnitude less work than evaluating a
chain of expressions over every cell, and the streaming engine still runs it batch by batch.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import unicodedata

import polars as pl

from .errors import ConfigError, InputError
from .schema import (AMOUNT, CODE, COUNT_OR_NAMES, CURRENCY, DATE, ID, LEVEL_OR_AMOUNT, MISSING_TOKENS, NONE_TOKENS,
                     PERCENT, Column)

c = pl.col
NORM = "__n__"  # prefix of normalised columns while both raw and normalised values are needed
PROBLEM = "__p__"  # prefix of per-column problem columns
OK, BLANK = "__ok", "__blank"
FLAG, FLAGS = "__f__", "__flags"  # per-column flags, and all of a row's flags as one text
RECORD = "(record)"  # the problem of a record an importer could only half read (kamcore.pipeline)
SRC, ROW = "__src", "__row"  # the input's number and the record's index (kamcore.pipeline.number_records)
VALUE_FLAGS = "value_flags"  # the output column: values accepted with a note (面议, a range, a serial date)

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
# a time of day after a date, as CRMs and APIs export timestamps (10:30, 10:30:00.000, 10:30 AM, 10:30:00Z,
# 10:30:00+08:00): the date is the one written, the time and zone are dropped
_TIME_OF_DAY = (r"[ Tt][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?: ?[AaPp][Mm])?"
                r"(?: ?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?|UTC|GMT))?")
_DATE_TIME_SUFFIX = _TIME_OF_DAY + "$"
DATE_PATTERN = (r"(?i)^(\d{4})\s*(?:[-/.年]\s*(\d{1,2})\s*(?:[-/.月]\s*(\d{1,2})\s*日?|月)?"
                r"|(?:年)?\s*[-/]?\s*(?:q|第)\s*([1-4])\s*(?:季度|季)?|年)?$")
_DATE_RE, _TIME_RE = re.compile(DATE_PATTERN), re.compile(_DATE_TIME_SUFFIX)
# a year-first date with a time of day, as CRMs export timestamps: read_date gives it the same result as its
# date part (tests/test_normalise.py), so a column of timestamps is parsed once per day, not once per row
DATETIME_DAY = r"^([0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2})" + _DATE_TIME_SUFFIX
_SPACES = re.compile(r"[\s　]+")
_COMPETITOR_SEPARATORS = re.compile(r"[,;、，；/|]")
AMOUNT_EXAMPLES = "1200000, 1,200,000, ¥1,200,000, 120万, 1.2亿, US$120,000"
DATE_EXAMPLES = "2009-05-01, 2009/5/1, 2009.05, 2009-Q2, 2009年第2季度"
# "to be negotiated": no amount yet. Missing, with a flag saying why, never a parse error or a 0.
NEGOTIABLE_TOKENS = ("面议", "价格面议", "待议", "议价", "面谈", "待定", "待报价", "tbd", "to be negotiated", "negotiable",
                     "poa", "price on application")
_NEGOTIABLE_LOWER = frozenset(NEGOTIABLE_TOKENS)
_RANGE_RE = re.compile(r"^(.+?)(?:~|～|–|—|至|到|-)(.+)$")
_DAY_MONTH_RE = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4})$")
_SERIAL_RE = re.compile(r"^\d{5}(?:\.\d+)?$")
SERIAL_MIN, SERIAL_MAX = 20_000, 80_000  # Excel serial days for 1954 … 2119: a plausible deal date
_EXCEL_EPOCH = dt.date(1899, 12, 30)
DATE_ORDERS = ("", "ymd", "dmy", "mdy")


# each kind of reason for a reject in Chinese, put before the English one (中文 / English) where a person reads it:
# the rejects file, the summary's counts, kamcore.validate_frame's problems; matched on the reason's start
REASON_ZH = (
    (re.compile(r"^not an amount\b"), "不是金额"),
    (re.compile(r"^not a date\b"), "不是日期"),
    (re.compile(r"^ambiguous date\b"), "日期有歧义"),
    (re.compile(r"^not a percentage\b"), "不是百分比"),
    (re.compile(r"^not a currency\b"), "不是币种"),
    (re.compile(r"^unknown value\b"), "不在词表中"),
    (re.compile(r"^missing value\b"), "缺少取值"),
    (re.compile(r"^the amount names a currency that contradicts"), "金额与币种列矛盾"),
    (re.compile(r"^expected \d+ fields as in the header"), "字段数与表头不符"),
)


def bilingual(reason: str) -> str:
    """``不是金额 / not an amount: …``: a reason with its kind in Chinese first (a reason kam does not know is
    left as it is)."""
    for pattern, zh in REASON_ZH:
        if pattern.match(reason):
            return f"{zh} / {reason}"
    return reason


def variants(word: str) -> set[str]:
    """Common spellings of a vocabulary word (as written, lower, UPPER, Title)."""
    return {word, word.lower(), word.upper(), word.title(), word.capitalize()}


MISSING = sorted({v for token in MISSING_TOKENS for v in variants(token)})
_MISSING_LOWER = frozenset(token.lower() for token in MISSING_TOKENS)
_NONE_LOWER = frozenset(NONE_TOKENS)


def is_missing(text: str) -> bool:
    return text.strip().lower() in _MISSING_LOWER


def fold(text: str) -> str:
    """NFKC (full-width digits, ＄, ￥ and ideographic spaces to their plain forms), trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


def key(expr: pl.Expr) -> pl.Expr:
    """Trimmed text, missing tokens as null (an expression, for small frames such as stakeholders)."""
    text = expr.str.strip_chars()
    return pl.when(text.is_in(MISSING)).then(None).otherwise(text)


def vocabulary(column: Column, extra: dict[str, str]) -> dict[str, str | None]:
    """spelling -> code for one column: the schema's synonyms plus the user's ``[values.<column>]``,
    in common spellings. A user value mapped to ``""`` means "treat as missing"."""
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
    """Map spellings to codes with a when/is_in chain (an expression; unmatched text becomes null)."""
    by_code: dict = {}
    for spelling, code in table.items():
        if code is not None:
            by_code.setdefault(code, []).append(spelling)
    if not by_code:
        return pl.lit(None, dtype)
    expr = None
    for code, spellings in by_code.items():
        # one spelling (a criterion reading normalised codes): == compares in place, three times faster than is_in
        cond = text == spellings[0] if len(spellings) == 1 else text.is_in(spellings)
        expr = pl.when(cond).then(pl.lit(code, dtype)) if expr is None else expr.when(cond).then(pl.lit(code, dtype))
    return expr.otherwise(pl.lit(None, dtype))


CURRENCY_TABLE = {spelling: code for code, words in CURRENCY_WORDS.items()
                  for word in (code, *words) for spelling in variants(word)}
# Amounts as spreadsheets and Chinese exports write them (1,166,911.50, ¥850,000, US$120,000, 16.4万欧元): a strict
# part of AMOUNT_PATTERN, same groups in the same order, no spaces, only characters NFKC leaves alone and letters
# matched in ASCII case only (-u: no ſ for s), so that read_amount reads each such text as formatted_amounts does
# (tests/test_normalise.py)
FORMATTED_AMOUNT = (r"(?i-u)^(us\$|hk\$|\$|¥|€|£|rmb|cny|usd|eur|hkd|gbp|jpy)?([0-9]{1,3}(?:,[0-9]{3}){1,4}|[0-9]{1,13})"
                    r"(?:\.([0-9]{1,2}))?(亿|万|千|k|mn|m|bn)?(元|人民币|美元|美金|欧元|港币|港元|日元|英镑|rmb|cny|usd|eur|hkd|gbp|jpy)?$")
_CURRENCY_LOWER = {spelling.lower(): code for spelling, code in CURRENCY_TABLE.items()}
# the units a header's note may name (标的(百万元), Amount (USD thousands)), with their multipliers
_NOTE_UNITS = {"亿": 1e8, "千万": 1e7, "百万": 1e6, "十万": 1e5, "万": 1e4, "千": 1e3, "k": 1e3, "thousand": 1e3,
               "thousands": 1e3, "'000": 1e3, "000s": 1e3, "m": 1e6, "mn": 1e6, "mm": 1e6, "million": 1e6,
               "millions": 1e6, "bn": 1e9, "billion": 1e9, "billions": 1e9}


def _alternatives(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_NOTE_RE = re.compile(r"^(?:单位|units|unit|in):?(.*)$|^(.*)$")
_UNIT_NOTE = re.compile(rf"^({_alternatives(_CURRENCY_LOWER)})?({_alternatives(_NOTE_UNITS)})?"
                        rf"({_alternatives(_CURRENCY_LOWER)})?$")


def unit_note(note: str) -> tuple[float, str | None] | None:
    """(multiplier, currency) that a header's note names: 万元 -> (1e4, CNY), 单位：亿 -> (1e8, None), USD ->
    (1, USD), $m -> (1e6, USD), 百万美元 -> (1e6, USD); None when the note is not a unit or a currency."""
    text = _SPACES.sub("", fold(note)).lower()
    found = _NOTE_RE.match(text)
    text = found.group(1) if found.group(1) is not None else found.group(2)
    match = _UNIT_NOTE.match(text)
    if not text or not match:
        return None
    before, after = (_CURRENCY_LOWER.get(match.group(i) or "") for i in (1, 3))
    if before and after and before != after:  # 人民币万元 names one currency twice; USD万欧元 two
        return None
    return _NOTE_UNITS.get(match.group(2) or "", 1.0), before or after


GROUPED_NUMBER = r"^[0-9]{1,3}(?:,[0-9]{3}){1,4}(?:\.[0-9]{1,2})?$"  # FORMATTED_AMOUNT without sign, unit or word
PLAIN_AMOUNT = r"^[0-9]{1,13}(?:\.[0-9]{1,2})?$"  # nor grouping: 1166100.00, as most exports write amounts
# either of the two, with the spaces strip_chars trims around it (\s): how exports and spreadsheets write amounts
NUMBER_AMOUNT = r"^\s*(?:" + PLAIN_AMOUNT[1:-1] + "|" + GROUPED_NUMBER[1:-1] + r")\s*$"
_UNIT_WORDS = ("亿", "万", "千", "k", "mn", "m", "bn")  # FORMATTED_AMOUNT's units, then its currency words after them
_SUFFIX_WORDS = ("元", "人民币", "美元", "美金", "欧元", "港币", "港元", "日元", "英镑", "rmb", "cny", "usd", "eur", "hkd", "gbp", "jpy")
# the text after an amount's last digit -> (power of ten of its unit or None, currency its word names or None)
_TAILS = {unit + word: (str(round(math.log10(_UNITS[unit]))) if unit else None, _CURRENCY_LOWER.get(word))
          for unit in ("", *_UNIT_WORDS) for word in ("", *_SUFFIX_WORDS)}
_AMOUNT_RE = re.compile(AMOUNT_PATTERN)
POWERS_OF_TEN = frozenset(10.0 ** k for k in range(10))


# -- parsers of one distinct value (called once per distinct value, never per row) ---------------

def parse_amount_text(text: str, default_unit: float = 1.0) -> tuple[float | None, str | None]:
    """(amount, ISO currency named in the text) for 1.2亿, ¥1,200,000, US$120,000, 12万美元 …; (None, None)
    when it is not an amount."""
    match = _AMOUNT_RE.match(_SPACES.sub("", fold(text)))
    if not match:
        return None, None
    prefix, number, unit, suffix = match.groups()
    value = float(number.replace(",", ""))
    scale = _UNITS[unit.lower()] if unit else default_unit
    word = prefix or suffix
    return round(value * scale, 2), CURRENCY_TABLE.get(word) or CURRENCY_TABLE.get((word or "").lower())


def parse_amount_range(text: str, default_unit: float = 1.0) -> tuple[float, float, str | None] | None:
    """(low, high, currency) for 100-200万, 100万~200万, $1m–$2m, 100至200万; ``None`` when it is not a
    range. A unit written once applies to both ends; two different currencies are not a range."""
    match = _RANGE_RE.match(_SPACES.sub("", fold(text)))
    if not match:
        return None
    left, right = _AMOUNT_RE.match(match.group(1)), _AMOUNT_RE.match(match.group(2))
    if not (left and right):
        return None
    (lp, ln, lu, ls), (rp, rn, ru, rs) = left.groups(), right.groups()
    if lu and not ru:  # 100万-200: which unit is 200 in? not a guess we make
        return None
    scale_right = _UNITS[ru.lower()] if ru else default_unit
    scale_left = _UNITS[lu.lower()] if lu else scale_right
    words = {CURRENCY_TABLE.get(w) or CURRENCY_TABLE.get(w.lower()) for w in (lp, ls, rp, rs) if w}
    if len(words) > 1:
        return None
    low, high = float(ln.replace(",", "")) * scale_left, float(rn.replace(",", "")) * scale_right
    if low > high:
        return None
    return round(low, 2), round(high, 2), words.pop() if words else None


def read_amount(value: str, default_unit: float = 1.0) -> tuple[float | None, str | None, str | None, str | None]:
    """(amount, currency named, problem, flag) for one written amount.

    面议 and its kind are missing with a flag; a range gives its midpoint with a flag; anything else
    that is not an amount is a problem.
    """
    text = fold(value)
    lower = text.lower()
    if lower in _MISSING_LOWER:
        return None, None, None, None
    if lower in _NEGOTIABLE_LOWER:
        return None, None, None, f"{text}: 面议，暂无金额，按未知计 / to be negotiated, no amount yet; scored as unknown"
    amount, currency = parse_amount_text(text, default_unit)
    if amount is not None:
        return amount, currency, None, None
    span = parse_amount_range(text, default_unit)
    if span is not None:
        low, high, currency = span
        middle = f"{round((low + high) / 2, 2):,.2f}".removesuffix(".00")
        return (round((low + high) / 2, 2), currency, None,
                f"{text}: 区间，取中点 {middle} / a range: its midpoint {middle} is used")
    return None, None, f"not an amount: expected e.g. {AMOUNT_EXAMPLES}", None


def read_date(value: str, order: str = "") -> tuple[dt.date | None, str | None, str | None, str | None]:
    """(first day of the period, precision, problem, flag) for one written date.

    Year-first dates keep their precision; ``20090501`` is a day; a 5-digit Excel serial day number is
    read and flagged; day/month/year needs ``order`` ("dmy" or "mdy") unless only one order is valid.
    """
    text = fold(value)
    if text.lower() in _MISSING_LOWER:
        return None, None, None, None
    date, precision = parse_date_text(text)
    if date is not None:
        return date, precision, None, None
    bare = _TIME_RE.sub("", text)
    if len(bare) == 8 and bare.isdigit():
        try:
            return dt.date(int(bare[:4]), int(bare[4:6]), int(bare[6:])), "day", None, None
        except ValueError:
            pass
    if _SERIAL_RE.match(bare) and SERIAL_MIN <= float(bare) <= SERIAL_MAX:
        day = _EXCEL_EPOCH + dt.timedelta(days=int(float(bare)))
        return day, "day", None, (f"{text}: Excel 日期序号，读作 {day.isoformat()} / looks like an Excel serial date and "
                                  f"was read as {day.isoformat()} (format the column as dates in Excel to avoid this)")
    match = _DAY_MONTH_RE.match(bare)
    if match:
        first, second, year = int(match.group(1)), int(match.group(3)), int(match.group(4))
        valid = {o: _date_or_none(year, m, d) for o, (d, m) in (("dmy", (first, second)), ("mdy", (second, first)))}
        if order in valid:
            if valid[order] is not None:
                return valid[order], "day", None, None
            return None, None, f"not a date: {text} is not a valid {order} date", None
        if first == second or (valid["dmy"] is not None) != (valid["mdy"] is not None):
            chosen = valid["dmy"] or valid["mdy"]
            if chosen is None:
                return None, None, f"not a date: expected year first, e.g. {DATE_EXAMPLES}", None
            which = "dmy" if valid["dmy"] is not None else "mdy"
            words = "日/月" if which == "dmy" else "月/日"
            flag = None if first == second else (f"{text}: 只有{words}顺序读得通，读作 {chosen.isoformat()} / only {which} "
                                                 f"reads as a date ({chosen.isoformat()})")
            return chosen, "day", None, flag
        return None, None, (f"ambiguous date {text}: day/month or month/day? set order = \"dmy\" or \"mdy\" "
                            "under [dates] in kam.toml (or use --profile)"), None
    return None, None, f"not a date: expected year first, e.g. {DATE_EXAMPLES}", None


def _date_or_none(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_date_text(text: str) -> tuple[dt.date | None, str | None]:
    """(first day of the period, precision) for year-first dates; (None, None) when it is not one."""
    match = _DATE_RE.match(_TIME_RE.sub("", text.strip()))
    if not match:
        return None, None
    year, month, day, quarter = match.groups()
    try:
        if day:
            return dt.date(int(year), int(month), int(day)), "day"
        if month:
            return dt.date(int(year), int(month), 1), "month"
        if quarter:
            return dt.date(int(year), 3 * int(quarter) - 2, 1), "quarter"
        return dt.date(int(year), 1, 1), "year"
    except ValueError:  # 2009-02-30, month 13
        return None, None


def parse_currency_text(text: str) -> str | None:
    """ISO code for 人民币, RMB, ¥, usd … or any three-letter code."""
    word = text.strip()
    code = CURRENCY_TABLE.get(word) or CURRENCY_TABLE.get(word.lower())
    if code is None and re.fullmatch(r"[A-Za-z]{3}", word):
        code = word.upper()
    return code


# -- batch helpers -----------------------------------------------------------------------------

_NULLS: dict = {}  # dtype -> an all-null Series at least as long as any batch so far


def formatted_amounts(text: pl.Series, default_unit: float) -> tuple[pl.Series, pl.Series]:
    """(amount, currency named) of each text matching FORMATTED_AMOUNT, natively; null elsewhere.

    Exactly what :func:`read_amount` gives. Once the pattern has matched (a DFA, no captures: those cost more
    than the parser), the text before the first digit is the currency sign or word, the text after the last
    digit the unit and currency word (one split only, :data:`_TAILS`), and ``<number>e<power of ten>`` cast to
    a float is the double nearest the amount, as ``round(value * scale, 2)`` is below a trillion (larger
    amounts are left to read_amount). For a ``default_unit`` that is a power of ten.
    """
    c = pl.col("text")
    if text.str.contains(GROUPED_NUMBER).all():  # 1,166,911.50 only (spreadsheets): no sign, unit or word to split off
        amount = (c.str.replace_all(",", "", literal=True) + f"e{round(math.log10(default_unit))}").cast(pl.Float64)
        out = pl.DataFrame({"text": text}).select(pl.when(amount < 1e12).then(amount))
        return out.to_series(), nulls(len(text), pl.String)
    head = c.str.replace(r"[0-9].*$", "")
    tail = c.str.replace(r"^.*[0-9]", "")
    number = c.str.strip_prefix(head).str.strip_suffix(tail).str.replace_all(",", "", literal=True)
    tail = tail.str.to_lowercase()
    power = tail.replace_strict({k: v[0] for k, v in _TAILS.items()}, default=None, return_dtype=pl.String)
    amount = (number + "e" + power.fill_null(str(round(math.log10(default_unit))))).cast(pl.Float64, strict=False)
    currency = pl.coalesce(
        head.str.to_lowercase().replace_strict(_CURRENCY_LOWER, default=None, return_dtype=pl.String),
        tail.replace_strict({k: v[1] for k, v in _TAILS.items()}, default=None, return_dtype=pl.String))
    read = c.str.contains(FORMATTED_AMOUNT) & (amount < 1e12)
    out = pl.DataFrame({"text": text}).select(pl.when(read).then(amount).alias("amount"),
                                              pl.when(read).then(currency).alias("currency"))
    return out["amount"], out["currency"]


def nulls(n: int, dtype) -> pl.Series:
    """``n`` nulls of ``dtype``: a zero-copy slice of a cached column (building one costs a query per call)."""
    cached = _NULLS.get(dtype)
    if cached is None or len(cached) < n:
        cached = _NULLS[dtype] = pl.Series(dtype=dtype).extend_constant(None, max(n, 1 << 16))
    return cached.slice(0, n)


class Distinct:
    """One column's parser applied to each distinct value once per run, the results kept as columns.

    The values are cast to a Categorical of their own (a ``pl.Categories`` kept for the run), whose ids
    index the results: a batch costs one cast and one gather per field however many values are known, and
    only the values it adds are parsed, once each, and appended. (An Enum of the known values cost a hash
    table of all of them per batch: 1.2 s per million amounts written like ¥99,600, 100,000 of them
    distinct.) ``native``, when given, reads new values in bulk first (:func:`formatted_amounts`): a column
    with a new value in nearly every row is then not parsed in Python row by row. Past ``limit`` values it
    starts over with a new mapping, so that free-text-like columns do not grow it without end.
    """

    def __init__(self, parse, dtypes: tuple, limit: int = 100_000, native=None):
        self.parse, self.dtypes, self.limit, self.native = parse, dtypes, limit, native
        self.lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        self.categories = pl.Categories.random()  # this column's own ids, 0, 1, 2 … in order of first sight
        self.dtype = pl.Categorical(self.categories)
        self.keep: pl.Series | None = None  # the mapping lives as long as a Series of it does
        # row j: the fields of the value with id j (one row take per batch: a Series.gather per field is a
        # query each, 4 times the cost on a batch of 10,000)
        self.table = pl.DataFrame([pl.Series(f"f{i}", dtype=dtype) for i, dtype in enumerate(self.dtypes)])

    def map(self, series: pl.Series) -> list[pl.Series]:
        with self.lock:  # ids are given only under the lock: the ids a batch adds follow the known ones
            categorical = series.cast(self.dtype)
            ids = categorical.to_physical()
            top = ids.max()
            known = self.table.height
            if top is not None and top >= known:
                if top >= self.limit and known:
                    self._start()
                    categorical = series.cast(self.dtype)
                    ids, known = categorical.to_physical(), 0
                    top = ids.max()
                added = (pl.DataFrame({"id": ids, "value": series}).filter(pl.col("id") >= known)
                         .unique("id").sort("id")["value"])
                if len(added) != top + 1 - known:  # not in order after all: ask the mapping
                    added = pl.Series([self.categories[i] for i in range(known, top + 1)], dtype=pl.String)
                new = pl.DataFrame([field.alias(name) for name, field in zip(self.table.columns, self._parse(added))])
                self.table = pl.concat([self.table, new], rechunk=True)
            if self.keep is None and top is not None:
                self.keep = categorical
            table = self.table
        return table[ids].get_columns()

    def _parse(self, values: pl.Series) -> list[pl.Series]:
        """The fields of ``values`` (distinct, none null): read natively where possible, else one by one."""
        if self.native is None:
            fields, rest = None, values
        else:
            fields, read = self.native(values)
            if read.all():
                return fields
            positions = (~read).arg_true()
            rest = values.gather(positions)
        parsed = [self.parse(value) for value in rest.to_list()]
        parsed_fields = [pl.Series([p[k] for p in parsed], dtype=dtype) for k, dtype in enumerate(self.dtypes)]
        if fields is None:
            return parsed_fields
        return [field.scatter(positions, new) for field, new in zip(fields, parsed_fields)]


def patch(base: list[pl.Series], mask: pl.Series, series: pl.Series, distinct: Distinct) -> list[pl.Series]:
    """Parse the rows under ``mask`` (few, usually) and write the results into ``base``."""
    if not mask.any():
        return base
    if mask.all(ignore_nulls=False):  # every row (amounts written as ¥99,600 or 120万): nothing of base is kept
        return [p.alias(b.name) for b, p in zip(base, distinct.map(series))]
    positions = mask.arg_true()
    parsed = distinct.map(series.gather(positions))
    return [b.scatter(positions, p) for b, p in zip(base, parsed)]


class Plan:
    """How to normalise one export, built from its mapped columns and the config; applied per batch.

    ``columns`` holds the output order: each input column under its canonical name, with derived
    columns (``deal_size_base``, ``purchase_date_precision`` …) right after their source.
    ``problems`` maps a column to the name of its problem column (null when the value is fine).
    ``ok`` is true for a row that can be scored; blank lines are neither scored nor rejected.
    """

    def __init__(self, columns: list[str], schema: dict[str, Column], config, header_units: dict[str, float],
                 not_read: frozenset[str] = frozenset(), quarantine: str | None = None,
                 header_currencies: dict[str, str] | None = None):
        self.names = list(columns)
        self.quarantine = quarantine  # the column giving why a record an importer half read is rejected
        self.schema = schema
        self.read = [n for n in columns if n not in not_read]
        self.problems: dict[str, str] = {}
        self.columns: list[tuple[str, str]] = []  # (output name, working column)
        self.caches: dict[str, Distinct] = {}  # per column: its distinct values parsed, across batches
        self.phase1: list[list[pl.Expr]] | None = None
        self.inputs: list[str] = list(columns)  # the columns of the frame given to on_frame
        values = config.get("values", {})
        self.date_order = str(config.get("dates", {}).get("order", "") or "").lower()
        if self.date_order not in DATE_ORDERS:
            raise ConfigError(f"[dates] order = {self.date_order!r}: expected one of \"dmy\", \"mdy\", \"ymd\"")
        self.flags: list[str] = []  # flag columns: accepted values with something to say about them
        cur = config.get("currency", {})
        self.default_currency = cur.get("default", "CNY")
        self.rates = {str(k): float(v) for k, v in cur.get("rates", {}).items()}
        self.rates[cur.get("base", "CNY")] = 1.0
        self.units = header_units
        self.header_currencies = header_currencies or {}  # an amount's currency when its header names one (USD)
        self.tables = {n: vocabulary(schema[n], values.get(n, {})) for n in columns
                       if n in schema and schema[n].vocab}
        present = set(columns)
        for name in columns:
            kind = schema[name].kind if name in schema else None
            if kind == ID:
                self._problem(name)
                self.columns.append((name, name))
            elif kind in (CODE, LEVEL_OR_AMOUNT, PERCENT, CURRENCY, DATE, AMOUNT):
                self._problem(name)
                if kind in (LEVEL_OR_AMOUNT, DATE, AMOUNT):
                    self.flags.append(name)
                self._output(name)
                if kind == LEVEL_OR_AMOUNT:
                    self._output(name + "_amount")
                elif kind == DATE:
                    self._output(name + "_precision")
                elif kind == AMOUNT:
                    if "currency" not in present:
                        self._output("currency")
                    self._output(name + "_base")
            elif kind == COUNT_OR_NAMES:
                self.columns += [(name, name), ("competitor_count", NORM + "competitor_count")]
            else:  # text, and columns kam does not know: passed through untouched
                self.columns.append((name, name))
        self.columns.append((VALUE_FLAGS, FLAGS))
        if quarantine is not None:
            self.problems[RECORD] = PROBLEM + RECORD
        outputs = [out for out, _ in self.columns]
        twice = sorted({out for out in outputs if outputs.count(out) > 1})
        if twice:  # e.g. re-scoring kam's own output, which already has deal_size_base
            raise InputError(f"input columns {twice} clash with columns kam derives from other columns",
                             hint="drop or rename them (kam's own output is not an input: score the export)")
        self.ok = c(OK)

    def _problem(self, name: str) -> None:
        self.problems[name] = PROBLEM + name

    def _output(self, name: str) -> None:
        self.columns.append((name, NORM + name))

    # -- applying ---------------------------------------------------------------------------

    def on_frame(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """Add the normalised, problem, ``__ok`` and ``__blank`` columns.

        Phase one (the fast paths) runs as expressions inside the streaming engine, on every core and
        without the GIL; phase two, the Python that parses what the fast paths left and assembles the
        columns, runs batch by batch.
        """
        self.inputs = frame.collect_schema().names()
        fast = self._with_fast_paths(frame)
        probe = self.normalise_batch(fast.head(0).collect())
        return self._finish(fast.map_batches(self.normalise_batch, schema=probe.schema, streamable=True))

    def _finish(self, frame):
        """Phase three, expressions again: amounts get their currency, base amount and problem, rows their
        ``__ok`` (none of it needs Python once the leftovers are parsed). The currency is a column before
        the base amount and the problem read it (used twice in one select, it would be worked out twice)."""
        for name in self.names:
            if name in self.schema and self.schema[name].kind == AMOUNT:
                currency, conflict = self._amount_currency(name)
                frame = frame.with_columns(currency.alias(NORM + "currency"), conflict.alias("__c__" + name))
                frame = frame.with_columns(self._amount_columns(name)).drop("__found__" + name, "__bad__" + name,
                                                                           "__c__" + name)
        problems = [c(p).is_null() for p in self.problems.values()]
        return frame.with_columns(pl.all_horizontal([~c(BLANK), *problems]).alias(OK))

    def _amount_currency(self, name: str) -> tuple[pl.Expr, pl.Expr]:
        """(currency of the amount, whether the amount names one the currency column contradicts)."""
        amount, found = c(NORM + name), c("__found__" + name)
        default = pl.lit(self.header_currencies.get(name, self.default_currency))
        if "currency" not in self.names:
            return pl.when(amount.is_not_null()).then(pl.coalesce(found, default)), pl.lit(False)
        given, written = c(NORM + "currency"), c("currency")
        unreadable = written.is_not_null() & given.is_null()  # written, but not read as a currency
        currency = (pl.when(unreadable).then(None).when(amount.is_not_null())
                    .then(pl.coalesce(found, given, default)).otherwise(given))
        return currency, found.is_not_null() & given.is_not_null() & (found != given)

    def _amount_columns(self, name: str) -> list[pl.Expr]:
        currency, bad = c(NORM + "currency"), c("__bad__" + name)
        rate = lookup(currency, self.rates, pl.Float64)
        return [(c(NORM + name) * rate).alias(NORM + name + "_base"),
                pl.when(bad.is_not_null()).then(bad).when(c("__c__" + name))
                .then(pl.lit("the amount names a currency that contradicts the currency column")).alias(PROBLEM + name)]

    def _with_fast_paths(self, frame):
        if self.phase1 is None:
            self.phase1 = self._fast_paths()
        for step in self.phase1:
            frame = frame.with_columns(step)
        return frame

    def _fast_paths(self) -> list[list[pl.Expr]]:
        """Phase one, two vectorised selects per batch: known codes, plain numbers, ISO dates, and a mask per
        column of the rows that need a closer look.

        The streaming engine evaluates an expression used twice in one select twice (an Enum cast, a strip, a
        regex over every cell), so the first select works out each of them once, into small working columns
        (``__i__`` an Enum index, ``__m__`` a match, ``__x__`` a number) that the second reads; they leave with
        the batch's other working columns in :meth:`normalise_batch`. (Trimmed text is not kept as a column:
        a strip is cheap, and a regex allowing the spaces it trims reads the raw text.)
        """
        first, second = [], []
        for name in self.names:
            kind = self.schema[name].kind if name in self.schema else None
            raw = c(name)
            index, match, number = (c(prefix + name) for prefix in ("__i__", "__m__", "__x__"))
            if kind == ID:
                first.append(pl.when(raw.is_null() | (raw.str.strip_chars() == ""))
                             .then(pl.lit("missing value: an opportunity needs an id")).alias(PROBLEM + name))
            elif kind in (CODE, LEVEL_OR_AMOUNT, CURRENCY) and (kind != CURRENCY or name == "currency"):
                table = self.tables[name] if kind != CURRENCY else CURRENCY_TABLE
                codes = pl.Series(list(table.values()), dtype=pl.String)
                first.append(raw.cast(pl.Enum(list(table)), strict=False).to_physical().alias("__i__" + name))
                second.append(pl.lit(codes).gather(index).alias(NORM + name))
                unknown = raw.is_not_null() & index.is_null()
                if kind == LEVEL_OR_AMOUNT:  # a plain amount (1200000, 35.5) instead of a level; " 35 " is read
                    # by the parser (_code_parser) as every other value the Enum does not know; a header's unit
                    # (未来销售收入(万元)) as a power of ten in the text, as for amounts (no rounding error)
                    unit = self.units.get(name, 1.0)
                    digits = raw if unit == 1.0 else raw + f"e{round(math.log10(unit))}"
                    first.append(raw.str.contains(PLAIN_AMOUNT).fill_null(False).alias("__m__" + name))
                    second += [pl.when(unknown & match).then(digits.cast(pl.Float64, strict=False))
                               .alias(NORM + name + "_amount"), (unknown & ~match).alias("__u__" + name)]
                else:
                    second.append(unknown.alias("__u__" + name))
            elif kind == AMOUNT:  # 1166100.00 or 1,166,100.00: the double read_amount gives, natively; the rest
                # (¥850,000, 120万, 面议 …) once per distinct value
                unit = self.units.get(name, 1.0)
                if unit in POWERS_OF_TEN:
                    digits = raw.str.strip_chars().str.replace_all(",", "", literal=True)
                    scaled = digits if unit == 1.0 else digits + f"e{round(math.log10(unit))}"
                    first += [scaled.cast(pl.Float64, strict=False).alias("__x__" + name),
                              raw.str.contains(NUMBER_AMOUNT).fill_null(False).alias("__m__" + name)]
                    plain = match & (number < 1e12)
                    second.append(pl.when(plain).then(number).alias(NORM + name))
                else:
                    plain = pl.lit(False)
                    second.append(pl.lit(None, pl.Float64).alias(NORM + name))
                second.append((raw.is_not_null() & ~plain).alias("__u__" + name))
            elif kind == DATE:  # a time of day: the batch's timestamps are cut to their day (_date)
                first.append(raw.str.contains(":", literal=True).fill_null(False).alias("__t__" + name))
            elif kind == PERCENT:
                first.append(raw.str.strip_chars().str.strip_chars_end("%％ ").cast(pl.Float64, strict=False)
                             .alias("__x__" + name))
                finite = number.is_finite().fill_null(False)
                second += [pl.when(finite).then(number).alias(NORM + name),
                           pl.when(~finite & raw.is_not_null() & ~raw.str.strip_chars().is_in(MISSING))
                           .then(pl.lit("not a percentage: expected e.g. 35%, 35.5")).alias(PROBLEM + name)]
        read = [c(x).is_null() for x in self.read]
        first.append((pl.all_horizontal(read) if read else pl.lit(False)).alias(BLANK))
        return [first, second]

    def normalise_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        """Phase two for one batch of :meth:`on_frame` (a raw batch gets its fast paths here)."""
        raw = BLANK not in batch.columns
        if raw:
            self.inputs = batch.columns
            batch = self._with_fast_paths(batch.lazy()).collect()
        n = batch.height
        fast = batch
        new: dict[str, pl.Series] = {}
        kinds = {name: (self.schema[name].kind if name in self.schema else None) for name in self.names}
        if "currency" in kinds:  # amounts read the currency column, so it goes first
            self._currency(batch, new)
        for name, kind in kinds.items():
            if kind in (ID, PERCENT):
                new[PROBLEM + name] = fast.get_column(PROBLEM + name)
                if kind == PERCENT:
                    new[NORM + name] = fast.get_column(NORM + name)
            elif kind in (CODE, LEVEL_OR_AMOUNT):
                self._code(batch, fast, name, kind, new)
            elif kind == AMOUNT:
                self._amount(batch, fast, name, new)
            elif kind == DATE:
                self._date(batch, name, new)
            elif kind == COUNT_OR_NAMES:  # once per distinct value, as dates (a hundred per batch)
                counts = self._distinct(name, count_competitors, (pl.Int32,))
                new[NORM + "competitor_count"], = counts.map(batch.get_column(name))
        new[FLAGS] = self._join_flags(new, n)
        if self.quarantine is not None:
            new[PROBLEM + RECORD] = batch.get_column(self.quarantine)
        new[BLANK] = fast.get_column(BLANK)
        out = batch.select(self.inputs).hstack([series.alias(name) for name, series in new.items()])
        return self._finish(out.lazy()).collect() if raw else out

    def _distinct(self, name: str, parse, dtypes: tuple, native=None) -> Distinct:
        """The column's :class:`Distinct`, made on first use (``parse`` is the same rule for every batch)."""
        distinct = self.caches.get(name)
        if distinct is None:
            distinct = self.caches.setdefault(name, Distinct(parse, dtypes, native=native))
        return distinct

    def _join_flags(self, new: dict, n: int) -> pl.Series:
        """``column: note; column: note`` per row, null when nothing was flagged (usually no work)."""
        flags = {name: new.pop(FLAG + name) for name in self.flags if FLAG + name in new}
        live = [name for name, series in flags.items() if series.null_count() < n]
        if not live:
            return nulls(n, pl.String)
        frame = pl.DataFrame([flags[name].alias(name) for name in live])
        parts = [pl.format("{}: {}", pl.lit(name), c(name)) for name in live]
        joined = pl.concat_str(parts, separator="; ", ignore_nulls=True)
        return frame.select(pl.when(joined != "").then(joined)).to_series()

    def _code(self, batch, fast, name, kind, new):
        """Known spellings came from one Enum cast; anything else (spaces, odd case, missing tokens,
        amounts for a level column, unknown values) is parsed once per distinct value."""
        n = batch.height
        amounts = fast.get_column(NORM + name + "_amount") if kind == LEVEL_OR_AMOUNT else nulls(n, pl.Float64)
        base = [fast.get_column(NORM + name), amounts, nulls(n, pl.String), nulls(n, pl.String)]
        unknown = fast.get_column("__u__" + name)
        if not unknown.any():  # the usual batch: every value a known spelling or missing
            code, amount, problem, flag = base
        else:
            distinct = self._distinct(name, self._code_parser(name, kind), tuple(b.dtype for b in base))
            code, amount, problem, flag = patch(base, unknown, batch.get_column(name), distinct)
        new[NORM + name], new[PROBLEM + name] = code, problem
        if kind == LEVEL_OR_AMOUNT:
            new[NORM + name + "_amount"], new[FLAG + name] = amount, flag

    def _code_parser(self, name: str, kind: str):
        """The rule for one value of a coded column that the Enum cast did not know."""
        table = self.tables[name]
        lower = {k.lower(): v for k, v in table.items()}
        known = ", ".join(f"{code} {words[0]}" for code, words in self.schema[name].vocab.items())  # 中文 to write

        def parse(value: str):
            text = value.strip()
            for form in (text, fold(value)):  # as written, then with full-width letters folded
                if form in table or form.lower() in lower:
                    return (table[form] if form in table else lower[form.lower()]), None, None, None
            if text.lower() in _MISSING_LOWER:
                return None, None, None, None
            if kind == LEVEL_OR_AMOUNT:
                amount, _, problem, flag = read_amount(text, self.units.get(name, 1.0))
                if amount is not None or problem is None:
                    return None, amount, None, flag
                return None, None, f"unknown value: expected one of {known}, or an amount", None
            return None, None, (f"unknown value: expected one of {known} "
                                f"(or map it under [values.{name}] in kam.toml)"), None

        return parse

    def _currency(self, batch, new):
        def parse(value: str):
            if is_missing(value):
                return None, None
            code = parse_currency_text(value)
            return code, None if code else "not a currency: expected CNY, USD, 人民币, 美元 …"

        base = [batch.get_column(NORM + "currency"), nulls(batch.height, pl.String)]
        new[NORM + "currency"], new[PROBLEM + "currency"] = patch(
            base, batch.get_column("__u__currency"), batch.get_column("currency"),
            self._distinct("currency", parse, (pl.String,) * 2))

    def _amount(self, batch, fast, name, new):
        n = batch.height
        unit = self.units.get(name, 1.0)

        def parse(value: str):  # 1.2亿, ¥1,200,000, 面议, 100-200万 …
            return read_amount(value, unit)

        base = [fast.get_column(NORM + name), nulls(n, pl.String), nulls(n, pl.String), nulls(n, pl.String)]
        native = None
        if unit in POWERS_OF_TEN:  # 1,166,911.50 or ¥850,000, often a new value in every row: read in bulk

            def native(values: pl.Series):
                amount, currency = formatted_amounts(values, unit)
                return [amount, currency, nulls(len(values), pl.String), nulls(len(values), pl.String)], \
                    amount.is_not_null()

        new[NORM + name], new["__found__" + name], new["__bad__" + name], new[FLAG + name] = patch(
            base, fast.get_column("__u__" + name), batch.get_column(name),
            self._distinct(name, parse, tuple(b.dtype for b in base), native))
        # the rest is phase three (_finish)

    def _date(self, batch, name, new):
        """Every date is parsed once per distinct value (a batch of 30,000 rows has a few thousand): cheaper
        than parsing each cell natively and patching the months and quarters, and the parser is the rule."""
        order = self.date_order

        def parse(value: str):
            return read_date(value, order)

        series = batch.get_column(name)
        if batch.get_column("__t__" + name).any():  # timestamps: one distinct value per row, unless cut
            series = series.str.replace(DATETIME_DAY, "${1}")
        date, precision, problem, flag = self._distinct(name, parse, (pl.Date, pl.String, pl.String, pl.String)).map(
            series)
        new[NORM + name], new[NORM + name + "_precision"] = date, precision
        new[PROBLEM + name], new[FLAG + name] = problem, flag

    def trusted(self) -> frozenset[str]:
        """Output text columns whose every value comes from a fixed list no spreadsheet reads as a formula:
        the codes of coded columns (schema and ``[values]`` alike, each checked), currency codes, date
        precisions and ``value_flags`` (a canonical column name first). A CSV writer need not check them."""
        from .injection import is_dangerous

        trusted = {VALUE_FLAGS}
        for name in self.names:
            kind = self.schema[name].kind if name in self.schema else None
            if kind in (CODE, LEVEL_OR_AMOUNT) and not any(is_dangerous(str(code)) for code in self.tables[name].values()
                                                           if code):
                trusted.add(name)
            elif kind == DATE:
                trusted.add(name + "_precision")
            elif kind == CURRENCY and name == "currency":
                trusted.add(name)  # an ISO code from the table, or three letters upper-cased
            elif kind == AMOUNT and "currency" not in self.names:
                trusted.add("currency")
        return frozenset(trusted)

    def output(self, leave_out: frozenset[str] = frozenset()) -> list[pl.Expr]:
        """Select expressions giving the normalised columns under their output names, in order
        (``leave_out``: output names not to write, such as personal columns)."""
        return [c(work).alias(out) for out, work in self.columns if out not in leave_out]


def count_competitors(value: str) -> tuple[int | None]:
    """A count given as a number, 0 for 无/none, else the number of names listed."""
    text = value.strip()
    if text.isdigit():
        return (int(text),)
    if text.lower() in _NONE_LOWER:
        return (0,)
    if text.lower() in _MISSING_LOWER:
        return (None,)
    return (len(_COMPETITOR_SEPARATORS.split(text)),)
