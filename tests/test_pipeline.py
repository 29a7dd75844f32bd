"""Row accounting, the rejects file, the run summary, the output columns and output safety.

Every test runs `kam score` on a real file in tmp_path and reads back what it wrote.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import (CRITERIA_COLUMNS, SCORE_COLUMNS, ZH, invoke, kam_env, read_csv, read_rejects,  # noqa: E402,F401
                     read_summary, sample_rows, table, write_export)

import kamcore  # noqa: E402
from kamcore.config import load_config  # noqa: E402
from kamcore.plugins import get_kam  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")


def start_lines(rows: list[list[str]]) -> list[int]:
    """1-based physical line on which each record of ``rows`` (header first) starts."""
    lines, line = [], 1
    for row in rows:
        lines.append(line)
        line += 1 + sum(cell.count("\n") for cell in row)
    return lines


def set_cell(rows, record: int, header: str, value: str) -> None:
    rows[record][rows[0].index(header)] = value


@pytest.fixture
def bad_export(tmp_path):
    """An export whose records 2, 4, 6, 8 and 11 are bad; record 10's notes hold a line break."""
    rows = table(sample_rows(12, seed=11), ZH)
    set_cell(rows, 2, "编号", "")                  # missing id
    set_cell(rows, 4, "资金状况", "半到位")          # unknown code value
    set_cell(rows, 6, "标的", "一百二十万")          # unparseable amount
    set_cell(rows, 8, "采购时间", "2009-02-30")      # invalid date
    set_cell(rows, 10, "备注", "第一行\n第二行, \"引号\"\n第三行")  # embedded line breaks before a bad row
    set_cell(rows, 11, "标的", "abc")               # two problems in one record
    set_cell(rows, 11, "我们的风险", "很高")
    path = write_export(tmp_path / "export.csv", rows)
    return path, rows


def test_rows_in_equal_scored_plus_rejected(tmp_path, bad_export):
    path, rows = bad_export
    out = tmp_path / "scored.csv"
    result = invoke("score", path, "-o", out)
    assert result.exit_code == 0, result.output
    summary = read_summary(out)
    scored, rejects = read_csv(out), read_rejects(out)
    data_rows = len(rows) - 1
    assert summary["rows"] == {"in": data_rows, "scored": 7, "rejected": 5}
    assert summary["rows"]["in"] == summary["rows"]["scored"] + summary["rows"]["rejected"]
    # ... and by counting what was written
    assert scored.height == summary["rows"]["scored"]
    assert rejects.select("file", "line").unique().height == summary["rows"]["rejected"]
    assert scored.height + rejects.select("file", "line").unique().height == data_rows
    good = {r[0] for r in rows[1:]} - {rows[i][0] for i in (2, 4, 6, 8, 11)}
    assert set(scored["opportunity_id"]) == good
    assert summary["inputs"][0]["rows"] == data_rows and summary["inputs"][0]["rows_rejected"] == 5
    assert f"{data_rows} rows: 7 scored, 5 rejected" in result.stderr


