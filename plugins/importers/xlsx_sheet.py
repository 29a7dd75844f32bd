"""A worksheet's rows read straight from its XML with expat, as openpyxl's read-only worksheet gives them.

openpyxl (read-only) builds an ElementTree element for every cell, value and inline string and a
descriptor-checked object for each inline string: about 14 us a cell, so 50,000 rows of 23 columns
took 16 s. This reader keeps openpyxl for the workbook (sheets, shared strings, styles, date system)
and reads the sheet's ``<sheetData>`` itself with a few expat callbacks per cell, giving the same
values: numbers as ``int`` or ``float``, dates and times through openpyxl's own ``from_excel`` for
the styles openpyxl counts as dates, booleans, errors and strings as text, inline strings without
their phonetic runs, missing rows as empty rows and missing cells as empty cells. A formula is kept
beside its cached value, so a formula without one is found in the same pass.

Hardened as openpyxl is with defusedxml: an entity declaration or an external reference in the XML
stops the read (defusedxml's own exceptions), and a cell reference past Excel's last column is
refused rather than allocated.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.parsers import expat

from openpyxl.utils.datetime import from_excel, from_ISO8601

from kamcore.errors import InputError

MAIN_NAMESPACES = ("http://schemas.openxmlformats.org/spreadsheetml/2006/main",
                   "http://purl.oclc.org/ooxml/spreadsheetml/main")
EXCEL_MAX_COLUMNS = 16_384
EXCEL_MAX_ROWS = 1_048_576
CHUNK = 1 << 16


def _tags(local: str) -> frozenset[str]:
    return frozenset(f"{ns}}}{local}" for ns in MAIN_NAMESPACES)


ROW, CELL, VALUE, FORMULA = _tags("row"), _tags("c"), _tags("v"), _tags("f")
INLINE, TEXT, RUN, PHONETIC = _tags("is"), _tags("t"), _tags("r"), _tags("rPh")


class Cell:
    """The attributes of openpyxl's ``ReadOnlyCell`` that the importer reads, and the cell's formula."""

    __slots__ = ("row", "column", "value", "data_type", "style", "formula", "formats")

    def __init__(self, row, column, value, data_type, style, formula, formats):
        self.row, self.column, self.value, self.data_type = row, column, value, data_type
        self.style, self.formula, self.formats = style, formula, formats

    @property
    def number_format(self) -> str:
        return self.formats.number_format(self.style)

    @property
    def coordinate(self) -> str:
        from openpyxl.utils import get_column_letter

        return f"{get_column_letter(self.column)}{self.row}"


class _Formats:
    """Style id -> number format, as ``ReadOnlyCell.number_format`` finds it."""

    def __init__(self, workbook):
        self.workbook, self.known = workbook, {}

    def number_format(self, style: int) -> str:
        if style not in self.known:
            from openpyxl.styles.numbers import BUILTIN_FORMATS, BUILTIN_FORMATS_MAX_SIZE

            try:
                number = self.workbook._cell_styles[style].numFmtId
                self.known[style] = (BUILTIN_FORMATS.get(number, "General") if number < BUILTIN_FORMATS_MAX_SIZE
                                     else self.workbook._number_formats[number - BUILTIN_FORMATS_MAX_SIZE])
            except IndexError:  # a style the workbook does not define: no format
                self.known[style] = "General"
        return self.known[style]


def _column(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number


def cell_value(kind: str, raw: str | None, inline_value: str | None, style: int, dates, durations, epoch,
               strings=None) -> tuple:
    """(value, data type) of a cell as openpyxl reads it, from its ``t`` attribute, the text of its ``<v>``
    (None when empty), its inline string and its style (``strings``: the shared strings, when ``raw`` of a
    ``t="s"`` cell is still the index)."""
    value, data_type = (None, kind) if kind == "inlineStr" else (raw, kind)
    if value is not None:
        if kind == "n":
            value = float(value) if ("." in value or "E" in value or "e" in value) else int(value)
            if style in dates:
                data_type = "d"
                try:
                    value = from_excel(value, epoch, timedelta=style in durations)
                except (OverflowError, ValueError):
                    data_type, value = "e", "#VALUE!"
        elif kind == "s":
            value = strings[int(value)]
        elif kind == "b":
            value = bool(int(value))
        elif kind == "str":
            data_type = "s"
        elif kind == "d":
            value = from_ISO8601(value)
    elif kind == "inlineStr" and inline_value is not None:
        value, data_type = inline_value, "s"
    return value, data_type


def rows(workbook, worksheet) -> Iterator[tuple]:
    """The sheet's rows from row 1, each a tuple of cells (``None`` value: empty) up to its last cell;
    a row missing from the XML is an empty tuple (as openpyxl's read-only worksheet gives its rows once
    ``reset_dimensions`` has dropped the declared size)."""
    strings = worksheet._shared_strings
    dates, durations, epoch = workbook._date_formats, workbook._timedelta_formats, workbook.epoch
    formats = _Formats(workbook)
    empty = Cell(0, 0, None, "n", 0, None, formats)
    done: list[tuple[int, tuple]] = []
    columns: dict[str, int] = {}
    # the parser's state, in closure variables (the handlers run a few times per cell)
    row_number = column = phonetic = 0
    cells: list[Cell] = []
    text: list[str] | None = None  # the characters of the <v>, <f> or <t> being read
    inline: list[str] | None = None  # the <t> texts of the inline string being read
    kind, reference, style, raw, formula, inline_value = "n", None, 0, None, None, None

    def start(name, attrs):
        nonlocal kind, reference, style, raw, formula, inline_value, text, inline, phonetic, row_number, column, cells
        if name in CELL:
            kind, reference, style = attrs.get("t", "n"), attrs.get("r"), attrs.get("s", 0)
            raw = formula = inline_value = None
        elif name in TEXT:
            if inline is not None and not phonetic:
                text = []
        elif name in INLINE:
            inline = []
        elif name in VALUE or name in FORMULA:
            text = []
        elif name in ROW:
            number = attrs.get("r")
            if number is None:
                row_number += 1
            else:
                try:
                    row_number = int(number)
                except ValueError:
                    value = float(number)
                    if not value.is_integer():
                        raise ValueError(f"{number} is not a valid row number") from None
                    row_number = int(value)
            column, cells = 0, []
        elif name in PHONETIC:
            phonetic += 1

    def characters(data):
        if text is not None:
            text.append(data)

    def end(name):
        nonlocal raw, formula, inline_value, text, inline, phonetic
        if name in CELL:
            cells.append(make_cell())
        elif name in TEXT:
            if text is not None:
                inline.append("".join(text))
                text = None
        elif name in INLINE:
            inline_value, inline = "".join(inline), None
        elif name in VALUE:
            raw, text = "".join(text) or None, None
        elif name in ROW:
            if cells:  # as wide as its last cell's column (openpyxl's rule, out-of-order cells included)
                width = cells[-1].column
                line = [empty] * width
                for one in cells:
                    if 1 <= one.column <= width:
                        line[one.column - 1] = one
                done.append((row_number, tuple(line)))
            else:
                done.append((row_number, ()))
        elif name in FORMULA:
            formula, text = "".join(text), None
        elif name in PHONETIC:
            phonetic -= 1

    def make_cell() -> Cell:
        nonlocal column
        number = int(style) if style else 0
        if reference:
            letters = reference.rstrip("0123456789")
            found = columns.get(letters)
            if found is None:
                if not (0 < len(letters) <= 3 and letters.isascii() and letters.isalpha()) \
                        or not reference[len(letters):].isdigit():
                    raise ValueError(f"{reference!r} is not a cell reference")
                found = columns[letters] = _column(letters)
            row, column = int(reference[len(letters):]), found
        else:
            column += 1
            row = row_number
        if column > EXCEL_MAX_COLUMNS:
            raise InputError(f"cell {reference or column} lies past Excel's last column: a damaged or hostile "
                             "workbook")
        value, data_type = cell_value(kind, raw, inline_value, number, dates, durations, epoch, strings)
        return Cell(row, column, value, data_type, number, formula, formats)

    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, characters
    parser.EntityDeclHandler = _no_entities
    parser.UnparsedEntityDeclHandler = _no_unparsed_entities
    parser.ExternalEntityRefHandler = _no_external_references
    counter = 1
    with workbook._archive.open(worksheet._worksheet_path) as source:
        while True:
            chunk = source.read(CHUNK)
            parser.Parse(chunk, not chunk)
            for number, line in done:
                while counter < number:  # rows the XML leaves out
                    counter += 1
                    yield ()
                if counter <= number:
                    counter += 1
                    yield line
            done.clear()
            if not chunk:
                break


def _no_entities(name, is_parameter_entity, value, base, sysid, pubid, notation_name):
    from defusedxml import EntitiesForbidden

    raise EntitiesForbidden(name, value, base, sysid, pubid, notation_name)


def _no_unparsed_entities(name, base, sysid, pubid, notation_name):
    from defusedxml import EntitiesForbidden

    raise EntitiesForbidden(name, None, base, sysid, pubid, notation_name)


def _no_external_references(context, base, sysid, pubid):
    from defusedxml import ExternalReferenceForbidden

    raise ExternalReferenceForbidden(context, base, sysid, pubid)
