"""A worksheet's data rows read in bulk: many rows of XML at a time cut into cells by polars' regex kernels,
each distinct value turned into text once, by the code :mod:`.xlsx_sheet` uses for every cell.

The sheet reader's expat callbacks cost about 4 us a cell (50,000 rows of 23 columns: 4.3 s); here the XML
of a few thousand rows is one string, split at ``<row`` and ``<c `` and matched against one strict pattern
per cell in Rust, so Python runs per distinct number, date or code, not per cell. A plain shared-string
table is read the same way (:func:`shared_strings`), where openpyxl builds an element per string.

Only plain XML, the usual layout of a saved or exported workbook, is read this way: every row and
cell carries its reference, rows come in order and cells in column order, values are ``<v>`` numbers,
booleans, errors, shared strings or plain inline strings ``<is><t>…</t></is>``, with a formula's cached
value beside it. Anything else (a rich-text or phonetic inline string, a character reference, a comment,
CDATA or a DTD, a namespace prefix, a formula without a cached value, a control character) makes :func:`read_body` return None, and the importer reads the sheet with
:mod:`.xlsx_sheet` from its first row: the same rows, notes and errors either way (tests compare the two).
"""

from __future__ import annotations

import functools
import re
from array import array
from collections.abc import Callable

from kamcore.importing import TOTAL_WORDS

from .xlsx_sheet import EXCEL_MAX_COLUMNS, EXCEL_MAX_ROWS, MAIN_NAMESPACES, Cell, _Formats, cell_value

CHUNK = 8 << 20  # bytes of the sheet's XML inflated at a time
PROLOG_BYTES = 16 << 20  # what may come before <sheetData> (column widths, views …)
KNOWN_VALUES = 1 << 18  # distinct values kept converted (amounts and ids may differ on every row)
_TEXT = r'(?:[^<&]|&(?:amp|lt|gt|quot|apos);)*'  # character data with the five predefined entities only
_S = r'[ \t\n]'  # XML's white space (line ends are read as LF first)
_ATTRIBUTE = _S + r'+[A-Za-z]+="[^"<&]*"'
_CELL = (  # what follows "<c ": its reference, style and type, any other attributes; then nothing, or a
    # formula, a value, an inline string; the row's end after its last cell
    r'^r="([A-Z]{1,3})([1-9][0-9]{0,6})"(?:' + _S + r'+s="([0-9]{1,9})")?(?:' + _S + r'+t="([A-Za-z]+)")?'
    r'(?:' + _S + r'+s="([0-9]{1,9})")?'  # a style after the type, as some writers put it
    r'((?:' + _ATTRIBUTE + r')*)' + _S + r'*(?:/>|>' + _S + r'*'
    r'(<f(?:' + _ATTRIBUTE + r')*' + _S + r'*(?:/>|>' + _TEXT + r'</f>)' + _S + r'*)?'
    r'(?:<v>(' + _TEXT + r')</v>' + _S + r'*|<v' + _S + r'*/>' + _S + r'*)?'
    r'(?:<is>' + _S + r'*<t(?:' + _S + r'+xml:space="preserve")?>(' + _TEXT + r')</t>' + _S + r'*</is>' + _S + r'*)?'
    r'</c>)' + _S + r'*(</row>)?' + _S + r'*$')
_CELL_GROUPS = ("letters", "ref_row", "style", "kind", "style_after", "more", "formula", "v", "inline", "end")
_ROW = (r'^((?:' + _S + r'+[A-Za-z][\w:]*="[^"<&]*")*)' + _S + r'*(/>|>)' + _S + r'*(</row>)?' + _S + r'*$')
_SHARED = (  # what follows "<si>" in a plain shared-string table: one <t>, empty or not
    r'^(?:(<t(?:' + _S + r'+xml:space="preserve")?' + _S + r'*/>)|<t(?:' + _S + r'+xml:space="preserve")?>('
    + _TEXT + r')</t>)' + _S + r'*</si>' + _S + r'*$')
