"""Legacy Excel 97-2003 workbooks (.xls): written by xlwt (the BIFF8 format Excel 97-2003, WPS and many
ERP exports save), read by the .xls importer with the .xlsx importer's rules. The same sheet saved as .xls
and as .xlsx must give the same rows, text, notes and record lines; a damaged file a clear error."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import xlwt
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).parent))
from helpers import invoke, kam_env, one_error_line, read_rejects, read_summary, run_kam  # noqa: E402,F401

from kamcore.errors import InputError  # noqa: E402
from kamcore.registry import ReadOptions  # noqa: E402
from kamcore_plugins.importers import xls_importer, xlsx_importer  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
EXAMPLES = Path(__file__).parent.parent / "examples"
CORPUS = Path(__file__).parent / "corpus"
HEADER = ["编号", "客户名称", "标的", "利润", "采购时间", "已立项", "备注"]
DATE, STAMP, MONEY, SHARE = "yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss", "#,##0.00", "0%"


def sheet_rows() -> list[list[tuple]]:
    """Rows of (value, number format) cells: a title, a gap, the header, typed data with empty cells, a blank
    row, a serial number in the date column, a value past the header, and a totals row."""
    rows = [[("2024年第三季度商机 & <Co>", None)], [], [(h, None) for h in HEADER]]
    for i in range(24):
        rows.append([(f"P-{i:04d}", None), (f"客户 {i % 5} \"q\"", None), (1000 * i + 0.25 * (i % 4), MONEY),
                     ((i % 10) / 10, SHARE),
                     (dt.datetime(2024, 1 + i % 12, 1 + i % 27), DATE) if i % 6 else
                     (dt.datetime(2024, 3, 1, 14, 5, 7), STAMP),
                     (i % 2 == 0, None), (["line one\nline two", "  spaces kept  ", "", None][i % 4], None)])
        if i == 9:
            rows.append([])
    rows.append([("P-serial", None), (None, None), (7, None), (None, None), (45292, None)])
    rows.append([("P-wide", None)] + [(None, None)] * 7 + [("past the header", None)])
    rows.append([("合计", None), (None, None), (276006.0, MONEY)])
    return rows


def write_xls(path: Path, rows: list[list[tuple]], title: str = "商机", before: list[str] = ()) -> Path:
    book = xlwt.Workbook(encoding="utf-8")
    for name in before:
        book.add_sheet(name).write(0, 0, "说明")
    sheet = book.add_sheet(title)
    styles: dict = {}
    for r, row in enumerate(rows):
        for c, (value, number_format) in enumerate(row):
            if value is None:
                continue
            if number_format not in styles:
                styles[number_format] = xlwt.easyxf(num_format_str=number_format or "General")
            sheet.write(r, c, value, styles[number_format])
    book.save(str(path))
    return path


def write_xlsx(path: Path, rows: list[list[tuple]], title: str = "商机", before: list[str] = ()) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name in before:
        book.create_sheet(name).cell(1, 1).value = "说明"
    sheet = book.create_sheet(title)
    for r, row in enumerate(rows, start=1):
        for c, (value, number_format) in enumerate(row, start=1):
            if value is None:
                continue
            cell = sheet.cell(r, c)
            cell.value = value
            if number_format:
                cell.number_format = number_format
    book.save(path)
    return path


def read(read_source, path: Path, **options):
    source = read_source(path, ReadOptions(**options))
    try:
        frame = source.frame.collect()
        return frame, source.record_lines(list(range(frame.height + 2))), list(source.notes), source
    finally:
        source.cleanup()


def test_a_sheet_saved_as_xls_reads_as_the_same_sheet_saved_as_xlsx(tmp_path):
    rows = sheet_rows()
    old = read(xls_importer.read, write_xls(tmp_path / "deals.xls", rows))
    new = read(xlsx_importer.read, write_xlsx(tmp_path / "deals.xlsx", rows))
    assert_frame_equal(old[0], new[0])
    assert old[1] == new[1]
    assert [n.replace("deals.xls ", "deals.xlsx ") for n in old[2]] == new[2]
    frame, lines, notes, source = old
    assert frame.columns == HEADER + ["column_8", "column_9"] and source.encoding == "xls" and source.header_line == 3
    assert frame.row(0)[:7] == ("P-0000", '客户 0 "q"', "0", "0%", "2024-03-01 14:05:07", "TRUE", "line one\nline two")
    assert frame.row(1)[:7] == ("P-0001", '客户 1 "q"', "1000.25", "10%", "2024-02-02", "FALSE", "  spaces kept  ")
    assert frame["编号"][-2:].to_list() == ["P-serial", "P-wide"] and frame["column_9"][-1] == "past the header"
    assert lines[0] == 4 and lines[10] == 15  # the blank row inside the table is a row of the sheet
    assert any("totals row(s) left out: row 31 (合计)" in n for n in notes)
    assert any("1 empty row(s) inside the table" in n for n in notes)
    assert any("look like Excel serial dates (e.g. 45292 = 2024-01-01)" in n for n in notes)
    assert [n for n in notes if "no header" in n] == [
        f"{tmp_path / 'deals.xls'} sheet '商机': columns H to I have no header: a value past the header (from row 30) "
        "opened them; they are read as 'column_8' to 'column_9'"]


def test_one_value_in_the_last_cell_of_a_sheet_opens_its_columns_in_one_note(tmp_path):
    """A 6 KB file with one value in IV65536: the rows are not padded to 256 cells each (16.7 million)."""
    path = tmp_path / "far.xls"
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("a")
    for c, value in enumerate(["编号", "客户名称"]):
        sheet.write(0, c, value)
    sheet.write(1, 0, "A-1")
    sheet.write(65535, 255, "x")
    book.save(str(path))
    frame, lines, notes, _ = read(xls_importer.read, path)
    assert frame.shape == (2, 256) and lines == {0: 2, 1: 65536} and frame["column_256"].to_list() == [None, "x"]
    assert [n for n in notes if "no header" in n] == [
        f"{path} sheet 'a': columns C to IV have no header: a value past the header (from row 65536) opened them; "
        "they are read as 'column_3' to 'column_256'"]


def test_date_formatted_numbers_read_as_in_an_xlsx_file(tmp_path):
    """Times of day, durations ([h]:mm), day 0 and Excel's 1900 leap day: the same conversion as .xlsx."""
    values = [(0.25, "h:mm"), (1.5, "[h]:mm"), (0, DATE), (59, DATE), (60, DATE), (61, DATE), (45292.5, STAMP)]
    rows = [[("编号", None), ("采购时间", None)]] + [[(f"A-{i}", None), value] for i, value in enumerate(values)]
    old = read(xls_importer.read, write_xls(tmp_path / "dates.xls", rows))[0]
    new = read(xlsx_importer.read, write_xlsx(tmp_path / "dates.xlsx", rows))[0]
    assert_frame_equal(old, new)
    assert old["采购时间"].to_list() == ["06:00:00", "1 day, 12:00:00", "00:00:00", "1900-02-28", "1900-02-28",
                                     "1900-03-01", "2024-01-01 12:00:00"]


