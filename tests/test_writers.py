"""Writers: formula injection neutralised in CSV (a ' prefix) and XLSX (quote-prefixed string cells, no
formula cells at all), numbers staying numbers, control characters handled, and kam reading its own
output back to the original text."""

from __future__ import annotations

import sys
from pathlib import Path

import openpyxl
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import invoke, kam_env, read_summary  # noqa: E402,F401

from kamcore.injection import is_dangerous, neutralise, restore  # noqa: E402
from kamcore.registry import ReadOptions  # noqa: E402
from kamcore_plugins.importers import csv_importer, xlsx_importer  # noqa: E402
from kamcore_plugins.writers.xlsx import escape, sink_xlsx  # noqa: E402

PAYLOADS = ['=HYPERLINK("http://evil.example","click")', "=1+1", "+1 555 0100", "-2+3", "@SUM(A1:A9)",
            " =cmd|' /C calc'!A0", "\t=tab", "\r=cr", "\n=lf", "＝全角", "'=already quoted", "plain text", "-"]
SAFE = {"'=already quoted", "plain text"}


@pytest.fixture
def export(tmp_path):
    rows = [["编号", "备注", "标的"]] + [[f"A-{i}", p, f"{i + 1}万"] for i, p in enumerate(PAYLOADS)]
    return helpers.write_export(tmp_path / "payloads.csv", rows)


def test_owasp_rule():
    assert all(is_dangerous(p) for p in PAYLOADS if p not in SAFE)
    assert not any(is_dangerous(p) for p in SAFE)
    frame = pl.DataFrame({"v": ["=x", "'=x", "''=x", "'x", "x", None]})
    out = frame.select(neutralise(pl.col("v")).alias("v"))
    assert out["v"].to_list() == ["'=x", "''=x", "'''=x", "'x", "x", None]
    assert out.select(restore(pl.col("v")).alias("v"))["v"].to_list() == frame["v"].to_list()


