"""The JSON Lines importer reads plain lines in bulk (``kamcore_plugins.importers.jsonl_columns``) and any other
file a line at a time: both must give the same rows, record lines and notes (or the same error), and a file
that is not plain must fall back, never be read differently."""

from __future__ import annotations

import gzip
import json
import logging
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).parent))
from helpers import invoke, kam_env  # noqa: E402,F401

from kamcore.errors import InputError  # noqa: E402
from kamcore.registry import ReadOptions  # noqa: E402
from kamcore_plugins.importers import jsonl_columns, jsonl_importer  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
EXPORT = Path(__file__).parent.parent / "examples" / "opportunities_en.csv"


def read(path: Path, rows_by: str):
    """(frame, record lines, notes), or the InputError's message."""
    try:
        source = jsonl_importer._read(path, ReadOptions(), rows_by)
    except InputError as exc:
        return str(exc)
    try:
        frame = source.frame.collect()
        return frame, source.record_lines(list(range(frame.height + 2))), list(source.notes)
    finally:
        source.cleanup()


def assert_same_both_ways(path: Path, bulk: bool | None = True):
    """The automatic read, and the bulk read when ``bulk`` (False: it must refuse the file; None: either),
    equal the read a line at a time."""
    lines = read(path, "lines")
    auto = read(path, "auto")
    reads = [auto]
    if bulk is not None:
        try:
            reads.append(read(path, "bulk"))
            assert bulk, "read in bulk, though it is not plain"
        except jsonl_columns.NotPlain:
            assert not bulk, "not read in bulk"
    for mine in reads:
        if isinstance(lines, str):
            assert mine == lines
            continue
        assert_frame_equal(mine[0], lines[0])
        assert mine[1:] == lines[1:]
    return lines


