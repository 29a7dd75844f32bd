"""BANT and MEDDICC qualification views for kamcore, as two plugins (entry points ``bant`` and ``meddicc``)."""

YES, NO, UNKNOWN = "yes", "no", "unknown"


def verdict(met, failed=None):
    """A polars expression: "yes" when ``met``, "no" when ``failed``, else "unknown"."""
    import polars as pl

    expr = pl.when(met.fill_null(False)).then(pl.lit(YES))
    if failed is not None:
        expr = expr.when(failed.fill_null(False)).then(pl.lit(NO))
    return expr.otherwise(pl.lit(UNKNOWN))


def column(batch, name: str):
    """The batch's column, or a null column when the export (or the stakeholder table) lacks it."""
    import polars as pl

    return pl.col(name) if name in batch.columns else pl.lit(None, pl.String)


def gaps(parts: dict[str, object]):
    """The letters still open, e.g. "B, T"."""
    import polars as pl

    text = pl.concat_str([pl.when(v != YES).then(pl.lit(k)) for k, v in parts.items()], separator=", ",
                         ignore_nulls=True)
    return pl.when(text != "").then(text)
