"""The JSON Lines importer: every error names its line; NaN, Infinity and duplicate keys are refused;
numbers stay as written; nested values become JSON text; and a fuzz test (random text: read, or one
clear KamError, never a traceback)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import invoke, kam_env, read_summary  # noqa: E402,F401

from kamcore.errors import InputError, KamError  # noqa: E402
from kamcore.registry import ReadOptions  # noqa: E402
from kamcore_plugins.importers.jsonl_importer import parse_line, read, sniff, text_of  # noqa: E402


def write(tmp_path: Path, text: str | bytes, name: str = "deals.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def load(path: Path):
    source = read(path, ReadOptions())
    try:
        return source.frame.collect(), source
    finally:
        source.cleanup()


def test_values_are_text_numbers_as_written_and_nested_values_as_json(tmp_path):
    lines = ['{"编号": "00123", "标的": 1200000, "margin": 1.50, "big": 123456789012345678901234567890, '
             '"won": true, "lost": false, "note": null, "tags": ["a", 1.50], "owner": {"name": "张伟"}}',
             "",
             '{"编号": "A-2", "extra": "only here"}']
    frame, source = load(write(tmp_path, "\n".join(lines) + "\n"))
    assert frame.columns == ["编号", "标的", "margin", "big", "won", "lost", "note", "tags", "owner", "extra"]
    assert frame.row(0) == ("00123", "1200000", "1.50", "123456789012345678901234567890", "true", "false", None,
                            '["a",1.5]', '{"name":"张伟"}', None)
    assert frame.row(1)[0] == "A-2" and frame.row(1)[-1] == "only here" and frame.row(1)[1] is None
    assert source.record_lines([0, 1]) == {0: 1, 1: 3}
    assert any("1 blank line(s)" in note for note in source.notes)


@pytest.mark.parametrize("line, words", [
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('{"a": -Infinity}', "-Infinity is not a JSON number"),
    ('{"a": 1, "a": 2}', "the key 'a' appears twice"),
    ('{"a": {"b": 1, "b": 2}}', "the key 'b' appears twice"),
    ('{"a": 1', "not valid JSON"),
    ("[1, 2]", "expected an object {…}, found an array"),
    ('"text"', "expected an object {…}, found a string"),
    ("null", "expected an object {…}, found null"),
    ("7", "expected an object {…}, found a number"),
])
def test_bad_lines_are_refused_naming_the_line(tmp_path, line, words):
    path = write(tmp_path, '{"a": 1}\n' + line + "\n")
    with pytest.raises(InputError) as info:
        read(path, ReadOptions())
    assert f"line 2: {words}" in str(info.value)
    assert "hint:" in str(info.value)


def test_the_first_five_bad_lines_are_named_with_the_count(tmp_path):
    path = write(tmp_path, "".join(f"bad {i}\n" for i in range(8)))
    message = str(pytest.raises(InputError, read, path, ReadOptions()).value)
    assert "8 line(s) are not JSON Lines records" in message and "line 5:" in message and "3 more" in message
    assert "line 6:" not in message


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = write(tmp_path, '{"a": "x"}\n'.encode() + '{"a": "客户"}\n'.encode("gb18030"))
    with pytest.raises(InputError, match="line 2: byte .* not UTF-8"):
        read(path, ReadOptions())


def test_a_bom_and_crlf_are_fine(tmp_path):
    frame, _ = load(write(tmp_path, b'\xef\xbb\xbf{"a": "x"}\r\n{"a": "y"}\r\n'))
    assert frame["a"].to_list() == ["x", "y"]


def test_keys_that_clean_to_the_same_name_are_refused(tmp_path):
    with pytest.raises(InputError, match="both named 'amount'"):
        read(write(tmp_path, '{"amount": 1, "amount ": 2}\n'), ReadOptions())


def test_keys_that_clean_to_the_same_name_kam_does_not_read_are_both_kept(tmp_path):
    frame, source = load(write(tmp_path, '{"id": "A-1", "Created By": "x", "Created  By": "y"}\n'))
    assert frame.columns == ["id", "Created By", "Created By_3"] and frame.row(0) == ("A-1", "x", "y")
    assert any("kept as 'Created By_3'" in n for n in source.notes)


def test_keys_polars_would_read_as_patterns_are_read_by_position(tmp_path):
    frame, _ = load(write(tmp_path, '{"编号": "A-1", "*": "x", "^n$": "y", "": "z"}\n{"编号": "A-2", "later": "w"}\n'))
    assert frame.columns == ["编号", "column_2", "column_3", "column_4", "later"]
    assert frame.rows() == [("A-1", "x", "y", "z", None), ("A-2", None, None, None, "w")]


def test_sniff():
    assert sniff(b'  {"a": 1}', ".txt") == 80
    assert sniff(b'\xef\xbb\xbf{"a": 1}', ".jsonl") == 90
    assert sniff(b"[1]", ".jsonl") == 0 and sniff(b"a,b", ".jsonl") == 0


def test_kam_score_reads_json_lines_and_reports_lines_of_rejects(tmp_path, kam_env):
    path = write(tmp_path, '{"编号": "J-1", "标的": "120万"}\n\n{"编号": "J-2", "标的": "一百万"}\n')
    out = tmp_path / "out.csv"
    result = invoke("score", path, "-o", out)
    assert result.exit_code == 0, result.output
    assert read_summary(out)["inputs"][0]["importer"] == "jsonl"
    assert helpers.read_rejects(out).select("line", "column").rows() == [(3, "deal_size")]


def test_kam_score_refuses_nan_with_one_line_and_no_output(tmp_path, kam_env):
    out = tmp_path / "out.csv"
    result = invoke("score", write(tmp_path, '{"编号": "J-1", "标的": NaN}\n'), "-o", out)
    assert result.exit_code == 4
    assert "line 1: NaN" in helpers.one_error_line(result.stderr)
    assert not out.exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.text(alphabet='{}[]":,\n 0123456789.eE-aNInfty\\u中', max_size=120).map(str.encode)
       | st.binary(max_size=120)
       | st.lists(st.dictionaries(st.text(max_size=4), st.recursive(
           st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
           lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
           max_leaves=5), max_size=4), max_size=4).map(lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()))
@example(data=b'{"":null,"*":null}\n')
def test_fuzz_the_json_lines_reader_reads_or_refuses_clearly(tmp_path, data):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    try:
        frame, _ = load(path)
    except KamError as exc:
        assert str(exc).strip()
        return
    assert all(dtype == frame.schema[name] for name, dtype in frame.schema.items())


def test_parse_line_and_text_of():
    assert parse_line('{"n": 1e3}')["n"] == "1e3"
    assert text_of({"x": [1, None, True]}) == '{"x":[1,null,true]}'
