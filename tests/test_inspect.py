"""`kam inspect FILE`: what kam detects, as text and as JSON, with personal fields masked. The command
comes from a built-in plugin's register_commands hook, not from cli.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import openpyxl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import invoke, kam_env  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("kam_env")

ROWS = [["报表: 大客户机会"], [], ["编号", "客户名称", "标的", "Kundenname", "联系人电话", "生日"],
        ["A-1", "华能", "120万", "x", "13800138000", "1970-01-01"],
        ["A-2", "申通", "1.5亿", "y", "13900139000", "1980-02-02"]]


@pytest.fixture
def export(tmp_path):
    return helpers.write_export(tmp_path / "export.csv", ROWS)


def test_inspect_json_shows_what_kam_detected(export):
    result = invoke("inspect", export, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["importer"] == "csv" and report["encoding"] == "utf-8" and report["delimiter"] == ","
    assert report["header_line"] == 3 and any("header is on line 3" in n for n in report["notes"])
    columns = {c["header"]: c["column"] for c in report["columns"]}
    assert columns["编号"] == "opportunity_id" and columns["标的"] == "deal_size" and columns["Kundenname"] is None
    assert report["unmapped"] == ["Kundenname", "联系人电话", "生日"]
    assert "budget_status" in report["missing_inputs"] and "deal_size" not in report["missing_inputs"]
    assert report["confidence"]["csv"] > 0 and list(report["confidence"])[0] == "csv"
    assert report["sample_rows"][0]["编号"] == "A-1"


def test_inspect_shows_the_unit_and_currency_an_amount_header_declares():
    path = Path(__file__).parent / "corpus" / "unit_in_header.csv"
    report = json.loads(invoke("inspect", path, "--json").stdout)
    columns = {c["header"]: c for c in report["columns"]}
    assert columns["标的(万元)"] == {"header": "标的(万元)", "column": "deal_size", "personal": False, "unit": 10000.0,
                                  "currency": "CNY"}  # (the header as cleaned: full-width brackets folded)
    assert columns["我们的利润(%)"]["column"] == "margin" and "unit" not in columns["我们的利润(%)"]
    assert "-> deal_size  (amounts in CNY × 10,000)" in invoke("inspect", path).stdout


def test_personal_fields_are_masked_in_sample_rows(export):
    result = invoke("inspect", export, "--json")
    report = json.loads(result.stdout)
    personal = {c["header"] for c in report["columns"] if c["personal"]}
    assert personal == {"生日", "联系人电话"}
    assert all(row["生日"] == row["联系人电话"] == "***" for row in report["sample_rows"])
    assert "1970-01-01" not in result.stdout and "13800138000" not in result.stdout
    assert report["sample_rows"][0]["客户名称"] == "华能"  # "名称" is not "姓名": not masked
    text = invoke("inspect", export).stdout
    assert "1970-01-01" not in text and "生日=***" in text and "[personal: masked]" in text


def test_a_phone_header_known_to_the_stakeholder_schema_is_masked(tmp_path):
    rows = [["编号", "姓名", "电话", "email"], ["A-1", "张三", "13800138000", "zs@example.com"]]
    result = invoke("inspect", helpers.write_export(tmp_path / "people.csv", rows))
    assert result.exit_code == 0
    for secret in ("张三", "13800138000", "zs@example.com"):
        assert secret not in result.stdout


def test_inspect_text_names_each_part(export):
    result = invoke("inspect", export, "--rows", "1")
    assert result.exit_code == 0
    out = result.stdout
    for words in ("importer    csv", "delimiter   ','", "header      line 3", "编号", "-> opportunity_id",
                  "Kundenname", "(not mapped: kept as it is)", "unmapped    Kundenname", "sample      first 1 row(s)",
                  "1: 编号=A-1"):
        assert words in out, out
    assert "A-2" not in out


def test_inspect_applies_the_users_mapping(export, tmp_path):
    config = tmp_path / "kam.toml"
    config.write_text('[columns]\n"Kundenname" = "notes"\n', encoding="utf-8")
    report = json.loads(invoke("inspect", export, "--json", "--config", config).stdout)
    assert {c["header"]: c["column"] for c in report["columns"]}["Kundenname"] == "notes"


def test_inspect_a_workbook_sheet(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.title = "说明"
    sheet = workbook.create_sheet("商机")
    for row in ROWS:
        sheet.append(row)
    path = tmp_path / "deals.xlsx"
    workbook.save(path)
    report = json.loads(invoke("inspect", path, "--json", "--sheet", "商机").stdout)
    assert report["importer"] == "xlsx" and report["header_line"] == 3 and report["delimiter"] is None
    assert "header      row 3" in invoke("inspect", path, "--sheet", "2").stdout


def test_inspect_a_refused_file_is_one_error_line(tmp_path):
    bad = tmp_path / "report.xls"
    bad.write_text("<html><table><tr><td>编号</td></tr></table></html>", encoding="utf-8")
    result = invoke("inspect", bad)
    assert result.exit_code == 4
    assert "HTML page" in helpers.one_error_line(result.stderr)


def test_inspect_is_a_plugin_command():
    result = invoke("plugins", "--all", "--hook", "register_commands")
    assert "inspect" in [p["name"] for p in json.loads(result.stdout)]
    from kamcore.cli import cli

    assert "inspect" not in cli.commands or cli.commands["inspect"].callback.__module__.startswith("kamcore_plugins")