def write(tmp_path: Path, text: str | bytes, name: str = "deals.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


PLAIN = "\n".join([
    '{"opportunity_id": "OPP-1", "account": "深圳星辰 \\"总部\\"", "deal_size": 1.50, "won": true, "note": null}',
    '',
    '   \t ',
    '{"opportunity_id":"OPP-2","account":"a\\nb\\\\c\\/d\\t\\b\\f\\u4e2d\\u00e9","deal_size":-0,"won":false}',
    '{}',
    '{"deal_size": 1E+05, "opportunity_id": "OPP-3", "later": "x,\\":{}[]", "won": 12345678901234567890123}',
    '\r',
    '{"opportunity_id": "OPP-4", "deal_size": "1,200万", "note": "", "account": "  spaces  "}',
    '{"opportunity_id": "OPP-5", "deal_size": 0.000, "note": 7, "later": 2.5e-3}\r',
]) + "\n"


@pytest.mark.parametrize("chunk", [64, 256, jsonl_columns.CHUNK])
def test_plain_lines_read_the_same_in_bulk_and_a_line_at_a_time(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(jsonl_columns, "CHUNK", chunk)
    frame, lines, notes = assert_same_both_ways(write(tmp_path, PLAIN))
    assert frame.columns == ["opportunity_id", "account", "deal_size", "won", "note", "later"]
    assert frame["deal_size"].to_list() == ["1.50", "-0", None, "1E+05", "1,200万", "0.000"]
    assert frame["won"].to_list() == ["true", "false", None, "12345678901234567890123", None, None]
    assert frame["account"].to_list()[:2] == ['深圳星辰 "总部"', "a\nb\\c/d\t\b\f中é"]
    assert frame["note"].to_list() == [None, None, None, None, "", "7"]
    assert lines == {0: 1, 1: 4, 2: 5, 3: 6, 4: 8, 5: 9}
    assert notes == [f"{tmp_path / 'deals.jsonl'}: 6 record(s) read", f"{tmp_path / 'deals.jsonl'}: 3 blank line(s) were skipped"]


def test_a_bom_crlf_and_no_last_line_end_read_in_bulk(tmp_path):
    frame, lines, _ = assert_same_both_ways(write(tmp_path, b'\xef\xbb\xbf{"a": "x"}\r\n\r\n{"a": 2}'))
    assert frame["a"].to_list() == ["x", "2"] and lines == {0: 1, 1: 3}


def test_tabs_and_carriage_returns_between_tokens_read_in_bulk(tmp_path):
    frame, _, _ = assert_same_both_ways(write(tmp_path, '{\t"id"\t:\t"A"\r,\r"size":\r12}\n{ "size" : 1.0 , "id" : "B" }\n'))
    assert frame.rows() == [("A", "12"), ("B", "1.0")]


@pytest.mark.parametrize("chunk", [48, jsonl_columns.CHUNK])
def test_emoji_escaped_as_surrogate_pairs_read_in_bulk(tmp_path, monkeypatch, chunk):
    """Python's json writes an emoji as two escapes (ensure_ascii, its default): polars decodes the pair as
    the line reader does. An escaped backslash before the text "ud83d" is not an escape."""
    monkeypatch.setattr(jsonl_columns, "CHUNK", chunk)
    lines = ['{"note": "\\ud83d\\ude00"}', '{"note": "\\uD83D\\uDE00 upper"}', '{"note": "\\\\ud83d text"}',
             '{"note": "\\u4e2d\\ud83d\\ude01\\ud83d\\ude02"}', '{"note": "\\\\\\ud83d\\ude00"}',
             json.dumps({"note": "签约 🎉 in 2025"})]
    frame, _, _ = assert_same_both_ways(write(tmp_path, "\n".join(lines) + "\n"))
    assert frame["note"].to_list() == ["😀", "😀 upper", "\\ud83d text", "中😁😂", "\\😀", "签约 🎉 in 2025"]


@pytest.mark.parametrize("chunk", [64, 300, jsonl_columns.CHUNK])
def test_chinese_keys_escaped_as_pythons_json_writes_them_read_in_bulk(tmp_path, monkeypatch, chunk):
    """json.dumps' default (ensure_ascii) writes 编号 as \\u7f16\\u53f7: the columns are the keys read, in
    bulk, chunk after chunk, with keys left out and in another order."""
    monkeypatch.setattr(jsonl_columns, "CHUNK", chunk)
    rows = [{"编号": f"K-{i}", "标的": i * 10 if i % 3 else "120万", **({"备注": "é 🎉"} if i % 2 else {}),
             "stage": "潜在"} for i in range(40)]
    rows[7] = {"stage": "方案", "编号": "K-7", "Größe": 1.5}  # another order, a key from Latin-1
    frame, _, _ = assert_same_both_ways(write(tmp_path, "".join(json.dumps(r) + "\n" for r in rows)))
    assert frame.columns == ["编号", "标的", "stage", "备注", "Größe"]
    assert frame.row(1) == ("K-1", "10", "潜在", "é 🎉", None) and frame.row(7) == ("K-7", None, "方案", None, "1.5")


@pytest.mark.parametrize("text", [
    '{"标的": 1}\n{"\\u6807\\u7684": 2}\n',  # one key written two ways: one column, read a line at a time
    '{"\\u6807\\u7684": 1}\n{"标的": 2}\n',
    '{"标的": 1, "\\u6807\\u7684": 2}\n',  # ... twice in one object: refused, naming the line
    '{"\\u3000a": 1}\n',  # reads as a key starting with a space (U+3000)
    '{"\\ud83d\\ude42": 1}\n',  # an emoji key, escaped
    '{"a\\u002c": 1}\n',  # an ASCII character escaped (a comma)
    '{"a\\nb": 1}\n',  # any other escape
    '{"a\\"b": 1}\n',
])
@pytest.mark.parametrize("chunk", [16, jsonl_columns.CHUNK])
def test_escaped_keys_outside_the_key_rule_are_read_a_line_at_a_time(tmp_path, monkeypatch, text, chunk):
    monkeypatch.setattr(jsonl_columns, "CHUNK", chunk)
    assert_same_both_ways(write(tmp_path, text), bulk=False)


def test_keys_left_out_or_in_another_order_read_in_bulk(tmp_path, monkeypatch):
    """Writers that leave out null values, or a key first seen late, chunk after chunk."""
    monkeypatch.setattr(jsonl_columns, "CHUNK", 200)
    rows = [{"id": f"A{i}", **({"size": i} if i % 3 else {}), **({"stage": "潜在"} if i % 2 else {}),
             **({"late": "yes"} if i > 30 else {})} for i in range(60)]
    rows[40] = {"stage": "方案", "id": "A40", "size": "12万"}  # another order; a number's key with text
    frame, _, _ = assert_same_both_ways(write(tmp_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)))
    assert frame.columns == ["id", "size", "stage", "late"]
    assert frame.row(40) == ("A40", "12万", "方案", None) and frame.row(4) == ("A4", "4", None, None)
    assert frame.row(41) == ("A41", "41", "潜在", "yes")


def test_a_large_file_reads_the_same_in_bulk(tmp_path):
    """The bundled export, its numbers as numbers, many times over: several chunks of 8 MiB."""
    export = pl.read_csv(EXPORT, infer_schema=False)
    frame = pl.concat([export] * (60_000 // export.height + 1)).head(60_000)
    frame = frame.with_columns(pl.col(frame.columns[0]) + pl.int_range(pl.len()).cast(pl.String))
    path = tmp_path / "big.jsonl"
    frame.write_ndjson(path)
    read_frame, lines, _ = assert_same_both_ways(path)
    assert path.stat().st_size > 2 * jsonl_columns.CHUNK and read_frame.height == 60_000
    assert lines[59_999] == 60_000


def test_a_gzip_file_reads_in_bulk(tmp_path):
    path = tmp_path / "deals.jsonl.gz"
    path.write_bytes(gzip.compress(PLAIN.encode()))
    assert_same_both_ways(path)


@pytest.mark.parametrize("line", [
    '{"a": {"b": 1}}',  # nested values: read a line at a time, kept as JSON text
    '{"a": [1, 2]}',
    '{"a": "x", "a": "y"}',  # a key twice: refused, naming the line
    '{"a": "x", "\\u0061": "y"}',
    '{"a": NaN}',
    '{"a": Infinity}',
    '{"a": 01}',
    '{"a": .5}',
    '{"a": +1}',
    '{"a": "x",}',
    '{"a": "x"} {"b": 1}',
    '{"a" "x"}',
    '[{"a": "x"}]',
    '"a"',
    '{"a": "\\ud800"}',  # half of a surrogate pair alone: refused
    '{"a": "\\udc00"}',
    '{"a": "x \\ude00\\ud83d"}',  # a pair the wrong way round
    '{"a": "\\ud83d\\ud83d"}',
    '{"a": "\\ud83d\\u0041"}',
    '{"a": "\\\\ud83d\\ude00"}',  # an escaped backslash and the text "ud83d", then half a pair: refused
    '{"a": "\\\\\\ude00"}',  # an escaped backslash, then half a pair
    '{"a": "tab\there"}',  # a raw control character
    '{"a": "x\x1fy"}',
    '\u3000',  # blank to Python, not to JSON
    '{"a": "x"}\ufeff',
    '{"\\u0061": "x"}',  # keys outside the key rule
    '{"": "x"}',
    '{" a": "x"}',
    '{"a,b": "x"}',
    '{"a:b": "x"}',
    '{"a{": "x"}',
    '{"q": "q,", ":1": 7}',  # would fool a key cut out of a string's contents
    '{"a": "x", "b": tru}',
    '(\xb5/\xfd',  # what polars' readers would take for zstd data at the start of a chunk
    'x\x9c{"a": "x"}',  # for zlib data
])
@pytest.mark.parametrize("chunk", [32, jsonl_columns.CHUNK])
def test_lines_that_are_not_plain_are_read_a_line_at_a_time(tmp_path, monkeypatch, line, chunk):
    monkeypatch.setattr(jsonl_columns, "CHUNK", chunk)
    text = '{"a": "first", "b": 2}\n' * 5 + line + '\n{"a": "last", "b": 3}\n'
    assert_same_both_ways(write(tmp_path, text), bulk=False)


def test_a_file_starting_like_compressed_data_is_refused_as_the_line_reader_refuses_it(tmp_path):
    """polars' readers inflate zstd or zlib data by its first bytes; the bulk reader must not hand them any."""
    message = assert_same_both_ways(write(tmp_path, b"(\xb5/\xfd"), bulk=False)  # zstd's magic bytes, found by the fuzz test
    assert "line 1: byte 2 of the line is not UTF-8" in message


def test_bytes_that_are_not_utf8_are_refused_as_the_line_reader_refuses_them(tmp_path):
    path = write(tmp_path, '{"a": "x"}\n'.encode() + '{"a": "客户"}\n'.encode("gb18030"))
    message = assert_same_both_ways(path, bulk=False)
    assert "line 2: byte" in message


def test_only_blank_lines_and_empty_objects(tmp_path):
    assert "no records" in assert_same_both_ways(write(tmp_path, "\n  \n"), bulk=None)
    assert "no records" in assert_same_both_ways(write(tmp_path, "{}\n{ }\n", "empty.jsonl"), bulk=None)


def test_progress_is_reported_while_reading_in_bulk(tmp_path):
    told = []
    path = write(tmp_path, '{"a": 1}\n' * 25_000)
    source = jsonl_importer._read(path, ReadOptions(on_rows=told.append), "bulk")
    source.cleanup()
    assert told and told[-1] == 25_000


def test_the_debug_log_says_how_the_lines_were_read(tmp_path, caplog):
    plain, nested = write(tmp_path, '{"a": 1}\n'), write(tmp_path, '{"a": [1]}\n', "nested.jsonl")
    with caplog.at_level(logging.DEBUG, logger="kamcore.importers"):
        read(plain, "auto")
        read(nested, "auto")
    said = [r.getMessage().split(": ", 1)[1] for r in caplog.records if "lines read" in r.getMessage()]
    assert said == ["lines read in bulk", "lines read one at a time (not every line is plain)"]


def test_kam_score_gives_the_same_output_from_json_lines_as_from_csv(tmp_path):
    export = pl.read_csv(EXPORT, infer_schema=False)
    export.write_ndjson(tmp_path / "deals.jsonl")
    out_csv, out_jsonl = tmp_path / "from_csv.csv", tmp_path / "from_jsonl.csv"
    assert invoke("score", EXPORT, "-o", out_csv, "-q").exit_code == 0
    assert invoke("score", tmp_path / "deals.jsonl", "-o", out_jsonl, "-q").exit_code == 0
    assert out_jsonl.read_bytes() == out_csv.read_bytes()


def assert_dumped_rows_read_the_same(path: Path, rows: list[dict], ascii_only: bool, spaced: bool, chunk: int,
                                     bulk: bool | None):
    """``rows`` as ``json.dumps`` writes them, read in chunks of ``chunk`` bytes: :func:`assert_same_both_ways`.
    (Hypothesis runs many examples in one test call: the chunk size is set and put back by hand.)"""
    separators = (", ", ": ") if spaced else (",", ":")
    text = "".join(json.dumps(row, ensure_ascii=ascii_only, separators=separators) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    old = jsonl_columns.CHUNK
    jsonl_columns.CHUNK = chunk
    try:
        assert_same_both_ways(path, bulk=bulk)
    finally:
        jsonl_columns.CHUNK = old


_KEYS = st.sampled_from(["opportunity_id", "标的", "stage", "a b", "x*", "^n$", "", " a", "a,b", "a:b", 'q"', "\\",
                         "{", "}", "ü", "🙂"])
_TEXT = st.lists(st.text(max_size=3) | st.sampled_from([",", '"', "\\", "{", "}", ":", '":1', ', "', "\n", "\u2028",
                                                        "\x1f", "NaN", "中文", "🙂"]), max_size=4).map("".join)
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**25, 10**25),
                    st.floats(allow_nan=False, allow_infinity=False), _TEXT)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.dictionaries(_KEYS, _VALUES, max_size=5), min_size=1, max_size=12),
       ascii_only=st.booleans(), spaced=st.booleans(), chunk=st.sampled_from([48, 300, jsonl_columns.CHUNK]))
