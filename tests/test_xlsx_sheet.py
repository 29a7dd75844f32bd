"""The XLSX importer reads a sheet's XML itself (``kamcore_plugins.importers.xlsx_sheet``): every cell must
be what openpyxl's read-only worksheet gives for it (value, type, number format), formulas must be those
openpyxl sees with ``data_only=False``, and the XML hardening must hold for the sheet's own XML."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import kam_env, one_error_line, run_kam  # noqa: E402,F401

from kamcore_plugins.importers import xlsx_importer, xlsx_sheet  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
CORPUS = Path(__file__).parent / "corpus"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def openpyxl_rows(path: Path, data_only: bool = True) -> dict[str, list[tuple]]:
    """Every sheet's rows as openpyxl's read-only worksheet gives them (its declared size not trusted)."""
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=data_only)
    try:
        out = {}
        for sheet in workbook.worksheets:
            sheet.reset_dimensions()
            out[sheet.title] = [tuple(row) for row in sheet.iter_rows(min_row=1, min_col=1)]
        return out
    finally:
        workbook.close()


def assert_same_as_openpyxl(path: Path) -> int:
    """Compare every cell; return how many filled cells were compared."""
    expected, formulas = openpyxl_rows(path), openpyxl_rows(path, data_only=False)
    workbook = xlsx_importer._open_workbook(path)
    compared = 0
    try:
        for sheet in workbook.worksheets:
            mine = list(xlsx_sheet.rows(workbook, sheet))
            theirs, their_formulas = expected[sheet.title], formulas[sheet.title]
            assert len(mine) == len(theirs), sheet.title
            for number, (row, other, with_formulas) in enumerate(zip(mine, theirs, their_formulas), start=1):
                assert len(row) == len(other), (sheet.title, number)
                for cell, their, formula in zip(row, other, with_formulas):
                    assert (type(cell.value), cell.value) == (type(their.value), their.value), \
                        (sheet.title, number, cell.column)
                    if their.value is not None:
                        assert cell.number_format == their.number_format
                        assert (cell.row, cell.column, cell.data_type) == (their.row, their.column, their.data_type)
                        compared += 1
                    is_formula = getattr(formula, "data_type", None) == "f"
                    assert (cell.formula is not None) == is_formula, (sheet.title, number, cell.column)
                    if is_formula and isinstance(formula.value, str):
                        assert "=" + cell.formula == formula.value
    finally:
        xlsx_importer._close(workbook)
    return compared


def every_kind_of_value(path: Path, epoch=None) -> Path:
    """A workbook openpyxl writes with a value of every kind, formats, gaps and formulas."""
    workbook = openpyxl.Workbook()
    if epoch is not None:
        workbook.epoch = epoch
    sheet = workbook.active
    sheet.title = "商机"
    sheet.append(["编号", "客户名称", "标的", "利润", "采购时间", "时刻", "时长", "已立项", "公式", "备注"])
    rows = [
        ["00123", "江北市财政局", 1200000, 0.35, dt.date(2024, 3, 1), dt.time(9, 30), dt.timedelta(hours=26),
         True, "=C2*2", "line one\nline two"],
        ["P-2", "Contoso & Co <ltd>", 1.5e16, 0.125, dt.datetime(2024, 3, 1, 14, 5, 7), dt.time(0, 0, 1),
         dt.timedelta(minutes=90), False, "=SUM(C2:C3)", "tab\there _x000D_ escaped"],
        [None, None, None, None, None, None, None, None, None, None],
        ["P-4", "  spaces kept  ", -3.25, 1, dt.datetime(1900, 1, 1), None, None, None, None, "中文备注"],
    ]
    for row in rows:
        sheet.append(row)
    sheet.append([])
    sheet.append(["P-7", "after a gap", 12, None, None, None, None, None, None, None, "past the header"])
    for row in range(2, 8):
        sheet.cell(row, 3).number_format = "#,##0"
        sheet.cell(row, 4).number_format = "0.0%"
        sheet.cell(row, 5).number_format = "yyyy-mm-dd hh:mm"
        sheet.cell(row, 7).number_format = "[h]:mm"
    sheet["A9"] = 123
    sheet["A9"].number_format = "00000"
    sheet["E9"] = 45000
    other = workbook.create_sheet("说明")
    other["B3"] = "a note"
    other["D3"] = 3.0
    workbook.save(path)
    return path


def replace_sheet(source: Path, target: Path, xml: str, member: str = "xl/worksheets/sheet1.xml") -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info, xml.encode("utf-8") if info.filename == member else old.read(info.filename))
    return target


# hand-written sheet XML: what other programs write (inline rich text with phonetic runs, cells and rows
# without references, a prefixed namespace, out-of-order and skipped cells, t="str", t="d", t="e",
# entities and character references, formulas with and without cached values, a row number as 5.0)
HAND_WRITTEN = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<x:worksheet xmlns:x="{MAIN}"><x:sheetData>
<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>编号</x:t></x:is></x:c><x:c r="B1" t="inlineStr"><x:is><x:r>
<x:rPr><x:b/></x:rPr><x:t xml:space="preserve">客户 </x:t></x:r><x:r><x:t>名称</x:t></x:r><x:rPh sb="0" eb="2">
<x:t>きゃく</x:t></x:rPh></x:is></x:c><x:c r="C1" t="inlineStr"><x:is><x:t>标的</x:t></x:is></x:c></x:row>
<x:row><x:c t="inlineStr"><x:is><x:t>P-1</x:t></x:is></x:c><x:c t="str"><x:f>A2&amp;"x"</x:f><x:v>P-1x</x:v></x:c>
<x:c><x:v>7</x:v></x:c></x:row>
<x:row r="5.0"><x:c r="C5"><x:v>2.5E3</x:v></x:c><x:c r="A5" t="inlineStr"><x:is><x:t>&#20013;&amp;&lt;&gt;</x:t></x:is>
</x:c></x:row>
<x:row r="6"><x:c r="A6" t="e"><x:v>#N/A</x:v></x:c><x:c r="B6" t="d"><x:v>2024-03-01T10:00:00</x:v></x:c>
<x:c r="C6"><x:f>C5*2</x:f></x:c><x:c r="E6" t="b"><x:v>1</x:v></x:c><x:c r="F6" t="inlineStr"><x:is/></x:c>
<x:c r="G6"><x:v></x:v></x:c></x:row>
<x:row r="7" spans="1:3"><x:c r="A7" s="0"><x:v>0</x:v></x:c></x:row>
</x:sheetData></x:worksheet>"""


