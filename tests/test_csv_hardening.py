"""CSV hardening: the structure check, the careful pass's messages, header/preamble/footer/totals
detection, trailing delimiters, kam's own output read back, content sniffing, and a fuzz test of the
reader (random bytes and random tables: read, or one clear KamError; never a traceback).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import invoke, kam_env, read_summary  # noqa: E402,F401

from kamcore.errors import InputError, KamError, ReadAgain  # noqa: E402
from kamcore.registry import ReadOptions  # noqa: E402
from kamcore_plugins.importers import csv_importer  # noqa: E402
from kamcore_plugins.importers.csv_importer import check_structure, find_data_end, read, sniff, sniff_delimiter  # noqa: E402

HEADER = ["编号", "客户名称", "标的", "备注"]
GOOD = [["A-1", "华能", "120万", "plain"], ["A-2", "Acme, Inc.", "1.2亿", 'say "hi"'],
        ["A-3", "申通", "30万", "two\r\nlines"], ["A-4", "", "", ""]]


def text(rows, delimiter=",", terminator="\r\n") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=terminator).writerows(rows)
    return buffer.getvalue()


def write(tmp_path: Path, content: str | bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read_all(path: Path, **options) -> tuple[pl.DataFrame, object]:
    source = read(path, ReadOptions(**options))
    try:
        return source.frame.collect(), source
    finally:
        source.cleanup()


# -- the vectorised structure check ---------------------------------------------------------------

@pytest.mark.parametrize("terminator", ["\r\n", "\n"])
def test_clean_files_pass_the_structure_check(tmp_path, terminator):
    path = write(tmp_path, text([HEADER] + GOOD * 3, terminator=terminator))
    stats = check_structure(path, ",", 2, len(HEADER))
    assert not stats["suspect"], stats
    assert stats["last_filled"] == 9  # the A-4 rows end with an empty value


@pytest.mark.parametrize("line, problem", [
    ("A-9,x,1\r\n", "ragged"),  # too few
    ("A-9,x,1,2,3\r\n", "ragged"),  # too many
    ('A-9,x,1,"open\r\n', "open_quote"),
    ('A-9,x"y,1,2\r\n', "malformed"),  # a quote inside an unquoted value
    ('A-9, "x",1,2\r\n', "malformed"),  # a space before the opening quote
    ('A-9,"x"y,1,2\r\n', "malformed"),  # text after the closing quote
    ("A-9,x\x00y,1,2\r\n", "nul"),
])
def test_the_structure_check_flags_each_problem(tmp_path, line, problem):
    path = write(tmp_path, text([HEADER] + GOOD[:2]) + line + text(GOOD[2:]))
    stats = check_structure(path, ",", 2, len(HEADER))
    assert stats["suspect"] and stats[problem], stats


def test_the_structure_check_sees_across_its_chunks(tmp_path):
    """Quoted values and records cut by the 4 MiB chunk boundary (made tiny here) are followed."""
    path = write(tmp_path, text([HEADER] + GOOD * 5))
    assert not check_structure(path, ",", 2, len(HEADER), chunk_size=7)["suspect"]
    bad = write(tmp_path, text([HEADER] + GOOD * 2) + "A-9,x,1\r\n" + text(GOOD), "bad.csv")
    assert check_structure(bad, ",", 2, len(HEADER), chunk_size=7)["ragged"] == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(st.text(alphabet='ab,;"\n\r 中', max_size=6), min_size=3, max_size=3), max_size=8),
       delimiter=st.sampled_from([",", ";", "\t", "|"]), terminator=st.sampled_from(["\r\n", "\n"]))
def test_property_what_csv_writes_passes_and_a_dropped_delimiter_is_caught(tmp_path, rows, delimiter, terminator):
    rows = [r for r in rows if any(r)]  # an all-empty row is written as an empty line: a blank record
    if terminator == "\n":  # csv does not quote a lone CR then, and a CR alone outside quotes is refused
        rows = [[value.replace("\r", "") for value in row] for row in rows]
    path = write(tmp_path, text([["a", "b", "c"]] + rows, delimiter, terminator))
    assert not check_structure(path, delimiter, 2, 3)["suspect"]
    short = write(tmp_path, text([["a", "b", "c"]] + rows, delimiter, terminator) + f"x{delimiter}y{terminator}", "s.csv")
    assert check_structure(short, delimiter, 2, 3)["ragged"] == 1


# -- the structure check gives what its earlier, slower version gave (reference_check_structure, at the end)

CHUNK_SIZES = (1, 2, 3, 7, 64, csv_importer.CHUNK)  # the small ones cut records and quoted values everywhere


def corpus_chunk_sizes(path: Path) -> tuple[int, ...]:
    return (1, 7, 64, csv_importer.CHUNK) if path.stat().st_size < 4096 else (61, 4093, csv_importer.CHUNK)


def assert_same_structure(path: Path, delimiter: str, data_line: int, fields: int, sizes=CHUNK_SIZES):
    for size in sizes:
        expected = reference_check_structure(path, delimiter, data_line, fields, size)
        assert check_structure(path, delimiter, data_line, fields, size) == expected, (size, path.read_bytes()[:400])


@st.composite
def csv_bytes(draw) -> tuple[bytes, str, int]:
    """A header and records with the shapes the check must see: quoted values holding delimiters, doubled
    quotes and CR, LF or CRLF; stray quotes, text after a closing quote, NULs; empty lines, ragged records,
    records ended by a CR alone; a last record without a line break, or a quote never closed."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    fields = draw(st.integers(1, 4))
    quoted = st.lists(st.sampled_from(["a", " ", "中", delimiter, '""', "\n", "\r\n", "\r", "\x00"]), max_size=5)
    plain = st.text(alphabet="ab 中,;\t|".replace(delimiter, ""), max_size=4)
    odd = st.sampled_from(['a"b', '"a"b', ' "a"', "a\x00b", '"', '""', "\r", '="0012"', '="a', '="a""b"', '="a\nb"',
                           f'="a{delimiter}b"', '=""', '"="a"', 'x="a"', '="a"b'])
    value = st.one_of(plain, plain, quoted.map(lambda parts: '"' + "".join(parts) + '"'), odd)
    record = st.one_of(st.lists(value, min_size=fields, max_size=fields), st.lists(value, max_size=fields + 2))
    records = draw(st.lists(st.tuples(record, st.sampled_from(["\n", "\r\n", "\r"])), max_size=10))
    content = delimiter.join(f"h{i}" for i in range(fields)) + "\n"
    content += "".join(delimiter.join(values) + line_break for values, line_break in records)
    if draw(st.booleans()):
        content = content.rstrip("\r\n")
    content += draw(st.sampled_from(["", "", "x", '"never closed', f'a{delimiter}"b\nc']))
    return content.encode("utf-8"), delimiter, fields


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=csv_bytes(), data_line=st.integers(1, 3))
def test_property_the_structure_check_gives_what_its_earlier_version_gave(tmp_path, case, data_line):
    content, delimiter, fields = case
    assert_same_structure(write(tmp_path, content), delimiter, data_line, fields)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.text(alphabet=',;\t|"\r\n a中\x00=', max_size=120).map(str.encode),
       delimiter=st.sampled_from([",", ";", "\t"]), data_line=st.integers(1, 2), fields=st.integers(1, 4))
