"""XLSX importer: the workbook through openpyxl in read-only mode, the sheet's cells through
:mod:`.xlsx_sheet` (expat, the values openpyxl gives, three times quicker), both hardened as defusedxml is;
a sheet whose XML is plain, and a plain shared-string table, in bulk through :mod:`.xlsx_columns` (the same
values, twice as quick again).

- **Safety first.** Before openpyxl inflates anything, the zip directory is checked: the total
  uncompressed size, each member's compression ratio (a zip bomb is small on disk and huge inflated)
  and the workbook's parts. openpyxl must be using defusedxml (it does when defusedxml is installed),
  so entity expansion and external entities are refused; the sheet reader refuses them too. The
  sheet's declared dimension is never trusted (nor measured: what openpyxl's ``reset_dimensions``
  would discard is not read at all): rows are read until the XML ends, and the cell and row counts are
  limited while reading. Limits: :data:`MAX_BYTES`, :data:`MAX_RATIO`, :data:`MAX_CELLS` (override with
  ``KAM_XLSX_MAX_BYTES``, ``KAM_XLSX_MAX_RATIO``, ``KAM_XLSX_MAX_CELLS``).
- **The sheet**: ``--sheet NAME`` (or its 1-based number); by default the first sheet whose header row
  names canonical columns.
- **The header row** is found past title rows, merged title cells and report filters
  (``kamcore.importing.find_header``); the rows skipped are reported.
- **Values become text** as a person reads them: text byte for byte (IDs keep their zeros), integers
  without ``.0``, percentages as ``35%``, dates as ISO text (``2024-03-01``). Numbers that look like
  Excel serial dates in a date column are passed on as numbers with a warning; the normaliser reads
  them as dates and flags each row. A formula with no cached value
  (the workbook was saved by a program that does not calculate) is read as empty and reported.
- **Totals rows** (合计, 总计, 小计, Total …) are left out with a warning; empty rows are skipped.
- ``record_lines`` maps each record to its row number in the sheet.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import zipfile
from pathlib import Path

from kamcore import hookimpl
from kamcore.errors import InputError
from kamcore.headers import header_key
from kamcore.importing import (HEADER_SEARCH_ROWS, FrameBuilder, column_names, find_header, header_matches,
                               header_table, log, totals_label, warn)
from kamcore.registry import Importer, ReadOptions, Source

MAX_BYTES = 2 << 30  # total uncompressed size of the workbook's parts
MAX_RATIO = 200  # uncompressed / compressed size of one part (parts under GRACE_BYTES are not checked)
GRACE_BYTES = 1 << 20
MAX_CELLS = 30_000_000  # cells read from the sheet (empty ones inside the table included)
SERIAL_MIN, SERIAL_MAX = 1, 2_958_465  # Excel's serial dates: 1900-01-01 … 9999-12-31
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def env_limit(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise InputError(f"{name}={value!r} is not a number") from None


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} bytes"


def check_zip(path: Path) -> None:
    """Refuse the workbook, before inflating anything, when its zip directory declares a zip bomb or it
    is not an xlsx workbook."""
    max_bytes, max_ratio = env_limit("KAM_XLSX_MAX_BYTES", MAX_BYTES), env_limit("KAM_XLSX_MAX_RATIO", MAX_RATIO)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a readable xlsx workbook (a damaged zip file: {exc})",
                         hint="open it in Excel and save it again as .xlsx, or export CSV") from None
    try:
        infos = archive.infolist()
        names = {info.filename for info in infos}
        if "xl/workbook.bin" in names:
            raise InputError(f"{path}: an Excel binary workbook (.xlsb), which kam does not read",
                             hint="save it as .xlsx or CSV UTF-8 in Excel")
        if "xl/workbook.xml" not in names:  # a zip of files, such as a workbook or several exports zipped
            files = [info.filename for info in infos if not info.is_dir()]
            held = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "") or "nothing"
            raise InputError(f"{path}: a zip archive of {held}, not an Excel workbook (no xl/workbook.xml)",
                             hint="unzip it and score what it holds (kam reads a zip of one CSV or JSON Lines "
                                  "file as it is)")
        total = 0
        for info in infos:
            if info.flag_bits & 0x1:
                raise InputError(f"{path}: part {info.filename} is encrypted",
                                 hint="remove the password in Excel first")
            total += info.file_size
            if info.file_size > GRACE_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
                ratio = info.file_size / max(info.compress_size, 1)
                raise InputError(f"{path}: refused before inflating: part {info.filename} would grow "
                                 f"{ratio:,.0f} times (from {_size(info.compress_size)} to {_size(info.file_size)}; "
                                 f"the limit is {max_ratio} times): a zip bomb, or an unusually repetitive workbook",
                                 hint="if the file is genuine, export it as CSV, or raise KAM_XLSX_MAX_RATIO")
        if total > max_bytes:
            raise InputError(f"{path}: refused before inflating: the workbook would inflate to {_size(total)} "
                             f"(the limit is {_size(max_bytes)}): a zip bomb, or a workbook too large to read as xlsx",
                             hint="export it as CSV, or raise KAM_XLSX_MAX_BYTES")
    finally:
        archive.close()


def number_text(value: float | int) -> str:
    """A number as a person reads it: ``120`` not ``120.0``; floats in their shortest exact form."""
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value.is_integer():
        return str(int(value))
    return repr(value)


def unescape(text: str) -> str:
    """Undo OOXML's ``_xHHHH_`` escapes of control characters (and ``_x005F_`` for a literal ``_``)."""
    if "_x" not in text:
        return text

    def one(match: re.Match) -> str:
        code = int(match.group(1), 16)
        return chr(code) if code < 0x20 or code in (0x5F, 0xFFFE, 0xFFFF) else match.group(0)

    return _ESCAPE.sub(one, text)


