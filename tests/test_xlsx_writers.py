"""Workbooks written by xlsxwriter, the writer behind polars' ``write_excel`` and pandas' ``to_excel`` (its
default engine when installed), and close to what Excel itself saves: a shared-string table, styles, dates as
serial numbers with a date format, merged title cells, formulas with cached values, rich text, hyperlinks,
comments, validation lists. Read in bulk where the XML is plain and a cell at a time where it is not, the
rows must be the same, hold what Excel shows, and score as the same rows from CSV do."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pandas
import polars as pl
import pytest
import xlsxwriter

sys.path.insert(0, str(Path(__file__).parent))
from helpers import invoke, kam_env, read_rejects, read_summary  # noqa: E402,F401
from test_xlsx_columns import assert_same_both_ways, read  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
EXAMPLES = Path(__file__).parent.parent / "examples"
NOTES = ["line one\nline two", "  spaces kept  ", "tab\there _x000D_ literal", "a\r\nb", "", None]
STAGES = ["潜在", "intent", "方案", "谈判成交"]


@pytest.mark.parametrize("name, encoding", [("opportunities_en.csv", "utf8"), ("opportunities_zh.csv", "gb18030")])
def test_the_bundled_exports_written_by_polars_score_as_their_csv(tmp_path, name, encoding):
    """polars' write_excel (an Excel table with a header style and autofilter) of the bundled export: read in
    bulk, and `kam score` writes the CSV route's output byte for byte, with the same rejects and counts."""
    export = EXAMPLES / name
    workbook = tmp_path / "export.xlsx"
    pl.read_csv(export, infer_schema=False, encoding=encoding).write_excel(workbook)
    assert_same_both_ways(workbook)
    from_csv, from_xlsx = tmp_path / "from_csv.csv", tmp_path / "from_xlsx.csv"
    assert invoke("score", export, "-o", from_csv, "-q").exit_code == 0
    assert invoke("score", workbook, "-o", from_xlsx, "-q").exit_code == 0
    assert from_xlsx.read_bytes() == from_csv.read_bytes()
    rejects_csv, rejects_xlsx = read_rejects(from_csv), read_rejects(from_xlsx)
    assert rejects_csv.height > 0 and set(rejects_xlsx["file"]) == {str(workbook)}
    assert rejects_xlsx.drop("file").equals(rejects_csv.drop("file"))  # a record per row: the same line numbers
    summaries = read_summary(from_csv), read_summary(from_xlsx)
    for key in ("rows", "rejects_by_reason", "rejects_by_column", "repeated_ids"):
        assert summaries[0][key] == summaries[1][key]


def typed_workbook(path: Path, constant_memory: bool = False, rich: bool = True) -> Path:
    """An export as a person builds it in Excel: a merged title, the header on row 3, typed cells with number
    formats, rich text, a hidden row, a hyperlink and formulas with cached values, a totals row, a second
    sheet. ``constant_memory``: xlsxwriter's streaming mode, which writes inline strings instead of a table."""
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": constant_memory})
    sheet = workbook.add_worksheet("商机")
    bold = workbook.add_format({"bold": True})
    date, money, share = (workbook.add_format({"num_format": f}) for f in ("yyyy-mm-dd", "#,##0.00", "0%"))
    stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet.merge_range(0, 0, 0, 7, "2024年第三季度商机", workbook.add_format({"bold": True, "font_size": 14}))
    sheet.write_row(2, 0, ["编号", "客户名称", "标的", "利润", "采购时间", "已立项", "备注", "阶段"], bold)
    sheet.freeze_panes(3, 0)
    for i in range(40):
        row = 3 + i
        sheet.write_string(row, 0, f"P-{i:04d}")
        sheet.write_string(row, 1, f"客户 {i % 7} & <Co> \"q\" 'a'")
        sheet.write_number(row, 2, 1000 * i + 0.5 * (i % 3), money)
        sheet.write_number(row, 3, (i % 10) / 10, share)
        if i % 5:
            sheet.write_datetime(row, 4, dt.datetime(2024, 1 + i % 12, 1 + i % 27), date)
        else:
            sheet.write_datetime(row, 4, dt.datetime(2024, 3, 1, 14, 5, 7), stamp)
        sheet.write_boolean(row, 5, i % 2 == 0)
        if NOTES[i % 6] is not None:
            sheet.write_string(row, 6, NOTES[i % 6], workbook.add_format({"text_wrap": True}))
        if rich and i % 8 == 3:
            sheet.write_rich_string(row, 7, bold, "谈判", "成交")
        else:
            sheet.write_string(row, 7, STAGES[i % 4])
        if i % 9 == 4:
            sheet.write_comment(row, 1, "a comment")
        if i % 11 == 6:
            sheet.set_row(row, None, None, {"hidden": True})
    sheet.write_url(43, 0, "https://example.com/opp/99", string="P-url")
    sheet.write_formula(43, 2, "=SUM(C4:C43)", money, 780010.0)
    sheet.write_formula(43, 3, '=IF(C4>0,"yes","no")', None, "yes")
    sheet.write_string(44, 0, "合计")
    sheet.write_formula(44, 2, "=SUM(C4:C43)", money, 780010.0)
    sheet.autofilter(2, 0, 44, 7)
    sheet.data_validation(3, 7, 44, 7, {"validate": "list", "source": STAGES})
    workbook.add_worksheet("说明").write_string(0, 0, "notes sheet")
    workbook.close()
    return path


