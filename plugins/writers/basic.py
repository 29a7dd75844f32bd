"""Output writers: CSV and XLSX (safe to open in Excel), JSON Lines and Parquet, all streaming sinks."""

from __future__ import annotations

from kamcore import hookimpl
from kamcore.registry import Writer


def sink_csv(frame, path, trusted=frozenset()):
    """UTF-8 with a BOM, so Excel shows Chinese text correctly; formula-like text is prefixed with ' (and
    kam's CSV importer takes the ' off again when it reads this file back: kamcore.injection). The
    ``trusted`` columns hold kam's own codes and are not checked (a third of a full run's text columns)."""
    from kamcore.injection import neutralise_frame

    return neutralise_frame(frame, trusted).sink_csv(path, include_bom=True, lazy=True)


def sink_xlsx(frame, path, guide=()):
    from kamcore_plugins.writers.xlsx import sink_xlsx as sink

    return sink(frame, path, guide)


def sink_jsonl(frame, path):
    return frame.sink_ndjson(path, lazy=True)


def sink_parquet(frame, path):
    return frame.sink_parquet(path, lazy=True)


@hookimpl
def register_writers(register):
    register(Writer(name="csv", extensions=(".csv",), sink=sink_csv, joinable=True,
                    description="CSV, UTF-8 with BOM; formula-like text cells prefixed with '"))
    register(Writer(name="xlsx", extensions=(".xlsx",), sink=sink_xlsx,
                    description="Excel workbook; formula-like text as quote-prefixed text cells, numbers as numbers"))
    register(Writer(name="jsonl", extensions=(".jsonl", ".ndjson", ".json"), sink=sink_jsonl, joinable=True,
                    description="JSON Lines, one object per opportunity"))
    register(Writer(name="parquet", extensions=(".parquet",), sink=sink_parquet, description="Apache Parquet"))
