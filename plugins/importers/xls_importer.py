"""Legacy Excel 97-2003 workbooks (.xls, BIFF8 in an OLE2 file), as many ERP and CRM systems still export
them, through xlrd: the same rules as the .xlsx importer (it shares its code), so a sheet saved as .xls and
as .xlsx gives the same rows, text, notes and record lines.

- The sheet (``--sheet NAME`` or its number, else the first whose header kam knows), the header row past
  titles and merged cells, totals rows, blank rows, columns without a header and serial dates in a date
  column are handled by :mod:`.xlsx_importer`; values become the text a person reads there (``35%``,
  ``2024-03-01``, ``TRUE``, ``#N/A``, integers without ``.0``); text is kept as written (:func:`text_of`).
- A formula's value is the one the workbook saved (a .xls file always holds it).
- An OLE2 file that holds no workbook (a password-protected .xlsx is one) or an encrypted workbook is
  refused with a hint; so is a damaged one. A sheet has at most 65,536 rows and 256 columns, and xlrd reads
  the file whole: a file over :data:`MAX_BYTES` is refused (``KAM_XLS_MAX_BYTES``), and ``KAM_XLSX_MAX_CELLS``
  limits the cells read, as for .xlsx.
"""

from __future__ import annotations

import io
import struct
from itertools import islice
from pathlib import Path

from kamcore import hookimpl
from kamcore.errors import InputError
from kamcore.importing import HEADER_SEARCH_ROWS, header_table
from kamcore.registry import Importer, ReadOptions, Source

from .xlsx_importer import MAX_CELLS, cell_text, choose_sheet, env_limit, read_rows, sheet_source

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# xlrd holds the file and every cell in memory (about ten times the file): a full sheet of 65,535 rows of 23
# columns is 23 MB, so a file past this is not an export (override with KAM_XLS_MAX_BYTES)
MAX_BYTES = 256 << 20
SAVE_AS = "open it in Excel or WPS and save it as .xlsx or CSV UTF-8"


class XlsCell:
    """One cell with the attributes of openpyxl's that the .xlsx importer's rules read (a .xls file keeps a
    formula's value, so no cell lacks one and none needs its coordinate)."""

    __slots__ = ("value", "number_format")
    formula = None

    def __init__(self, value, number_format: str = "General"):
        self.value, self.number_format = value, number_format


EMPTY = XlsCell(None)


def text_of(cell: XlsCell) -> str | None:
    """:func:`.xlsx_importer.cell_text`, but text as it is: BIFF stores text plainly, so ``_x000D_`` in a .xls
    cell is those seven characters (in an .xlsx file it is OOXML's escape of a carriage return)."""
    return cell.value if isinstance(cell.value, str) else cell_text(cell)


class XlsSheet:
    """A sheet of the workbook, its rows as :class:`XlsCell` lists (values typed as openpyxl types them)."""

    def __init__(self, book, index: int):
        self.book, self.index = book, index
        self.title = book.sheet_names()[index]

    def rows(self):
        import xlrd
        from openpyxl.utils.datetime import MAC_EPOCH, WINDOWS_EPOCH

        book = self.book
        sheet = book.sheet_by_index(self.index)
        epoch = MAC_EPOCH if book.datemode else WINDOWS_EPOCH
        formats: dict[int, str] = {}  # xf index -> number format (percentages are written as such)
        text, number, date, boolean, error = (xlrd.XL_CELL_TEXT, xlrd.XL_CELL_NUMBER, xlrd.XL_CELL_DATE,
                                              xlrd.XL_CELL_BOOLEAN, xlrd.XL_CELL_ERROR)

        def number_format(r: int, c: int) -> str:
            xf = sheet.cell_xf_index(r, c)
            if xf not in formats:
                try:
                    formats[xf] = book.format_map[book.xf_list[xf].format_key].format_str
                except (IndexError, KeyError):
                    formats[xf] = "General"
            return formats[xf]

        for r in range(sheet.nrows):  # per-row ok: xlrd has parsed every cell in Python; at most 65,536 rows
            cells = []
            for c, (kind, value) in enumerate(zip(sheet.row_types(r), sheet.row_values(r))):
                if kind == text:
                    cells.append(XlsCell(value))
                elif kind == number:
                    cells.append(XlsCell(value, number_format(r, c)))
                elif kind == date:
                    cells.append(XlsCell(_date(value, number_format(r, c), epoch)))
                elif kind == boolean:
                    cells.append(XlsCell(bool(value)))
                elif kind == error:
                    cells.append(XlsCell(xlrd.error_text_from_code.get(value, "#VALUE!")))
                else:  # empty or blank
                    cells.append(EMPTY)
            yield cells

    def head(self) -> list[list[str | None]]:
        return [[text_of(cell) for cell in row] for row in islice(self.rows(), HEADER_SEARCH_ROWS)]