def test_text_that_looks_like_an_ooxml_escape_stays_as_written(tmp_path):
    """BIFF stores text plainly: ``_x000D_`` in a .xls cell is those characters (Excel 97-2003 shows them), not
    the carriage return the same characters escape in an .xlsx file's XML."""
    rows = [[(h, None) for h in HEADER[:3]], [("A-1", None), ("literal _x000D_ and _x005F_", None), ("tab\there", None)]]
    frame = read(xls_importer.read, write_xls(tmp_path / "text.xls", rows))[0]
    assert frame.row(0) == ("A-1", "literal _x000D_ and _x005F_", "tab\there")


def test_the_sheet_is_found_past_other_sheets_or_named(tmp_path):
    path = write_xls(tmp_path / "two.xls", sheet_rows(), title="export", before=["说明"])
    frame, _, notes, _ = read(xls_importer.read, path)
    assert frame.height == 26 and "read sheet 'export', the first with a header kam knows" in notes[1]
    assert read(xls_importer.read, path, sheet="2")[0].height == 26
    with pytest.raises(InputError, match="no sheet 'x'; the sheets are '说明', 'export'"):
        read(xls_importer.read, path, sheet="x")


@pytest.mark.parametrize("name, encoding", [("opportunities_en.csv", "utf8"), ("opportunities_zh.csv", "gb18030")])
def test_kam_score_on_the_bundled_export_saved_as_xls_writes_the_csv_routes_output(tmp_path, name, encoding):
    export = pl.read_csv(EXAMPLES / name, infer_schema=False, encoding=encoding)
    rows = [[(h, None) for h in export.columns]] + [[(v, None) for v in row] for row in export.iter_rows()]
    workbook = write_xls(tmp_path / "export.xls", rows)
    from_csv, from_xls = tmp_path / "from_csv.csv", tmp_path / "from_xls.csv"
    assert invoke("score", EXAMPLES / name, "-o", from_csv, "-q").exit_code == 0
    assert invoke("score", workbook, "-o", from_xls, "-q").exit_code == 0
    assert from_xls.read_bytes() == from_csv.read_bytes()
    assert read_rejects(from_xls).drop("file").equals(read_rejects(from_csv).drop("file"))
    summary = read_summary(from_xls)
    assert summary["inputs"][0]["importer"] == "xls" and summary["inputs"][0]["encoding"] == "xls"
    assert summary["rows"] == read_summary(from_csv)["rows"]