_ROOT = re.compile(r'<worksheet\s[^>]*\bxmlns="([^"]*)"')
_SST_ROOT = re.compile(r'<sst\s[^>]*\bxmlns="([^"]*)"[^>]*>')
_ENCODING = re.compile(r"\ufeff?<\?xml[^>]*encoding=[\"']([^\"']*)[\"']")
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))
_KINDS = ("n", "s", "b", "e", "str", "inlineStr", "d")
# bytes no XML document holds: control characters
_CONTROL = bytes([*range(0, 9), 11, 12, *range(14, 32)])
# what a totals label loses when it is cleaned: white space, invisible characters, colons (as NFKC reads them)
_NOT_COUNTED = r"[\s\x{200b}\x{200c}\x{200d}\x{2060}\x{feff}\x{ad}:\x{ff1a}\x{fe55}\x{fe13}]"


def _foreign(data: bytes) -> bool:
    """Whether XML bytes hold what expat refuses (control characters, U+FFFE, U+FFFF, "]]>" in text): the
    bulk reader leaves them to it, for its message."""
    return (len(data.translate(None, _CONTROL)) != len(data) or b"\xef\xbf\xbe" in data or b"\xef\xbf\xbf" in data
            or b"]]>" in data)


def _other_encoding(head: str) -> bool:
    """Whether the XML declaration names an encoding other than UTF-8."""
    declared = _ENCODING.match(head)
    return declared is not None and declared.group(1).lower().replace("-", "") != "utf8"


def shared_strings(archive, member: str) -> list[str] | None:
    """The workbook's shared strings as :func:`.xlsx_importer.read_string_table` reads them (each ``<si>``'s
    text, its ``_xHHHH_`` escapes left for the cell's text to undo), when every one is a plain
    ``<si><t>…</t></si>``; None otherwise (rich text, phonetic runs …: read element by element). Parsing an
    element per string costs about 10 us each: an Excel export of 50,000 rows holds a hundred thousand."""
    import polars as pl

    from openpyxl.xml.constants import SHEET_MAIN_NS

    data = archive.read(member)
    if _foreign(data) or b"&#" in data or b"<!" in data:
        return None
    try:
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        return None
    root = _SST_ROOT.search(text)
    end = text.rfind("</sst>")
    if (root is None or root.group(1) != SHEET_MAIN_NS or end < root.end() or "<?" in text[root.end():]
            or _other_encoding(text) or text[end + len("</sst>"):].strip()):
        return None
    pieces = text[root.end():end].split("<si>")
    if pieces[0].strip():
        return None
    items = pl.DataFrame({"item": pieces[1:]}, schema={"item": pl.String}).select(
        pl.col("item").str.extract_groups(_SHARED).struct.rename_fields(["empty", "text"]).struct.unnest())
    if (items["empty"].is_null() & items["text"].is_null()).any():
        return None  # an item the pattern does not read
    return items.select(_decoded(pl.col("text")).fill_null("")).to_series().to_list()


class NotPlain(Exception):
    """The sheet's XML has something the bulk reader leaves to :mod:`.xlsx_sheet`."""


class Body:
    """What a read of the data rows gives besides the rows themselves (in the importer's FrameBuilder): their
    sheet row numbers, what the notes report, and whether they were read in bulk."""

    def __init__(self, in_bulk: bool = False):
        self.in_bulk = in_bulk
        self.rows = array("I")
        self.totals: list[str] = []
        self.blanks = 0
        self.serial: dict[int, tuple[int, float]] = {}  # column index -> (count, first value)
        self.uncached_count = 0
        self.uncached: list[str] = []
        self.outside: dict[int, int] = {}  # column index beyond the header -> first row