def test_rejects_name_physical_line_column_and_reason(tmp_path, bad_export):
    path, rows = bad_export
    out = tmp_path / "scored.csv"
    assert invoke("score", path, "-o", out).exit_code == 0
    rejects = read_rejects(out)
    assert rejects.columns == ["file", "line", "column", "header", "reason", "value", "opportunity_id"]
    # each column also as the export names it, to find the cell by
    assert dict(zip(rejects["column"], rejects["header"])) == {
        "opportunity_id": "编号", "funding_status": "资金状况", "deal_size": "标的", "purchase_date": "采购时间",
        "risk": "我们的风险"}
    lines = start_lines(rows)
    assert lines[11] - lines[10] == 3  # record 10 spans three physical lines
    got = sorted((r["line"], r["column"], r["value"] or "", r["opportunity_id"])
                 for r in rejects.iter_rows(named=True))
    assert got == sorted([
        (lines[2], "opportunity_id", "", None),
        (lines[4], "funding_status", "半到位", rows[4][0]),
        (lines[6], "deal_size", "一百二十万", rows[6][0]),
        (lines[8], "purchase_date", "2009-02-30", rows[8][0]),
        (lines[11], "deal_size", "abc", rows[11][0]),
        (lines[11], "risk", "很高", rows[11][0]),
    ])
    reasons = dict(zip(rejects["column"], rejects["reason"]))
    assert reasons["opportunity_id"].startswith("缺少取值 / missing value")
    assert reasons["funding_status"] == ("不在词表中 / unknown value: expected one of in_place 到位, partial 一半到位, "
                                         "not_in_place 未到位 (or map it under [values.funding_status] in kam.toml)")
    assert reasons["deal_size"].startswith("不是金额 / not an amount")
    assert reasons["purchase_date"].startswith("不是日期 / not a date")
    assert set(rejects["file"]) == {str(path)}
    summary = read_summary(out)
    assert summary["rejects_by_column"] == {"deal_size": 2, "opportunity_id": 1, "funding_status": 1,
                                            "purchase_date": 1, "risk": 1}
    assert sum(summary["rejects_by_reason"].values()) == rejects.height
    assert summary["rejects_file"] == str(out) + ".rejects.csv"


def test_the_summary_counts_reasons_in_the_same_order_on_every_run(tmp_path):
    """Most frequent first, ties by name: two runs on one export give the same summary (a group_by's order
    changed from run to run)."""
    export = Path(__file__).parent.parent / "examples" / "opportunities_zh.csv"  # three rejects, one each
    orders = set()
    for run in range(4):
        assert invoke("score", export, "-o", tmp_path / f"run{run}.csv", "-q").exit_code == 0
        summary = read_summary(tmp_path / f"run{run}.csv")
        for counts in (summary["rejects_by_column"], summary["rejects_by_reason"]):
            assert list(counts) == sorted(counts, key=lambda name: (-counts[name], name))
        orders.add((tuple(summary["rejects_by_column"]), tuple(summary["rejects_by_reason"])))
    assert list(summary["rejects_by_column"]) == ["deal_size", "purchase_date", "stage"]
    assert len(orders) == 1


DATA_KEYED = {"rejects_by_reason", "rejects_by_column", "plugins_failed"}  # their keys are reasons, columns, names


def summary_keys(value) -> set[str]:
    """Every key of a summary, nested ones included (not the keys of the maps whose keys are data; under
    ``reports``, the plugin names and their reports' keys)."""
    keys = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            keys.add(key)
            if key not in DATA_KEYED:
                keys |= summary_keys(inner)
    elif isinstance(value, list):
        for item in value:
            keys |= summary_keys(item)
    return keys