def test_property_the_structure_check_gives_what_its_earlier_version_gave_on_any_bytes(
        tmp_path, content, delimiter, data_line, fields):
    assert_same_structure(write(tmp_path, content), delimiter, data_line, fields)


def test_the_structure_check_gives_what_its_earlier_version_gave_on_larger_files(tmp_path):
    rows = [[f"A-{i}", f"Acme {i}, Inc." if i % 3 else f'say "{i}"', "two\r\nlines" if i % 7 == 0 else "", str(i)]
            for i in range(3000)]
    content = text([HEADER] + rows)
    path = write(tmp_path, content)
    sizes = (4093, 65536, 1 << 20, csv_importer.CHUNK)
    assert_same_structure(path, ",", 2, len(HEADER), sizes)
    broken = content[:40000] + 'A-x,"never closed,1\r\n' + content[40000:] + "A-y,1\r\nA-z\x00,1,2,3"
    assert_same_structure(write(tmp_path, broken, "broken.csv"), ",", 2, len(HEADER), sizes)
    # 64 Ki delimiters and more between two quotes or line breaks: the counts must not wrap around
    for run in (65535, 65536, 65537):
        for long_values in (f"h\n{',' * run}\n", f"h\nx\n{',' * run}\n\"{',' * run}\"\n{',' * run}"):
            for fields in (2, run + 1):
                path = write(tmp_path, long_values, "long.csv")
                assert_same_structure(path, ",", 2, fields, (4093, 65536, csv_importer.CHUNK))


CORPUS = Path(__file__).parent / "corpus"


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".csv", ".txt")))
def test_the_structure_check_gives_what_its_earlier_version_gave_on_the_corpus(name, monkeypatch):
    """Each corpus file as the importer checks it (its delimiter, header and encoding found by read())."""
    case = next(c for c in json.loads((CORPUS / "expected.json").read_text(encoding="utf-8")) if c["file"] == name)
    for variable, value in case["env"].items():
        monkeypatch.setenv(variable, value)
    checked = []

    def both(path, delimiter, data_line, fields):
        assert_same_structure(path, delimiter, data_line, fields, corpus_chunk_sizes(path))
        checked.append(delimiter)
        return check_structure(path, delimiter, data_line, fields)

    monkeypatch.setattr(csv_importer, "check_structure", both)
    try:
        read(CORPUS / name, ReadOptions()).cleanup()
    except KamError:
        pass
    assert checked or case["exit"] == 4 or case["importer"] not in (None, "csv")
    raw = CORPUS / name  # and its raw bytes with every delimiter kam knows
    first_line = raw.read_bytes().split(b"\n")[0]
    for delimiter in csv_importer.CANDIDATES:
        for data_line in (1, 2, 5):
            fields = first_line.count(delimiter.encode()) + 1
            assert_same_structure(raw, delimiter, data_line, fields, (509, csv_importer.CHUNK))


# -- the careful pass: one message naming file, line, column, expected, found, hint ------------------