def read_body(workbook, worksheet, header_row: int, width: int, date_columns: list[int], max_cells: int,
              builder, text_of: Callable, serial_of: Callable, is_totals: Callable) -> Body | None:
    """The data rows (after ``header_row``) of a sheet whose XML is plain (see the module docstring), each
    ``width`` columns wide (the header's) or wider from a row with a value past them, as the sheet reader
    reads them, added to ``builder``; None, with nothing added, when it is not plain.
    ``text_of(cell)`` and ``serial_of(cell)`` are the importer's rules for one cell (its text; whether it
    looks like an Excel serial date), ``is_totals(text)`` whether a row's first filled value says it
    is a totals row."""
    import polars as pl

    converter = _Converter(workbook, worksheet, text_of, serial_of, is_totals)
    body = Body(in_bulk=True)
    # across chunks: the last row number seen, the cells counted (as the sheet reader counts them), the last
    # row read as data, the filled rows after the header so far and up to that last one (the rest are blank)
    # and the columns so far (the header's, then any a value past it opened)
    state = {"last_row": 0, "cells": 0, "last_accepted": header_row, "filled_to_accepted": 0, "filled": 0,
             "width": width}
    try:
        for text in _row_chunks(workbook, worksheet):
            cells = _cells(pl, text, state)
            if cells is None:
                continue
            before = state["width"]
            frame = _rows_of(pl, cells, converter, header_row, date_columns, body, state, max_cells)
            for index in range(before, state["width"]):  # named as the sheet reader names them
                builder.add_column(f"column_{index + 1}")
            if frame is not None and frame.height:
                builder.add_frame(frame)
    except (NotPlain, pl.exceptions.PolarsError):  # the sheet reader reads it, or says what is wrong
        builder.reset()
        return None
    body.blanks = state["last_accepted"] - header_row - state["filled_to_accepted"]
    return body


def _row_chunks(workbook, worksheet):
    """The bytes of ``<sheetData>``, CHUNK bytes or so at a time, each cut before a row (so never inside a
    character: the text is checked as UTF-8 in bulk, by polars)."""
    pending = b""
    started = False
    tail = b""  # the end of the block before: "]]>" may straddle two blocks
    with workbook._archive.open(worksheet._worksheet_path) as source:
        while True:
            block = source.read(CHUNK)
            if _foreign(block) or b"]]>" in tail + block[:2]:
                raise NotPlain  # the sheet reader refuses them, with expat's message
            tail = block[-2:]
            pending += block
            if not started:
                begin = pending.find(b"<sheetData>")
                if begin < 0:
                    if not block or len(pending) > PROLOG_BYTES:
                        raise NotPlain  # no data, an empty <sheetData/>, or a prefixed one
                    continue
                try:
                    head = pending[:begin].decode("utf-8")
                except UnicodeDecodeError:
                    raise NotPlain from None
                root = _ROOT.search(head)
                if root is None or root.group(1) not in MAIN_NAMESPACES or "<!" in head or _other_encoding(head):
                    raise NotPlain
                pending, started = pending[begin + len(b"<sheetData>"):], True
            end = pending.find(b"</sheetData>", max(0, len(pending) - len(block) - 16))
            if end >= 0:
                yield pending[:end]
                return
            if not block:
                raise NotPlain  # the XML ends inside the data: the sheet reader says what is wrong
            cut = pending.rfind(b"<row")
            if cut > 0:
                yield pending[:cut]
                pending = pending[cut:]