def test_every_kind_of_value_reads_as_openpyxl_reads_it(tmp_path):
    assert assert_same_as_openpyxl(every_kind_of_value(tmp_path / "values.xlsx")) == 42  # every filled cell


def test_a_1904_workbook_reads_its_dates_as_openpyxl_does(tmp_path):
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    path = every_kind_of_value(tmp_path / "mac.xlsx", epoch=CALENDAR_MAC_1904)
    assert assert_same_as_openpyxl(path) == 42


def test_hand_written_sheet_xml_reads_as_openpyxl_reads_it(tmp_path):
    path = replace_sheet(every_kind_of_value(tmp_path / "base.xlsx"), tmp_path / "hand.xlsx", HAND_WRITTEN)
    assert assert_same_as_openpyxl(path) >= 14
    workbook = xlsx_importer._open_workbook(path)
    try:
        rows = list(xlsx_sheet.rows(workbook, workbook["商机"]))
    finally:
        xlsx_importer._close(workbook)
    assert [c.value for c in rows[0]] == ["编号", "客户 名称", "标的"]  # runs joined, the phonetic one left out
    assert rows[2] == rows[3] == ()  # rows the XML leaves out
    assert [c.value for c in rows[4]] == ["中&<>"]  # C5 came first: a row is as wide as its last cell (openpyxl)
    assert [c.formula for c in rows[5][:3]] == [None, None, "C5*2"] and rows[5][2].value is None


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.xlsx") if p.name not in (
    "xlsx_entities.xlsx",  # refused when the workbook is opened
    "zip_bomb.xlsx",  # refused before inflating; 400,000 rows compared through openpyxl would take 30 s
)))
def test_the_corpus_workbooks_read_as_openpyxl_reads_them(name):
    assert_same_as_openpyxl(CORPUS / name)


def test_entities_in_the_sheet_xml_itself_are_refused(tmp_path):
    """openpyxl opens a read-only workbook without parsing its sheets: the sheet's own XML is this reader's."""
    hostile = HAND_WRITTEN.replace('<x:worksheet', '<!DOCTYPE x:worksheet [<!ENTITY big "编号编号编号">]>\n<x:worksheet'
                                   ).replace("<x:t>编号</x:t>", "<x:t>&big;</x:t>")
    path = replace_sheet(every_kind_of_value(tmp_path / "base.xlsx"), tmp_path / "hostile.xlsx", hostile)
    done = run_kam("score", path, "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 4
    assert "declares entities or a DTD (EntitiesForbidden)" in one_error_line(done.stderr.decode())
    assert not (tmp_path / "out.csv").exists()


def test_a_cell_past_the_last_column_is_refused_not_allocated(tmp_path):
    far = HAND_WRITTEN.replace('<x:c r="C5">', '<x:c r="ZZZ5">')
    path = replace_sheet(every_kind_of_value(tmp_path / "base.xlsx"), tmp_path / "far.xlsx", far)
    done = run_kam("score", path, "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 4
    assert "past Excel's last column" in one_error_line(done.stderr.decode())


def test_the_workbook_reads_the_same_through_kam(tmp_path):
    """End to end: the values above, scored; the uncached formula reported from the same pass."""
    path = replace_sheet(every_kind_of_value(tmp_path / "base.xlsx"), tmp_path / "hand.xlsx", HAND_WRITTEN)
    shutil.copy(path, tmp_path / "in.xlsx")
    done = run_kam("score", "in.xlsx", "-o", "out.csv", "--sheet", "商机", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stderr = done.stderr.decode()
    assert "1 formula cell(s) have no cached value and were read as empty: C6 (=C5*2)" in stderr