@pytest.mark.parametrize("content, words", [
    (text([HEADER]) + "A-9,x,1\r\n" * 11 + text(GOOD[:1]),
     ["line 2", "expected 4 fields", "found 3", "'标的'", "11 of 12 records have the wrong number of fields"]),
    (text([HEADER]) + "A-9,x,1,2,extra\r\n" * 12, ["line 2", "found 5", "'extra'", "after column 4 ('备注')"]),
    (text([HEADER]) + 'A-9,"never closed,1,2\r\nA-10,y,1,2\r\n', ["line 2", "column 2 ('客户名称')", "never closed"]),
    (text([HEADER]) + 'A-9,12" monitor,1,2\r\n', ["line 2", "column 2", "double quote"]),
    (text([HEADER]) + "A-9,x\x00,1,2\r\n", ["line 2", "NUL"]),
])
def test_refusals_name_the_line_column_and_what_was_found(tmp_path, content, words):
    path = write(tmp_path, content)
    with pytest.raises(InputError) as info:
        read(path, ReadOptions())
    message = str(info.value)
    assert str(path) in message and "hint:" in message
    for word in words:
        assert word in message, message


def test_a_few_ragged_records_are_quarantined_not_refused(tmp_path):
    path = write(tmp_path, text([HEADER] + GOOD[:2]) + "A-9,x,1\r\n" + "A-10,y,1,2,extra\r\n" + text(GOOD[2:]))
    source = read(path, ReadOptions())
    frame = source.frame.collect()
    assert frame.height == len(GOOD) + 2  # every record is still a row, so nothing is lost
    short, long = source.quarantined[2], source.quarantined[3]
    assert short[0] == "备注" and "expected 4 fields as in the header (line 1), found 3" in short[1]
    assert short[2] == "编号=A-9; 客户名称=x; 标的=1"
    assert long[2] == "编号=A-10; 客户名称=y; 标的=1; 备注=2; … (5 fields)"
    assert long[0] == "column 5" and "found 5: an extra value after column 4 ('备注')" in long[1]
    assert set(source.quarantined) == {2, 3}
    assert any("2 record(s) with the wrong number of fields are set aside, not read as rows" in n for n in source.notes)


def test_quarantined_records_are_rejected_with_line_column_and_a_masked_preview(tmp_path, kam_env):
    header = ["编号", "客户名称", "电话", "标的", "备注"]
    rows = [["A-1", "华能", "13900000001", "120万", "ok"], ["A-2", "申通", "13900000002", "1.5亿", "ok"]]
    broken = "A-3,Acme\r\nCorp,13900000003,30万,ok\r\n"  # an unquoted line break: two short records
    path = write(tmp_path, text([header] + rows[:1]) + broken + text(rows[1:]))
    out = tmp_path / "scored.csv"
    result = invoke("score", path, "-o", out)
    assert result.exit_code == 0, result.output
    rejects = helpers.read_rejects(out)
    assert rejects.select("line", "column").rows() == [(3, "电话"), (4, "备注")]
    assert rejects["value"].to_list() == ["编号=A-3; 客户名称=Acme",
                                          "编号=Corp; 客户名称=***; 电话=***; 标的=ok"]  # shifted: masked by look
    assert "13900000003" not in out.with_name("scored.csv.rejects.csv").read_text("utf-8-sig")
    summary = helpers.read_summary(out)
    assert summary["rows"] == {"in": 4, "scored": 2, "rejected": 2}
    assert helpers.read_csv(out)["opportunity_id"].to_list() == ["A-1", "A-2"]


def test_quarantined_records_are_left_out_of_tables_read_whole(tmp_path, kam_env):
    """kam classify (people) and kam train (history) read a table whole: a half-read record is not a
    person or a deal to learn from."""
    people = write(tmp_path, "编号,姓名,职务,角色\r\nA-1,张三,总经理,关键决策者\r\nA-1,李四,信息中心主任\r\n"
                             "A-2,王五,财务总监,业务把关者\r\n", "people.csv")
    out = tmp_path / "people.out.csv"
    result = invoke("classify", people, "-o", out)
    assert result.exit_code == 0, result.output
    assert helpers.read_csv(out)["title"].to_list() == ["总经理", "财务总监"]

    from kamcore.config import load_config
    from kamcore.plugins import get_kam
    from kamcore_plugins.models.features import load_history

    history = write(tmp_path, "编号,资金状况,项目的预算,结果\r\n" + "".join(
        f"H-{i},{'到位' if i % 2 else '未到位'},{'有' if i % 2 else '无'},{'赢单' if i % 2 else '丢单'}\r\n"
        for i in range(20)) + "H-99,到位,有,赢单,extra\r\n", "history.csv")
    kam = get_kam()
    loaded = load_history([history], target="结果", won=("赢单",), lost=(), config=load_config(None, kam.config_defaults()),
                          kam=kam, options=ReadOptions())
    assert len(loaded.won) == 20  # H-99 has a field too many: not a won deal to learn from


def test_a_refused_file_leaves_no_output_and_exits_4(tmp_path, kam_env):
    path = write(tmp_path, text([HEADER] + GOOD) + 'A-9,"x\r\n')
    out = tmp_path / "scored.csv"
    result = invoke("score", path, "-o", out)
    assert result.exit_code == 4
    assert "line 7" in helpers.one_error_line(result.stderr)
    assert not out.exists()


def test_the_field_limit_is_configurable(tmp_path, monkeypatch):
    path = write(tmp_path, text([HEADER, ["A-1", "x", "1", "y" * 3000]]))
    read_all(path)  # under the default 1 MiB
    monkeypatch.setenv("KAM_CSV_MAX_FIELD_BYTES", "1000")
    with pytest.raises(InputError, match=r"line 2: column 4 \('备注'\): a value longer than 1,000 bytes"):
        read(path, ReadOptions())


