"""The XLSX importer reads a sheet whose XML is plain in bulk (``kamcore_plugins.importers.xlsx_columns``) and
any other a cell at a time (``xlsx_sheet``): both must give the same rows, record lines and notes, and a
sheet that is not plain must fall back, never be read differently."""

from __future__ import annotations

import datetime as dt
import re
import sys
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).parent))
from helpers import kam_env, one_error_line, run_kam  # noqa: E402,F401
from test_xlsx_sheet import HAND_WRITTEN, every_kind_of_value, replace_sheet  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
from workbooks import with_shared_strings  # noqa: E402

from kamcore.errors import InputError  # noqa: E402
from kamcore.registry import ReadOptions  # noqa: E402
from kamcore_plugins.importers import xlsx_columns, xlsx_importer  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
CORPUS = Path(__file__).parent / "corpus"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
EXAMPLES = Path(__file__).parent.parent / "examples"


def read(path: Path, rows_by: str, **options):
    source = xlsx_importer._read(path, ReadOptions(**options), rows_by)
    try:
        frame = source.frame.collect()
        lines = source.record_lines(list(range(frame.height + 2)))
        return frame, lines, list(source.notes)
    finally:
        source.cleanup()


def assert_same_both_ways(path: Path, bulk: bool | None = True, **options) -> pl.DataFrame:
    """The bulk read (when ``bulk``: it must be taken; False: it must not be; None: either) and the automatic
    one equal the read a cell at a time."""
    cells = read(path, "cells", **options)
    auto = read(path, "auto", **options)
    for mine, theirs in zip(auto, cells):
        if isinstance(mine, pl.DataFrame):
            assert_frame_equal(mine, theirs)
        else:
            assert mine == theirs
    if bulk:
        fast = read(path, "bulk", **options)
        assert_frame_equal(fast[0], cells[0])
        assert fast[1:] == cells[1:]
    elif bulk is False:
        with pytest.raises(InputError, match="not plain sheet XML"):
            read(path, "bulk", **options)
    return cells[0]


def plain_workbook(path: Path, rows: int = 40, epoch=None) -> Path:
    """What openpyxl writes (shared strings, styles) for an export with every kind of value kam reads, title
    rows, totals rows, blank and missing rows, serial numbers in a date column, entities and escapes."""
    workbook = openpyxl.Workbook()
    if epoch is not None:
        workbook.epoch = epoch
    sheet = workbook.active
    sheet.title = "商机"
    sheet.append(["2024年第三季度商机"])
    sheet.append(["导出人：张三", None, "筛选：全部"])
    sheet.append(["编号", "客户名称", "标的", "利润", "采购时间", "已立项", "备注", "阶段"])
    for i in range(rows):
        sheet.append([f"P-{i:04d}", f"客户 {i % 7} & <Co> \"q\" 'a'", 1000 * i + 0.5 * (i % 3), (i % 10) / 10,
                      dt.date(2024, 1 + i % 12, 1 + i % 27) if i % 5 else 45000 + i, i % 2 == 0,
                      ["line one\nline two", "  spaces kept  ", "tab\there _x000D_ escaped", "a\r\nb", "", None][i % 6],
                      ["潜在", "intent", "方案", "谈判成交"][i % 4]])
        if i % 13 == 5:
            sheet.append([])  # a blank row inside the table
    sheet.append(["合计", None, "=SUM(C4:C9)"])
    sheet.append(["Total:", None, 12345])
    sheet.append(["  小计\u200b" + "：" * 20 + " " * 12, None, 1])  # long, but a totals label once cleaned
    for row in range(4, sheet.max_row + 1):
        sheet.cell(row, 3).number_format = "#,##0.00"
        sheet.cell(row, 4).number_format = "0%"
    sheet.cell(sheet.max_row + 3, 2).value = "after a gap"  # rows the XML leaves out, then a row
    sheet.cell(sheet.max_row, 1).value = "P-last"
    sheet.cell(sheet.max_row, 5).value = dt.datetime(2024, 3, 1, 14, 5, 7)
    workbook.save(path)
    with zipfile.ZipFile(path) as packed:  # openpyxl leaves the formula without a cached value: give it one
        xml = packed.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "<f>SUM(C4:C9)</f><v /></c>" in xml
    return replace_sheet(path, path.with_name("cached_" + path.name),
                         xml.replace("<f>SUM(C4:C9)</f><v /></c>", "<f>SUM(C4:C9)</f><v>3.5</v></c>"))


