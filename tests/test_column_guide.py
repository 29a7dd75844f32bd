"""The column guide (列说明): every output column named in Chinese and English, in the workbook and `kam columns`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import openpyxl
import polars as pl
import pytest

import kamcore
from kamcore.errors import PluginError
from kamcore.guide import BLOCK_LABELS, DERIVED_LABELS
from kamcore.plugins import Kam
from kamcore.registry import BLOCKS, ColumnLabel, Writer
from kamcore.schema import DERIVED_COLUMNS

import helpers
from helpers import invoke, kam_env  # noqa: F401

pytestmark = pytest.mark.usefixtures("kam_env")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GUIDE = "列说明 Columns"


def read_workbook(path: Path) -> tuple[list[str], dict[str, tuple], list[str]]:
    """(the scored sheet's header, the guide's rows by column, the guide's columns in order)."""
    workbook = openpyxl.load_workbook(path, read_only=True)
    assert workbook.sheetnames == ["scored", GUIDE]
    header = list(next(workbook["scored"].iter_rows(values_only=True)))
    rows = list(workbook[GUIDE].iter_rows(values_only=True))
    assert rows[0] == ("列 / column", "中文", "English", "说明 / meaning")
    return header, {row[0]: row[1:] for row in rows[1:]}, [row[0] for row in rows[1:]]


def test_the_workbook_carries_a_guide_to_every_column_in_order(tmp_path):
    out = tmp_path / "scored.xlsx"
    result = invoke("score", EXAMPLES / "opportunities_zh.csv", "--stakeholders", EXAMPLES / "stakeholders_zh.csv",
                    "-o", out)
    assert result.exit_code == 0, result.output
    header, rows, order = read_workbook(out)
    assert order == header  # one row per column of the scored sheet, in the same order
    for name in header:  # every built-in column is named in both languages
        zh, en, _ = rows[name]
        assert zh and en, name
    assert rows["stage"] == ("销售阶段", "Sales stage",
                             "potential 潜在 · intent 意向 · solution 方案 · negotiation 谈判成交 · won 赢单 · lost 丢单")
    assert rows["p4_budget"] == ("4. 项目的预算", "4. budget", "0–3 分（评估标准：有），空为信息不足 / 0–3 points, empty "
                                 "when unknown")
    assert rows["real_score"] == ("是不是虚的？得分", "Is it real? score", "0–100，第 1–5 项 / 0–100, items 1–5")
    assert rows["quadrant"][0] == "象限（真实 × 价值）" and "pursue 全力争取" in rows["quadrant"][2]
    assert rows["band"][2] == "按总分 / by total_score: A ≥ 75 · B ≥ 55 · C ≥ 35 · D"
    assert rows["decision_maker_stance"][:2] == ("关键决策者态度", "Decision maker's stance")
    assert rows["win_probability"] == ("赢单概率", "Win probability", "0–1")


def test_the_guide_follows_the_configuration(tmp_path):
    (tmp_path / "kam.toml").write_text("[scorecard.bands]\nA = 80\nB = 60\nC = 40\n\n"
                                       "[win_block]\nenabled = true\n", encoding="utf-8")
    out = tmp_path / "scored.xlsx"
    result = invoke("score", EXAMPLES / "opportunities_en.csv", "--stakeholders", EXAMPLES / "stakeholders_en.csv",
                    "-o", out)
    assert result.exit_code == 0, result.output
    header, rows, order = read_workbook(out)
    assert order == header
    assert rows["band"][2] == "按总分 / by total_score: A ≥ 80 · B ≥ 60 · C ≥ 40 · D"
    assert rows["win_score"] == ("能赢吗？得分", "Can we win? score", "0–100，第 11–13 项 / 0–100, items 11–13")
    assert rows["rww_screen"][:2] == ("真实-能赢-值得 筛选", "Real-Win-Worth screen")
    assert rows["p11_competition"][0].startswith("11. ")
    assert all(rows[name][0] and rows[name][1] for name in header), [n for n in header if not rows[n][0]]


def test_the_exports_own_columns_are_labelled_as_such_and_stay_safe(tmp_path):
    rows = helpers.sample_rows(4)
    for i, row in enumerate(rows):
        row["=HYPERLINK(\"http://x\")"] = f"x{i}"  # a header a spreadsheet would run
        row["Created By"] = "a"
    export = tmp_path / "export.csv"
    data = helpers.table(rows)
    data[0].append("Created By")  # a repeated header kam does not read: kept as Created By_<its column>
    for line in data[1:]:
        line.append("b")
    helpers.write_export(export, data)
    out = tmp_path / "scored.xlsx"
    result = invoke("score", export, "-o", out)
    assert result.exit_code == 0, result.output
    header, guide, order = read_workbook(out)
    assert order == header
    repeated = f"Created By_{len(data[0])}"
    assert repeated in header
    for name in ("=HYPERLINK(\"http://x\")", "Created By", repeated):
        assert guide[name] == ("原表列", "From the export", "kam 未读取，原样保留 / not read by kam, kept as written")
    sheet = openpyxl.load_workbook(out)[GUIDE]  # not read-only: the cells' styles
    cell = next(c for c in sheet["A"] if c.value == "=HYPERLINK(\"http://x\")")
    assert cell.data_type == "s" and cell.quotePrefix  # shown as text, never run
    assert all(c.data_type == "s" for row in sheet.iter_rows() for c in row if c.value is not None)


def test_other_tools_read_the_scored_rows_from_the_first_sheet(tmp_path):
    out = tmp_path / "scored.xlsx"
    assert invoke("score", EXAMPLES / "opportunities_en.csv", "-o", out).exit_code == 0
    workbook = openpyxl.load_workbook(out, read_only=True)
    rows = list(workbook.active.values)  # the sheet Excel opens on, the first, as other tools read by default
    assert workbook.active.title == "scored" and workbook.worksheets[0].title == "scored"
    assert len(rows) == 1 + 23 and rows[0][0] == "opportunity_id"
    assert len(list(workbook[GUIDE].values)) == 1 + len(rows[0])


def test_kam_columns_lists_what_kam_score_writes(tmp_path):
    scored = tmp_path / "scored.csv"
    assert invoke("score", EXAMPLES / "opportunities_zh.csv", "--stakeholders", EXAMPLES / "stakeholders_zh.csv",
                  "-o", scored).exit_code == 0
    written = pl.read_csv(scored).columns

    listed = helpers.run_kam("columns", "--stakeholders", "--format", "csv", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese right
    table = pl.read_csv(io.BytesIO(listed.stdout))
    assert table.columns == ["column", "label_zh", "label_en", "meaning"]
    names = table["column"].to_list()
    # the export's columns come in the export's order (it lacks a few: dev_stage, outcome); what kam adds, in
    # the same order
    assert set(written) <= set(names)
    first_added = written.index("stakeholder_count")
    assert names[names.index("stakeholder_count"):] == written[first_added:]
    assert table["label_zh"].null_count() == 0 and table["label_en"].null_count() == 0

    without = invoke("columns", "--format", "csv")
    assert without.exit_code == 0
    assert "stakeholder_count" not in without.output and "p1_need" in without.output

    text = invoke("columns")
    assert text.exit_code == 0
    assert "p1_need  1. 客户的应用或项目 / 1. customer's need / project\n    0–3 分" in text.output
    markdown = invoke("columns", "--format", "markdown")
    assert markdown.output.startswith("| column | 中文 | English | meaning |\n|---|---|---|---|\n| `opportunity_id` |")
    assert len(markdown.output.splitlines()) == 2 + len(kamcore.column_guide())


def test_the_api_labels_a_frames_columns():
    result = kamcore.score_frame(pl.DataFrame({"编号": ["A-1"], "销售阶段": ["方案"], "客户的应用或项目": ["清楚"]}))
    guide = kamcore.column_guide(result.scored)
    assert [label.name for label in guide] == result.scored.columns
    assert guide[0] == ColumnLabel("opportunity_id", "编号", "Opportunity ID", "原样保留 / as in the export")
    assert kamcore.column_guide(["no_such_column"]) == [ColumnLabel("no_such_column", "", "")]


def test_every_derived_column_and_block_has_labels():
    assert set(DERIVED_LABELS) == set(DERIVED_COLUMNS)
    assert set(BLOCK_LABELS) == set(BLOCKS)


class _Labels:
    def __init__(self, name: str, label: str):
        self.name, self.label = name, label

    @kamcore.hookimpl
    def register_column_labels(self, register):
        register(ColumnLabel(self.name, self.label, self.label))


def test_a_column_labelled_by_two_plugins_is_an_error():
    kam = Kam()
    kam.register(_Labels("deal_heat", "热度"), "one")
    kam.register(_Labels("deal_heat", "Heat"), "two")
    with pytest.raises(PluginError, match="'deal_heat' is registered twice: by plugin '(one|two)' and by plugin"):
        kamcore.column_guide(["deal_heat"], kam=kam)


def test_a_plugin_cannot_relabel_the_cores_columns():
    kam = Kam()
    kam.register(_Labels("total_score", "not the total"), "relabel")
    assert kamcore.column_guide(["total_score"], kam=kam)[0].label_zh == "总分"


class _GuideWriter:
    """A third-party writer whose sink asks for the guide, beside one whose sink does not."""

    seen: list = []

    @kamcore.hookimpl
    def register_writers(self, register):
        def with_guide(frame, path, guide):
            _GuideWriter.seen.append(guide)
            return frame.sink_ndjson(path, lazy=True)

        def plain(frame, path):
            return frame.sink_ndjson(path, lazy=True)

        register(Writer(name="guided", extensions=(".guided",), sink=with_guide))
        register(Writer(name="plain", extensions=(".plain",), sink=plain))


def test_a_writer_gets_the_guide_when_its_sink_asks_for_it(tmp_path):
    from kamcore.config import load_config
    from kamcore.pipeline import run_score

    kam = Kam()
    kam.register(_GuideWriter(), "guided_writer")
    config = load_config(None, kam.config_defaults())
    run_score([EXAMPLES / "opportunities_en.csv"], tmp_path / "out.guided", kam=kam, config=config)
    run_score([EXAMPLES / "opportunities_en.csv"], tmp_path / "out.plain", kam=kam, config=config)
    assert len(_GuideWriter.seen) == 1
    written = [json.loads(line) for line in (tmp_path / "out.guided").read_text(encoding="utf-8").splitlines()]
    assert [label.name for label in _GuideWriter.seen[0]] == list(written[0])
    assert (tmp_path / "out.plain").read_bytes() == (tmp_path / "out.guided").read_bytes()


def test_kam_classify_workbooks_carry_the_guide_to_the_people_and_the_coverage(tmp_path):
    people = tmp_path / "people.csv"
    people.write_text("编号,姓名,职务,角色,性格,立场,项目影响力,关系备注\n"
                      "KA-1,张三,局长,关键决策者,老虎,支持,高,老同学\n"
                      "KA-1,李四,信息中心主任,,,,,\n", encoding="utf-8")
    result = invoke("classify", people, "-o", tmp_path / "people.xlsx", "--coverage", tmp_path / "coverage.xlsx")
    assert result.exit_code == 0, result.output
    header, rows, order = read_workbook(tmp_path / "people.xlsx")
    assert order == header and "name" not in header  # the name is left out, so is its label
    assert rows["style"] == ("性格", "Style", "tiger 老虎 · peacock 孔雀 · owl 猫头鹰 · koala 无尾熊")
    assert rows["role_source"] == ("角色（来源）", "Role (source)",
                                   "given 表中给出 · inferred 推断 / given in the table · inferred by kam")
    assert rows["person_id"][:2] == ("人员编号", "Person ID")
    assert rows["关系备注"] == ("原表列", "From the export", "kam 未读取，原样保留 / not read by kam, kept as written")
    assert all(rows[name][0] and rows[name][1] for name in header)

    header, rows, order = read_workbook(tmp_path / "coverage.xlsx")
    assert order == header and header[0] == "opportunity_id"
    assert rows["stakeholder_flags"][:2] == ("关键人物风险", "Stakeholder red flags")
    assert all(rows[name][0] and rows[name][1] for name in header)