def test_rejected_rows_keep_physical_lines_after_a_preamble_and_line_breaks(tmp_path, kam_env):
    rows = [HEADER, ["A-1", "x", "1", "one\ntwo\nthree"], ["A-2", "y", "一百万", ""]]
    path = write(tmp_path, "报表\r\n筛选: 全部\r\n" + text(rows))
    out = tmp_path / "scored.csv"
    assert invoke("score", path, "-o", out).exit_code == 0
    assert helpers.read_rejects(out).select("line", "column").rows() == [(7, "deal_size")]
    assert read_summary(out)["inputs"][0]["header_line"] == 3


def test_long_values_do_not_break_the_line_lookup_of_rejects(tmp_path, kam_env):
    """csv's own field limit (128 KiB) is raised to kam's while the rejects' lines are looked up."""
    rows = [HEADER, ["A-1", "x", "1", "n" * 200_000], ["A-2", "y", "bad amount", ""]]
    out = tmp_path / "scored.csv"
    assert invoke("score", write(tmp_path, text(rows)), "-o", out).exit_code == 0
    assert helpers.read_rejects(out)["line"].to_list() == [3]


# -- header row, preamble, footer, totals, trailing delimiter ---------------------------------------

def test_the_header_is_found_below_a_title_and_filters(tmp_path):
    path = write(tmp_path, "销售机会,,,\r\n导出: 2025-01-01,,,\r\n\r\n" + text([HEADER] + GOOD))
    frame, source = read_all(path)
    assert source.header_line == 4 and frame.columns == HEADER and frame.height == len(GOOD)
    assert any("header is on line 4" in note for note in source.notes)


def test_a_header_known_only_to_the_users_mapping_is_found(tmp_path):
    rows = [["Report"], ["Kunde", "Betrag", "Kennung"], ["x", "1", "K-1"]]
    path = write(tmp_path, text(rows))
    _, source = read_all(path, columns={"Kunde": "account", "Betrag": "deal_size", "Kennung": "opportunity_id"})
    assert source.header_line == 2


def test_salesforce_footer_and_totals_rows_are_cut_with_notes(tmp_path):
    body = text([HEADER] + GOOD + [["合计", "", "3.2亿", ""], ["Grand Total:", "", "", ""]])
    footer = '\r\n"Opportunity Pipeline"\r\n"Copyright (c) 2000-2025 salesforce.com, inc."\r\n"Generated By:  X"\r\n'
    frame, source = read_all(write(tmp_path, body + footer))
    assert frame["编号"].to_list() == ["A-1", "A-2", "A-3", "A-4"]
    assert any("report footer of 3 line(s)" in n for n in source.notes)
    assert any("2 totals row(s)" in n and "合计" in n for n in source.notes)


def test_a_one_column_file_is_never_cut_as_a_footer(tmp_path):
    path = write(tmp_path, "编号\r\nA-1\r\n\r\nA-2\r\n")
    assert find_data_end(path, ",", 1, 1) == (None, [])


def test_a_totals_word_inside_the_data_is_not_cut(tmp_path):
    frame, _ = read_all(write(tmp_path, text([HEADER, ["Total", "x", "1", ""], ["A-2", "y", "2", ""]])))
    assert frame["编号"].to_list() == ["Total", "A-2"]


def test_a_trailing_delimiter_drops_only_an_empty_last_column(tmp_path):
    empty = "".join(line + ",\r\n" for line in text([HEADER] + GOOD[:2]).splitlines())
    frame, source = read_all(write(tmp_path, empty))
    assert frame.columns == HEADER
    filled = text([HEADER + [""], ["A-1", "x", "1", "", "kept"]])
    frame, source = read_all(write(tmp_path, filled, "filled.csv"))
    assert frame.columns == HEADER + ["column_5"] and frame["column_5"].to_list() == ["kept"]


def test_duplicate_and_odd_headers(tmp_path):
    with pytest.raises(InputError, match="columns 1 and 3 are both named '编号'"):
        read(write(tmp_path, text([["编号", "标的", " 编号 "], ["a", "1", "b"]])), ReadOptions())
    frame, _ = read_all(write(tmp_path, text([["编\u200b号", "ｄｅａｌ　ｓｉｚｅ", ""], ["a", "1", "z"]]), "odd.csv"))
    assert frame.columns == ["编号", "deal size", "column_3"]


def test_a_repeated_header_kam_does_not_read_is_kept_under_its_column_number(tmp_path):
    """CRM exports repeat a header across objects (Created By of the account and of the deal): both kept,
    the later one under its column number, with a warning."""
    path = write(tmp_path, text([["编号", "Created By", "标的", "Created　By ", "Created By"], ["a", "x", "1", "y", "z"]]))
    frame, source = read_all(path)
    assert frame.columns == ["编号", "Created By", "标的", "Created By_4", "Created By_5"]
    assert frame.row(0) == ("a", "x", "1", "y", "z")
    assert [n for n in source.notes if "both named" in n] == [
        f"{path}: columns 2 and 4 are both named 'Created By'; kam reads neither, and column 4 is kept as 'Created By_4'",
        f"{path}: columns 2 and 5 are both named 'Created By'; kam reads neither, and column 5 is kept as 'Created By_5'"]