def test_stakeholders_saved_as_xls_score_as_their_csv(tmp_path):
    people = pl.read_csv(EXAMPLES / "stakeholders_zh.csv", infer_schema=False, encoding="gb18030")
    rows = [[(h, None) for h in people.columns]] + [[(v, None) for v in row] for row in people.iter_rows()]
    workbook = write_xls(tmp_path / "people.xls", rows, title="关键人物")
    outputs = []
    for given in (EXAMPLES / "stakeholders_zh.csv", workbook):
        out = tmp_path / f"with_{given.suffix[1:]}.csv"
        done = invoke("score", EXAMPLES / "opportunities_zh.csv", "--stakeholders", given, "-o", out, "-q")
        assert done.exit_code == 0, done.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and "stakeholder_count" in outputs[1].decode("utf-8-sig").splitlines()[0]


def test_a_damaged_or_truncated_workbook_is_refused_with_one_line(tmp_path):
    whole = write_xls(tmp_path / "whole.xls", sheet_rows()).read_bytes()
    cuts = [len(whole) // 2, len(whole) - 700, 600, 513]
    for i, cut in enumerate(cuts):
        (tmp_path / f"cut{i}.xls").write_bytes(whole[:cut])
    damaged = bytearray(whole)
    damaged[2048:2600] = bytes(552)
    (tmp_path / "zeroed.xls").write_bytes(bytes(damaged))
    for path in [CORPUS / "legacy_ole2.xls", *sorted(tmp_path.glob("cut*.xls")), tmp_path / "zeroed.xls"]:
        done = run_kam("score", path, "-o", tmp_path / "out.csv", cwd=tmp_path)
        line = one_error_line(done.stderr.decode())
        assert done.returncode == 4 and "Excel 97-2003" in line and "hint:" in line, (path.name, line)
        assert "Traceback" not in done.stderr.decode()
        assert not (tmp_path / "out.csv").exists()


def test_the_cell_limit_applies_to_xls_too(tmp_path, monkeypatch):
    path = write_xls(tmp_path / "deals.xls", sheet_rows())
    monkeypatch.setenv("KAM_XLSX_MAX_CELLS", "50")
    with pytest.raises(InputError, match="more than 50 cells"):
        read(xls_importer.read, path)


def test_a_file_bigger_than_an_export_is_refused_before_xlrd_reads_it(tmp_path, monkeypatch):
    path = write_xls(tmp_path / "deals.xls", sheet_rows())
    monkeypatch.setenv("KAM_XLS_MAX_BYTES", "4096")
    with pytest.raises(InputError, match=r"refused: [\d,]+ bytes, more than an Excel 97-2003 export holds \(4,096"):
        read(xls_importer.read, path)
    monkeypatch.setenv("KAM_XLS_MAX_BYTES", str(path.stat().st_size))
    assert read(xls_importer.read, path)[0].height == 26


def test_an_html_table_named_xls_is_still_explained_not_read(tmp_path):
    done = run_kam("score", CORPUS / "html_table.xls", "-o", tmp_path / "out.csv", cwd=tmp_path)
    assert done.returncode == 4 and "HTML page" in one_error_line(done.stderr.decode())
