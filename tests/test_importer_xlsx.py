"""The xlsx importer: sheet and header detection, values as text, totals rows, formulas without cached
values, the zip-bomb and XML-attack defences, and `kam score --sheet` end to end."""

from __future__ import annotations

import io
import re
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import invoke, kam_env, read_summary  # noqa: E402,F401

from kamcore.errors import InputError  # noqa: E402
from kamcore.registry import ReadOptions  # noqa: E402
from kamcore_plugins.importers import xlsx_importer  # noqa: E402
from kamcore_plugins.importers.xlsx_importer import read, sniff  # noqa: E402

HEADERS = ["编号", "客户名称", "标的", "采购时间", "我们的利润", "项目的预算"]


def book(path: Path, *sheets: tuple[str, list[list]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def load(path: Path, **options):
    source = read(path, ReadOptions(**options))
    try:
        return source.frame.collect(), source
    finally:
        source.cleanup()


def test_openpyxl_parses_with_defusedxml():
    from openpyxl.xml import DEFUSEDXML
    from openpyxl.xml import functions

    assert DEFUSEDXML
    assert functions.iterparse.__module__.startswith("defusedxml")


def test_title_rows_totals_and_empty_rows(tmp_path):
    rows = [["2025年销售机会"], ["导出: 2025-01-01", None], HEADERS,
            ["A-1", "华能", 1200000, "2025-09", "35%", "有"], [None] * 6,
            ["A-2", "申通", 300000, "2025-Q4", "20%", "无"], ["合计", None, 1500000]]
    frame, source = load(book(tmp_path / "t.xlsx", ("商机", rows)))
    assert frame.columns == HEADERS and frame["编号"].to_list() == ["A-1", "A-2"]
    assert source.header_line == 3
    assert source.record_lines([0, 1]) == {0: 4, 1: 6}
    notes = " | ".join(source.notes)
    assert "2 row(s) above it" in notes and "totals row(s) left out: row 7 (合计)" in notes
    assert "1 empty row(s) inside the table" in notes


def test_values_become_the_text_a_person_reads(tmp_path):
    """(A control character is stored escaped, as OOXML says and Excel writes it: _x0001_.)"""
    path = tmp_path / "v.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADERS + ["成交", "备注"])
    sheet.append(["00123", "华能", 12000000, datetime(2025, 9, 1), 0.35, "有", True, "line_x0001_ctl _x005F_x0041_"])
    sheet.append(["00124", "申通", 250000.5, datetime(2025, 9, 1, 14, 30), 1, "#N/A", False, None])
    sheet["E2"].number_format = sheet["E3"].number_format = "0%"
    workbook.save(path)
    frame, _ = load(path)
    assert frame.row(0) == ("00123", "华能", "12000000", "2025-09-01", "35%", "有", "TRUE", "line\x01ctl _x0041_")
    assert frame.row(1) == ("00124", "申通", "250000.5", "2025-09-01 14:30:00", "100%", "#N/A", "FALSE", None)


def test_excel_serial_dates_are_flagged(tmp_path):
    frame, source = load(book(tmp_path / "s.xlsx", ("s", [HEADERS, ["A-1", "x", 1, 45292, None, None]])))
    assert frame["采购时间"].to_list() == ["45292"]
    assert any("look like Excel serial dates (e.g. 45292 = 2024-01-01)" in note for note in source.notes)
    import datetime as dt

    import kamcore
    row = kamcore.score_frame(frame).scored.row(0, named=True)  # the normaliser reads it, and says so per row
    assert row["purchase_date"] == dt.date(2024, 1, 1)
    assert row["value_flags"].startswith("purchase_date: 45292: Excel 日期序号，读作 2024-01-01 / looks like an Excel "
                                         "serial date")


def test_a_formula_without_a_cached_value_is_reported(tmp_path):
    rows = [HEADERS, ["A-1", "x", "=2*3", None, None, None], ["A-2", "y", 6, None, None, None]]
    frame, source = load(book(tmp_path / "f.xlsx", ("s", rows)))
    assert frame["标的"].to_list() == [None, "6"]
    assert any("1 formula cell(s) have no cached value" in n and "C2 (=2*3)" in n for n in source.notes)


def test_the_first_sheet_with_a_known_header_is_read_and_sheet_chooses(tmp_path):
    path = book(tmp_path / "two.xlsx", ("说明", [["请按模板填写"]]), ("商机", [HEADERS, ["A-1", "x", 1, None, None, None]]),
                ("Other", [["Kunde", "Betrag"], ["y", "2"]]))
    frame, source = load(path)
    assert frame["编号"].to_list() == ["A-1"] and any("read sheet '商机'" in n for n in source.notes)
    assert load(path, sheet="Other")[0].columns == ["Kunde", "Betrag"]
    assert load(path, sheet="3")[0].columns == ["Kunde", "Betrag"]
    assert load(path, sheet="other")[0].columns == ["Kunde", "Betrag"]
    with pytest.raises(InputError, match="no sheet 'Deals'; the sheets are '说明', '商机', 'Other'"):
        read(path, ReadOptions(sheet="Deals"))


def test_values_beyond_the_header_are_kept_and_duplicates_refused(tmp_path):
    frame, source = load(book(tmp_path / "w.xlsx", ("s", [HEADERS[:2], ["A-1", "x", None, "side note"]])))
    assert frame.columns == ["编号", "客户名称", "column_3", "column_4"]
    assert frame["column_4"].to_list() == ["side note"]
    assert [n for n in source.notes if "no header" in n] == [
        f"{tmp_path / 'w.xlsx'} sheet 's': columns C to D have no header: a value past the header (from row 2) "
        "opened them; they are read as 'column_3' to 'column_4'"]
    with pytest.raises(InputError, match="columns 1 and 2 are both named '编号'"):
        read(book(tmp_path / "d.xlsx", ("s", [["编号", "编号"], ["a", "b"]])), ReadOptions())


def test_a_repeated_header_kam_does_not_read_is_kept_as_in_a_csv(tmp_path):
    frame, source = load(book(tmp_path / "r.xlsx", ("s", [["编号", "创建人", "标的", "创建人"], ["A-1", "x", 1, "y"]])))
    assert frame.columns == ["编号", "创建人", "标的", "创建人_4"] and frame.row(0) == ("A-1", "x", "1", "y")
    assert any("columns 2 and 4 are both named '创建人'" in n and "kept as '创建人_4'" in n for n in source.notes)


def test_the_declared_dimension_is_not_trusted(tmp_path):
    path = book(tmp_path / "dim.xlsx", ("s", [HEADERS] + [[f"A-{i}", "x", i, None, None, None] for i in range(5)]))
    data = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.startswith("xl/worksheets/"):
                body = re.sub(rb'<dimension ref="[A-Z0-9:]+"', b'<dimension ref="A1:B2"', body)
                assert b'<dimension ref="A1:B2"' in body
            dst.writestr(info, body)
    path.write_bytes(data.getvalue())
    frame, _ = load(path)
    assert frame.shape == (5, 6)


def test_a_zip_bomb_is_refused_before_openpyxl_inflates_it(tmp_path, monkeypatch):
    path = book(tmp_path / "b.xlsx", ("s", [HEADERS]))
    data = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info) if "sheet1" not in info.filename else b" " * 5_000_000)
    path.write_bytes(data.getvalue())
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: pytest.fail("openpyxl must not open a bomb"))
    with pytest.raises(InputError, match="refused before inflating: part xl/worksheets/sheet1.xml would grow"):
        read(path, ReadOptions())