def test_xlsx_output_has_no_formula_and_reads_back_to_the_original(tmp_path, export, kam_env):
    out = tmp_path / "scored.xlsx"
    result = invoke("score", export, "-o", out)
    assert result.exit_code == 0, result.output
    assert read_summary(out)["format"] == "xlsx"
    sheet = openpyxl.load_workbook(out).active  # not read-only: every cell's type and style
    header = [c.value for c in sheet[1]]
    notes, deal = header.index("notes") + 1, header.index("deal_size") + 1
    assert not [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    for row in sheet.iter_rows(min_row=2):
        text = row[notes - 1]
        assert text.data_type == "s"
        assert text.quotePrefix == (text.value not in SAFE), text.value
        assert isinstance(row[deal - 1].value, int | float)  # numbers stay numbers
    source = xlsx_importer.read(out, ReadOptions())
    try:
        assert source.frame.collect()["notes"].to_list() == PAYLOADS
    finally:
        source.cleanup()


def test_csv_output_is_prefixed_and_reads_back_to_the_original(tmp_path, export, kam_env):
    out = tmp_path / "scored.csv"
    assert invoke("score", export, "-o", out).exit_code == 0
    written = helpers.read_csv(out)["notes"].to_list()
    assert all(w.startswith("'") for w, p in zip(written, PAYLOADS) if p not in SAFE or p.startswith("'"))
    assert written[PAYLOADS.index("plain text")] == "plain text"
    source = csv_importer.read(out, ReadOptions())
    try:
        assert source.frame.collect()["notes"].to_list() == PAYLOADS
    finally:
        source.cleanup()


def test_an_output_named_for_a_format_kam_does_not_write_is_refused_before_reading(tmp_path, export, kam_env):
    """-o scored.xls wrote CSV under an Excel name (Excel then warns and may show one column)."""
    result = invoke("score", export, "-o", tmp_path / "scored.xls")
    assert result.exit_code == 3 and "no writer for .xls files (Excel 97-2003)" in result.stderr
    assert not list(tmp_path.glob("scored.xls*"))
    result = invoke("score", export, "-o", tmp_path / "scored.tsv")
    assert result.exit_code == 3 and "a plugin can add it" in result.stderr  # docs/plugins.md has one
    assert invoke("score", export, "-o", tmp_path / "scored.txt").exit_code == 0  # text: CSV, as before
    assert read_summary(tmp_path / "scored.txt")["format"] == "csv"


def test_control_characters_are_escaped_in_xlsx_and_come_back(tmp_path):
    values = ["bell\x07", "nul\x00here", "vt\x0bff\x0c", "literal _x0041_ stays", "tab\tand\nnewline", "\ufffe"]
    out = tmp_path / "ctl.xlsx"
    pl.collect_all([sink_xlsx(pl.LazyFrame({"v": values, "n": [1, 2, 3, 4, 5, 6]}), out)])
    raw = [c.value for c in openpyxl.load_workbook(out).active["A"]][1:]
    assert raw[0] == "bell_x0007_" and raw[3] == "literal _x005F_x0041_ stays" and raw[4] == "tab\tand\nnewline"
    source = xlsx_importer.read(out, ReadOptions())
    try:
        assert source.frame.collect()["v"].to_list() == values
    finally:
        source.cleanup()
    assert escape("a_x12g4_b") == "a_x12g4_b"
    assert escape("cr\r") == "cr_x000D_"  # an XML reader would turn a raw CR into LF


def test_xlsx_keeps_types_and_order_across_many_batches(tmp_path):
    n = 25_000  # the writer takes batches of 10,000 rows
    frame = pl.LazyFrame({"i": range(n)}).with_columns(
        (pl.col("i") * 0.5).alias("f"), (pl.col("i") % 2 == 0).alias("b"), pl.lit(None, pl.String).alias("empty"),
        pl.when(pl.col("i") == 7).then(pl.lit(float("nan"))).otherwise(pl.lit(1.0)).alias("nan"))
    out = tmp_path / "many.xlsx"
    pl.collect_all([sink_xlsx(frame, out)], engine="streaming")
    sheet = openpyxl.load_workbook(out, read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("i", "f", "b", "empty", "nan")
    assert len(rows) == n + 1 and [r[0] for r in rows[1:]] == list(range(n))
    assert rows[3] == (2, 1, True, None, 1) and rows[8][:3] == (7, 3.5, False) and rows[8][4:] in ((), (None,))


def test_an_empty_result_is_a_workbook_with_its_header(tmp_path):
    out = tmp_path / "empty.xlsx"
    pl.collect_all([sink_xlsx(pl.LazyFrame({"a": [], "b": []}, schema={"a": pl.String, "b": pl.Float64}), out)])
    assert [c.value for c in openpyxl.load_workbook(out).active[1]] == ["a", "b"]


@pytest.mark.parametrize("rows", [0, 1, 23_456])
def test_the_header_is_frozen_and_filters_every_row(tmp_path, rows):
    """Excel opens the sheet with the header in view and a filter on every column over every row written (the
    sheet's range and the workbook's hidden name for it, as Excel keeps them), each column as wide as its
    header."""
    import zipfile

    frame = pl.LazyFrame({"opportunity_id": [f"A-{i}" for i in range(rows)], "band": ["A"] * rows,
                          "我们的未来销售收入": [1.5] * rows}, schema={"opportunity_id": pl.String, "band": pl.String,
                                                             "我们的未来销售收入": pl.Float64})
    out = tmp_path / "filtered.xlsx"
    pl.collect_all([sink_xlsx(frame, out)], engine="streaming")
    book = openpyxl.load_workbook(out)
    sheet = book.active
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:C{rows + 1}" and sheet.max_row == rows + 1
    assert sheet.column_dimensions["A"].width == len("opportunity_id") + 4
    assert sheet.column_dimensions["B"].width == 10  # at least room for the filter button
    assert sheet.column_dimensions["C"].width == 2 * 9 + 4  # nine wide characters
    with zipfile.ZipFile(out) as packed:
        workbook = packed.read("xl/workbook.xml").decode("utf-8")
    assert f"'scored'!$A$1:$C${rows + 1}<" in workbook and "_xlnm._FilterDatabase" in workbook


def test_every_part_of_the_xlsx_is_deflated_and_dated_when_written(tmp_path):
    """The sheet, streamed into its own zip entry, is compressed and dated like openpyxl's parts (not 1980)."""
    import datetime
    import time
    import zipfile

    out = tmp_path / "dated.xlsx"
    before = datetime.datetime(*time.localtime()[:6]) - datetime.timedelta(seconds=2)  # zip times: 2 s steps
    pl.collect_all([sink_xlsx(pl.LazyFrame({"a": ["x"] * 5000}), out)])
    after = datetime.datetime(*time.localtime()[:6]) + datetime.timedelta(seconds=2)
    with zipfile.ZipFile(out) as packed:
        entries = {info.filename: info for info in packed.infolist()}
    assert "xl/worksheets/sheet1.xml" in entries
    for info in entries.values():
        assert before <= datetime.datetime(*info.date_time) <= after, info
        assert info.compress_type == zipfile.ZIP_DEFLATED, info
        assert info.external_attr == entries["[Content_Types].xml"].external_attr, info
    assert entries["xl/worksheets/sheet1.xml"].compress_size < entries["xl/worksheets/sheet1.xml"].file_size / 10


def test_text_longer_than_an_excel_cell_stops_the_run_without_output(tmp_path, kam_env):
    rows = [["编号", "备注"], ["A-1", "x" * 40_000]]
    out = tmp_path / "scored.xlsx"
    result = invoke("score", helpers.write_export(tmp_path / "long.csv", rows), "-o", out)
    assert result.exit_code == 6
    assert "32,767" in helpers.one_error_line(result.stderr)
    assert not out.exists()


def test_the_xlsx_writer_is_registered_by_the_writers_plugin(kam_env):
    from kamcore.plugins import get_kam

    writers = get_kam().writers()
    assert "xlsx" in writers and writers["xlsx"].extensions == (".xlsx",)
    assert set(writers.items) >= {"csv", "xlsx", "jsonl", "parquet"}


def test_only_text_from_kams_own_lists_skips_the_check(tmp_path, kam_env):
    """Codes, currencies, date precisions and value flags are trusted; a code a user maps to formula-like
    text makes its column checked again, so the cell still gets its '."""
    from kamcore.config import load_config
    from kamcore.normalise import Plan
    from kamcore.schema import OPPORTUNITY

    names = ["opportunity_id", "account", "stage", "need_clarity", "deal_size", "purchase_date", "notes", "owner",
             "competitors", "future_revenue"]
    trusted = Plan(names, OPPORTUNITY, load_config(None), {}).trusted()
    assert {"stage", "need_clarity", "future_revenue", "currency", "purchase_date_precision", "value_flags"} <= trusted
    assert not trusted & {"opportunity_id", "account", "notes", "owner", "competitors"}

    config = tmp_path / "kam.toml"
    config.write_text('[values.stage]\n"odd" = "=1+1"\n', encoding="utf-8")
    assert "stage" not in Plan(names, OPPORTUNITY, load_config(config), {}).trusted()
    export = helpers.write_export(tmp_path / "odd.csv", [["编号", "销售阶段"], ["A-1", "odd"], ["A-2", "方案"]])
    out = tmp_path / "scored.csv"
    assert invoke("score", export, "-o", out, "--config", config).exit_code == 0
    assert helpers.read_csv(out)["stage"].to_list() == ["'=1+1", "solution"]


def test_a_sink_is_told_the_trusted_columns_only_when_it_asks(tmp_path):
    from kamcore.registry import Writer

    seen = {}

    def asks(frame, path, trusted=frozenset()):
        seen["trusted"] = trusted
        return frame.sink_csv(path, lazy=True)

    def plain(frame, path):
        seen["plain"] = True
        return frame.sink_csv(path, lazy=True)

    frame = pl.LazyFrame({"stage": ["won"]})
    for sink in (asks, plain):
        pl.collect_all([Writer(name="w", extensions=(".w",), sink=sink).write(frame, tmp_path / "o.csv",
                                                                           frozenset({"stage"}))])
    assert seen == {"trusted": frozenset({"stage"}), "plain": True}


def _reference_xlsx(frame: pl.DataFrame, path: Path) -> None:
    """The same sheet written cell by cell with openpyxl's own cell types: what the writer must match."""
    import math

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("scored")

    def cell(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if not isinstance(value, str):
            return value
        written = WriteOnlyCell(sheet, value=escape(value))
        written.data_type = "s"
        written.quotePrefix = is_dangerous(value)
        return written

    sheet.append([cell(name) for name in frame.columns])
    for row in frame.iter_rows():
        sheet.append([cell(value) for value in row])
    workbook.save(path)


def test_the_xlsx_sheet_is_what_openpyxl_writes_cell_by_cell(tmp_path):
    """Every cell of every type (text with the payloads, characters to escape and spaces to keep; whole and
    fractional numbers, NaN, booleans, dates, times of day, empty cells), in batches: the same value, type,
    quote prefix and number format as openpyxl writing the same values itself."""
    import datetime

    n = 12_345
    texts = PAYLOADS + ["a & b <c> \"d\"", " lead", "trail ", "bell\x07", "_x0041_", "cr\r", "中文 / English", None]
    frame = pl.DataFrame({"i": range(n)}).with_columns(
        pl.col("i").map_elements(lambda i: texts[i % len(texts)], return_dtype=pl.String).alias("text"),
        (pl.col("i") * 0.37 - 1000).alias("float"),
        pl.when(pl.col("i") % 13 == 0).then(float("nan")).when(pl.col("i") % 17 == 0).then(None)
        .otherwise(pl.col("i") / 7).alias("nan"),
        pl.when(pl.col("i") % 5 == 0).then(None).otherwise(pl.col("i") % 2 == 0).alias("flag"),
        (pl.date(1900, 1, 1) + pl.duration(days=pl.col("i") * 3)).alias("date"),
        (pl.datetime(2024, 7, 16) + pl.duration(minutes=pl.col("i") * 7)).alias("when"),
        pl.col("i").cast(pl.Int8, strict=False).alias("small"),
        pl.lit(None).alias("nothing"),
        pl.col("i").map_elements(lambda i: texts[i % 5], return_dtype=pl.String).cast(pl.Categorical).alias("code"))
    ours, reference = tmp_path / "ours.xlsx", tmp_path / "reference.xlsx"
    pl.collect_all([sink_xlsx(frame.lazy(), ours)], engine="streaming")
    _reference_xlsx(frame.with_columns(pl.col("code").cast(pl.String)), reference)
    got, want = openpyxl.load_workbook(ours).active, openpyxl.load_workbook(reference).active
    assert (got.max_row, got.max_column) == (want.max_row, want.max_column) == (n + 1, frame.width)
    for row_got, row_want in zip(got.iter_rows(), want.iter_rows(), strict=True):
        for a, b in zip(row_got, row_want, strict=True):
            assert (a.data_type, a.quotePrefix, a.number_format) == (b.data_type, b.quotePrefix, b.number_format)
            if isinstance(b.value, float):  # openpyxl writes 16 significant digits; the writer the shortest exact
                assert a.value == pytest.approx(b.value, rel=1e-15, abs=0), a.coordinate
            else:
                assert a.value == b.value, a.coordinate
    floats = [row[0] for row in got.iter_rows(min_row=2, min_col=4, max_col=4, values_only=True)]
    assert floats == [None if v is None or v != v else v for v in frame["nan"].to_list()]  # every bit kept
