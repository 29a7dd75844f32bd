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

from kamcore.errors import InputError

MAIN_NAMESPACES = ("http://schemas.openxmlformats.org/spreadsheetml/2006/main",
                   "http://purl.oclc.org/ooxml/spreadsheetml/main")
EXCEL_MAX_COLUMNS = 16_384
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


def rows(workbook, worksheet) -> Iterator[tuple]:
    """The sheet's rows from row 1, each a tuple of cells (``None`` value: empty) up to its last cell;
    a row missing from the XML is an empty tuple (as openpyxl's read-only worksheet gives its rows once
    ``reset_dimensions`` has dropped the declared size)."""
    from openpyxl.utils.datetime import from_excel, from_ISO8601

    strings = worksheet._shared_strings
    dates, durations, epoch = workbook._date_formats, workbook._timedelta_formats, workbook.epoch
    formats = _Formats(workbook)
    empty = Cell(0, 0, None, "n", 0, None, formats)
    done: list[tuple[int, tuple]] = []
    state = {"row": 0, "column": 0, "cells": [], "text": None, "inline": None, "phonetic": 0}
    cell: dict = {}

    def cell_start(attrs):
        cell.clear()
        cell["t"], cell["r"], cell["s"] = attrs.get("t", "n"), attrs.get("r"), attrs.get("s", 0)

    def value_start(attrs):
        state["text"] = []

    def inline_start(attrs):
        state["inline"] = []

    def phonetic_start(attrs):
        state["phonetic"] += 1

    def text_start(attrs):
        if state["inline"] is not None and not state["phonetic"]:
            state["text"] = []

    def row_start(attrs):
        number = attrs.get("r")
        if number is None:
            state["row"] += 1
        else:
            try:
                state["row"] = int(number)
            except ValueError:
                value = float(number)
                if not value.is_integer():
                    raise ValueError(f"{number} is not a valid row number") from None
                state["row"] = int(value)
        state["column"], state["cells"] = 0, []

    def value_end():
        cell["v"] = "".join(state["text"]) or None
        state["text"] = None

    def formula_end():
        cell["f"] = "".join(state["text"])
        state["text"] = None

    def text_end():
        if state["text"] is not None:
            state["inline"].append("".join(state["text"]))
            state["text"] = None

    def phonetic_end():
        state["phonetic"] -= 1

    def inline_end():
        cell["is"] = "".join(state["inline"])
        state["inline"] = None

    def cell_end():
        state["cells"].append(_cell())

    def row_end():
        cells = state["cells"]
        if cells:  # as wide as its last cell's column (openpyxl's rule, out-of-order cells included)
            width = cells[-1].column
            line = [empty] * width
            for one in cells:
                if 1 <= one.column <= width:
                    line[one.column - 1] = one
            done.append((state["row"], tuple(line)))
        else:
            done.append((state["row"], ()))

    starts = {**dict.fromkeys(CELL, cell_start), **dict.fromkeys(VALUE | FORMULA, value_start),
              **dict.fromkeys(INLINE, inline_start), **dict.fromkeys(PHONETIC, phonetic_start),
              **dict.fromkeys(TEXT, text_start), **dict.fromkeys(ROW, row_start)}
    ends = {**dict.fromkeys(CELL, cell_end), **dict.fromkeys(VALUE, value_end), **dict.fromkeys(FORMULA, formula_end),
            **dict.fromkeys(TEXT, text_end), **dict.fromkeys(PHONETIC, phonetic_end),
            **dict.fromkeys(INLINE, inline_end), **dict.fromkeys(ROW, row_end)}
    find_start, find_end = starts.get, ends.get

    def start(name, attrs):
        handler = find_start(name)
        if handler is not None:
            handler(attrs)

    def end(name):
        handler = find_end(name)
        if handler is not None:
            handler()

    def text(data):
        if state["text"] is not None:
            state["text"].append(data)

    columns: dict[str, int] = {}

    def _cell() -> Cell:
        kind, reference, style = cell["t"], cell["r"], cell["s"]
        style = int(style) if style else 0
        raw = None if kind == "inlineStr" else cell.get("v")
        if reference:
            letters = reference.rstrip("0123456789")
            column = columns.get(letters)
            if column is None:
                if not (0 < len(letters) <= 3 and letters.isascii() and letters.isalpha()) \
                        or not reference[len(letters):].isdigit():
                    raise ValueError(f"{reference!r} is not a cell reference")
                column = columns[letters] = _column(letters)
            row = int(reference[len(letters):])
            state["column"] = column
        else:
            state["column"] += 1
            row, column = state["row"], state["column"]
        if column > EXCEL_MAX_COLUMNS:
            raise InputError(f"cell {reference or column} lies past Excel's last column: a damaged or hostile "
                             "workbook")
        value, data_type = raw, kind
        if raw is not None:
            if kind == "n":
                value = float(raw) if ("." in raw or "E" in raw or "e" in raw) else int(raw)
                if style in dates:
                    data_type = "d"
                    try:
                        value = from_excel(value, epoch, timedelta=style in durations)
                    except (OverflowError, ValueError):
                        data_type, value = "e", "#VALUE!"
            elif kind == "s":
                value = strings[int(raw)]
            elif kind == "b":
                value = bool(int(raw))
            elif kind == "str":
                data_type = "s"
            elif kind == "d":
                value = from_ISO8601(raw)
        elif kind == "inlineStr" and "is" in cell:
            value, data_type = cell["is"], "s"
        return Cell(row, column, value, data_type, style, cell.get("f"), formats)

    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
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