def _cells(pl, data: bytes, state: dict):
    """One long frame of a chunk's cells: row, column, kind, style, value text, inline text, and whether a
    formula has no cached value."""
    if not data.strip():
        return None
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # as an XML parser reads line ends
    pieces = data.split(b"<row")
    if pieces[0].strip():
        raise NotPlain  # something other than a row inside <sheetData>
    rows = pl.DataFrame({"parts": pl.Series(pieces[1:], dtype=pl.Binary)}).select(
        pl.col("parts").cast(pl.String).str.split("<c "))  # not UTF-8: a polars error, and the sheet reader
    heads = rows.select(pl.col("parts").list.first().str.extract_groups(_ROW).alias("g")).unnest("g")
    heads = heads.rename({"1": "attrs", "2": "close", "3": "end"})
    attrs = heads["attrs"]
    numbers = attrs.str.extract(r'(?:^|[ \t\n])r="([1-9][0-9]{0,6})"', 1).cast(pl.Int64)
    if (attrs.null_count() or numbers.null_count() or (attrs.str.count_matches(r'(?:^|[ \t\n])r="') != 1).any()
            or attrs.str.contains("xmlns", literal=True).any()):
        raise NotPlain  # a row the pattern does not read, without its number or with two
    if not (numbers.diff().drop_nulls() > 0).all() or numbers[0] <= state["last_row"] or numbers[-1] > EXCEL_MAX_ROWS:
        raise NotPlain  # rows out of order, repeated, or more than Excel has: the sheet reader says which
    state["last_row"] = int(numbers[-1])
    counts = rows["parts"].list.len() - 1
    closed = (heads["close"] == "/>") | heads["end"].is_not_null()  # a row that ends in its head has no cells
    if (closed != (counts == 0)).any() or ((heads["close"] == "/>") & heads["end"].is_not_null()).any():
        raise NotPlain
    row, col, inline = pl.col("row"), pl.col("col"), pl.col("kind") == "inlineStr"
    cells = (rows.with_columns(numbers.alias("row"), pl.col("parts").list.slice(1)).explode("parts")
             .drop_nulls("parts").lazy()
             .select("row", pl.col("parts").str.extract_groups(_CELL).struct.rename_fields(list(_CELL_GROUPS))
                     .struct.unnest())
             .select("row", pl.col("letters").replace_strict(_column_numbers(), default=None).alias("col"),
                     pl.col("kind").fill_null("n"),
                     pl.coalesce("style", "style_after").cast(pl.Int64).fill_null(0).alias("style"),
                     (pl.col("style").is_not_null() & pl.col("style_after").is_not_null()).alias("two_styles"),
                     _decoded(pl.col("v")).alias("v"), _decoded(pl.col("inline")).alias("inline"),
                     # a formula without a cached value (in a row read as data, left to the sheet reader)
                     (pl.col("formula").is_not_null() & pl.when(inline).then(pl.col("inline").is_null())
                      .otherwise(pl.col("v").fill_null("") == "")).alias("uncached"),
                     # checked below: read, in its own row, a row closed after its last cell, in column order
                     pl.col("letters").is_not_null().alias("read"),
                     (pl.col("ref_row").cast(pl.Int64) == row).alias("own_row"),
                     (pl.col("end").is_not_null() == (row != row.shift(-1)).fill_null(True)).alias("closed"),
                     pl.col("more"))
             .with_columns(((row != row.shift(1)) | (col > col.shift(1))).fill_null(True).alias("ordered"))
             .collect())
    if not (cells["read"].all() and cells["own_row"].all() and cells["closed"].all()):
        raise NotPlain  # a cell the pattern does not read, in another row than its own, or a row left open
    if (cells["col"].null_count() or not cells["ordered"].all() or not cells["kind"].is_in(_KINDS).all()
            or cells["two_styles"].any()):
        raise NotPlain  # past Excel's last column, out of order, of an unknown type, or styled twice: the
        # sheet reader's messages
    more = cells["more"].filter(cells["more"] != "")
    if more.len() and more.str.contains(r'(?:^|[ \t\n])(?:r|s|t|xmlns)=').any():
        raise NotPlain  # a second reference, style or type, or a namespace
    return cells.select("row", "col", "kind", "style", "v", "inline", "uncached")


@functools.cache
def _column_numbers() -> dict[str, int]:
    """Excel's column letters (A … XFD) and their numbers."""
    from openpyxl.utils import get_column_letter

    return {get_column_letter(number): number for number in range(1, EXCEL_MAX_COLUMNS + 1)}