def test_a_repeated_header_that_would_clash_with_another_is_refused(tmp_path):
    """The later 备用 would be kept as 备用_3, which a header further on already is."""
    path = write(tmp_path, text([["编号", "备用", "备用", "备用_3"], ["a", "x", "y", "z"]]))
    with pytest.raises(InputError, match="columns 2 and 3 are both named '备用'"):
        read(path, ReadOptions())


def test_a_repeated_header_kam_reads_is_refused_unless_mapped_to_be_kept(tmp_path):
    """Two 备注 (notes) or two 标的 (deal size): which to read would be a guess; [columns] "" keeps both, unread."""
    path = write(tmp_path, text([["编号", "备注", "标的", "备注"], ["a", "x", "1", "y"]]))
    with pytest.raises(InputError, match="columns 2 and 4 are both named '备注'") as refused:
        read(path, ReadOptions())
    assert """'备注' = "" in [columns] of kam.toml""" in refused.value.hint
    frame, source = read_all(path, columns={"备注": ""})
    assert frame.columns == ["编号", "备注", "标的", "备注_4"]
    with pytest.raises(InputError, match="columns 2 and 4 are both named 'Remark'"):  # a header [columns] maps
        read(write(tmp_path, text([["编号", "Remark", "x", "Remark"], ["a", "1", "2", "3"]]), "m.csv"),
             ReadOptions(columns={"remark": "deal_size"}))


def test_excels_sep_line_names_the_delimiter(tmp_path):
    """Without the line, ',' and ';' split this sample alike and ',' is sniffed; Excel's "sep=;" decides."""
    body = "编号;备注,币种\r\nA-1;x,CNY\r\nA-2;y,USD\r\n"
    frame, _ = read_all(write(tmp_path, body, "sniffed.csv"))
    assert frame.columns == ["编号;备注", "币种"]
    path = write(tmp_path, "\ufeffsep=;\r\n" + body, "named.csv")
    frame, source = read_all(path)
    assert frame.columns == ["编号", "备注,币种"] and frame["编号"].to_list() == ["A-1", "A-2"]
    assert source.header_line == 2 and source.delimiter == ";"
    assert source.notes == (f"{path}: line 1 is Excel's 'sep=;' line; the delimiter it names was used",)
    frame, source = read_all(path, delimiter=",")  # --delimiter wins
    assert frame.columns == ["编号;备注", "币种"] and "--delimiter ',' was used instead" in source.notes[0]
    # a title after the sep line is still a preamble, counted without the sep line
    frame, source = read_all(write(tmp_path, "sep=;\n销售机会导出\n编号;标的\nA-1;1\n", "title.csv"))
    assert frame.columns == ["编号", "标的"] and any("the 1 line(s) before it after the sep= line" in n for n in source.notes)


def test_excels_text_values_are_read_as_the_text_inside(tmp_path):
    """Excel writes ="000123" to keep a value as text (leading zeros, long digits), bare or quoted; it reads
    back the text inside, and so does kam. A value whose inside holds a delimiter, a line break or a quote
    would be split or misread by polars: refused, naming its line and column."""
    body = ('编号,标的,备注\r\n="000123",="1200万",x\r\n"=""000124""",30万,="a b"\r\n'
            'A-3,="",="=x"\r\n')
    path = write(tmp_path, body)
    stats = check_structure(path, ",", 2, 3)
    assert stats["excel_text"] == 5 and not stats["suspect"]  # the bare ones; the quoted one is plain CSV
    frame, source = read_all(path)
    assert frame.rows() == [("000123", "1200万", "x"), ("000124", "30万", "a b"), ("A-3", "", "=x")]
    assert any('were read as the text inside, ="00123" as 00123' in n for n in source.notes)
    for bad, column in [('="a,b"', 2), ('="a\nb"', 2), ('="a""b"', 2), ('="a"b', 2), ('x="a"', 2)]:
        broken = write(tmp_path, f"编号,标的,备注\r\nA-1,{bad},x\r\n", "broken.csv")
        assert check_structure(broken, ",", 2, 3)["suspect"], bad
        with pytest.raises(InputError, match=f"line 2: column {column} \\('标的'\\)"):
            read(broken, ReadOptions())


