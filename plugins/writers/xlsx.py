"""XLSX writer: openpyxl in write-only mode, safe to open in Excel.

- **Formula injection, the OWASP way.** A text cell that a spreadsheet would run (after leading spaces
  it starts with ``=``, ``+``, ``-``, ``@``, TAB, CR or LF, or with the full-width ``＝``) is written as a
  *string* cell with Excel's quote prefix (the ``quotePrefix`` style, what typing ``'=...`` in Excel
  gives): Excel shows the text and runs nothing, and the cell's value is still the original text, so
  reading the file back gives it unchanged. No cell is ever written as a formula.
- **Numbers stay numbers**, booleans booleans, dates dates. NaN and infinity (Excel has neither) are
  left empty; nested values (lists, structs) are written as JSON text.
- **Characters XML cannot hold** (control characters other than TAB and LF; CR too, which an XML
  reader would turn into LF) are escaped the way OOXML defines (``_x0001_``; a literal ``_x0041_``
  becomes ``_x005F_x0041_``): Excel shows them as the original characters and kam's xlsx importer turns
  them back.
- A text longer than Excel's 32,767 characters per cell, or more rows than a sheet holds, stops the
  run with an output error (nothing is written) rather than truncating.

Streaming: ``sink`` returns a lazy ``sink_batches`` query, so the core runs it in the same pass as the
rejects. A one-row sentinel is appended after the scored rows, so the writer knows the last batch has
arrived and saves the workbook then (openpyxl writes rows to a temporary file as they come). Writing
XLSX is cell by cell in openpyxl (about 10 µs a cell): fine for the people who open it, not for
millions of rows (use CSV or Parquet for those).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from kamcore.errors import OutputError
from kamcore.injection import is_dangerous

END = "__kam_end_of_rows__"
CARE_FLAG = "__kam_care__"
MAX_CELL_CHARS = 32_767
MAX_ROWS = 1_048_576  # rows of a sheet, the header included
_ILLEGAL_CLASS = "[\x00-\x08\x0b\x0c\r\x0e-\x1f\ufffe\uffff]"
_ILLEGAL = re.compile(_ILLEGAL_CLASS)
_LOOKS_ESCAPED = re.compile(r"_x[0-9A-Fa-f]{4}_")
CARE = r"^[ ]*[=+\-@\t\r\n＝]|" + _ILLEGAL_CLASS + "|_x"  # formula-like, or something to escape


def escape(text: str) -> str:
    """OOXML's escaping of characters XML cannot hold."""
    if "_x" in text:
        text = _LOOKS_ESCAPED.sub(lambda m: "_x005F" + m.group(0), text)
    return _ILLEGAL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)


def _as_text(value) -> str | None:
    if value is None:
        return None
    if hasattr(value, "to_list"):
        value = value.to_list()
    return json.dumps(value, ensure_ascii=False, default=str)


class XlsxSink:
    """Receives the scored batches in order and writes them to one sheet.

    Each batch is prepared with polars first: NaN and infinity become empty, nested values JSON text,
    and one flag per row says whether any of its text cells needs care (formula-like, a character to
    escape, too long). Rows without such a cell go to openpyxl as they are; the others cell by cell.
    """

    def __init__(self, path: Path, names: list[str]):
        self.path = path
        self.names = names
        self.workbook = None
        self.sheet = None
        self.rows = 0

    def text_cell(self, value: str, column: str):
        from openpyxl.cell import WriteOnlyCell

        dangerous = is_dangerous(value) or value.startswith("=")  # judged on the text, before escaping
        if _ILLEGAL.search(value) or "_x" in value:
            value = escape(value)
        if len(value) > MAX_CELL_CHARS:
            raise OutputError(f"cannot write XLSX: row {self.rows + 1}, column {column!r} holds {len(value):,} "
                              f"characters, more than the {MAX_CELL_CHARS:,} an Excel cell holds",
                              hint="write CSV, JSON Lines or Parquet instead (--format csv)")
        if dangerous or value.startswith("="):
            cell = WriteOnlyCell(self.sheet, value=value)
            cell.data_type = "s"  # text, never a formula
            cell.quotePrefix = True  # what Excel stores for a value typed as '=...
            return cell
        return value

    def start(self) -> None:
        from openpyxl import Workbook

        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet("scored")
        self.sheet.append([self.text_cell(name, name) for name in self.names])
        self.rows = 1

    @staticmethod
    def prepare(batch):
        """The batch with values openpyxl writes as they are, plus the care flag as its last column."""
        import polars as pl

        c = pl.col
        fixes, care = [], []
        for name, dtype in batch.schema.items():
            if dtype == pl.String:
                care.append(c(name).str.contains(CARE).fill_null(False) | (c(name).str.len_chars() > MAX_CELL_CHARS))
            elif dtype.is_float():
                fixes.append(pl.when(c(name).is_finite()).then(c(name)).alias(name))
            elif dtype.is_decimal():
                fixes.append(c(name).cast(pl.Float64).alias(name))
            elif isinstance(dtype, pl.Categorical | pl.Enum):
                text = c(name).cast(pl.String)
                fixes.append(text.alias(name))
                care.append(text.str.contains(CARE).fill_null(False))
            elif isinstance(dtype, pl.List | pl.Array | pl.Struct | pl.Duration | pl.Object):
                fixes.append(c(name).map_elements(_as_text, return_dtype=pl.String).alias(name))  # per-row ok: rare types
                care.append(c(name).is_not_null())
        flag = pl.any_horizontal(care) if care else pl.lit(False)
        return batch.with_columns(*fixes, flag.alias(CARE_FLAG))

    def __call__(self, batch) -> None:
        try:
            self.write(batch)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close openpyxl's half-written sheet quietly (its temporary file is removed at exit)."""
        if self.sheet is not None and not self.sheet.closed:
            try:
                self.sheet.close()
            except Exception:  # the run is failing already; this only tidies up
                pass

    def write(self, batch) -> None:
        import polars as pl

        if self.workbook is None:
            self.start()
        last = batch[END].any()
        data = self.prepare((batch.filter(~pl.col(END)) if last else batch).drop(END))
        if self.rows + data.height > MAX_ROWS:
            raise OutputError(f"cannot write XLSX: more than {MAX_ROWS - 1:,} rows, the most an Excel sheet holds",
                              hint="write CSV or Parquet instead (--format csv)")
        names, append, text = self.names, self.sheet.append, self.text_cell
        for row in data.iter_rows():  # per-row ok: openpyxl writes XLSX cell by cell; XLSX is for people
            if row[-1]:
                append([text(v, names[i]) if isinstance(v, str) else v for i, v in enumerate(row[:-1])])
            else:
                append(row[:-1])
            self.rows += 1
        if last:
            try:
                self.workbook.save(self.path)
            except OSError as exc:
                raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None


def sink_xlsx(frame, path):
    """A lazy query that writes ``frame`` to ``path`` as XLSX when the core collects it."""
    import polars as pl

    schema = frame.collect_schema()
    end = pl.LazyFrame({name: pl.Series(name, [None], dtype=dtype) for name, dtype in schema.items()})
    rows = pl.concat([frame.with_columns(pl.lit(False).alias(END)), end.with_columns(pl.lit(True).alias(END))])
    return rows.sink_batches(XlsxSink(Path(path), schema.names()), lazy=True, maintain_order=True, chunk_size=10_000)