@pytest.mark.parametrize("constant_memory, rich, bulk", [
    (False, True, True),  # a shared-string table with rich text: the table element by element, the sheet in bulk
    (True, False, True),  # inline strings
    (True, True, False),  # inline rich text: the sheet a cell at a time
])
def test_a_typed_workbook_reads_as_excel_shows_it(tmp_path, constant_memory, rich, bulk):
    path = typed_workbook(tmp_path / "typed.xlsx", constant_memory, rich)
    frame = assert_same_both_ways(path, bulk=bulk)
    notes = read(path, "auto")[2]
    assert "header on row 3" in notes[0] and any("totals row(s) left out: row 45 (合计)" in n for n in notes)
    assert frame.height == 41  # the hidden row is data; the totals row is not
    assert frame.row(0) == ("P-0000", "客户 0 & <Co> \"q\" 'a'", "0", "0%", "2024-03-01 14:05:07", "TRUE",
                            "line one\nline two", "潜在")
    assert frame.row(1) == ("P-0001", "客户 1 & <Co> \"q\" 'a'", "1000.5", "10%", "2024-02-02", "FALSE",
                            "  spaces kept  ", "intent")
    assert frame["备注"].to_list()[:6] == ["line one\nline two", "  spaces kept  ", "tab\there _x000D_ literal",
                                          "a\r\nb", "", None]
    assert frame["阶段"][3] == "谈判成交"
    assert frame.row(40) == ("P-url", None, "780010", "yes", None, None, None, None)


def test_a_typed_workbook_scores(tmp_path):
    """`kam score` on it: the stage read as the seed writes it, rich text or not; the formula row's text margin
    rejected, naming its sheet row."""
    path = typed_workbook(tmp_path / "typed.xlsx")
    out = tmp_path / "scored.csv"
    done = invoke("score", path, "-o", out, "-q")
    assert done.exit_code == 0, done.output
    scored, rejects = pl.read_csv(out, infer_schema=False), read_rejects(out)
    assert scored.height == 40 and rejects.height == 1
    assert rejects.row(0, named=True) == {"file": str(path), "line": 44, "column": "margin", "header": "利润",
                                          "reason": "不是百分比 / not a percentage: expected e.g. 35%, 35.5", "value": "yes",
                                          "opportunity_id": "P-url"}
    assert scored["stage"].to_list()[:4] == ["potential", "intent", "solution", "negotiation"]
    assert scored["purchase_date"][:2].to_list() == ["2024-03-01", "2024-02-02"]
    assert scored["margin"][:2].to_list() == ["0.0", "10.0"]


def test_pandas_to_excel_with_xlsxwriter_reads_in_bulk(tmp_path):
    """pandas' default engine: its bold bordered header, dates written with its datetime format."""
    frame = pandas.DataFrame({
        "opportunity_id": [f"OPP-{i:03d}" for i in range(30)],
        "deal_size": [120_000.5 * i for i in range(30)],
        "purchase_date": pandas.to_datetime([dt.date(2024, 1 + i % 12, 1 + i % 28) for i in range(30)]),
        "stage": [["potential", "intent", "solution", "negotiation"][i % 4] for i in range(30)],
        "notes": [None if i % 3 else f"备注 {i}" for i in range(30)],
    })
    path = tmp_path / "pandas.xlsx"
    frame.to_excel(path, index=False, engine="xlsxwriter")
    read_frame = assert_same_both_ways(path)
    assert read_frame.row(1) == ("OPP-001", "120000.5", "2024-02-02", "intent", None)
    assert read_frame["notes"][0] == "备注 0"