@pytest.mark.parametrize("chunk", [64, 1000, xlsx_columns.CHUNK])
def test_a_plain_workbook_reads_the_same_in_bulk_and_a_cell_at_a_time(tmp_path, monkeypatch, chunk):
    """Chunks of 64 bytes cut every row and cell; the default chunk holds the whole sheet."""
    monkeypatch.setattr(xlsx_columns, "CHUNK", chunk)
    path = plain_workbook(tmp_path / "plain.xlsx")
    frame = assert_same_both_ways(path)
    _, lines, notes = read(path, "bulk")
    assert frame.height == 41 and lines[0] == 4 and frame["编号"][-1] == "P-last"
    assert frame["备注"].to_list()[:6] == ["line one\nline two", "  spaces kept  ", "tab\there \r escaped", "a\nb", None,
                                           None]  # "" is written as no cell by openpyxl
    assert frame["客户名称"][0] == "客户 0 & <Co> \"q\" 'a'" and frame["利润"][1] == "10%"
    assert frame["采购时间"].to_list()[:2] == ["45000", "2024-02-02"] and frame["已立项"][0] == "TRUE"
    assert any("3 totals row(s) left out" in n for n in notes)
    assert any("empty row(s) inside the table were skipped" in n for n in notes)
    assert any("8 number(s) that look like Excel serial dates" in n for n in notes)


@pytest.mark.parametrize("rich", [False, True])
def test_shared_strings_read_the_same_in_bulk(tmp_path, rich):
    """Excel's own layout: every text in the shared-string table (rich text and phonetic runs read there by
    openpyxl, so the sheet stays plain)."""
    path = with_shared_strings(plain_workbook(tmp_path / "plain.xlsx"), tmp_path / "shared.xlsx", rich)
    with zipfile.ZipFile(path) as packed:
        assert packed.read("xl/worksheets/sheet1.xml").count(b't="s"') > 100
    frame = assert_same_both_ways(path)
    assert frame.height == 41 and frame["客户名称"][0] == "客户 0 & <Co> \"q\" 'a'"
    assert frame["备注"][2] == "tab\there \r escaped"


def test_a_1904_workbook_reads_the_same_both_ways(tmp_path):
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    assert_same_both_ways(plain_workbook(tmp_path / "mac.xlsx", epoch=CALENDAR_MAC_1904))