def cell_text(cell) -> str | None:
    """The text of one cell (see the module docstring)."""
    value = cell.value
    if value is None:
        return None
    if isinstance(value, str):
        return unescape(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        if "%" in (getattr(cell, "number_format", None) or ""):
            return number_text(round(value * 100, 10)) + "%"
        return number_text(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _open_workbook(path: Path):
    """The workbook, read-only, with the cached values of formulas (the sheet reader sees the formulas)."""
    from openpyxl.xml import DEFUSEDXML

    if not DEFUSEDXML:
        raise InputError("reading xlsx needs defusedxml, which guards against XML attacks",
                         hint="pip install defusedxml (and do not set OPENPYXL_DEFUSEDXML=False)")
    handle = open(path, "rb")  # a file object: openpyxl would refuse a path not named .xlsx
    try:
        reader = _workbook_reader()(handle, read_only=True, data_only=True, keep_links=False)
        reader.read()  # what openpyxl.load_workbook does
        workbook = reader.wb
    except Exception as exc:  # openpyxl raises many types for a damaged part; all mean "cannot read"
        handle.close()
        raise _xml_error(path, exc) from None
    workbook.kam_handle = handle  # closed with the workbook by _close
    return workbook


def _workbook_reader():
    """openpyxl's workbook reader, minus what kam does not use: a read-only worksheet measures its sheet when
    it is made, and a sheet that does not declare its size (kam's own XLSX output, other streaming
    writers) is then parsed whole before a row is read; chartsheets hold no rows."""
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    class Sheet(ReadOnlyWorksheet):
        def _get_size(self):  # never trusted anyway (reset_dimensions): rows are read until the XML ends
            pass

    class Reader(ExcelReader):
        def read_strings(self):  # a plain table in bulk (xlsx_columns), else element by element
            from openpyxl.xml.constants import SHARED_STRINGS

            from .xlsx_columns import shared_strings

            part = self.package.find(SHARED_STRINGS)
            if part is not None:
                found = shared_strings(self.archive, part.PartName[1:])
                self.shared_strings = found if found is not None else read_string_table(self.archive, part.PartName[1:])

        def read_worksheets(self):
            for sheet, rel in self.parser.find_sheets():
                if rel.target in self.valid_files and "chartsheet" not in rel.Type:
                    worksheet = Sheet(self.wb, sheet.name, rel.target, self.shared_strings)
                    worksheet.sheet_state = sheet.state
                    self.wb._sheets.append(worksheet)

    return Reader


def read_string_table(archive, member: str) -> list[str]:
    """The shared strings as openpyxl reads them, without its removal of every ``x005F_``: the escapes are
    undone once, with the cell's text (:func:`unescape`), as Excel does. (Removed first and undone again, a
    literal ``_x000D_``, stored ``_x005F_x000D_`` by Excel and xlsxwriter, became a carriage return.)"""
    from openpyxl.cell.text import Text
    from openpyxl.xml.constants import SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse  # defusedxml's, checked when the workbook was opened

    strings, item = [], f"{{{SHEET_MAIN_NS}}}si"
    with archive.open(member) as source:
        for _, node in iterparse(source):
            if node.tag == item:
                strings.append(Text.from_tree(node).content)
                node.clear()
    return strings


def _close(workbook) -> None:
    workbook.close()
    workbook.kam_handle.close()


def _xml_error(path: Path, exc: Exception) -> InputError:
    from defusedxml import DefusedXmlException

    if isinstance(exc, InputError):
        return exc
    cause: BaseException | None = exc
    while cause is not None:  # openpyxl wraps what the XML parser raised
        if isinstance(cause, DefusedXmlException):
            return InputError(f"{path}: refused: the workbook's XML declares entities or a DTD "
                              f"({type(cause).__name__}), which an Excel workbook never needs (an XML attack)",
                              hint="export the data again from the system it came from")
        cause = cause.__cause__ or cause.__context__
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return InputError(f"{path}: cannot read the workbook: {type(exc).__name__}: {first}",
                      hint="open it in Excel and save it again as .xlsx, or export CSV")


def _worksheets(workbook) -> list:
    return [ws for ws in workbook.worksheets if hasattr(ws, "iter_rows")]  # per-row ok: worksheets, not chartsheets


def _rows(worksheet):
    """The sheet's rows, never trusting its declared dimension: read from its XML by :mod:`.xlsx_sheet`,
    with the values openpyxl's read-only worksheet gives, and each cell's formula."""
    from .xlsx_sheet import rows

    return rows(worksheet.parent, worksheet)


def _head(worksheet) -> list[list[str | None]]:
    rows = []
    for row in _rows(worksheet):  # per-row ok: the first HEADER_SEARCH_ROWS rows, to find the header
        rows.append([cell_text(cell) for cell in row])
        if len(rows) >= HEADER_SEARCH_ROWS:
            break
    return rows


def choose_sheet(path: Path, sheets: list, wanted: str | None, table: dict, head_of) -> tuple:
    """(sheet, first rows, header index, note) for ``--sheet`` or the first sheet with a known header; ``sheets``
    have a ``title``, ``head_of(sheet)`` gives a sheet's first rows as text (the .xls importer's too)."""
    titles = [ws.title for ws in sheets]
    if not sheets:
        raise InputError(f"{path}: the workbook has no worksheet")
    if wanted is not None:
        chosen = next((ws for ws in sheets if ws.title == wanted), None)
        chosen = chosen or next((ws for ws in sheets if ws.title.strip().lower() == wanted.strip().lower()), None)
        if chosen is None and wanted.strip().isdigit() and 1 <= int(wanted) <= len(sheets):
            chosen = sheets[int(wanted) - 1]
        if chosen is None:
            raise InputError(f"{path}: no sheet {wanted!r}; the sheets are {', '.join(map(repr, titles))}",
                             hint="pass --sheet with one of these names, or its number (1 = first)")
        head = head_of(chosen)
        return chosen, head, find_header(head, table), None
    first_with_data = None
    for ws in sheets:
        head = head_of(ws)
        if not any(any(v is not None and v.strip() for v in row) for row in head):
            continue
        index = find_header(head, table)
        if header_matches(head[index], table) >= 2:
            note = None if ws is sheets[0] else f"{path}: read sheet {ws.title!r}, the first with a header kam knows"
            return ws, head, index, note
        first_with_data = first_with_data or (ws, head, index)
    if first_with_data is None:
        raise InputError(f"{path}: every sheet is empty ({', '.join(map(repr, titles))})")
    ws, head, index = first_with_data
    return ws, head, index, (f"{path}: no sheet has a header kam recognises; read sheet {ws.title!r} "
                             "(map its columns under [columns] in kam.toml, or pass --sheet)")


def read(path: Path, options: ReadOptions) -> Source:
    return _read(path, options)


def _read(path: Path, options: ReadOptions, rows_by: str = "auto") -> Source:
    """:func:`read`; ``rows_by``: "auto" (in bulk when the sheet's XML is plain, else a cell at a time),
    "bulk" or "cells" (one way only; "bulk" refuses a sheet that is not plain)."""
    from .xlsx_columns import NotPlain

    max_cells = env_limit("KAM_XLSX_MAX_CELLS", MAX_CELLS)
    check_zip(path)
    table = header_table(options.columns)
    workbook = _open_workbook(path)
    try:
        sheet, head, index, sheet_note = choose_sheet(path, _worksheets(workbook), options.sheet, table, _head)
        where = f"{path} sheet {sheet.title!r}"

        def read_body(header_row: int, names: list[str], kinds: list, builder):
            body = _read_in_bulk(sheet, header_row, names, kinds, max_cells, builder) if rows_by != "cells" else None
            if body is None:  # not plain XML (xlsx_columns): a cell at a time
                if rows_by == "bulk":
                    raise NotPlain(f"{where}: not plain sheet XML")
                body = read_rows(_rows(sheet), where, header_row, names, kinds, max_cells, builder)
            log.debug("%s: rows read %s", where, "in bulk" if body.in_bulk else "a cell at a time (the XML is not plain)")
            return body

        return sheet_source(path, where, head, index, sheet_note, read_body, options, table, "xlsx")
    except Exception as exc:
        if not isinstance(exc, InputError):
            raise _xml_error(path, exc) from None  # openpyxl's many errors for a damaged part: "cannot read"
        raise
    finally:
        _close(workbook)


def sheet_source(path: Path, where: str, head: list, index: int, sheet_note: str | None, read_body, options: ReadOptions,
                 table: dict, encoding: str) -> Source:
    """The chosen sheet's rows as a :class:`Source`: header, notes, record lines. ``read_body(header_row, names,
    kinds, builder)`` reads the data rows into the builder and gives an :class:`.xlsx_columns.Body` (the
    workbook's own reader: in bulk or a cell at a time for .xlsx, :mod:`.xls_importer` for .xls); ``table``
    is the header table the sheet was chosen with."""
    from openpyxl.utils import get_column_letter

    from kamcore.schema import OPPORTUNITY

    builder = None
    try:
        notes = [warn(sheet_note)] if sheet_note else []
        header_row = index + 1
        header = head[index]
        while header and (header[-1] is None or not str(header[-1]).strip()):
            header = header[:-1]
        if not header:
            raise InputError(f"{where}: no header row in the first {HEADER_SEARCH_ROWS} rows")
        names, repeated = column_names(header, where, options.columns)
        notes += repeated
        if header_row > 1:
            notes.append(warn(f"{where}: the header is on row {header_row}; the {header_row - 1} row(s) above it "
                              "(titles, merged cells or report filters) were skipped"))
        kinds = [OPPORTUNITY[table[k]].kind if (k := header_key(n)) in table and table[k] in OPPORTUNITY else None
                 for n in names]
        builder = FrameBuilder(names, prefix=f"kam-{encoding}-", on_rows=options.on_rows)
        body = read_body(header_row, names, kinds, builder)
        uncached, uncached_count, totals, blanks = body.uncached, body.uncached_count, body.totals, body.blanks
        serial, outside, rows = body.serial, body.outside, body.rows
        if uncached_count:
            notes.append(warn(f"{where}: {uncached_count} formula cell(s) have no cached value and were read as "
                              f"empty: {', '.join(uncached)}{' …' if uncached_count > len(uncached) else ''} "
                              "(the workbook was saved by a program that does not calculate; open and save it in "
                              "Excel)"))
        if totals:
            notes.append(warn(f"{where}: {len(totals)} totals row(s) left out: {', '.join(totals[:5])}"
                              f"{' …' if len(totals) > 5 else ''}"))
        if blanks:
            notes.append(f"{where}: {blanks} empty row(s) inside the table were skipped")
        for first, last, first_row in _runs(outside):  # one note per value that opened columns, not per column
            if first == last:
                notes.append(warn(f"{where}: column {get_column_letter(first + 1)} has values (from row {first_row}) "
                                  f"but no header; they are read as 'column_{first + 1}'"))
            else:
                notes.append(warn(f"{where}: columns {get_column_letter(first + 1)} to {get_column_letter(last + 1)} "
                                  f"have no header: a value past the header (from row {first_row}) opened them; they "
                                  f"are read as 'column_{first + 1}' to 'column_{last + 1}'"))
        for i, (count, first) in serial.items():
            day = dt.date(1899, 12, 30) + dt.timedelta(days=int(first))
            notes.append(warn(f"{where}: column {names[i]!r} has {count} number(s) that look like Excel serial "
                              f"dates (e.g. {number_text(first)} = {day.isoformat()}); each is read as that date and "
                              "flagged in value_flags: format the column as dates in Excel"))
        frame = builder.frame()
    except BaseException:
        if builder is not None:
            builder.cleanup()
        raise

    def record_lines(indexes: list[int]) -> dict[int, int]:
        return {i: rows[i] for i in indexes if 0 <= i < len(rows)}

    notes.insert(0, f"{where}: {builder.rows} row(s) read, header on row {header_row}")
    return Source(path=path, frame=frame, record_lines=record_lines, encoding=encoding, delimiter=None,
                  header_line=header_row, notes=tuple(notes), cleanup=builder.cleanup)


def _runs(outside: dict[int, int]) -> list[tuple[int, int, int]]:
    """(first, last column index, first row) of each run of consecutive columns opened from one row."""
    runs: list[list[int]] = []
    for index, row in sorted(outside.items()):
        if runs and runs[-1][1] == index - 1 and runs[-1][2] == row:
            runs[-1][1] = index
        else:
            runs.append([index, index, row])
    return [tuple(run) for run in runs]


def _read_in_bulk(sheet, header_row: int, names: list[str], kinds: list, max_cells: int, builder):
    """The data rows by :func:`.xlsx_columns.read_body`, or None when the sheet's XML is not plain."""
    from kamcore.importing import is_totals_label
    from kamcore.schema import DATE

    from .xlsx_columns import read_body

    dates = [i for i, kind in enumerate(kinds) if kind == DATE]
    return read_body(sheet.parent, sheet, header_row, len(names), dates, max_cells, builder, cell_text, _looks_serial,
                     is_totals_label)


def read_rows(sheet_rows, where: str, header_row: int, names: list[str], kinds: list, max_cells: int, builder,
              text_of=cell_text):
    """The data rows a cell at a time, into ``builder``: an :class:`.xlsx_columns.Body`. ``sheet_rows`` gives
    each row's cells (``value``, ``number_format``, ``formula``, ``coordinate``, as openpyxl's), from row 1:
    :mod:`.xlsx_sheet`'s, or the .xls importer's, whose ``text_of`` leaves text as it is (no OOXML escapes)."""
    from kamcore.schema import DATE

    from .xlsx_columns import Body
    from .xlsx_sheet import EXCEL_MAX_ROWS

    body = Body()
    rows, serial, outside, totals, uncached = body.rows, body.serial, body.outside, body.totals, body.uncached
    width = len(names)
    cells = blank_run = 0
    for number, row in enumerate(sheet_rows, start=1):  # per-row ok: a parser's cells, a cell at a time
        if number > EXCEL_MAX_ROWS:
            raise InputError(f"{where}: more rows than Excel allows ({EXCEL_MAX_ROWS:,}): a damaged or "
                             "hostile workbook")
        cells += len(row)
        if cells > max_cells:
            raise InputError(f"{where}: refused: more than {max_cells:,} cells (the limit)",
                             hint="export the data as CSV, or raise KAM_XLSX_MAX_CELLS")
        if number <= header_row:
            continue
        values = [text_of(cell) for cell in row]
        if not any(v is not None and v.strip() for v in values):
            blank_run += 1
            continue
        label = totals_label(values)
        if label is not None:
            totals.append(f"row {number} ({label})")
            continue
        for cell in row:
            if cell.formula is not None and cell.value is None:
                body.uncached_count += 1
                if len(uncached) < 5:
                    uncached.append(f"{cell.coordinate} ({('=' + cell.formula)[:40]})")
        body.blanks += blank_run
        blank_run = 0
        if len(values) > width:
            for extra in range(width, len(values)):
                if values[extra] is not None and values[extra].strip():
                    while width <= extra:
                        width += 1
                        builder.add_column(f"column_{width}")
                        outside.setdefault(width - 1, number)
            values = values[:width]
        elif len(values) < width:
            values = values + [None] * (width - len(values))
        for i, kind in enumerate(kinds):
            if kind == DATE and i < len(row) and _looks_serial(row[i]):
                count, first = serial.get(i, (0, row[i].value))
                serial[i] = (count + 1, first)
        builder.add(values)
        rows.append(number)
    return body


def _looks_serial(cell) -> bool:
    value = cell.value
    return (isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
            and SERIAL_MIN <= value <= SERIAL_MAX and "%" not in (cell.number_format or ""))


def sniff(head: bytes, suffix: str) -> int:
    """A zip whose first entries are an Office Open XML spreadsheet's; the suffix does not matter."""
    if not head.startswith(b"PK\x03\x04"):
        return 0
    if b"xl/" in head or b"[Content_Types].xml" in head:
        return 95
    return 40 if suffix in (".xlsx", ".xlsm") else 20


@hookimpl
def register_importers(register):
    register(Importer(name="xlsx", read=read, sniff=sniff,
                      description="Excel .xlsx/.xlsm (openpyxl read-only, defusedxml); header row, sheet, totals "
                                  "rows and formulas detected; zip bombs refused"))

