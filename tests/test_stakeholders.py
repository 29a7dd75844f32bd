"""Stakeholders: reading the people table, classifying it (style, stance, influence, the graph), summing
each deal up (coverage and red flags), joining that onto the scored opportunities, and keeping personal
data out of the output. Real files, the real pipeline, `kam` in-process and as a real process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import invoke, kam_env, one_error_line, read_csv, read_summary, run_kam  # noqa: E402,F401

import kamcore  # noqa: E402
from kamcore import hookimpl  # noqa: E402
from kamcore.config import load_config  # noqa: E402
from kamcore.errors import InputError, PluginError  # noqa: E402
from kamcore.pipeline import run_score  # noqa: E402
from kamcore.plugins import Kam, get_kam  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PERSONAL_VALUES = ["王建国", "李明", "赵红", "孙伟", "周婷", "3月12日", "围棋", "摄影", "高尔夫", "钓鱼", "Dana Whitfield",
                   "1970-04-02"]


def people(**columns) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    columns.setdefault("编号", ["A"] * n)
    return pl.DataFrame(columns, schema={k: pl.String for k in columns})


def classify(frame, config=None) -> pl.DataFrame:
    return kamcore.classify_stakeholders(frame, config)


def coverage(frame) -> dict[str, dict]:
    summary = kamcore.api.stakeholder_coverage(frame)
    return {row["opportunity_id"]: row for row in summary.iter_rows(named=True)}


# -- reading the seed's tables ----------------------------------------------------------------------


def test_the_seeds_headers_map_in_chinese_and_english():
    zh = pl.DataFrame({h: ["x"] for h in ["编号", "姓名", "所在处(科)室", "机构&职务", "目前该人的角色", "性格", "气质", "思想",
                                          "口才", "对我们的支持度", "项目影响力", "受谁影响", "能影响谁", "亲进度关系",
                                          "信任度关系", "是否有可能成为我们的教练", "关注焦点", "介绍人", "生日", "籍贯"]})
    en = pl.DataFrame({h: ["x"] for h in ["Opportunity ID", "Name", "Department", "Job Title", "Role", "Style",
                                          "Temperament", "Thinking", "Eloquence", "Stance", "Influence", "Influenced by",
                                          "Influences", "Closeness", "Trust", "Potential coach", "Focus", "Birthday"]})
    expected = {"opportunity_id", "name", "department", "title", "role", "style", "temperament", "thinking",
                "eloquence", "stance", "influence", "influenced_by", "influences", "closeness_trend", "trust_trend",
                "coach_potential", "focus"}
    assert expected | {"introducer", "birthday", "hometown"} <= set(classify(zh).columns)
    assert expected | {"birthday"} <= set(classify(en).columns)


def test_blank_rows_and_missing_tokens_are_dropped_and_text_is_trimmed():
    got = classify(people(编号=[" A ", None, "B"], 职务=[" 局长 ", None, "未知"]))
    assert got["opportunity_id"].to_list() == ["A", "B"]
    assert got["title"].to_list() == ["局长", None]


# -- style from 气质 / 思想 / 口才 -------------------------------------------------------------------------


@pytest.mark.parametrize("temperament, thinking, eloquence, style", [
    ("急躁饶舌", "激进", "能说", "peacock"),       # fast and people-oriented: 喜欢表现, 善于影响别人
    ("急躁饶舌", "激进", "普通", "tiger"),         # fast and task-oriented: 喜欢指挥, 有紧迫感
    ("急躁", "激进", "口拙", "tiger"),
    ("稳重寡言", "稳健保守", "口拙", "owl"),       # calm and task-oriented: 周密细致, 不善于与人打交道
    ("稳重寡言", "稳健保守", "能说", "koala"),     # calm and people-oriented: 关系运作高手, 有耐心
    ("稳重寡言", None, "普通", "owl"),             # one pace trait is enough
    ("急躁饶舌", "稳健保守", "能说", None),        # contradicting pace: nothing inferred
    ("急躁饶舌", "激进", None, None),              # no 口才: the people axis is unknown
    ("impetuous", "radical", "articulate", "peacock"),
    ("steady", "conservative", "inarticulate", "owl"),
])
def test_style_is_inferred_from_the_traits(temperament, thinking, eloquence, style):
    got = classify(people(气质=[temperament], 思想=[thinking], 口才=[eloquence]))
    assert got["style"][0] == style
    assert got["style_source"][0] == ("inferred" if style else None)


def test_a_style_given_in_the_file_wins_over_the_traits():
    got = classify(people(性格=["无尾熊", "Tiger"], 气质=["急躁饶舌", None], 思想=["激进", None], 口才=["能说", None]))
    assert got["style"].to_list() == ["koala", "tiger"]
    assert got["style_source"].to_list() == ["given", "given"]


# -- stance ------------------------------------------------------------------------------------------


def test_stance_is_normalised_and_a_coach_supports_us():
    got = classify(people(立场=["支持", "支持者", "反对", "中立", "倾向对手", "Supportive", "blocker", None, None],
                          角色=[None] * 7 + ["教练", "业务把关者"]))
    assert got["stance"].to_list() == ["support", "support", "oppose", "neutral", "oppose", "support", "oppose",
                                       "support", None]
    assert got["stance_source"].to_list() == ["given"] * 7 + ["inferred", None]


def test_a_value_that_matches_no_code_is_not_guessed():
    got = classify(people(立场=["很难说"], 角色=["领导"], 职务=[None]))
    assert got["stance"][0] is None and got["role"][0] is None


# -- the influence graph -------------------------------------------------------------------------------


def test_reach_follows_influence_through_names_titles_and_roles():
    # 王局长 -> 李副局长 -> 赵主任 -> 周科员; 孙处长 is influenced by the 局长 (by title); 吴 names nobody we know
    got = classify(people(姓名=["王建国", "李明", "赵红", "周婷", "孙伟", "吴敏"],
                          职务=["局长", "副局长", "信息中心主任", "科员", "处长", "科员"],
                          能影响谁=["李明", "赵红", None, None, None, None],
                          受谁影响=[None, None, "李明", "技术把关者", "局长", "钱总、Smith"]))
    assert got["reach"].to_list() == [4, 2, 1, 0, 0, 0]
    assert got["influenced_by_count"].to_list() == [0, 1, 2, 3, 1, 0]
    assert got["unresolved_links"].to_list() == [0, 0, 0, 0, 0, 2]


def test_influence_given_wins_then_reach_then_title_then_role():
    got = classify(people(姓名=["A1", "A2", "A3", "A4", "A5"], 职务=["局长", "处长", "科员", "信息中心主任", "处长"],
                          项目影响力=[None, "低", None, None, None], 能影响谁=[None, None, None, "A2、A3", None]))
    assert got["influence"].to_list() == ["high", "low", "low", "high", "medium"]
    assert got["influence_source"].to_list() == ["inferred", "given", "inferred", "inferred", "inferred"]


def test_the_graph_stays_within_one_opportunity():
    got = classify(people(编号=["A", "B"], 姓名=["王建国", "李明"], 能影响谁=["李明", "王建国"]))
    assert got["reach"].to_list() == [0, 0]
    assert got["unresolved_links"].to_list() == [1, 1]


def test_every_person_has_an_id_without_their_name():
    got = classify(people(编号=["A", "A", "B"], 姓名=["王建国", "李明", "张海"]))
    assert got["person_id"].to_list() == ["A#1", "A#2", "B#1"]


# -- coverage and red flags -------------------------------------------------------------------------------


def test_every_red_flag_with_real_rows_in_chinese():
    cov = coverage(people(
        编号=["A", "A", "A", "A", "B", "B", "C", "D", "D"],
        姓名=["王建国", "赵红", "孙伟", "周婷", "张海", "郑凯", "林涛", "刘志强", "黄丽"],
        职务=["局长", "信息中心主任", "预算处处长", "科员", "董事长", "IT总监", "总经理", "总经理", "副总经理"],
        所在处室=[None, None, None, "预算处", "集团总部", None, "公司领导", "科技部", "运营管理部"],
        角色=[None, None, None, "教练", None, None, None, None, None],
        对我们的支持度=["支持", "支持", "支持", None, "反对", "中立", "支持", "支持", "中立"],
        项目影响力=[None, None, None, None, "高", None, None, None, None],
        信任度关系=["上升", None, None, None, "下降", None, None, None, "下降"]))
    assert cov["A"]["stakeholder_flags"] is None and cov["A"]["stakeholder_flag_count"] == 0
    assert cov["A"]["role_coverage"] == 1.0 and cov["A"]["decision_maker_stance"] == "support"
    assert cov["B"]["stakeholder_flags"].split("; ") == [
        "关键决策者反对我们 / the decision maker opposes us", "没有教练 / no coach identified",
        "业务把关者未知 / business gatekeeper not identified",
        "高影响力反对者 1 人 / high-influence opponents (1)", "亲近度或信任度下降 1 人 / closeness or trust falling (1)"]
    assert cov["C"]["single_threaded"] if "single_threaded" in cov["C"] else True
    assert "单线联系：只有一位联系人 / single-threaded: only one contact" in cov["C"]["stakeholder_flags"]
    assert "技术把关者未知 / technical gatekeeper not identified" in cov["C"]["stakeholder_flags"]
    assert "关键决策者未知 / decision maker not identified" in cov["D"]["stakeholder_flags"]
    assert cov["D"]["technical_gatekeeper_known"] and cov["D"]["business_gatekeeper_known"]
    assert cov[None]["stakeholder_flags"] == "未列出关键人物 / no stakeholders listed"
    assert cov[None]["stakeholder_count"] == 0


def test_red_flags_with_real_rows_in_english():
    cov = coverage(pl.DataFrame({
        "opportunity_id": ["OPP-1", "OPP-1", "OPP-2"], "name": ["Dana Whitfield", "Raj Patel", "Sam Oduya"],
        "title": ["Chief Executive Officer", "Director of IT", "VP of IT"], "stance": ["support", None, "support"],
        "role": [None, None, None], "closeness_trend": ["up", "down", None]}))
    assert cov["OPP-1"]["decision_maker_known"] and cov["OPP-1"]["decision_maker_stance"] == "support"
    assert cov["OPP-1"]["relationship_down"] == 1
    assert "没有教练 / no coach identified" in cov["OPP-1"]["stakeholder_flags"]
    assert cov["OPP-2"]["stakeholder_flags"].startswith("关键决策者未知 / decision maker not identified")


def test_the_least_favourable_decision_maker_stance_counts():
    # 角色表: when the others say Yes and the decision maker says No, the project stops
    cov = coverage(people(编号=["A", "A", "B", "B"], 职务=["局长", "副局长", "局长", "副局长"],
                          立场=["支持", "反对", "支持", None]))
    assert cov["A"]["decision_maker_stance"] == "oppose"
    assert cov["B"]["decision_maker_stance"] == "support"


# -- kam score --stakeholders, end to end -------------------------------------------------------------------


def test_kam_score_with_the_chinese_example(tmp_path):
    out = tmp_path / "scored.csv"
    result = invoke("score", EXAMPLES / "opportunities_zh.csv", "--stakeholders", EXAMPLES / "stakeholders_zh.csv",
                    "-o", out)
    assert result.exit_code == 0, result.output
    scored = read_csv(out)
    assert scored.height == 23 and scored["opportunity_id"][0] == "KA-2009-001"  # input order kept
    rows = {r["opportunity_id"]: r for r in scored.iter_rows(named=True)}
    assert rows["KA-2009-001"]["stakeholder_count"] == "5" and rows["KA-2009-001"]["coach_present"] == "true"
    assert rows["KA-2009-003"]["decision_maker_stance"] == "oppose"
    assert "单线联系" in rows["KA-2009-004"]["stakeholder_flags"]
    assert rows["KA-2009-005"]["stakeholder_flags"] == "未列出关键人物 / no stakeholders listed"
    for column in ("qualification", "supported_stage", "missing", "next_action"):
        assert column in scored.columns
    summary = read_summary(out)["stakeholders"]
    assert summary["people"] == 12 and summary["opportunities_scored_with_people"] == 4
    assert summary["classified_by"] == "stakeholders" and "stakeholders" in summary["summarised_by"]
    text = out.read_text(encoding="utf-8-sig") + json.dumps(read_summary(out), ensure_ascii=False)
    text += result.output + out.with_name(out.name + ".rejects.csv").read_text(encoding="utf-8-sig")
    assert not [v for v in PERSONAL_VALUES if v in text]


def test_kam_score_with_stakeholders_as_a_real_process_in_english(tmp_path):
    out = tmp_path / "scored.csv"
    proc = run_kam("--debug", "score", EXAMPLES / "opportunities_en.csv", "--stakeholders",
                   EXAMPLES / "stakeholders_en.csv", "-o", out, cwd=tmp_path, env={"KAM_TRACE_PLUGINS": "1"})
    assert proc.returncode == 0, proc.stderr.decode()
    stderr = proc.stderr.decode()
    assert "hook summarise_stakeholders plugin stakeholders" in stderr
    rows = {r["opportunity_id"]: r for r in read_csv(out).iter_rows(named=True)}
    assert rows["OPP-1001"]["coach_present"] == "true" and rows["OPP-1001"]["qualification"] == "qualified"
    assert rows["OPP-1003"]["high_influence_opponents"] == "1"
    assert "single-threaded" in rows["OPP-1002"]["stakeholder_flags"]
    everything = out.read_text(encoding="utf-8") + stderr
    assert not [v for v in PERSONAL_VALUES + ["Raj Patel", "Mia Chen", "Greta Lind"] if v in everything]


def test_the_same_numbers_from_the_api_and_score_one():
    opps = pl.read_csv(EXAMPLES / "opportunities_en.csv", infer_schema=False)
    team = pl.read_csv(EXAMPLES / "stakeholders_en.csv", infer_schema=False)
    batch = kamcore.score_frame(opps, stakeholders=team).scored.filter(pl.col("opportunity_id") == "OPP-1003")
    one = kamcore.score_one(opps.filter(pl.col("opportunity_id") == "OPP-1003").row(0, named=True),
                            stakeholders=team.filter(pl.col("opportunity_id") == "OPP-1003").to_dicts())
    for column in ("stakeholder_flags", "decision_maker_stance", "qualification", "next_action", "total_score"):
        assert batch[column][0] == one[column]


def test_ids_are_matched_after_trimming(tmp_path):
    opps = pl.DataFrame({"编号": ["A-1 ", "B-2"], "项目的预算": ["有", "无"]})
    team = people(编号=[" A-1"], 职务=["局长"])
    scored = kamcore.score_frame(opps, stakeholders=team).scored
    assert scored["stakeholder_count"].to_list() == [1, 0]


def test_a_stakeholder_table_without_ids_is_refused(tmp_path):
    (tmp_path / "opps.csv").write_text("编号,项目的预算\nA,有\n", encoding="utf-8")
    (tmp_path / "people.csv").write_text("姓名,职务\n王建国,局长\n", encoding="utf-8")
    result = invoke("score", tmp_path / "opps.csv", "--stakeholders", tmp_path / "people.csv", "-o", tmp_path / "o.csv")
    assert result.exit_code == InputError.exit_code
    assert "no opportunity_id column" in one_error_line(result.stderr if hasattr(result, "stderr") else result.output)


def test_a_second_sheet_of_the_same_workbook(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "机会"
    sheet.append(["编号", "项目的预算", "销售阶段", "客户的应用或项目"])
    sheet.append(["KA-1", "有", "方案", "清楚"])
    sheet.append(["KA-2", "无", "意向", "清楚"])
    team = book.create_sheet("关键人物")
    team.append(["编号", "姓名", "职务", "立场"])
    team.append(["KA-1", "王建国", "局长", "支持"])
    team.append(["KA-1", "赵红", "信息中心主任", "支持"])
    book.save(tmp_path / "book.xlsx")
    out = tmp_path / "scored.csv"
    result = invoke("score", tmp_path / "book.xlsx", "--stakeholders", tmp_path / "book.xlsx", "-o", out)
    assert result.exit_code == 0, result.output
    assert read_csv(out)["stakeholder_count"].to_list() == ["2", "0"]
    by_name = invoke("score", tmp_path / "book.xlsx", "--stakeholders", tmp_path / "book.xlsx",
                     "--stakeholder-sheet", "关键人物", "-o", out)
    assert by_name.exit_code == 0, by_name.output


# -- kam classify -------------------------------------------------------------------------------------------


def test_kam_classify_writes_the_table_without_personal_fields(tmp_path):
    out, cov = tmp_path / "people.csv", tmp_path / "coverage.csv"
    result = invoke("classify", EXAMPLES / "stakeholders_zh.csv", "-o", out, "--coverage", cov)
    assert result.exit_code == 0, result.output
    table = read_csv(out)
    assert table.height == 12 and table["person_id"][0] == "KA-2009-001#1"
    assert not {"name", "birthday", "hobbies"} & set(table.columns)
    assert {"role_source", "style_source", "stance_source", "influence_source", "reach"} <= set(table.columns)
    assert not [v for v in PERSONAL_VALUES if v in out.read_text(encoding="utf-8-sig")]
    assert read_csv(cov)["opportunity_id"].to_list() == ["KA-2009-001", "KA-2009-002", "KA-2009-003", "KA-2009-004"]
    assert "12 people classified" in result.output


def test_a_file_that_describes_no_person_is_warned_about(tmp_path):
    """An opportunities export given as the people file: classified all the same, with one warning."""
    proc = run_kam("classify", EXAMPLES / "opportunities_zh.csv", "-o", "people.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    warning, done = proc.stderr.decode().splitlines()
    assert warning.startswith("kam: WARNING: ") and "none of the columns that describe a person is in it" in warning
    assert "opportunities_zh.csv" in warning and done.startswith("kam: 25 people classified")
    proc = run_kam("score", EXAMPLES / "opportunities_zh.csv", "--stakeholders", EXAMPLES / "opportunities_en.csv",
                   "-o", "scored.csv", cwd=tmp_path)
    assert proc.returncode == 0 and "opportunities_en.csv: none of the columns that describe a person" in \
        proc.stderr.decode()
    proc = run_kam("classify", EXAMPLES / "stakeholders_zh.csv", "-o", "people2.csv", cwd=tmp_path)
    assert b"WARNING" not in proc.stderr


def test_kam_classify_takes_an_encoding_and_a_delimiter(tmp_path):
    people = tmp_path / "people.txt"
    import csv
    import io

    rows = list(csv.reader(io.StringIO((EXAMPLES / "stakeholders_zh.csv").read_bytes().decode("gb18030"))))
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";").writerows(rows)
    people.write_bytes(buffer.getvalue().encode("gb18030"))
    result = invoke("classify", people, "-o", tmp_path / "a.csv", "--encoding", "gb18030", "--delimiter", "semicolon")
    assert result.exit_code == 0, result.output
    assert read_csv(tmp_path / "a.csv").equals(read_csv(_classified(tmp_path)))
    assert invoke("classify", people, "-o", tmp_path / "b.csv", "--delimiter", "ab").exit_code == 2


def _classified(tmp_path):
    out = tmp_path / "reference.csv"
    assert invoke("classify", EXAMPLES / "stakeholders_zh.csv", "-o", out).exit_code == 0
    return out


def test_kam_classify_keeps_personal_fields_only_when_asked(tmp_path):
    out = tmp_path / "people.jsonl"
    proc = run_kam("classify", EXAMPLES / "stakeholders_en.csv", "-o", out, "--personal", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["name"] == "Dana Whitfield" and rows[0]["role"] == "decision_maker"


# -- the summarise_stakeholders hook and its contract -----------------------------------------------------


class Seniority:
    """A third-party summary: how many people on the deal are heads of something."""

    @hookimpl
    def summarise_stakeholders(self, stakeholders, config):
        per_deal = stakeholders.group_by("opportunity_id", maintain_order=True).agg(
            pl.col("title").str.contains("长|主任|总").sum().cast(pl.Int32).alias("heads"))
        return per_deal


class Clash:
    def __init__(self, column: str, value=1):
        self.column, self.value = column, value

    @hookimpl
    def summarise_stakeholders(self, stakeholders, config):
        ids = stakeholders["opportunity_id"].unique(maintain_order=True)
        return pl.DataFrame({"opportunity_id": ids, self.column: [self.value] * len(ids)})


def kam_with(*plugins) -> Kam:
    kam = Kam()
    for name, plugin in plugins:
        kam.register(plugin, name)
    kam.check()
    return kam


def test_a_third_party_summary_reaches_qualify_criteria_and_output(tmp_path):
    kam = kam_with(("seniority", Seniority()))
    opps = pl.DataFrame({"编号": ["A", "B", "C"]})
    team = people(编号=["A", "A", "B"], 职务=["局长", "科员", "处长"])
    scored = kamcore.score_frame(opps, kam=kam, stakeholders=team).scored
    assert scored["heads"].to_list() == [1, 1, None]  # no null-id row: nobody listed means null
    assert scored["stakeholder_count"].to_list() == [2, 1, 0]


@pytest.mark.parametrize("plugin, message", [
    (Clash("project_name"), "returned column 'project_name' from summarise_stakeholders, which the opportunities"),
    (Clash("coach_present"), "column 'coach_present' is returned by plugin"),
    (Clash("birthday", "x"), "personal field 'birthday'"),
    (Clash("leader", "王建国"), "personal data"),
])
def test_the_core_refuses_clashes_and_personal_data(plugin, message):
    kam = kam_with(("clash", plugin))
    opps = pl.DataFrame({"编号": ["A"], "项目名称": ["x"]})
    with pytest.raises(PluginError, match=message):
        kamcore.score_frame(opps, kam=kam, stakeholders=people(姓名=["王建国"], 职务=["局长"]))


def test_a_plugin_error_names_the_plugin_on_the_command_line(tmp_path):
    (tmp_path / "opps.csv").write_text("编号,项目名称\nA,x\n", encoding="utf-8")
    (tmp_path / "people.csv").write_text("编号,姓名\nA,王建国\n", encoding="utf-8")
    kam = kam_with(("clash", Clash("project_name")))
    with pytest.raises(PluginError, match="plugin 'clash'"):
        run_score([tmp_path / "opps.csv"], tmp_path / "o.csv", kam=kam,
                  config=load_config(None, kam.config_defaults()), stakeholders=[tmp_path / "people.csv"])
    assert not (tmp_path / "o.csv").exists()


def test_personal_fields_never_reach_the_logs(tmp_path, caplog):
    caplog.set_level("DEBUG")
    out = tmp_path / "o.csv"
    run_score([EXAMPLES / "opportunities_zh.csv"], out, kam=get_kam(),
              config=load_config(None, get_kam().config_defaults()), stakeholders=[EXAMPLES / "stakeholders_zh.csv"])
    assert not [v for v in PERSONAL_VALUES if v in caplog.text]