def _decoded(text):
    """Character data with its entity references read (``&amp;`` last, so ``&amp;lt;`` stays ``&lt;``)."""
    import polars as pl

    decoded = text
    for entity, char in _ENTITIES:
        decoded = decoded.str.replace_all(entity, char, literal=True)
    return pl.when(text.str.contains("&", literal=True)).then(decoded).otherwise(text)


class _Converter:
    """Each distinct (kind, style, value) turned into the cell's text once, by the importer's own rules."""

    def __init__(self, workbook, worksheet, text_of, serial_of, is_totals):
        self.strings = worksheet._shared_strings
        self.shared = None
        self.context = (workbook._date_formats, workbook._timedelta_formats, workbook.epoch)
        self.formats = _Formats(workbook)
        self.text_of, self.serial_of, self.is_totals = text_of, serial_of, is_totals
        self.longest_total = max(len(word) for word in TOTAL_WORDS)
        self.known: dict[tuple, tuple] = {}
        self.totals: dict[str, bool] = {}

    def convert(self, kind: str, style: int, raw: str | None) -> tuple:
        key = (kind, style, raw)
        found = self.known.get(key)
        if found is None:
            if len(self.known) >= KNOWN_VALUES:
                self.known.clear()
            try:
                value, data_type = cell_value(kind, raw or None, None, style, *self.context, self.strings)
            except (ValueError, IndexError, TypeError, OverflowError):
                raise NotPlain from None  # the sheet reader raises it, with the file's name
            cell = Cell(0, 0, value, data_type, style, None, self.formats)
            serial = self.serial_of(cell)
            found = self.known[key] = (self.text_of(cell), float(value) if serial else None)
        return found

    def shared_strings(self, pl):
        """The workbook's shared strings as a Series (their ``_xHHHH_`` escapes undone with the inline ones)."""
        if self.shared is None:
            if not all(isinstance(s, str) for s in self.strings):
                raise NotPlain
            self.shared = pl.Series("shared", self.strings, dtype=pl.String)
        return self.shared

    def totals_label(self, text: str) -> bool:
        found = self.totals.get(text)
        if found is None:
            if len(self.totals) >= KNOWN_VALUES:
                self.totals.clear()
            found = self.totals[text] = self.is_totals(text)
        return found