def test_an_excel_text_value_only_past_the_sample_starts_the_run_over_unwrapped(tmp_path, kam_env):
    """The check beside the scan finds what the first 64 KiB did not show: the run reads the file again."""
    rows = [[f"A-{i}", "120万", "x" * 60] for i in range(3000)] + [['="000999"', "30万", "late"]]
    path = write(tmp_path, text([["编号", "标的", "备注"]] + rows).replace('"=""000999"""', '="000999"'))
    assert path.stat().st_size > csv_importer.SAMPLE and b'\n="000999",' in path.read_bytes()
    result = invoke("score", path, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    scored = helpers.read_csv(tmp_path / "out.csv")
    assert scored["opportunity_id"].to_list()[-1] == "000999" and scored.height == 3001
    assert any("read as the text inside" in n for n in read_summary(tmp_path / "out.csv")["notes"])


def test_headers_polars_would_read_as_patterns_are_numbered(tmp_path, kam_env):
    """``*`` and ``^…$`` select columns in polars rather than name one: read as column_<n>, values kept."""
    path = write(tmp_path, text([["编号", "*", "^note$", "a*"], ["A-1", "x", "y", "z"]]), "patterns.csv")
    frame, _ = read_all(path)
    assert frame.columns == ["编号", "column_2", "column_3", "a*"] and frame.row(0) == ("A-1", "x", "y", "z")
    out = tmp_path / "out.csv"
    assert invoke("score", path, "-o", out).exit_code == 0
    assert helpers.read_csv(out).select("opportunity_id", "column_2", "column_3", "a*").row(0) == ("A-1", "x", "y", "z")


# -- kam's own output read back ---------------------------------------------------------------------

PAYLOADS = ["=1+1", "+1 555", "-2", "@SUM(A1)", " =cmd", "\tTab", "＝全角", "'=already quoted", "''=twice", "'plain"]


def test_kam_reads_its_own_csv_output_back_to_the_original_text(tmp_path, kam_env):
    rows = [["编号", "备注"]] + [[f"A-{i}", p] for i, p in enumerate(PAYLOADS)]
    src = tmp_path / "in.csv"
    src.write_text(text(rows), encoding="utf-8")
    out = tmp_path / "scored.csv"
    assert invoke("score", src, "-o", out).exit_code == 0
    raw = helpers.read_csv(out)["notes"].to_list()
    assert raw[0] == "'=1+1" and raw[7] == "''=already quoted" and raw[9] == "'plain"
    frame, source = read_all(out)
    assert frame["notes"].to_list() == PAYLOADS
    assert any("kam's own output" in note for note in source.notes)
    (tmp_path / "scored.csv.summary.json").unlink()  # without the summary it is any CSV: the ' stays
    frame, _ = read_all(out)
    assert frame["notes"].to_list()[0] == "'=1+1"


def test_another_files_summary_does_not_make_it_kam_output(tmp_path):
    path = write(tmp_path, text([["a", "b"], ["'=x", "1"]]), "mine.csv")
    (tmp_path / "mine.csv.summary.json").write_text(json.dumps({"kam_version": "0", "format": "csv",
                                                               "output": "other.csv"}), encoding="utf-8")
    assert read_all(path)[0]["a"].to_list() == ["'=x"]


# -- sniffing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("head", [b"PK\x03\x04xl/workbook.xml", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"%PDF-1.4",
                                  b"<html><table>", b"  <!DOCTYPE html>", b'{"a": 1}', b"[1, 2]",
                                  "\ufeff<table>".encode()])
def test_csv_sniff_says_zero_for_what_is_not_csv(head):
    assert sniff(head, ".csv") == 0


def test_csv_sniff_keeps_text_with_a_stray_nul():
    assert sniff(text([HEADER] + GOOD).encode() + b"x\x00y\r\n", ".csv") >= 60


def test_the_delimiter_is_sniffed_past_a_preamble():
    assert sniff_delimiter("Report title\nFilter: all\n" + text([HEADER] + GOOD, ";")) == ";"


# -- fuzz: random bytes never give a traceback --------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300) | st.text(alphabet=',;\t|"\r\n ab中\x00=', max_size=200).map(str.encode)
       | st.text(alphabet='ab,"\n', max_size=80).map(str.encode))
def test_fuzz_the_csv_reader_reads_or_refuses_clearly(tmp_path, data):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        source = read(path, ReadOptions())
    except KamError as exc:
        assert str(exc).strip()
        return
    try:
        source.frame.collect()  # what the structure check let through, polars reads
    finally:
        source.cleanup()


@pytest.mark.parametrize("head, words", [
    (b"%PDF-1.7", "PDF"), (b"PK\x03\x04\x14\x00mimetypeapplication/vnd.oasis.opendocument.spreadsheet", ".ods"),
    (b"MIME-Version: 1.0\r\nContent-Type: multipart/related", "MHTML"),
    (b'<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">', "Excel 2003 XML"),
    ("<table><tr><td>编号</td></tr></table>".encode("utf-16"), "HTML"),
])
def test_other_formats_are_named_and_refused(tmp_path, head, words):
    from kamcore_plugins.importers import other_formats

    assert other_formats.sniff(head, ".xls") == 97
    path = write(tmp_path, head, "export.xls")
    with pytest.raises(InputError, match=words):
        other_formats.read(path, ReadOptions())
    assert other_formats.identify(text([HEADER] + GOOD).encode()) is None


@pytest.mark.parametrize("tail, column", [
    ("A-9,x,1\r\n", "备注"),             # polars would pad it silently
    ("A-9,x,1,2,extra\r\n", "column 5"),  # polars fails on it
])
def test_kam_score_quarantines_what_the_check_beside_the_scan_finds(tmp_path, kam_env, tail, column):
    # the stream read the ragged record as a row (or failed on it) before the check found it: the run
    # starts over with the check done first, and the record is rejected, not scored and not padded
    path = write(tmp_path, text([HEADER] + GOOD) + tail)
    out = tmp_path / "scored.csv"
    result = invoke("score", path, "-o", out)
    assert result.exit_code == 0, result.output
    assert helpers.read_rejects(out).select("line", "column").rows() == [(7, column)]
    assert helpers.read_summary(out)["rows"] == {"in": len(GOOD) + 1, "scored": len(GOOD), "rejected": 1}
    assert "A-9" not in helpers.read_csv(out)["opportunity_id"].to_list()