def test_size_and_cell_limits_can_be_set(tmp_path, monkeypatch):
    path = book(tmp_path / "l.xlsx", ("s", [HEADERS] + [[f"A-{i}", "x", i, None, None, None] for i in range(20)]))
    monkeypatch.setenv("KAM_XLSX_MAX_BYTES", "1000")
    with pytest.raises(InputError, match="would inflate to"):
        read(path, ReadOptions())
    monkeypatch.delenv("KAM_XLSX_MAX_BYTES")
    monkeypatch.setenv("KAM_XLSX_MAX_CELLS", "50")
    with pytest.raises(InputError, match="more than 50 cells"):
        read(path, ReadOptions())


def test_an_xml_entity_attack_is_refused(tmp_path):
    path = book(tmp_path / "x.xlsx", ("s", [HEADERS]))
    data = io.BytesIO()
    attack = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
              b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
              b'<row r="1"><c r="A1" t="inlineStr"><is><t>&b;</t></is></c></row></sheetData></worksheet>')
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, attack if "sheet1" in info.filename else src.read(info))
    path.write_bytes(data.getvalue())
    with pytest.raises(InputError, match="declares entities or a DTD"):
        read(path, ReadOptions())


@pytest.mark.parametrize("head, suffix, expected", [
    (b"PK\x03\x04....[Content_Types].xml", ".csv", 95), (b"PK\x03\x04....xl/workbook.xml", ".bin", 95),
    (b"PK\x03\x04....word/document.xml", ".xlsx", 40), (b"id,amount\n", ".xlsx", 0)])
def test_sniff_by_content(head, suffix, expected):
    assert sniff(head, suffix) == expected


def test_kam_score_reads_a_workbook_named_csv_with_sheet_option(tmp_path, kam_env):
    path = book(tmp_path / "export.csv", ("说明", [["x"]]), ("商机", [HEADERS, ["A-1", "华能", "120万", "2025-09", "35%", "有"]]))
    out = tmp_path / "scored.csv"
    result = invoke("score", path, "-o", out, "--sheet", "商机")
    assert result.exit_code == 0, result.output
    summary = read_summary(out)
    assert summary["inputs"][0]["importer"] == "xlsx" and summary["rows"] == {"in": 1, "scored": 1, "rejected": 0}
    assert helpers.read_csv(out)["margin"].to_list() == ["35.0"]


def test_a_damaged_workbook_is_one_clear_error(tmp_path, kam_env):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    result = invoke("score", path, "-o", tmp_path / "out.csv")
    assert result.exit_code == 4
    assert "broken.xlsx" in helpers.one_error_line(result.stderr)


def test_limits_are_documented_in_the_module():
    doc = xlsx_importer.__doc__
    assert "KAM_XLSX_MAX_BYTES" in doc and "KAM_XLSX_MAX_CELLS" in doc and "reset_dimensions" in doc
