"""Output safety: text cells that a spreadsheet would run as a formula are neutralised.

OWASP's rule: a cell is dangerous when, after leading spaces, it starts with ``=``, ``+``, ``-``, ``@``,
TAB, CR or LF, or with the full-width ``＝``. CSV cells get a leading ``'`` (Excel shows the text, runs
nothing). Only text columns are touched: numbers stay numbers.
"""

from __future__ import annotations

import polars as pl

DANGEROUS = r"^[ ]*[=+\-@\t\r\n＝]"


def neutralise(expr: pl.Expr) -> pl.Expr:
    """Prefix dangerous text cells with a single quote."""
    return pl.when(expr.str.contains(DANGEROUS)).then(pl.lit("'") + expr).otherwise(expr)


def neutralise_frame(frame):
    """The same frame (lazy or eager) with every String column neutralised."""
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    text = [name for name, dtype in schema.items() if dtype == pl.String]
    return frame.with_columns(neutralise(pl.col(name)).alias(name) for name in text) if text else frame


def restore(expr: pl.Expr) -> pl.Expr:
    """Undo :func:`neutralise` when reading kam's own CSV output back."""
    return pl.when(expr.str.contains(r"^'[ ]*[=+\-@\t\r\n＝]")).then(expr.str.slice(1)).otherwise(expr)