@pytest.mark.parametrize("tail, words", [
    ("A-9,x,1\r\n" * 12, ["line 7", "expected 4 fields", "found 3", "12 of 16 records"]),
    ('A-9,12" monitor,1,2\r\n', ["line 7", "double quote"]),
])
def test_kam_score_checks_beside_the_scan_and_replaces_nothing(tmp_path, kam_env, tail, words):
    # kam score runs the structure check beside the stream: the refusal and its words are the same, and
    # an existing output is left as it was, whether or not polars could read the file
    path = write(tmp_path, text([HEADER] + GOOD) + tail)
    out = tmp_path / "scored.csv"
    out.write_text("previous run\n", encoding="utf-8")
    result = invoke("score", path, "-o", out)
    assert result.exit_code == 4
    line = helpers.one_error_line(result.stderr)
    for word in words:
        assert word in line, line
    assert out.read_text(encoding="utf-8") == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv", "scored.csv"]


@pytest.mark.parametrize("executable", ["python", "/bin/false", "/no/such/python"])
@pytest.mark.parametrize("tail, outcome", [("", None), ("A-9,x,1\r\n", ReadAgain), ('A-9,12" monitor,1,2\r\n', InputError)])
def test_the_check_apart_from_the_scan_gives_the_same_verdict(tmp_path, monkeypatch, executable, tail, outcome):
    """The kam command checks a big file in a child process (here every file counts as big); a child that
    fails (/bin/false) or cannot start leaves the check to this process, with the same verdict: fine,
    records to quarantine, or a refusal."""
    monkeypatch.setattr(csv_importer, "APART_BYTES", 0)
    if executable != "python":
        monkeypatch.setattr(sys, "executable", executable)
    path = write(tmp_path, text([HEADER] + GOOD) + tail)
    source = read(path, ReadOptions(defer_checks=True, check_apart=True))
    try:
        if outcome is None:
            source.verify()
        else:
            with pytest.raises(outcome):
                source.verify()
    finally:
        source.cleanup()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv"]


def test_a_check_still_running_is_stopped_when_the_run_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_importer, "APART_BYTES", 0)
    path = write(tmp_path, text([HEADER] + GOOD * 20000))
    source = read(path, ReadOptions(defer_checks=True, check_apart=True))
    check = source.verify.__self__
    pid = check.child.pid
    source.cleanup()  # a run that failed before verify(): the child is stopped (or, done already, reaped)
    assert check.child is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_only_a_big_file_is_checked_in_a_child_process_and_one_per_core_at_a_time(tmp_path, monkeypatch):
    """A child's start (an interpreter, numpy) costs more than it saves on a small export, and a run of many
    files would otherwise start one per file."""
    import subprocess

    path = write(tmp_path, text([HEADER] + GOOD))
    checks = []
    try:
        small = read(path, ReadOptions(defer_checks=True, check_apart=True))
        checks.append(small)
        assert small.verify.__self__.child is None and small.verify.__self__.thread is not None
        monkeypatch.setattr(csv_importer, "APART_BYTES", path.stat().st_size)  # now it counts as big
        big = read(path, ReadOptions(defer_checks=True, check_apart=True))
        checks.append(big)
        assert big.verify.__self__.child is not None
        busy = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(os.cpu_count())]
        monkeypatch.setattr(csv_importer, "_children", busy)  # as many checks running as there are cores
        one_more = read(path, ReadOptions(defer_checks=True, check_apart=True))
        checks.append(one_more)
        assert one_more.verify.__self__.child is None and one_more.verify.__self__.thread is not None
        for source in checks:
            source.verify()  # the same verdict from the thread and the child: fine
    finally:
        for source in checks:
            source.cleanup()
        for process in csv_importer._children:
            process.kill()
            process.wait()


# -- the reference for the structure check ------------------------------------------------------------

