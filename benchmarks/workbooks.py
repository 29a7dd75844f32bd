"""Workbooks for the XLSX benchmark and tests: an export written as openpyxl writes it (inline strings), the
same workbook with its strings in a shared-string table, as Excel writes them, and as a legacy Excel 97-2003
file (xlwt, from the test extras; at most 65,535 rows)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
INLINE = re.compile(r'<c r="([A-Z]+[0-9]+)"( s="[0-9]+")? t="inlineStr"><is><t(?: xml:space="preserve")?>([^<]*)</t></is></c>')


def with_shared_strings(path: Path, target: Path, rich: bool = False) -> Path:
    """The workbook with its inline strings moved to a shared-string table, as Excel writes them (openpyxl
    writes inline strings); ``rich``: the first string as rich text with a phonetic run."""
    with zipfile.ZipFile(path) as packed:
        parts = {info.filename: packed.read(info.filename) for info in packed.infolist()}
    table: dict[str, int] = {}

    def shared(match: re.Match) -> str:
        index = table.setdefault(match.group(3), len(table))
        return f'<c r="{match.group(1)}"{match.group(2) or ""} t="s"><v>{index}</v></c>'

    parts["xl/worksheets/sheet1.xml"] = INLINE.sub(shared, parts["xl/worksheets/sheet1.xml"].decode()).encode()
    items = [f'<si><t xml:space="preserve">{text}</t></si>' for text in table]
    if rich:
        first = next(iter(table))
        items[0] = (f'<si><r><rPr><b/></rPr><t>{first[:1]}</t></r><r><t xml:space="preserve">{first[1:]}</t></r>'
                    '<rPh sb="0" eb="1"><t>ふりがな</t></rPh></si>')
    parts["xl/sharedStrings.xml"] = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="{MAIN}" '
                                     f'count="{len(table)}" uniqueCount="{len(table)}">{"".join(items)}</sst>').encode()
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(b"</Types>", (
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        b'spreadsheetml.sharedStrings+xml"/></Types>'))
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(b"</Relationships>", (
        b'<Relationship Id="rIdShared" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        b'sharedStrings" Target="sharedStrings.xml"/></Relationships>'))
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as packed:
        for name, data in parts.items():
            packed.writestr(name, data)
    return target


def write_workbook(csv: str, target: Path) -> Path:
    """A CSV export as a workbook (every value as text, inline strings), written a row at a time by openpyxl's
    write-only mode."""
    import polars as pl
    from openpyxl import Workbook

    frame = pl.read_csv(csv, infer_schema=False)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("export")
    sheet.append(frame.columns)
    for row in frame.iter_rows():  # per-row ok: writing a benchmark's input, not timed
        sheet.append(row)
    book.save(target)
    return target


def write_xls(csv: str, target: Path) -> Path:
    """A CSV export as an Excel 97-2003 workbook (every value as text), written by xlwt."""
    import polars as pl
    import xlwt

    frame = pl.read_csv(csv, infer_schema=False)
    if frame.height > 65_535:
        raise SystemExit(f"an Excel 97-2003 sheet holds at most 65,535 rows under its header, not {frame.height:,}")
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("export")
    for c, name in enumerate(frame.columns):
        sheet.write(0, c, name)
    for r, row in enumerate(frame.iter_rows(), start=1):  # per-row ok: writing a benchmark's input, not timed
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(r, c, value)
    book.save(str(target))
    return target
