"""Formula injection, the OWASP way, with an exact way back for kam's own CSV output.

A text cell is dangerous when, after leading spaces, it starts with ``=``, ``+``, ``-``, ``@``, TAB, CR or
LF, or with the full-width ``＝``. CSV output gets a leading ``'`` (Excel shows the text and runs
nothing); XLSX output gets a quote-prefixed *string* cell (see ``kamcore_plugins.writers.xlsx``).

So that reading kam's CSV back gives the original text exactly, a value that already starts with
``'`` followed by something dangerous (``'=x``) is prefixed too (``''=x``), and :func:`restore` strips
exactly one ``'`` from values of that shape and from nothing else.
"""

from __future__ import annotations

import re

import polars as pl

_START = r"[ ]*[=+\-@\t\r\n＝]"
NEUTRALISE = "^'*" + _START  # the values a CSV writer prefixes with '
RESTORE = "^''*" + _START  # the values kam's CSV reader un-prefixes (one ' stripped)
DANGEROUS = "^" + _START  # the values a spreadsheet would run as a formula
_DANGEROUS = re.compile(DANGEROUS)


def is_dangerous(text: str) -> bool:
    """True when a spreadsheet would run ``text`` as a formula (OWASP's rule)."""
    return bool(_DANGEROUS.match(text))


def neutralise(expr: pl.Expr) -> pl.Expr:
    """Prefix dangerous text (and text that is ``'`` + dangerous) with a single quote."""
    return pl.when(expr.str.contains(NEUTRALISE)).then(pl.lit("'") + expr).otherwise(expr)


def restore(expr: pl.Expr) -> pl.Expr:
    """Undo :func:`neutralise` exactly: ``'=x`` → ``=x``, ``''=x`` → ``'=x``, ``'abc`` stays."""
    return pl.when(expr.str.contains(RESTORE)).then(expr.str.slice(1)).otherwise(expr)


def neutralise_frame(frame, trusted=frozenset()):
    """The same frame (lazy or eager) with every String column neutralised, but the ``trusted`` ones (text kam
    made from a fixed list that holds nothing dangerous: :meth:`kamcore.normalise.Plan.trusted`)."""
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    text = [name for name, dtype in schema.items() if dtype == pl.String and name not in trusted]
    return frame.with_columns(neutralise(pl.col(name)).alias(name) for name in text) if text else frame