def reference_check_structure(path: Path, delimiter: str, data_line: int, fields: int, chunk_size: int) -> dict:
    """check_structure as it was before it counted delimiters with reduceat: it listed every delimiter
    and searched in them (slower), with the fix for a CRLF cut by a chunk's edge. Kept only to test the faster
    version against."""
    import numpy as np

    D, QUOTE, LF, CR = ord(delimiter), 34, 10, 13
    edge = np.zeros(256, dtype=bool)  # the bytes a quoted value may follow or be followed by
    edge[[D, LF, CR, QUOTE]] = True
    limit = csv_importer.max_field_bytes()
    parity = 0  # 1 while inside a quoted value
    carry = 0  # delimiters outside quotes since the last record's end
    last_end = -1  # offset of the last line break outside quotes (from the start of the data)
    last_byte = LF  # the byte before the data: the end of the header
    before_last = LF  # the byte before that
    pending_close = False  # a closing quote ended the previous chunk: the next byte must end the value
    pending_cr = False  # a CR outside quotes ended the previous chunk: the next byte must be LF
    stats = {"ragged": 0, "malformed": 0, "nul": 0, "longest": 0, "last_filled": 0, "open_quote": False}
    offset = 0
    with open(path, "rb") as handle:
        for _ in range(data_line - 1):
            handle.readline()
        while chunk := handle.read(chunk_size):
            a = np.frombuffer(chunk, dtype=np.uint8)
            stats["nul"] += int(np.count_nonzero(a == 0))
            if pending_close and not edge[a[0]]:
                stats["malformed"] += 1
            quotes = np.flatnonzero(a == QUOTE)
            delims = np.flatnonzero(a == D)
            breaks = np.flatnonzero(a == LF)
            returns = np.flatnonzero(a == CR)  # outside quotes, a CR must end a line (CRLF)
            if pending_cr and a[0] != LF:
                stats["malformed"] += 1
            if quotes.size or parity:
                # quoted spans [opens[i], closes[i]): a span open at the chunk's start opens at -1
                bounds = np.concatenate(([-1], quotes)) if parity else quotes
                opens, closes = bounds[0::2], bounds[1::2]
                if closes.size < opens.size:
                    closes = np.append(closes, a.size)  # still open at the chunk's end
                real_opens = opens[opens >= 0]
                before = np.where(real_opens > 0, a[np.maximum(real_opens - 1, 0)], last_byte)
                stats["malformed"] += int(np.count_nonzero(~edge[before]))
                real_closes = closes[closes < a.size]
                inner = real_closes[real_closes < a.size - 1]
                stats["malformed"] += int(np.count_nonzero(~edge[a[inner + 1]]))
                pending_close = bool(real_closes.size and real_closes[-1] == a.size - 1)
                ends = breaks[((np.searchsorted(quotes, breaks) + parity) & 1) == 0]
                returns = returns[((np.searchsorted(quotes, returns) + parity) & 1) == 0]
                quoted = np.concatenate(([0], np.cumsum(np.searchsorted(delims, closes) - np.searchsorted(delims, opens))))
                quoted_before = quoted[np.searchsorted(opens, ends)]
                parity = (parity + quotes.size) & 1
            else:
                pending_close = False
                ends = breaks
                quoted = np.zeros(1, dtype=np.int64)
                quoted_before = np.zeros(ends.size, dtype=np.int64)
            outside_total = delims.size - int(quoted[-1])
            inner_returns = returns[returns < a.size - 1]
            stats["malformed"] += int(np.count_nonzero(a[inner_returns + 1] != LF))
            pending_cr = bool(returns.size and returns[-1] == a.size - 1)
            if ends.size:
                outside_before = np.searchsorted(delims, ends) - quoted_before
                per = np.diff(outside_before, prepend=0)
                per[0] += carry
                carry = outside_total - int(outside_before[-1])
                absolute = ends + offset
                length = np.diff(absolute, prepend=last_end)  # bytes of each record, its line break included
                previous = np.where(ends > 0, a[np.maximum(ends - 1, 0)], last_byte)
                blank = (length == 1) | ((length == 2) & (previous == CR))
                stats["ragged"] += int(np.count_nonzero((per != fields - 1) & ~blank))
                stats["longest"] = max(stats["longest"], int(length.max()))
                value_end = np.where(previous == CR, ends - 2, ends - 1)
                # a CRLF cut by the chunk's edge: the value ends two bytes back, before the last chunk's CR
                last = np.where(value_end >= 0, a[np.maximum(value_end, 0)],
                                np.where(value_end == -1, last_byte, before_last))
                stats["last_filled"] += int(np.count_nonzero((last != D) & ~blank))
                last_end = int(absolute[-1])
            else:
                carry += outside_total
            before_last = int(a[-2]) if a.size > 1 else last_byte
            last_byte = int(a[-1])
            offset += a.size
    tail = offset - 1 - last_end  # a last record without a line break
    if tail > 0:
        stats["ragged"] += int(carry != fields - 1)
        stats["longest"] = max(stats["longest"], tail)
        stats["last_filled"] += int(last_byte != D)
    stats["open_quote"] = bool(parity)
    stats["malformed"] += int(pending_cr)  # a CR alone at the very end
    # Excel's ="00123", which this version counted as a misplaced quote: counted a byte at a time instead
    with open(path, "rb") as handle:
        for _ in range(data_line - 1):
            handle.readline()
        opened, broken = reference_excel_text(handle.read(), D)
    stats["excel_text"] = opened
    stats["malformed"] += broken - opened
    stats["suspect"] = bool(stats["ragged"] or stats["malformed"] or stats["nul"] or stats["open_quote"]
                            or stats["longest"] > limit)
    return stats


def reference_excel_text(data: bytes, delimiter: int) -> tuple[int, int]:
    """(Excel text values opened, those malformed) in the data, a byte at a time: a quote opened right after
    an ``=`` that starts a value opens one; it is malformed when a delimiter, a CR or a LF comes before its
    closing quote, or a quote right after that."""
    inside = excel = bad = False
    opened = broken = 0
    for i, byte in enumerate(data):
        if byte == 34:
            if not inside:
                excel = i >= 1 and data[i - 1] == 61 and (i == 1 or data[i - 2] in (delimiter, 10))
                opened += excel
                bad = False
            elif excel:
                broken += bad or (i + 1 < len(data) and data[i + 1] == 34)
                excel = False
            inside = not inside
        elif inside and excel and byte in (delimiter, 10, 13):
            bad = True
    return opened, broken


def test_an_empty_last_value_is_seen_whatever_the_chunks(tmp_path):
    """A CRLF line break cut by a chunk's edge still shows the record's last value (here always empty)."""
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"a,b,\r\n1,2,\r\n3,4,\r\n5,,\r\n")
    for size in range(1, 30):
        assert check_structure(path, ",", 2, 3, chunk_size=size)["last_filled"] == 0, size
    path.write_bytes(b"a,b,c\r\n1,2,x\r\n3,4,\r\n")
    for size in range(1, 30):
        assert check_structure(path, ",", 2, 3, chunk_size=size)["last_filled"] == 1, size