def test_every_key_of_the_run_summary_is_documented(tmp_path):
    """docs/summary.md names every key a run writes: with stakeholders, with a model, with repeated ids."""
    root = Path(__file__).parent.parent
    export = tmp_path / "export.csv"  # the bundled export, its first data row again: a repeated id
    lines = (root / "examples" / "opportunities_en.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    export.write_text("".join(lines + lines[1:2]), encoding="utf-8")
    runs = [("score", root / "examples" / "opportunities_zh.csv", "--stakeholders",
             root / "examples" / "stakeholders_zh.csv", "-o", tmp_path / "people.csv", "-q"),
            ("score", export, "--model", root / "models" / "bohanec.joblib", "-o", tmp_path / "model.csv", "-q")]
    keys = set()
    for args in runs:
        assert invoke(*args).exit_code == 0
        summary = read_summary(Path(args[args.index("-o") + 1]))
        keys |= summary_keys(summary)
    assert summary["repeated_ids"]["examples"] and summary["reports"]["win_model"]["notes"]
    documented = set(re.findall(r"`([A-Za-z_0-9]+)`", (root / "docs" / "summary.md").read_text(encoding="utf-8")))
    assert {"win_model", "stakeholders", "examples", "at", "features_missing"} <= keys
    assert sorted(keys - documented) == []


def test_rejects_lines_for_each_of_several_inputs(tmp_path):
    a_rows = table(sample_rows(5, seed=1), ZH)
    set_cell(a_rows, 3, "标的", "x")
    b_rows = table(sample_rows(4, seed=2), ZH)
    b_rows[1:] = [[f"B-{r[0]}", *r[1:]] for r in b_rows[1:]]
    set_cell(b_rows, 4, "采购时间", "2009-13")
    a = write_export(tmp_path / "a.csv", a_rows)
    b = write_export(tmp_path / "b.csv", b_rows, encoding="gb18030", delimiter=";")
    out = tmp_path / "scored.csv"
    result = invoke("score", a, b, "-o", out)
    assert result.exit_code == 0, result.output
    summary = read_summary(out)
    assert summary["rows"] == {"in": 9, "scored": 7, "rejected": 2}
    assert [i["rows"] for i in summary["inputs"]] == [5, 4]
    assert [i["rows_rejected"] for i in summary["inputs"]] == [1, 1]
    rejects = read_rejects(out)
    assert sorted(rejects.select("file", "line", "column").rows()) == sorted([
        (str(a), start_lines(a_rows)[3], "deal_size"), (str(b), start_lines(b_rows)[4], "purchase_date")])
    assert read_csv(out).height == 7


def test_run_summary_has_counts_timings_plugins_and_config_hash(tmp_path, bad_export):
    path, _ = bad_export
    out = tmp_path / "scored.csv"
    assert invoke("score", path, "-o", out).exit_code == 0
    summary = read_summary(out)
    assert summary["kam_version"] == kamcore.__version__
    assert set(summary["timings_s"]) >= {"stream", "total"}
    assert all(isinstance(v, (int, float)) and v >= 0 for v in summary["timings_s"].values())
    assert summary["timings_s"]["total"] >= summary["timings_s"]["stream"]
    plugins = {p["name"]: p["version"] for p in summary["plugins"]}
    assert {"csv_importer", "scorecard", "writers"} <= set(plugins)
    assert all(isinstance(v, str) and v for v in plugins.values())
    assert summary["plugins_failed"] == {}
    assert re.fullmatch(r"[0-9a-f]{64}", summary["config"]["sha256"])
    assert summary["config"]["path"] is None
    assert summary["config"]["sha256"] == load_config(None, get_kam().config_defaults()).sha256
    assert summary["columns"]["criteria"] == CRITERIA_COLUMNS
    assert summary["format"] == "csv" and summary["output"] == str(out)
    assert summary["summary_file"] == str(out) + ".summary.json"

    # another kam.toml: another hash, and the path is recorded
    config = tmp_path / "strict.toml"
    config.write_text("[scorecard.bands]\nA = 90\n", encoding="utf-8")
    out2 = tmp_path / "scored2.csv"
    assert invoke("score", path, "-o", out2, "--config", config).exit_code == 0
    summary2 = read_summary(out2)
    assert summary2["config"]["path"] == str(config)
    assert summary2["config"]["sha256"] != summary["config"]["sha256"]
    assert summary2["config"]["sha256"] == load_config(config, get_kam().config_defaults()).sha256


# -- output columns and scores -----------------------------------------------------------------

def test_every_designed_output_column_is_present_and_in_range(tmp_path):
    rows = table(sample_rows(40, seed=5), ZH)
    out = tmp_path / "scored.csv"
    assert invoke("score", write_export(tmp_path / "export.csv", rows), "-o", out).exit_code == 0
    scored = pl.read_csv(out, schema_overrides={c: pl.Float64 for c in CRITERIA_COLUMNS} | {
        "real_score": pl.Float64, "worth_score": pl.Float64, "total_score": pl.Float64, "win_probability": pl.Float64})
    for column in SCORE_COLUMNS:
        assert column in scored.columns, column
    assert scored.height == 40
    assert set(scored["band"]) <= helpers.BANDS
    assert set(scored["quadrant"]) <= helpers.QUADRANTS
    assert scored["win_probability"].is_between(0, 1).all()
    assert scored["reasons"].null_count() == 0 and (scored["reasons"].str.len_chars() > 0).all()
    for row in scored.iter_rows(named=True):
        points = [row[c] for c in CRITERIA_COLUMNS]
        assert all(p is None or 0 <= p <= 3 for p in points), row
        real, worth = sum(p or 0 for p in points[:5]), sum(p or 0 for p in points[5:])
        assert row["real_score"] == pytest.approx(round(100 * real / 15, 1))
        assert row["worth_score"] == pytest.approx(round(100 * worth / 15, 1))
        assert row["total_score"] == pytest.approx(round(100 * (real + worth) / 30, 1))
        total = row["total_score"]
        assert row["band"] == ("A" if total >= 75 else "B" if total >= 55 else "C" if total >= 35 else "D")
        quadrant = {(True, True): "pursue", (False, True): "develop", (True, False): "qualify_out",
                    (False, False): "drop"}[row["real_score"] >= 50, row["worth_score"] >= 50]
        assert row["quadrant"] == quadrant
        assert row["win_probability"] == pytest.approx(1 / (1 + math.exp((50 - total) / 10)), abs=1e-4)
        assert row["unknown_criteria"] == sum(p is None for p in points)


def test_missing_criterion_input_scores_unknown(tmp_path):
    rows = [["编号", "客户的应用或项目", "客户的业务状况", "标的"],
            ["A", "", "强劲", "120万"],          # item 1 empty
            ["B", "未知", "强劲", "120万"],      # item 1 written as unknown
            ["C", "清楚", "强劲", "120万"]]
    out = tmp_path / "scored.csv"
    assert invoke("score", write_export(tmp_path / "export.csv", rows), "-o", out).exit_code == 0
    scored = read_csv(out)
    assert scored["p1_need"].to_list() == [None, None, "3"]  # whole points are written as integers
    assert scored["p2_business"].to_list() == ["3"] * 3
    for reasons in scored["reasons"][:2]:
        assert "客户的应用或项目：未知" in reasons and "customer's need / project: unknown" in reasons
    assert "客户的应用或项目：未知" not in scored["reasons"][2]
    # a criterion whose column the export lacks altogether (我们的风险) is unknown for every row
    assert scored["p9_risk"].to_list() == [None] * 3
    assert all("我们的风险：未知 / risk: unknown" in r for r in scored["reasons"])
    assert "risk" not in scored.columns  # the placeholder input column is not written back
    assert scored["unknown_criteria"].to_list() == ["8", "8", "7"]  # known: item 2, item 6 (and item 1 for C)


# -- --max-rejects ------------------------------------------------------------------------------

def test_points_are_whole_numbers_unless_the_scorecard_gives_fractions(tmp_path):
    """The form's points (0 to 3) are written as 3, not 3.0; a kam.toml giving 2.5 points gets decimals in
    that criterion's column only, and in bins alike."""
    export = helpers.write_export(tmp_path / "export.csv", helpers.table(helpers.sample_rows(20, seed=5)))
    config = tmp_path / "halves.toml"  # (./kam.toml: read by the plain run too)
    config.write_text('[scorecard.criteria.need]\nterms = [ { column = "need_clarity", points = { clear = 2.5, '
                      'partial = 1, unclear = 0 } } ]\n'
                      '[scorecard.criteria.revenue]\nterms = [ { column = "deal_size_base", bins = [[1000000, 3], '
                      '[300000, 1.5]], below = 0 } ]\n', encoding="utf-8")
    plain, halves = tmp_path / "plain.csv", tmp_path / "halves.csv"
    assert invoke("score", export, "-o", plain).exit_code == 0
    result = invoke("score", export, "-o", halves, "--config", config)
    assert result.exit_code == 0, result.output
    whole, fractional = read_csv(plain), read_csv(halves)
    for name in CRITERIA_COLUMNS:
        assert all(v is None or v.isdigit() for v in whole[name]), name
    assert set(fractional["p1_need"].drop_nulls()) <= {"2.5", "1.0", "0.0"} and "2.5" in set(fractional["p1_need"])
    assert "1.5" in set(fractional["p6_revenue"]) or "3.0" in set(fractional["p6_revenue"])
    assert all(v is None or v.isdigit() for v in fractional["p2_business"])  # the other criteria keep whole points


def test_max_rejects_zero_fails_without_creating_output(tmp_path, bad_export):
    path, _ = bad_export
    before = sorted(os.listdir(tmp_path))
    out = tmp_path / "scored.csv"
    result = invoke("score", path, "-o", out, "--max-rejects", "0")
    assert result.exit_code == 5
    line = helpers.one_error_line(result.stderr)
    assert "data error" in line and "--max-rejects 0" in line
    assert "column 编号 (opportunity_id): 缺少取值 / missing value" in line  # the first reject, as the export names the column
    assert not out.exists()
    created = set(os.listdir(tmp_path)) - set(before)
    # no partial or temporary output; at most the rejects and summary that explain the failure
    assert created <= {"scored.csv.rejects.csv", "scored.csv.summary.json"}, created


def test_max_rejects_leaves_an_existing_output_unchanged(tmp_path, bad_export):
    path, _ = bad_export
    out = tmp_path / "scored.csv"
    out.write_bytes(b"previous run\n")
    os.utime(out, (1_000_000_000, 1_000_000_000))
    result = invoke("score", path, "-o", out, "--max-rejects", "0")
    assert result.exit_code == 5
    assert out.read_bytes() == b"previous run\n"
    assert out.stat().st_mtime == 1_000_000_000
    assert not any(".kam-tmp" in name for name in os.listdir(tmp_path))


def test_max_rejects_at_the_limit_succeeds(tmp_path, bad_export):
    path, _ = bad_export
    out = tmp_path / "scored.csv"
    assert invoke("score", path, "-o", out, "--max-rejects", "5").exit_code == 0
    assert invoke("score", path, "-o", tmp_path / "x.csv", "--max-rejects", "4").exit_code == 5


def test_max_rejects_zero_with_a_clean_file(tmp_path):
    out = tmp_path / "scored.csv"
    src = write_export(tmp_path / "export.csv", table(sample_rows(5), ZH))
    assert invoke("score", src, "-o", out, "--max-rejects", "0").exit_code == 0
    assert read_csv(out).height == 5


# -- blank lines ----------------------------------------------------------------------------------

def test_a_trailing_blank_line_is_not_a_row(tmp_path):
    """Files that end with an extra line break (Excel, editors) must not gain a rejected phantom row."""
    src = tmp_path / "export.csv"
    src.write_bytes("编号,标的\r\nA1,100\r\nA2,abc\r\n\r\n".encode())
    out = tmp_path / "scored.csv"
    assert invoke("score", src, "-o", out).exit_code == 0
    assert read_summary(out)["rows"] == {"in": 2, "scored": 1, "rejected": 1}
    assert read_rejects(out).select("line", "column", "opportunity_id").rows() == [(3, "deal_size", "A2")]
    assert invoke("score", src, "-o", tmp_path / "strict.csv", "--max-rejects", "1").exit_code == 0


def test_blank_line_in_the_middle_does_not_shift_reject_lines(tmp_path):
    src = tmp_path / "export.csv"
    src.write_bytes("编号,标的,备注\r\nA1,100,x\r\n\r\nA2,abc,y\r\nA3,5,\"a\r\nb\"\r\nA4,zz,w\r\n".encode())
    out = tmp_path / "scored.csv"
    assert invoke("score", src, "-o", out).exit_code == 0
    rejects = read_rejects(out)
    assert rejects["line"].null_count() == 0, rejects
    by_id = {r["opportunity_id"]: r["line"] for r in rejects.iter_rows(named=True) if r["opportunity_id"]}
    assert by_id == {"A2": 4, "A4": 7}
    # if the blank line is counted as a (rejected) record at all, it is reported on its own line
    assert set(rejects.filter(pl.col("opportunity_id").is_null())["line"]) <= {3}


# -- a larger messy export --------------------------------------------------------------------

def test_accounting_on_a_larger_export_with_random_bad_cells(tmp_path):
    rng = random.Random(2024)
    rows = table(sample_rows(600, seed=9), ZH)
    corrupt = {"标的": "很多", "采购时间": "2009-02-30", "资金状况": "差不多", "我们的利润": "高利润", "编号": ""}
    bad = set()
    for record in rng.sample(range(1, len(rows)), 80):
        header = rng.choice(list(corrupt))
        set_cell(rows, record, header, corrupt[header])
        bad.add(record)
    src = write_export(tmp_path / "export.csv", rows, encoding="utf-8-sig")
    out = tmp_path / "scored.csv"
    assert invoke("score", src, "-o", out).exit_code == 0
    summary, rejects = read_summary(out), read_rejects(out)
    assert summary["rows"] == {"in": 600, "scored": 600 - len(bad), "rejected": len(bad)}
    assert read_csv(out).height == 600 - len(bad)
    lines = start_lines(rows)
    assert set(rejects["line"]) == {lines[r] for r in bad}


# -- output safety --------------------------------------------------------------------------------

FORMULAS = ["=1+1", "@SUM(A1:A9)", "+x", "-x", "\tx", " =cmd|' /C calc'!A0", "＝1+1", "\rx"]


def test_formula_like_text_is_prefixed_in_csv_output(tmp_path):
    header = ["编号", "客户名称", "项目名称", "销售经理", "备注", "标的", "我们的利润"]
    rows = [header] + [[f"F{i}", value, value, value, value, "5", "-3%"] for i, value in enumerate(FORMULAS)]
    rows.append(["SAFE", "华信科技", "a=b", "张伟", "1+1", "100", "30%"])
    src = write_export(tmp_path / "export.csv", rows)
    out = tmp_path / "scored.csv"
    assert invoke("score", src, "-o", out).exit_code == 0
    scored = read_csv(out)
    assert scored.height == len(FORMULAS) + 1
    for value, row in zip(FORMULAS, scored.iter_rows(named=True)):
        for column in ("account", "project_name", "owner", "notes"):
            assert row[column] == "'" + value, (column, row[column])
        assert row["deal_size"] == "5.0" and row["margin"] == "-3.0"  # numbers stay numbers, negative ones too
    safe = scored.row(len(FORMULAS), named=True)
    assert (safe["account"], safe["project_name"], safe["owner"], safe["notes"]) == ("华信科技", "a=b", "张伟", "1+1")


def test_formula_like_text_is_not_changed_in_jsonl(tmp_path):
    rows = [["编号", "客户名称"], ["F1", "=1+1"], ["F2", "@SUM(A1)"]]
    out = tmp_path / "scored.jsonl"
    assert invoke("score", write_export(tmp_path / "export.csv", rows), "-o", out).exit_code == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["account"] for r in records] == ["=1+1", "@SUM(A1)"]


