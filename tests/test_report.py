"""`kam report`: the portfolio at a glance from kam score's output, every figure checked against the file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import invoke, kam_env, one_error_line, run_kam  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("kam_env")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def scored(tmp_path) -> Path:
    out = tmp_path / "scored.csv"
    result = invoke("score", EXAMPLES / "opportunities_zh.csv", "--stakeholders", EXAMPLES / "stakeholders_zh.csv",
                    "-o", out, "-q")
    assert result.exit_code == 0, result.output
    return out


def report_of(*args) -> dict:
    result = invoke("report", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_figures_are_the_files(scored):
    report = report_of(scored)
    rows = pl.read_csv(scored)
    assert report["deals"] == rows.height == 23 and report["base_currency"] == "CNY"
    assert report["value"] == pytest.approx(rows["deal_size_base"].sum())
    expected = (rows["deal_size_base"] * rows["win_probability"]).sum()
    assert report["expected"] == pytest.approx(expected)
    for column in ("quadrant", "band", "stage", "qualification"):
        groups = report[f"by_{column}"]
        assert sum(g["deals"] for g in groups) == rows.height
        for g in groups:
            part = rows.filter(pl.col(column).is_null() if g["code"] is None else pl.col(column) == g["code"])
            assert g["deals"] == part.height, (column, g)
            assert g["value"] == pytest.approx(part["deal_size_base"].sum(), rel=1e-4)
            assert g["mean_win_probability"] == pytest.approx(part["win_probability"].mean(), abs=1e-4)
    assert [g["code"] for g in report["by_quadrant"]] == ["pursue", "develop", "qualify_out", "drop"]  # the seed's
    assert report["by_quadrant"][0]["label_zh"] == "全力争取"
    assert [g["code"] for g in report["by_stage"]][:4] == ["potential", "intent", "solution", "negotiation"]
    assert report["short_of_facts"] == rows.filter(pl.col("unknown_criteria") >= 3).height


def test_the_deals_to_win_first_are_running_real_worth_it_and_qualified(scored):
    rows = pl.read_csv(scored)
    top = report_of(scored, "--top", "30")["top"]
    running = rows.filter(~pl.col("stage").is_in(["won", "lost"]))
    assert len(top) == running.height  # every running deal, none won or lost
    first = [d for d in top if d["quadrant"] == "pursue" and d["qualification"] != "disqualified"]
    assert top[: len(first)] == first and first  # those first ...
    assert [d["expected"] for d in first] == sorted((d["expected"] for d in first), reverse=True)  # ... by worth
    disqualified = rows.filter(pl.col("qualification") == "disqualified")["opportunity_id"].to_list()
    assert disqualified and all(d["opportunity_id"] not in disqualified for d in first)
    assert report_of(scored, "--top", "0")["top"] == []


def test_text_and_markdown_are_bilingual(scored):
    text = invoke("report", scored)
    assert text.exit_code == 0
    assert text.output.startswith("23 个商机 / opportunities，总额 / worth CNY ")
    assert "全力争取 pursue" in text.output and "重点商机 / deals to win first (top 10)" in text.output
    markdown = invoke("report", scored, "--format", "markdown").output
    assert "| 按象限 / by quadrant | 商机 / deals | 占比 / share |" in markdown
    assert "|---|---:|---:|" in markdown


def test_every_output_format_gives_the_same_report(scored, tmp_path):
    want = report_of(scored)
    for name in ("scored.xlsx", "scored.jsonl", "scored.parquet", "scored.csv.gz"):
        out = tmp_path / name
        assert invoke("score", EXAMPLES / "opportunities_zh.csv", "--stakeholders", EXAMPLES / "stakeholders_zh.csv",
                      "-o", out, "-q").exit_code == 0
        got = report_of(out)
        assert got["by_quadrant"] == want["by_quadrant"] and got["top"] == want["top"], name
        assert got["value"] == pytest.approx(want["value"])


def test_a_scores_only_file_gives_counts_and_says_why_no_amounts(tmp_path):
    out = tmp_path / "ids.csv"
    assert invoke("score", EXAMPLES / "opportunities_en.csv", "--scores-only", "-o", out, "-q").exit_code == 0
    report = report_of(out)
    assert report["base_currency"] is None and "value" not in report
    assert sum(g["deals"] for g in report["by_band"]) == 23 and "value" not in report["by_band"][0]
    assert report["notes"] == ["no deal_size_base column (a --scores-only output?): counts only, no amounts"]


def test_an_export_that_kam_did_not_score_is_refused():
    result = invoke("report", EXAMPLES / "opportunities_en.csv")
    assert result.exit_code == 4
    assert "not a file kam score wrote" in one_error_line(result.stderr)


def test_by_any_column_of_the_file(scored):
    rows = pl.read_csv(scored)
    report = report_of(scored, "--by", "owner", "--by", "lead_source", "--by", "owner")
    owners = report["by_owner"]
    assert {g["code"]: g["deals"] for g in owners} == dict(rows["owner"].value_counts().iter_rows())
    assert [g["deals"] for g in owners] == sorted((g["deals"] for g in owners), reverse=True)  # largest first
    channels = [g["code"] for g in report["by_lead_source"]]
    assert channels == [c for c in ("walk_in", "phone", "email", "referral", "self_sourced", "event", "other")
                        if c in set(rows["lead_source"])]  # a coded column: in the seed's order, with its 中文
    assert report["by_lead_source"][0]["label_zh"] == "门市"
    text = invoke("report", scored, "--by", "owner").output
    assert "按销售经理 / by owner" in text
    missing = invoke("report", scored, "--by", "region")
    assert missing.exit_code == 4 and "no column 'region' to report by" in one_error_line(missing.stderr)


def test_a_pipe_from_kam_score(scored, tmp_path):
    """`kam score … -o - | kam report -`: the report of standard input is the file's."""
    piped = run_kam("score", str(EXAMPLES / "opportunities_zh.csv"), "--stakeholders",
                    str(EXAMPLES / "stakeholders_zh.csv"), "-o", "-", "-q", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    result = run_kam("report", "-", "--format", "json", cwd=tmp_path, stdin=piped.stdout)
    assert result.returncode == 0, result.stderr
    got, want = json.loads(result.stdout), report_of(scored)
    assert got["by_quadrant"] == want["by_quadrant"] and got["top"] == want["top"]


def test_the_stakeholder_red_flags_are_counted_as_the_scored_rows_list_them(scored, tmp_path):
    rows = pl.read_csv(scored)
    report = report_of(scored)
    assert report["red_flags"] and [f["deals"] for f in report["red_flags"]] == \
        sorted((f["deals"] for f in report["red_flags"]), reverse=True)
    for flag in report["red_flags"]:
        chinese = flag["words"].split(" / ")[0]
        assert flag["deals"] == rows["stakeholder_flags"].str.contains(chinese, literal=True).sum(), flag
    assert "关键人物风险 / stakeholder red flags" in invoke("report", scored).output
    workbook = tmp_path / "scored.xlsx"  # booleans come back as the workbook keeps them
    assert invoke("score", EXAMPLES / "opportunities_zh.csv", "--stakeholders", EXAMPLES / "stakeholders_zh.csv",
                  "-o", workbook, "-q").exit_code == 0
    assert report_of(workbook)["red_flags"] == report["red_flags"]
    plain = tmp_path / "plain.csv"  # no people given: no flags to count
    assert invoke("score", EXAMPLES / "opportunities_zh.csv", "-o", plain, "-q").exit_code == 0
    assert "red_flags" not in report_of(plain)
