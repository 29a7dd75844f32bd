"""Parquet importer: the columnar files data teams keep their deal history in.

A yearly history of ten million opportunities is usually a Parquet file (or many) in a data lake, not a
CSV. It is read 10,000 rows at a time, each slice when the query asks for it, so the run streams as it
does for CSV (:func:`batches`).

Values become text, as every importer gives them, so that the normaliser reads them by the same rules
as a CSV export's: numbers as polars writes them (``1166100.0``, ``31``), dates as ``2024-07-16``,
timestamps as ``2024-07-16 10:30:00`` (in their own time zone when they have one; fractions of a second
dropped), booleans as ``true``/``false``, decimals exactly. A list of strings becomes its items joined by
``; `` (a competitors column: ``H3C; Lenovo``); other nested values (lists of numbers, structs) become
compact JSON text, as in JSON Lines. Binary and duration columns have no such text and refuse the file,
naming the column. A Parquet file has no lines: a rejected row's ``line`` is its row number (1 for the
first row). For the Dask engine the file is cut into pieces by row, and each worker reads its own rows
from the shared path.
"""

from __future__ import annotations

from pathlib import Path

from attrs import frozen

from kamcore import hookimpl
from kamcore.errors import InputError
from kamcore.importing import as_text, column_names, frame_stream
from kamcore.registry import Importer, ReadOptions, Source

MAGIC = b"PAR1"
BATCH_ROWS = 10_000
HINT = "write it again from the system it came from, or export CSV instead"


def read(path: Path, options: ReadOptions) -> Source:
    rows, exprs, repeated = open_file(path, options.columns)

    def record_lines(indexes: list[int]) -> dict[int, int]:
        return {i: i + 1 for i in indexes if 0 <= i < rows}

    def split(size: int) -> list[Piece]:
        """Pieces of about ``size`` bytes of text, by row; each worker reads its own rows of the file."""
        import polars as pl

        sample = pl.scan_parquet(path).select(exprs).head(1000).collect()
        per_row = max(1, sample.estimated_size() // max(sample.height, 1))
        step = max(1, size // per_row)
        where = str(path.resolve())
        names = tuple(e.meta.output_name() for e in exprs)
        return ([Piece(where, start, min(step, rows - start), names=names) for start in range(0, rows, step)]
                or [Piece(where, 0, 0, names=names)])

    return Source(path=path, frame=batches(path, exprs, rows), record_lines=record_lines, encoding="parquet",
                  delimiter=None, header_line=0, split=split,
                  notes=(f"{path}: Parquet, {rows} row(s); a rejected row's line is its row number", *repeated))


@frozen
class Piece:
    """Rows ``start`` to ``start + records`` of a Parquet file that every Dask worker sees at ``path``."""

    path: str
    start: int
    records: int
    shared: bool = True
    names: tuple[str, ...] = ()  # the columns' names as this machine read them (its [columns] may keep repeats)

    def read(self):
        import polars as pl

        if not Path(self.path).is_file():
            raise InputError(f"{self.path}: cannot read: no such file",
                             hint="every worker must see the input at the same path (a shared folder)")
        _, exprs, _ = open_file(Path(self.path), names=list(self.names) or None)
        return pl.scan_parquet(self.path).select(exprs).slice(self.start, self.records).collect()

    def inline(self) -> "Piece":
        return self  # the user's own file, read where it lies


def open_file(path: Path, user_columns=None, names: list[str] | None = None) -> tuple[int, list, list[str]]:
    """(rows, the expressions giving each column as text, notes) of a Parquet file, or a clear InputError.
    ``names``: the columns' names, when a first reading gave them (a Dask piece)."""
    import polars as pl

    try:
        with open(path, "rb") as handle:
            handle.seek(-4, 2)
            complete = handle.read(4) == MAGIC
        if not complete:
            raise InputError(f"{path}: the Parquet file is cut short (it does not end as a Parquet file does)",
                             hint=HINT)
        schema = pl.read_parquet_schema(path)
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    except (OSError, pl.exceptions.PolarsError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a readable Parquet file: {reason}", hint=HINT) from None
    notes: list[str] = []
    if names is None:
        names, notes = column_names(list(schema), str(path), user_columns)
    exprs = []
    for index, (name, dtype) in enumerate(schema.items()):
        text = as_text(pl.nth(index), dtype)
        if text is None:
            raise InputError(f"{path}: column {name!r} holds {dtype} values, which cannot be read as text",
                             hint="leave the column out of the file, or write it as text")
        exprs.append(text.alias(names[index]))
    if not exprs:
        raise InputError(f"{path}: the Parquet file has no columns")
    return rows, exprs, notes


def batches(path: Path, exprs: list, rows: int, size: int = BATCH_ROWS):
    """The file as a lazy frame read ``size`` rows at a time, each slice only when the query asks for it.

    A plain ``scan_parquet`` decodes row groups as fast as it can: when the writer is the slow end (a full
    run writes three times the input's bytes) the decoded rows pile up, 2 GB at the peak for 4M rows. Each
    slice here is a query of its own (the reader skips what lies outside it); slices of 50,000 rows still
    piled up (980 MB for 4M rows), slices of 10,000 do not (259 MB for 4M rows, 202 MB for 1M).
    """
    import polars as pl

    scan = pl.scan_parquet(path).select(exprs)
    return frame_stream(lambda: (scan.slice(start, size) for start in range(0, rows, size)), scan.collect_schema())


def sniff(head: bytes, suffix: str) -> int:
    """A file that starts with Parquet's magic bytes."""
    return 95 if head.startswith(MAGIC) else 0


@hookimpl
def register_importers(register):
    register(Importer(name="parquet", read=read, sniff=sniff,
                      description="Apache Parquet, read 10,000 rows at a time; values read as text"))