def test_kams_own_xlsx_output_is_read_in_bulk(tmp_path):
    """kam's writer streams inline strings; read back (as a stakeholder table would be), in bulk."""
    done = run_kam("score", EXAMPLES / "opportunities_zh.csv", "-o", "scored.xlsx", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    frame = assert_same_both_ways(tmp_path / "scored.xlsx")
    assert frame.height == 23 and "total_score" in frame.columns  # the example has 24 rows, one rejected


@pytest.mark.parametrize("name", ["xlsx_values.xlsx", "xlsx_title_totals.xlsx", "xlsx_second_sheet.xlsx"])
def test_the_corpus_workbooks_read_the_same_in_bulk(name):
    assert_same_both_ways(CORPUS / name)


@pytest.mark.parametrize("name", ["xlsx_formula_no_cache.xlsx"])
def test_a_formula_without_a_cached_value_is_left_to_the_cell_reader(name):
    assert_same_both_ways(CORPUS / name, bulk=False)


NOT_PLAIN = {  # what each change makes of the plain sheet XML: something the bulk reader must leave alone
    "a prefixed namespace": None,  # HAND_WRITTEN, whole
    "rich text": ('<is><t>客户 0', '<is><r><rPr><b/></rPr><t>客户 0</t></r><r><t>'),
    "a character reference": ("P-0001", "P-&#48;001"),
    "a comment between rows": ('<row r="5"', '<!-- x --><row r="5"'),
    "a CDATA section": ("<v>1000.5</v>", "<v><![CDATA[1000.5]]></v>"),
    "a cell without its reference": ('<c r="B5"', '<c'),
    "cells out of order": ('<c r="A5"', '<c r="I5"'),
    "a row number twice": ('<row r="6"', '<row r="5"'),
    "single-quoted attributes": ('<c r="A5"', "<c r='A5'"),
    "a control character": ("P-0001", "P-\x01001"),
}


def _plain_xml(tmp_path: Path) -> tuple[Path, str]:
    """A plain sheet (inline strings, as openpyxl, kam and streaming writers write them) and its XML."""
    path = plain_workbook(tmp_path / "base.xlsx", rows=8)
    with zipfile.ZipFile(path) as packed:
        return path, packed.read("xl/worksheets/sheet1.xml").decode("utf-8")


@pytest.mark.parametrize("chunk", [256, xlsx_columns.CHUNK])
@pytest.mark.parametrize("change", sorted(NOT_PLAIN))
def test_sheet_xml_that_is_not_plain_is_read_a_cell_at_a_time(tmp_path, monkeypatch, change, chunk):
    """In chunks of 256 bytes, rows already read in bulk are dropped when a later chunk is not plain."""
    monkeypatch.setattr(xlsx_columns, "CHUNK", chunk)
    base, xml = _plain_xml(tmp_path)
    assert_same_both_ways(base)  # the unchanged sheet is plain
    if NOT_PLAIN[change] is None:
        changed = HAND_WRITTEN
        path = replace_sheet(every_kind_of_value(tmp_path / "values.xlsx"), tmp_path / "changed.xlsx", changed)
    else:
        old, new = NOT_PLAIN[change]
        assert old in xml, change
        path = replace_sheet(base, tmp_path / "changed.xlsx", xml.replace(old, new, 1))
    try:
        cells = read(path, "cells")
    except InputError as exc:  # the cell reader refuses it: so must the automatic read, with the same words
        with pytest.raises(InputError) as automatic:
            read(path, "auto")
        assert automatic.value.message == exc.message
        return
    assert_same_both_ways(path, bulk=False)
    assert cells[0].height >= (8 if NOT_PLAIN[change] else 4)


@pytest.mark.parametrize("chunk", [256, xlsx_columns.CHUNK])
def test_values_past_the_header_open_columns_in_bulk_as_a_cell_at_a_time(tmp_path, monkeypatch, chunk):
    """A filled value past the header's columns opens columns up to its own from its row on (column_9 …, with one
    warning per value that opened some, naming its row); a blank one past them before that is dropped, after it
    kept."""
    monkeypatch.setattr(xlsx_columns, "CHUNK", chunk)
    base, xml = _plain_xml(tmp_path)
    cell = '<c r="{}" t="inlineStr"><is><t>{}</t></is></c></row><row r="{}"'
    for where, text in (("J5", "x"), ("K6", " "), ("L7", "y"), ("I8", " ")):
        row = int(where[1:])
        xml = xml.replace(f'</row><row r="{row + 1}"', cell.format(where, text, row + 1), 1)
    path = replace_sheet(base, tmp_path / "past.xlsx", xml)
    frame = assert_same_both_ways(path)
    _, _, notes = read(path, "bulk")
    assert frame.columns[8:] == ["column_9", "column_10", "column_11", "column_12"]
    assert frame.select(pl.nth(8, 9, 10, 11)).rows()[:5] == [
        (None, None, None, None), (None, "x", None, None), (None, None, None, None), (None, None, None, "y"),
        (" ", None, None, None)]
    assert [n.split(": ", 1)[1] for n in notes if "no header" in n] == [
        "columns I to J have no header: a value past the header (from row 5) opened them; they are read as "
        "'column_9' to 'column_10'",
        "columns K to L have no header: a value past the header (from row 7) opened them; they are read as "
        "'column_11' to 'column_12'"]


def test_a_style_written_after_the_type_is_read_in_bulk(tmp_path):
    """r, s, t is the usual order; t before s is read in bulk too, and the same (a percent and a date style)."""
    base, xml = _plain_xml(tmp_path)
    swapped = re.sub(r'<c r="([A-Z]+[0-9]+)" s="([0-9]+)" t="([a-zA-Z]+)"', r'<c r="\1" t="\3" s="\2"', xml)
    assert swapped != xml and re.search(r'<c r="[A-Z]+[0-9]+" t="n" s="[0-9]+">', swapped)
    path = replace_sheet(base, tmp_path / "swapped.xlsx", swapped)
    assert_frame_equal(assert_same_both_ways(path), read(base, "bulk")[0])
    assert '<c r="C5" t="n" s="1">' in swapped
    twice = replace_sheet(base, tmp_path / "twice.xlsx", swapped.replace('<c r="C5" t="n" s="1">',
                                                                         '<c r="C5" s="2" t="n" s="1">'))
    with pytest.raises(InputError):  # expat: "duplicate attribute"
        read(twice, "cells")
    with pytest.raises(InputError):
        read(twice, "auto")


def test_a_cell_past_the_last_column_is_refused_in_plain_xml_too(tmp_path):
    base, xml = _plain_xml(tmp_path)
    path = replace_sheet(base, tmp_path / "far.xlsx", xml.replace('<c r="C5"', '<c r="ZZZ5"', 1))
    done = run_kam("score", path, "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 4
    assert "past Excel's last column" in one_error_line(done.stderr.decode())


def test_a_large_export_reads_the_same_in_bulk(tmp_path):
    """Thousands of rows over several chunks of inflated XML, shared strings and numbers."""
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("export")
    sheet.append(["opportunity_id", "account", "stage", "deal_size", "purchase_date", "margin", "notes"])
    for i in range(6000):
        sheet.append([f"OPP-{i:06d}", f"Account {i % 97}", ["potential", "intent", "solution"][i % 3],
                      1_166_100.25 + i, dt.date(2024, 1 + i % 12, 1 + i % 28), f"{i % 40}%",
                      "x" * (i % 50) or None])
    workbook.save(tmp_path / "large.xlsx")
    frame = assert_same_both_ways(tmp_path / "large.xlsx")
    assert frame.height == 6000 and frame["deal_size"][1] == "1166101.25"


def _replace_part(path: Path, target: Path, member: str, xml: str) -> Path:
    return replace_sheet(path, target, xml, member=member)


SHARED_TABLES = {
    "plain": ('<si><t>编号</t></si><si><t xml:space="preserve">  spaces  </t></si><si><t>a &amp; b &lt;c&gt; '
              '&quot;d&quot; &apos;e&apos;</t></si><si><t>line\r\nbreak\rhere</t></si><si><t/></si><si><t></t></si>'
              '<si><t>_x005F_x000D_ kept as openpyxl reads it</t></si>\n<si><t>末尾</t></si>', True),
    "rich text and phonetic runs": ('<si><r><rPr><b/></rPr><t>客户</t></r><r><t>名称</t></r><rPh sb="0" eb="1">'
                                    '<t>きゃく</t></rPh></si><si><t>x</t></si>', False),
    "a character reference": ('<si><t>&#20013;</t></si>', False),
    "an empty item": ('<si/><si><t>x</t></si>', False),
}


@pytest.mark.parametrize("table", sorted(SHARED_TABLES))
def test_the_shared_strings_read_as_openpyxl_reads_them_escapes_kept(tmp_path, table):
    """A plain table is read in bulk; any other element by element; the strings are the same either way, and
    they are openpyxl's (runs joined, phonetic runs left out) but for its removal of every ``x005F_``: the
    escapes are undone once, with the cell's text."""
    from openpyxl.reader.strings import read_string_table as openpyxls

    items, plain = SHARED_TABLES[table]
    base = with_shared_strings(plain_workbook(tmp_path / "plain.xlsx", rows=4), tmp_path / "shared.xlsx")
    xml = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="{MAIN}" count="9" '
           f'uniqueCount="9">{items}</sst>')
    path = _replace_part(base, tmp_path / "table.xlsx", "xl/sharedStrings.xml", xml)
    with zipfile.ZipFile(path) as packed:
        expected = xlsx_importer.read_string_table(packed, "xl/sharedStrings.xml")
        assert [s.replace("x005F_", "") for s in expected] == openpyxls(packed.open("xl/sharedStrings.xml"))
        assert (xlsx_columns.shared_strings(packed, "xl/sharedStrings.xml") == expected) if plain else \
            xlsx_columns.shared_strings(packed, "xl/sharedStrings.xml") is None
    workbook = xlsx_importer._open_workbook(path)
    try:
        assert workbook.worksheets[0]._shared_strings == expected
    finally:
        xlsx_importer._close(workbook)
    if plain:
        assert expected[:4] == ["编号", "  spaces  ", "a & b <c> \"d\" 'e'", "line\nbreak\nhere"]
        assert expected[6] == "_x005F_x000D_ kept as openpyxl reads it"


@pytest.mark.parametrize("rich", [False, True])
def test_an_escaped_underscore_in_a_shared_string_is_undone_once(tmp_path, rich):
    """Excel and xlsxwriter store a literal ``_x000D_`` as ``_x005F_x000D_`` and a carriage return as ``_x000D_``:
    the cell holds ``_x000D_`` and a carriage return, in a plain table (bulk) and a rich one (element by
    element) alike. (Both escapes were undone, one after the other: the literal text became a carriage return.)"""
    base = with_shared_strings(plain_workbook(tmp_path / "plain.xlsx", rows=4), tmp_path / "shared.xlsx")
    with zipfile.ZipFile(base) as packed:
        table = packed.read("xl/sharedStrings.xml").decode("utf-8")
    first = table.index("<si>")
    escaped = ('<si><t>literal _x005F_x000D_ and _x005F_x005F_ text</t></si><si><t>a_x000D_\nb</t></si>'
               + ('<si><r><rPr><b/></rPr><t>rich </t></r><r><t>_x005F_x0007_</t></r></si>' if rich else ""))
    count = table.count("<si>")  # the new strings go last: the sheet's indexes stay right
    table = table[:first] + table[first:].replace("</sst>", escaped + "</sst>")
    path = _replace_part(base, tmp_path / "escaped.xlsx", "xl/sharedStrings.xml", table)
    with zipfile.ZipFile(path) as packed:
        sheet = packed.read("xl/worksheets/sheet1.xml").decode("utf-8")
    cells = "".join(f'<c r="{col}5" t="s"><v>{count + i}</v></c>' for i, col in enumerate("BG" + ("H" if rich else "")))
    first = '<c r="A5" t="inlineStr"><is><t>P-esc</t></is></c>'
    sheet = re.sub(r'(<row r="5"[^>]*>)(.*?)(</row>)', lambda m: m.group(1) + first + cells + m.group(3), sheet,
                   count=1, flags=re.S)
    path = replace_sheet(path, tmp_path / "escaped_cells.xlsx", sheet)
    frame = assert_same_both_ways(path)
    row = frame.row(1, named=True)  # sheet row 5
    assert row["编号"] == "P-esc" and row["客户名称"] == "literal _x000D_ and _x005F_ text" and row["备注"] == "a\r\nb"
    if rich:
        assert row["阶段"] == "rich _x0007_"


@pytest.mark.parametrize("quote", ['"', "'"])
def test_sheet_xml_declared_in_another_encoding_is_left_to_expat(tmp_path, quote):
    """Bytes that are valid UTF-8 mean something else in the Latin-1 the XML declares: expat decides."""
    base, xml = _plain_xml(tmp_path)
    declared = f"<?xml version={quote}1.0{quote} encoding={quote}ISO-8859-1{quote}?>\n" + xml.replace(
        "P-0001", "P-café")  # é is C3 A9 in the file: "Ã©" in Latin-1 (and every Chinese text garbled)
    path = replace_sheet(base, tmp_path / "latin.xlsx", declared)
    frame = assert_same_both_ways(path, bulk=False)
    assert "P-cafÃ©" in frame.to_series(0).to_list()


def test_bytes_that_are_not_utf8_are_refused_as_the_cell_reader_refuses_them(tmp_path):
    base, xml = _plain_xml(tmp_path)
    with zipfile.ZipFile(base) as old, zipfile.ZipFile(tmp_path / "bad.xlsx", "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info.filename)
            new.writestr(info, data.replace(b"P-0001", b"P-\xff001") if info.filename.endswith("sheet1.xml") else data)
    with pytest.raises(InputError) as cells:
        read(tmp_path / "bad.xlsx", "cells")
    with pytest.raises(InputError) as automatic:
        read(tmp_path / "bad.xlsx", "auto")
    assert automatic.value.message == cells.value.message and "cannot read the workbook" in cells.value.message


def test_the_debug_log_says_how_the_rows_were_read(caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="kamcore.importers"):
        read(CORPUS / "xlsx_values.xlsx", "auto")
        read(CORPUS / "xlsx_formula_no_cache.xlsx", "auto")
    said = [r.getMessage().split(": ", 1)[1] for r in caplog.records if "rows read" in r.getMessage()]
    assert said == ["rows read in bulk", "rows read a cell at a time (the XML is not plain)"]


_CELLS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**15, 10**15), st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(9999, 12, 31)),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(9999, 12, 31)),
    st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
                     max_size=4) | st.sampled_from(["&", "<", ">", '"', "'", "_x000D_", "_x005F_", "\n", "\t", " ",
                                                    "合计", "Total:", "45000", "0012", "=A1"]),
             max_size=4).map("".join))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(_CELLS, min_size=1, max_size=8), min_size=1, max_size=12), st.booleans())
def test_any_values_read_the_same_in_bulk_and_a_cell_at_a_time(tmp_path, rows, shared):
    """Whatever openpyxl writes (numbers, dates, booleans, text with entities, escapes, spaces, totals labels,
    values past the header), in either layout, the two reads agree."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["编号", "采购时间", "备注", "标的", "已立项", "说明"])
    for row in rows:
        sheet.append(row)
    path = tmp_path / f"any-{len(rows)}-{shared}.xlsx"
    workbook.save(path)
    if shared:
        path = with_shared_strings(path, tmp_path / f"any-shared-{len(rows)}.xlsx")
    assert_same_both_ways(path, bulk=None)
