"""The `kam` command, through click's test runner and as a real process.

Exit codes are the documented ones (kamcore.errors.EXIT_CODES, `kam exit-codes`); a user error is one
line on stderr starting with ``kam:`` and never a traceback unless ``kam --debug``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import ZH, invoke, kam_env, one_error_line, read_csv, run_kam, sample_rows, table, write_export  # noqa: E402,F401

import kamcore  # noqa: E402
from kamcore.config import load_config  # noqa: E402
from kamcore.errors import EXIT_CODES, ConfigError, InputError  # noqa: E402
from kamcore.plugins import get_kam  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def export(tmp_path):
    return write_export(tmp_path / "export.csv", table(sample_rows(8, seed=4), ZH))


@pytest.fixture
def bad_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[scorecard\nweak_share = \n", encoding="utf-8")
    return path


# -- exit codes, in-process ------------------------------------------------------------------

def test_success_exits_0(tmp_path, export):
    result = invoke("score", export, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.csv").exists()
    assert result.stderr.startswith("kam: 8 rows: 8 scored, 0 rejected")


def test_columns_the_scorecard_reads_and_the_export_lacks_are_named_on_the_console(tmp_path):
    """An unmapped export scores its items unknown: said in one warning, by the names an export uses."""
    few = tmp_path / "few.csv"
    few.write_text("编号,项目的预算,标的,负责人\nA-1,有,120万,张三\n", encoding="utf-8")
    result = run_kam("score", few, "-o", "out.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warning, done = result.stderr.decode().splitlines()
    assert warning.startswith("kam: WARNING: 9 column(s) the scorecard reads are not in the input: "
                              "approval_status (客户的项目立项业务状况), business_condition (客户的业务状况), ")
    assert "budget_status" not in warning and "deal_size" not in warning  # the export has them (项目的预算, 标的)
    assert "future_revenue (我们的未来销售收入)" in warning and "future_revenue_amount" not in warning
    assert "kam inspect FILE" in warning and done.startswith("kam: 1 rows: 1 scored")

    unrelated = tmp_path / "unrelated.csv"
    unrelated.write_text("a,b\n1,2\n", encoding="utf-8")
    result = run_kam("score", unrelated, "-o", "out2.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stderr = result.stderr.decode()
    assert stderr.startswith("kam: WARNING: none of the columns the scorecard reads is in the input: ")
    assert "deal_size (标的)" in stderr and "deal_size_base" not in stderr


def test_a_repeated_header_kam_does_not_read_scores_with_both_columns_kept(tmp_path):
    export = tmp_path / "crm.csv"
    export.write_text("编号,创建人,项目的预算,创建人\nA-1,王五,有,赵六\n", encoding="utf-8")
    result = run_kam("score", export, "-o", "out.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "columns 2 and 4 are both named '创建人'; kam reads neither, and column 4 is kept as '创建人_4'" in \
        result.stderr.decode()
    scored = read_csv(tmp_path / "out.csv")
    assert scored.select("opportunity_id", "创建人", "创建人_4", "budget_status").row(0) == ("A-1", "王五", "赵六", "allocated")
    assert any("kept as '创建人_4'" in n for n in json.loads((tmp_path / "out.csv.summary.json").read_text())["notes"])


def test_an_export_with_every_column_gets_no_missing_columns_warning(tmp_path):
    result = run_kam("score", ROOT / "examples" / "opportunities_en.csv", "-o", "out.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().startswith("kam: 25 rows") and b"WARNING" not in result.stderr


def test_default_output_is_beside_the_input(tmp_path, export):
    assert invoke("score", export).exit_code == 0
    assert read_csv(tmp_path / "export.scored.csv").height == 8
    assert (tmp_path / "export.scored.csv.rejects.csv").exists()
    assert (tmp_path / "export.scored.csv.summary.json").exists()


def test_missing_file_exits_4(tmp_path):
    result = invoke("score", tmp_path / "nope.csv", "-o", tmp_path / "out.csv")
    assert result.exit_code == InputError.exit_code == 4
    assert "nope.csv" in one_error_line(result.stderr)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("content", [b"", b"\r\n\r\n", b"\xef\xbb\xbf"])
def test_empty_file_exits_4(tmp_path, content):
    src = tmp_path / "empty.csv"
    src.write_bytes(content)
    result = invoke("score", src, "-o", tmp_path / "out.csv")
    assert result.exit_code == 4, result.output
    assert "empty.csv" in one_error_line(result.stderr)
    assert not (tmp_path / "out.csv").exists()


def test_directory_as_input_exits_4(tmp_path):
    (tmp_path / "folder").mkdir()
    result = invoke("score", tmp_path / "folder", "-o", tmp_path / "out.csv")
    assert result.exit_code == 4
    one_error_line(result.stderr)


def test_bad_kam_toml_exits_3(tmp_path, export, bad_toml):
    result = invoke("score", export, "-o", tmp_path / "out.csv", "--config", bad_toml)
    assert result.exit_code == ConfigError.exit_code == 3
    line = one_error_line(result.stderr)
    assert "config error" in line and "bad.toml" in line
    assert not (tmp_path / "out.csv").exists()


def test_bad_kam_toml_found_in_the_current_folder_exits_3(tmp_path, export, bad_toml):
    bad_toml.rename(tmp_path / "kam.toml")
    result = invoke("score", export, "-o", tmp_path / "out.csv")
    assert result.exit_code == 3
    assert "kam.toml" in one_error_line(result.stderr)


def test_kam_config_environment_variable(tmp_path, export, bad_toml, monkeypatch):
    monkeypatch.setenv("KAM_CONFIG", str(bad_toml))
    assert invoke("score", export, "-o", tmp_path / "out.csv").exit_code == 3


def test_missing_config_file_exits_3(tmp_path, export):
    result = invoke("score", export, "-o", tmp_path / "out.csv", "--config", tmp_path / "none.toml")
    assert result.exit_code == 3
    assert "none.toml" in one_error_line(result.stderr)


def test_invalid_scorecard_setting_exits_3(tmp_path, export):
    config = tmp_path / "kam.toml"
    config.write_text('[scorecard.bands]\nA = "high"\n', encoding="utf-8")
    result = invoke("score", export, "-o", tmp_path / "out.csv", "--config", config)
    assert result.exit_code == 3
    one_error_line(result.stderr)


def test_unknown_format_exits_with_the_documented_code(tmp_path, export):
    """EXIT_CODES: 3 is "kam.toml or an option value is invalid"; 4 is for inputs that cannot be read.
    An unknown --format is an invalid option value, and the input is perfectly readable."""
    assert "option value" in EXIT_CODES[3] and "file" in EXIT_CODES[4]
    result = invoke("score", export, "-o", tmp_path / "out.csv", "--format", "xml")
    assert result.exit_code == 3
    line = one_error_line(result.stderr)
    assert "xml" in line and "csv" in line  # names what is installed
    assert not (tmp_path / "out.csv").exists()


def test_usage_error_exits_2(tmp_path, export):
    assert invoke("score", export, "--no-such-option").exit_code == 2
    assert invoke("score").exit_code == 2
    assert invoke("score", export, "--max-rejects", "-1").exit_code == 2


@pytest.mark.parametrize("given", ["tab", "TAB", "\\t", "\t"])
def test_a_delimiter_can_be_named(tmp_path, given):
    """A shell cannot easily pass a tab: `--delimiter tab` (or `\\t`) can; scored as the sniffed file is."""
    export = tmp_path / "deals.txt"
    export.write_text("编号\t项目的预算\t标的\nA-1\t有\t1,200万\n", encoding="utf-8")
    result = invoke("score", export, "--delimiter", given, "-o", tmp_path / "out.csv", "-q")
    assert result.exit_code == 0, result.output
    scored = read_csv(tmp_path / "out.csv")
    assert scored.select("opportunity_id", "budget_status", "deal_size").row(0) == ("A-1", "allocated", "12000000.0")
    inspected = invoke("inspect", export, "--delimiter", given)
    assert inspected.exit_code == 0 and "delimiter   tab" in inspected.stdout


@pytest.mark.parametrize("command", [("score",), ("inspect",), ("train", "--target", "x", "--won", "y"),
                                     ("evaluate", "--target", "x", "--won", "y")])
@pytest.mark.parametrize("given", [",,", '"', "\n", "，", ""])
def test_a_delimiter_that_cannot_be_one_is_a_usage_error(tmp_path, export, command, given):
    result = invoke(command[0], export, *command[1:], "--delimiter", given)
    assert result.exit_code == 2, result.output
    assert "is not a delimiter: give one ASCII character" in result.stderr
    assert ("full-width" in result.stderr) == (given == "，")


def test_read_options_take_a_named_delimiter_and_refuse_others():
    from kamcore.registry import ReadOptions

    assert ReadOptions(delimiter="semicolon").delimiter == ";" and ReadOptions(delimiter="|").delimiter == "|"
    assert ReadOptions().delimiter is None
    with pytest.raises(ValueError, match="'ab' is not a delimiter"):
        ReadOptions(delimiter="ab")


def test_errors_are_one_line_without_traceback_unless_debug(tmp_path):
    result = invoke("score", tmp_path / "nope.csv")
    assert "Traceback" not in result.output
    one_error_line(result.stderr)
    debug = invoke("--debug", "score", tmp_path / "nope.csv")
    assert isinstance(debug.exception, InputError)  # re-raised for the traceback
    assert debug.exit_code != 0


# -- output destinations and formats ---------------------------------------------------------

def test_stdout_output_matches_file_output(tmp_path, export):
    file_out = tmp_path / "out.csv"
    assert invoke("score", export, "-o", file_out).exit_code == 0
    before = set(os.listdir(tmp_path))
    result = invoke("score", export, "-o", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == file_out.read_bytes()
    assert result.stderr.startswith("kam: 8 rows")
    created = set(os.listdir(tmp_path)) - before
    assert created <= {"kam-score.rejects.csv", "kam-score.summary.json"}  # no temporary file left behind
    assert json.loads((tmp_path / "kam-score.summary.json").read_text(encoding="utf-8"))["output"] == "-"


def test_jsonl_format(tmp_path, export):
    result = invoke("score", export, "-o", "-", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    csv_out = tmp_path / "out.csv"
    assert invoke("score", export, "-o", csv_out).exit_code == 0
    scored = pl.read_csv(csv_out)
    assert [r["opportunity_id"] for r in records] == scored["opportunity_id"].to_list()
    for column in helpers.SCORE_COLUMNS:
        assert [r[column] for r in records] == scored[column].to_list(), column
    # by suffix, and the ndjson alias
    assert invoke("score", export, "-o", tmp_path / "out.jsonl").exit_code == 0
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == result.stdout
    assert invoke("score", export, "-o", tmp_path / "o.txt", "--format", "ndjson").exit_code == 0
    assert (tmp_path / "o.txt").read_text(encoding="utf-8") == result.stdout


def test_parquet_format(tmp_path, export):
    out = tmp_path / "out.parquet"
    assert invoke("score", export, "-o", out).exit_code == 0
    frame = pl.read_parquet(out)
    assert frame.height == 8 and set(helpers.SCORE_COLUMNS) <= set(frame.columns)
    assert frame.schema["total_score"] == pl.Float64


def test_csv_output_has_a_bom_for_excel(tmp_path, export):
    out = tmp_path / "out.csv"
    assert invoke("score", export, "-o", out).exit_code == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbfopportunity_id,")


def test_output_folder_must_exist(tmp_path, export):
    result = invoke("score", export, "-o", tmp_path / "missing" / "out.csv")
    assert result.exit_code == 6
    one_error_line(result.stderr)


@pytest.mark.parametrize("case", ["same name", "another name for it", "a link to it", "the rejects file",
                                  "the people", "packed"])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(tmp_path, export, case):
    """`kam score deals.csv -o deals.csv` would replace the export with its scores: exit 6, nothing read
    or written, the input byte for byte as it was."""
    import gzip

    people = tmp_path / "people.csv"
    people.write_bytes((ROOT / "examples" / "stakeholders_zh.csv").read_bytes())
    packed = tmp_path / "export.csv.gz"
    packed.write_bytes(gzip.compress(export.read_bytes()))
    (tmp_path / "link.csv").symlink_to(export)
    rejects = tmp_path / "x.csv.rejects.csv"
    rejects.write_bytes(export.read_bytes())
    args = {"same name": [export, "-o", export],
            "another name for it": [export, "-o", f"../{tmp_path.name}/export.csv"],
            "a link to it": [tmp_path / "link.csv", "-o", export],
            "the rejects file": [rejects, "-o", tmp_path / "x.csv"],
            "the people": [export, "--stakeholders", people, "-o", people],
            "packed": [packed, "-o", packed]}[case]
    before = {path: path.read_bytes() for path in (export, people, packed, rejects)}
    names = sorted(os.listdir(tmp_path))
    done = run_kam("score", *args, cwd=tmp_path)
    assert done.returncode == 6
    assert "is an input of this run: writing it would replace that file" in one_error_line(done.stderr.decode())
    assert {path: path.read_bytes() for path in before} == before
    assert sorted(os.listdir(tmp_path)) == names  # no output, rejects, summary or temporary file


@pytest.mark.parametrize("second", ["export.csv", "./export.csv", "hard.csv"])
def test_a_file_given_twice_is_refused(tmp_path, export, second):
    """Its rows would be scored twice, every id twice in the output (a shell glob overlapping, a typo)."""
    os.link(export, tmp_path / "hard.csv")
    done = run_kam("score", "export.csv", second, "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 3
    assert one_error_line(done.stderr.decode()).startswith(f"kam: config error: {Path(second)} is given twice")
    assert not (tmp_path / "out.csv").exists()
    people = tmp_path / "people.csv"
    people.write_bytes((ROOT / "examples" / "stakeholders_zh.csv").read_bytes())
    done = run_kam("score", "export.csv", "--stakeholders", people, "--stakeholders", people, "-o", "out.csv",
                   cwd=tmp_path)
    assert done.returncode == 3 and "people.csv is given twice" in done.stderr.decode()
    # given once each, they score (an export and --stakeholders may be one workbook: test_stakeholders)
    assert run_kam("score", "export.csv", "--stakeholders", people, "-o", "out.csv", cwd=tmp_path).returncode == 0


def test_classify_refuses_to_write_over_the_people_it_reads(tmp_path):
    people = tmp_path / "people.csv"
    people.write_bytes((ROOT / "examples" / "stakeholders_zh.csv").read_bytes())
    for args in (["-o", people], ["-o", tmp_path / "out.csv", "--coverage", people]):
        done = run_kam("classify", people, *args, cwd=tmp_path)
        assert done.returncode == 6 and "people.csv is an input of this run" in done.stderr.decode()
        assert people.read_bytes() == (ROOT / "examples" / "stakeholders_zh.csv").read_bytes()
    assert not (tmp_path / "out.csv").exists()


# -- init, version, exit-codes -------------------------------------------------------------------

def test_init_writes_a_kam_toml_that_loads_back(tmp_path):
    defaults = get_kam().config_defaults()
    builtin = load_config(None, defaults)  # no kam.toml yet: the embedded defaults
    assert builtin.path is None
    result = invoke("init")
    assert result.exit_code == 0, result.output
    written = tmp_path / "kam.toml"
    assert written.exists()
    loaded = load_config(written, defaults)
    assert loaded.data == builtin.data and loaded.sha256 == builtin.sha256
    assert loaded.path == written
    # and kam score uses it, found in the current folder
    src = write_export(tmp_path / "export.csv", table(sample_rows(3), ZH))
    assert invoke("score", src, "-o", tmp_path / "out.csv").exit_code == 0
    summary = json.loads((tmp_path / "out.csv.summary.json").read_text(encoding="utf-8"))
    assert summary["config"]["path"] == "kam.toml"
    assert summary["config"]["sha256"] == builtin.sha256


def test_init_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "custom.toml"
    target.write_text("# mine\n", encoding="utf-8")
    result = invoke("init", "-o", target)
    assert result.exit_code == 3
    assert "--force" in one_error_line(result.stderr)
    assert target.read_text(encoding="utf-8") == "# mine\n"
    forced = invoke("init", "-o", target, "--force")
    assert forced.exit_code == 0
    assert "[scorecard.criteria.need]" in target.read_text(encoding="utf-8")
    load_config(target, get_kam().config_defaults())


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"kam, version {kamcore.__version__}"


def test_exit_codes_command_lists_every_documented_code():
    result = invoke("exit-codes")
    assert result.exit_code == 0
    listed = {}
    for line in result.stdout.splitlines():
        code, meaning = line.split(None, 1)
        listed[int(code)] = meaning
    assert listed == EXIT_CODES
    assert {0, 1, 2, 3, 4, 5, 6, 7, 130} <= set(listed)


# -- the real executable ---------------------------------------------------------------------

def test_subprocess_success_and_stdout(tmp_path, export):
    proc = run_kam("score", export, "-o", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert invoke("score", export, "-o", tmp_path / "ref.csv").exit_code == 0
    assert proc.stdout == (tmp_path / "ref.csv").read_bytes()
    stderr = proc.stderr.decode()
    assert stderr.startswith("kam: 8 rows: 8 scored, 0 rejected") and "Traceback" not in stderr


def test_subprocess_jsonl(tmp_path, export):
    proc = run_kam("score", export, "-o", "-", "--format", "jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(records) == 8 and all(0 <= r["win_probability"] <= 1 for r in records)


@pytest.mark.parametrize("case, code", [("missing", 4), ("empty", 4), ("bad_toml", 3), ("bad_format", 3),
                                        ("max_rejects", 5)])
def test_subprocess_exit_codes_and_one_line_errors(tmp_path, export, bad_toml, case, code):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    bad_rows = write_export(tmp_path / "bad.csv", [["编号", "标的"], ["A", "abc"]])
    args = {
        "missing": ["score", tmp_path / "nope.csv", "-o", "out.csv"],
        "empty": ["score", empty, "-o", "out.csv"],
        "bad_toml": ["score", export, "-o", "out.csv", "--config", bad_toml],
        "bad_format": ["score", export, "-o", "out.csv", "--format", "xml"],
        "max_rejects": ["score", bad_rows, "-o", "out.csv", "--max-rejects", "0"],
    }[case]
    proc = run_kam(*args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    one_error_line(proc.stderr.decode())
    assert proc.stdout == b""
    assert not (tmp_path / "out.csv").exists()


def test_subprocess_debug_shows_the_traceback(tmp_path):
    proc = run_kam("--debug", "score", tmp_path / "nope.csv", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr.decode()
    assert "InputError" in proc.stderr.decode()


def test_subprocess_version_exit_codes_and_init(tmp_path):
    version = run_kam("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.decode().strip() == f"kam, version {kamcore.__version__}"
    codes = run_kam("exit-codes", cwd=tmp_path)
    assert codes.returncode == 0
    assert [int(line.split()[0]) for line in codes.stdout.decode().splitlines()] == sorted(EXIT_CODES)
    assert run_kam("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "kam.toml").exists()
    again = run_kam("init", cwd=tmp_path)
    assert again.returncode == 3
    one_error_line(again.stderr.decode())
    assert run_kam("init", "--force", cwd=tmp_path).returncode == 0
    load_config(tmp_path / "kam.toml", get_kam().config_defaults())


def test_progress_on_a_terminal_counts_the_file_being_written_not_the_old_output(tmp_path, monkeypatch):
    """The run writes a temporary file beside -o and renames it at the end: that file is what grows."""
    import io

    from kamcore.cli import _progress
    from kamcore.pipeline import stream_path

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    target = tmp_path / "scored.csv"
    target.write_bytes(b"x" * 9_000_000)  # the last run's output, left in place until this one is complete
    show = _progress(target)
    show(0.2, 0, "scoring")
    assert terminal.getvalue().endswith("0.2 s,           0 rows read,      0.0 MB written ")
    stream_path(target).parent.mkdir()
    stream_path(target).write_bytes(b"y" * 2_500_000)
    show(0.4, 1_234_567, "scoring")
    assert terminal.getvalue().endswith("0.4 s,   1,234,567 rows read,      2.5 MB written ")
    stream_path(target).unlink()  # compressed into the packed file, and gone: the size stays
    show(0.6, 1_234_567, "compressing 50 %")
    assert terminal.getvalue().endswith("kam: compressing 50 % \\    0.6 s,   1,234,567 rows read,      2.5 MB written ")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert _progress(target) is None  # not a terminal: no progress line