def test_formula_like_values_are_prefixed_in_the_rejects_file(tmp_path):
    rows = [["编号", "资金状况"], ["R1", '=HYPERLINK("http://evil","x")'], ["R2", "@cmd"]]
    out = tmp_path / "scored.csv"
    assert invoke("score", write_export(tmp_path / "export.csv", rows), "-o", out).exit_code == 0
    assert read_rejects(out)["value"].to_list() == ['\'=HYPERLINK("http://evil","x")', "'@cmd"]


def test_long_rejected_values_are_shortened(tmp_path):
    rows = [["编号", "标的"], ["L1", "x" * 200]]
    out = tmp_path / "scored.csv"
    assert invoke("score", write_export(tmp_path / "export.csv", rows), "-o", out).exit_code == 0
    value = read_rejects(out)["value"][0]
    assert value.startswith("x" * 60) and len(value) <= 61


def test_kams_own_output_is_refused_as_input_with_a_clear_error(tmp_path):
    """Columns kam derives (deal_size_base …) already in the input would be written twice."""
    from kamcore.cli import cli
    from click.testing import CliRunner

    export = tmp_path / "export.csv"
    export.write_text("编号,标的,采购时间,竞争对手\nA1,120万,2009.05,华为\n", encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(cli, ["score", str(export), "-o", str(tmp_path / "s1.csv"), "-q"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, ["score", str(tmp_path / "s1.csv"), "-o", str(tmp_path / "s2.csv"), "-q"])
    assert again.exit_code == 4
    assert "clash with columns kam derives" in again.output and "deal_size_base" in again.output
    assert not (tmp_path / "s2.csv").exists()


def test_csv_is_read_in_small_chunks_during_the_query_only(monkeypatch):
    """The chunk size is set for the streaming query and removed after it; a user's own setting is kept."""
    from kamcore.pipeline import CSV_CHUNK_BYTES, csv_chunks

    monkeypatch.delenv("POLARS_CSV_CHUNK_SIZE", raising=False)
    with csv_chunks():
        assert os.environ["POLARS_CSV_CHUNK_SIZE"] == str(CSV_CHUNK_BYTES)
    assert "POLARS_CSV_CHUNK_SIZE" not in os.environ
    monkeypatch.setenv("POLARS_CSV_CHUNK_SIZE", "123456")
    with csv_chunks():
        assert os.environ["POLARS_CSV_CHUNK_SIZE"] == "123456"
    assert os.environ["POLARS_CSV_CHUNK_SIZE"] == "123456"


def test_every_kind_of_reject_reason_reads_in_chinese_first(tmp_path):
    """Each kind of reason the normaliser and the CSV importer give is named in Chinese before the English
    (中文 / English), so a change to the English wording cannot leave a kind untranslated unnoticed."""
    from kamcore.normalise import REASON_ZH

    export = tmp_path / "reasons.csv"
    export.write_text("编号,标的,币种,采购时间,我们的利润,销售阶段,备注\n"
                      "A,很多,CNY,2024-01-01,10%,方案,x\n"        # not an amount
                      "B,12万美元,CNY,2024-01-01,10%,方案,x\n"    # the amount's currency contradicts the column
                      "C,10万,12,2024-01-01,10%,方案,x\n"         # not a currency
                      "D,10万,CNY,05/06/2024,10%,方案,x\n"        # ambiguous date
                      "E,10万,CNY,2024-13-45,10%,方案,x\n"        # not a date
                      "F,10万,CNY,2024-01-01,很高,方案,x\n"       # not a percentage
                      "G,10万,CNY,2024-01-01,10%,跟进,x\n"        # unknown value
                      ",10万,CNY,2024-01-01,10%,方案,x\n"         # missing id
                      "I,10万,CNY\n", encoding="utf-8")          # too few fields
    out = tmp_path / "scored.csv"
    assert invoke("score", export, "-o", out, "-q").exit_code == 0
    reasons = read_rejects(out)["reason"].to_list()
    kinds = sorted(reason.split(" / ", 1)[0] for reason in reasons)
    assert kinds == sorted(zh for _, zh in REASON_ZH)  # each kind once, each in Chinese first
    assert all(pattern.match(reason.split(" / ", 1)[1]) for (pattern, zh), reason in
               zip(REASON_ZH, sorted(reasons, key=lambda r: [z for _, z in REASON_ZH].index(r.split(" / ", 1)[0]))))