def _rows_of(pl, cells, converter: _Converter, header_row: int, date_columns: list[int], body: Body, state: dict,
             max_cells: int):
    """The chunk's data rows as a frame of text columns (c0, c1 …, as many as ``state["width"]`` ends at),
    with the body's notes kept."""
    per_row = cells.group_by("row", maintain_order=True).agg(pl.col("col").max().alias("width"))
    state["cells"] += int(per_row["width"].sum())
    if state["cells"] > max_cells:
        raise NotPlain  # the sheet reader refuses it, with its message
    cells = cells.filter(pl.col("row") > header_row)
    if cells.height == 0:
        return None
    # texts: strings straight from the XML or the shared table, the rest once per distinct value
    shared = cells["kind"] == "s"
    text = pl.when(pl.col("kind") == "inlineStr").then(pl.col("inline"))
    if shared.any():
        table = converter.shared_strings(pl)
        given = cells.filter(shared & (pl.col("v") != ""))["v"]
        index = given.cast(pl.Int64, strict=False)
        if index.null_count() or (index.len() and (int(index.min()) < 0 or int(index.max()) >= len(table))):
            raise NotPlain  # the sheet reader says the index is wrong
        position = pl.when(pl.col("kind") == "s").then(pl.col("v").cast(pl.Int64, strict=False))
        text = text.when(pl.col("kind") == "s").then(pl.lit(table).gather(position))
    other = cells.filter(~pl.col("kind").is_in(["s", "inlineStr"])).select("kind", "style", "v").unique()
    converted = [converter.convert(kind, style, raw) for kind, style, raw in other.iter_rows()]  # per-row ok: distinct values
    lookup = other.with_columns(pl.Series("text", [t for t, _ in converted], dtype=pl.String),
                                pl.Series("serial", [s for _, s in converted], dtype=pl.Float64))
    cells = cells.join(lookup, on=["kind", "style", "v"], how="left", nulls_equal=True, maintain_order="left")
    cells = cells.with_columns(text.otherwise(pl.col("text")).alias("text"))
    strings = pl.col("kind").is_in(["s", "inlineStr"])
    escaped = cells.filter(strings & pl.col("text").str.contains("_x", literal=True))
    if escaped.height:  # OOXML's _xHHHH_ escapes: the importer's rule, once per distinct text
        plain = {t: converter.text_of(Cell(0, 0, t, "s", 0, None, converter.formats))
                 for t in escaped["text"].unique().to_list()}
        cells = cells.with_columns(pl.when(strings).then(pl.col("text").replace(plain)).otherwise(pl.col("text")))
    cells = cells.with_columns(pl.col("text").str.strip_chars().ne("").fill_null(False).alias("filled"))
    rows = cells.group_by("row", maintain_order=True).agg(
        pl.col("filled").any().alias("filled"),
        pl.col("text").filter(pl.col("filled")).first().alias("first"),
        pl.col("col").filter(pl.col("filled")).max().alias("last_filled"))
    rows = rows.filter("filled")
    if rows.height == 0:
        return None
    # only a short text can be a totals label: cleaning (kamcore.headers.clean_header) drops white space and
    # invisible characters, the label's trailing colons go, and NFKC never makes a word of them shorter
    short = rows["first"].str.replace_all(_NOT_COUNTED, "").str.len_chars() <= converter.longest_total
    firsts = rows.filter(short)["first"].unique().to_list()
    totals = {t for t in firsts if converter.totals_label(t)}
    is_total = rows["first"].is_in(list(totals)) if totals else pl.Series([False] * rows.height)
    for number, label in rows.filter(is_total).select("row", "first").iter_rows():  # per-row ok: totals rows
        body.totals.append(f"row {number} ({label.strip()})")
    accepted = rows.filter(~is_total)
    state["filled"] += rows.height
    if accepted.height:
        last = int(accepted["row"][-1])
        state["filled_to_accepted"] = state["filled"] - int((rows["row"] > last).sum())
        state["last_accepted"] = last
    else:
        return None
    # a filled value past the columns so far opens columns up to its own, from its row on (as the sheet reader
    # widens its rows): each row keeps the cells up to the width reached at it
    width = state["width"]
    accepted = accepted.with_columns(pl.max_horizontal(pl.col("last_filled").cum_max(), pl.lit(width)).alias("w"))
    for index in range(width, int(accepted["w"].max())):
        body.outside.setdefault(index, int(accepted.filter(pl.col("w") > index)["row"][0]))
    state["width"] = width = int(accepted["w"].max())
    keep = cells.join(accepted.select("row", "w"), on="row", how="inner", maintain_order="left")
    if keep["uncached"].any():
        raise NotPlain  # the sheet reader reports where
    if date_columns:  # in the order their first serial number comes, as the sheet reader finds them
        serials = (keep.filter(pl.col("col").is_in([i + 1 for i in date_columns]) & pl.col("serial").is_not_null())
                   .group_by("col").agg(pl.len(), pl.col("serial").first(), pl.col("row").first())
                   .sort("row", "col"))
        for column, count, first, _ in serials.iter_rows():  # per-row ok: one per date column
            was, seen = body.serial.get(column - 1, (0, first))
            body.serial[column - 1] = (was + count, seen)
    body.rows.extend(accepted["row"].cast(pl.UInt32).to_list())
    wide = keep.filter(pl.col("col") <= pl.col("w")).select(
        "row", pl.col("col").cast(pl.String), "text").pivot("col", index="row", values="text")
    names = [f"c{i}" for i in range(width)]
    have = set(wide.columns)
    return accepted.select("row").join(wide, on="row", how="left", maintain_order="left").select(
        [(pl.col(str(i + 1)) if str(i + 1) in have else pl.lit(None, pl.String)).alias(name)
         for i, name in enumerate(names)])