@example(rows=[{"q": "q,", ":1": 7}], ascii_only=False, spaced=False, chunk=48)
def test_any_lines_read_the_same_in_bulk_and_a_line_at_a_time(tmp_path, rows, ascii_only, spaced, chunk):
    """Whatever ``json.dumps`` writes (keys and text with quotes, commas, colons, braces, escapes and emoji,
    numbers of any size), with or without spaces and escaped non-ASCII text, the two reads agree."""
    assert_dumped_rows_read_the_same(tmp_path / "any.jsonl", rows, ascii_only, spaced, chunk, bulk=None)


_SAFE_KEYS = st.sampled_from(["opportunity_id", "标的", "stage", "a b", "x*", "^n$", "ü", "deal size", "n-1", "[x]"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.dictionaries(_SAFE_KEYS, _VALUES, max_size=6), min_size=1, max_size=12),
       ascii_only=st.booleans(), spaced=st.booleans(), chunk=st.sampled_from([48, 300, jsonl_columns.CHUNK]))
@example(rows=[{}, {}, {"opportunity_id": None, "标的": None, "stage": None}], ascii_only=False, spaced=False, chunk=48)
@example(rows=[{"^n$": None}], ascii_only=False, spaced=False, chunk=48)
@example(rows=[{"stage": "🙂\\ud83d"}], ascii_only=True, spaced=False, chunk=48)
def test_plain_lines_of_any_text_are_read_in_bulk(tmp_path, rows, ascii_only, spaced, chunk):
    """Keys that keep to the key rule, text of any kind (quotes, commas, colons, braces, escapes, line
    separators, emoji, escaped or not; keys escaped or not): read in bulk, and as a line at a time."""
    assert_dumped_rows_read_the_same(tmp_path / "plain.jsonl", rows, ascii_only, spaced, chunk, bulk=True)