def _date(serial: float, number_format: str, epoch):
    """A date-formatted number as the .xlsx reader gives it (openpyxl's ``from_excel``: a time of day below 1,
    a duration for ``[h]:mm``, Excel's 1900 leap day), ``#VALUE!`` when it is no date."""
    from openpyxl.styles.numbers import is_timedelta_format
    from openpyxl.utils.datetime import from_excel

    try:
        return from_excel(serial, epoch, timedelta=is_timedelta_format(number_format))
    except (OverflowError, ValueError):
        return "#VALUE!"


def open_book(path: Path):
    """The workbook, sheets loaded when asked for, with its formats (for percentages and dates)."""
    try:
        import xlrd
        from xlrd.compdoc import CompDocError
    except ImportError:
        raise InputError(f"{path}: reading a legacy .xls workbook needs xlrd, which is not installed",
                         hint='pip install xlrd (it comes with kamcore), or save the workbook as .xlsx') from None
    try:
        # ragged rows: a row holds its cells up to its last one (padded to the widest row, one value in column
        # IV of row 65,536 made 16.7 million empty cells: 27 s and 318 MB for a 6 KB file)
        return xlrd.open_workbook(str(path), formatting_info=True, on_demand=True, ragged_rows=True,
                                  logfile=io.StringIO())
    except (xlrd.XLRDError, CompDocError) as exc:
        text = str(exc)
        if "encrypted" in text.lower():
            what = "an encrypted (password-protected) Excel 97-2003 workbook"
        elif "find workbook" in text.lower() or "OLE2" in text:
            what = "an OLE2 file without an Excel 97-2003 workbook in it (a password-protected .xlsx is one)"
        else:
            what = f"a damaged Excel 97-2003 workbook ({text})"
        hint = SAVE_AS if what.startswith("a damaged") else SAVE_AS + ", without its password"
        raise InputError(f"{path}: cannot read: this file is {what}", hint=hint) from None
    except (OSError, EOFError, ValueError, IndexError, KeyError, AssertionError, struct.error) as exc:
        raise _damaged(path, exc) from None


def _damaged(path: Path, exc: Exception) -> InputError:
    return InputError(f"{path}: cannot read: a damaged Excel 97-2003 workbook ({type(exc).__name__}: {exc})",
                      hint=SAVE_AS)


def read(path: Path, options: ReadOptions) -> Source:
    max_cells = env_limit("KAM_XLSX_MAX_CELLS", MAX_CELLS)
    size, limit = path.stat().st_size, env_limit("KAM_XLS_MAX_BYTES", MAX_BYTES)
    if size > limit:
        raise InputError(f"{path}: refused: {size:,} bytes, more than an Excel 97-2003 export holds ({limit:,}, "
                         "KAM_XLS_MAX_BYTES)", hint="export the data as CSV, or raise KAM_XLS_MAX_BYTES")
    book = open_book(path)
    try:
        sheets = [XlsSheet(book, i) for i in range(book.nsheets)]
        table = header_table(options.columns)
        sheet, head, index, note = choose_sheet(path, sheets, options.sheet, table, XlsSheet.head)
        where = f"{path} sheet {sheet.title!r}"

        def read_body(header_row: int, names: list[str], kinds: list, builder):
            return read_rows(sheet.rows(), where, header_row, names, kinds, max_cells, builder, text_of)

        return sheet_source(path, where, head, index, note, read_body, options, table, "xls")
    except InputError:
        raise
    except Exception as exc:  # xlrd's many errors for a damaged record
        raise _damaged(path, exc) from None
    finally:
        book.release_resources()


def sniff(head: bytes, suffix: str) -> int:
    """An OLE2 file: a .xls workbook, or else one kam explains (the ``other_formats`` importer claims it at
    97; this one reads it, or says what it holds)."""
    return 98 if head.startswith(OLE2) else 0


@hookimpl
def register_importers(register):
    register(Importer(name="xls", read=read, sniff=sniff, description="legacy Excel 97-2003 workbooks (.xls)"))
