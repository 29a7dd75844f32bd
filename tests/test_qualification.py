"""Qualification (资格审查): the stage gates, the worked example A–D, the "can we win?" block and its gated
Real-Win-Worth screen, and BANT / MEDDICC as optional plugins through the same hooks. Real rows in Chinese
and in English, the real pipeline.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import invoke, kam_env, read_csv  # noqa: E402,F401

import kamcore  # noqa: E402
from kamcore.config import load_config  # noqa: E402
from kamcore.errors import ConfigError  # noqa: E402
from kamcore.plugins import Kam, get_kam  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
METHODS = ROOT / "plugins" / "kam_methods"
COLUMNS = ["qualification", "supported_stage", "supported_dev_stage", "missing", "next_action"]


def config_with(tmp_path, text: str):
    (tmp_path / "kam.toml").write_text(text, encoding="utf-8")
    return load_config(tmp_path / "kam.toml", get_kam().config_defaults())


def qualify(rows: dict, stakeholders=None, config=None, kam=None) -> list[dict]:
    frame = pl.DataFrame(rows, schema={k: pl.String for k in rows})
    return kamcore.score_frame(frame, config, kam=kam, stakeholders=stakeholders).scored.to_dicts()


# -- the gates, one rule at a time ----------------------------------------------------------------------


def test_no_solution_stage_without_a_known_budget_and_decision_maker():
    rows = qualify({"编号": ["A", "B", "C"], "销售阶段": ["方案"] * 3, "客户的应用或项目": ["清楚"] * 3,
                    "立项状况": ["已立项"] * 3, "项目的预算": ["有", None, "有"], "人脉资源": ["决策者、支持者", "决策者", "支持者"]})
    a, b, c = rows
    assert a["qualification"] == "qualified" and a["supported_stage"] == "solution" and a["missing"] is None
    assert b["qualification"] == "needs_info" and b["missing"] == "预算 / a budget"
    assert b["next_action"].startswith("确认项目预算及其申请程序")
    assert c["qualification"] == "needs_info" and c["missing"] == "关键决策者 / the decision maker"
    assert c["supported_stage"] == "intent"


def test_a_known_absence_stops_the_deal():
    # 有则进入下一阶段，无则终止: no budget at the solution stage
    row, = qualify({"编号": ["A"], "销售阶段": ["方案"], "客户的应用或项目": ["清楚"], "立项状况": ["已立项"],
                    "项目的预算": ["无"], "人脉资源": ["决策者"]})
    assert row["qualification"] == "disqualified"
    assert row["next_action"] == "没有预算：确认资金来源，否则终止 / no budget: confirm the funding, or stop"


def test_the_same_gates_in_english():
    rows = qualify({"opportunity_id": ["OPP-1", "OPP-2", "OPP-3"], "stage": ["intent", "negotiation", "potential"],
                    "need_clarity": ["partial", "clear", "unclear"], "contacts": ["decision maker", "economic buyer", None],
                    "budget_status": ["none", "allocated", None], "approval_status": [None, "approved", None],
                    "purchase_date": [None, "2025-09", None]})
    intent, negotiation, potential = rows
    assert intent["qualification"] == "qualified"  # no budget yet is fine at the intent stage
    assert intent["next_action"].endswith("help the customer make the need clear")
    assert negotiation["qualification"] == "needs_info"  # nobody said the decision maker supports us
    assert negotiation["missing"] == "关键决策者的支持 / the decision maker's support"
    assert potential["qualification"] == "qualified" and potential["supported_stage"] == "potential"


def test_an_unknown_stage_needs_info_and_closed_deals_are_not_qualified():
    rows = qualify({"编号": ["A", "B", "C"], "销售阶段": [None, "赢单", "丢单"], "客户的应用或项目": ["清楚"] * 3})
    assert rows[0]["qualification"] == "needs_info" and rows[0]["missing"] == "销售阶段 / the sales stage"
    assert [r["qualification"] for r in rows[1:]] == [None, None]
    assert [r["next_action"] for r in rows[1:]] == [None, None]


def test_the_development_stages_are_gates_too():
    rows = qualify({"编号": ["A", "B"], "开发阶段": ["价值评估", "信息收集"], "客户的应用或项目": ["清楚", "不清楚"],
                    "人脉资源": ["决策者", None]})
    assessment, information = rows
    assert assessment["qualification"] == "needs_info"
    assert assessment["missing"] == "教练（内线） / a coach (insider)"  # stage 2: 确定在客户部的线
    assert assessment["supported_dev_stage"] == "information"
    assert information["qualification"] == "needs_info" and information["missing"] == "潜在需求 / a need"


def test_the_worse_of_the_two_ladders_decides():
    row, = qualify({"编号": ["A"], "销售阶段": ["意向"], "开发阶段": ["促成成交"], "客户的应用或项目": ["清楚"],
                    "人脉资源": ["决策者"]})
    assert row["qualification"] == "needs_info"  # intent is fine, closing needs the decision maker's support
    assert "关键决策者的支持" in row["missing"]


def test_stakeholder_coverage_feeds_the_gates():
    deals = {"编号": ["A", "B"], "销售阶段": ["谈判成交"] * 2, "客户的应用或项目": ["清楚"] * 2, "立项状况": ["已立项"] * 2,
             "项目的预算": ["有"] * 2, "采购时间": ["2009.10"] * 2}
    team = pl.DataFrame({"编号": ["A", "B"], "职务": ["局长", "局长"], "立场": ["支持", "反对"]})
    a, b = qualify(deals, stakeholders=team)
    assert a["qualification"] == "qualified" and a["supported_stage"] == "negotiation"
    assert a["next_action"].startswith("促成成交")
    assert b["qualification"] == "disqualified" and b["missing"] == "关键决策者的支持 / the decision maker's support"


def test_gates_are_data_in_kam_toml(tmp_path):
    config = config_with(tmp_path, '[qualification.sales_stages]\nsolution = ["need_clear", "purchase_date"]\n')
    row, = qualify({"编号": ["A"], "销售阶段": ["方案"], "客户的应用或项目": ["清楚"], "人脉资源": ["决策者"]},
                   config=config)
    assert row["missing"] == "采购时间 / a purchase date"
    off = config_with(tmp_path, "[qualification]\nenabled = false\n")
    assert "qualification" not in qualify({"编号": ["A"]}, config=off)[0]


@pytest.mark.parametrize("text, message", [
    ('[qualification.sales_stages]\nsolution = ["no_such_fact"]\n', "no fact named 'no_such_fact'"),
    ('[qualification.sales_stages]\nclosing = []\n', "'closing' is not a stage code"),
    ('[qualification.facts.need]\nsources = [{ column = "need_clarity" }]\n', "needs one of met"),
])
def test_a_bad_gate_is_a_config_error(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        qualify({"编号": ["A"]}, config=config_with(tmp_path, text))


# -- the worked example: projects A–D of the seed's 信息初始表 with their people ---------------------------------


def test_the_worked_example_projects_a_to_d(tmp_path):
    out = tmp_path / "scored.csv"
    result = invoke("score", EXAMPLES / "opportunities_zh.csv", "--stakeholders", EXAMPLES / "stakeholders_zh.csv",
                    "-o", out)
    assert result.exit_code == 0, result.output
    rows = {r["opportunity_id"]: r for r in read_csv(out).iter_rows(named=True)}
    a, b, c, d = (rows[f"KA-2009-00{i}"] for i in range(1, 5))
    assert (a["qualification"], a["supported_stage"], a["stakeholder_flags"]) == ("qualified", "solution", None)
    assert b["qualification"] == "qualified" and "关键决策者未知" in b["stakeholder_flags"]
    assert c["qualification"] == "disqualified" and "关键决策者反对我们" in c["stakeholder_flags"]
    assert c["next_action"].startswith("关键决策者反对")
    assert d["qualification"] == "qualified" and "单线联系" in d["stakeholder_flags"]
    assert all(r["next_action"] for r in (a, b, c, d))


# -- 能赢吗? the optional third block, gated ----------------------------------------------------------------------


WIN_ON = "[win_block]\nenabled = true\n"


def test_the_win_block_is_off_by_default():
    row, = qualify({"编号": ["A"], "竞争对手": ["2"]})
    assert "p11_competition" not in row and "rww_screen" not in row and "win_score" not in row


def test_the_win_block_scores_competition_the_decision_maker_and_the_coach(tmp_path):
    config = config_with(tmp_path, WIN_ON)
    deals = {"编号": ["A", "B"], "竞争对手": ["无", "SAP、Oracle、金蝶、用友"]}
    team = pl.DataFrame({"编号": ["A", "A"], "职务": ["局长", "科员"], "角色": [None, "教练"], "立场": ["支持", None]})
    a, b = qualify(deals, stakeholders=team, config=config)
    assert (a["p11_competition"], a["p12_decision_maker"], a["p13_coach"], a["win_score"]) == (3.0, 3.0, 3.0, 100.0)
    assert (b["p11_competition"], b["p12_decision_maker"], b["p13_coach"]) == (0.0, None, 0.0)


def test_a_failing_real_block_stops_the_evaluation_and_says_why(tmp_path):
    config = config_with(tmp_path, WIN_ON)
    strong = {"客户的应用或项目": "清楚", "客户的业务状况": "强劲", "立项状况": "已立项", "项目的预算": "有", "紧迫性": "紧迫",
              "标的": "500万", "我们的未来销售收入": "高", "我们的利润": "35%", "我们的风险": "低", "战略价值": "高", "竞争对手": "0"}
    weak_real = {**strong, "客户的应用或项目": "不清楚", "立项状况": "未立项", "项目的预算": "无", "紧迫性": "不急"}
    weak_worth = {**strong, "标的": "1万", "我们的未来销售收入": "低", "我们的利润": "5%", "我们的风险": "高", "战略价值": "低"}
    rows = [strong, weak_real, {**strong, "竞争对手": "SAP、Oracle、金蝶、用友"}, weak_worth]
    frame = {k: [r[k] for r in rows] for k in strong} | {"编号": ["GO", "NOT_REAL", "LOSING", "NOT_WORTH"]}
    team = pl.DataFrame({"编号": ["GO", "NOT_REAL", "LOSING", "NOT_WORTH"] * 2,
                         "职务": ["局长"] * 4 + ["科员"] * 4, "角色": [None] * 4 + ["教练", "教练", None, "教练"],
                         "立场": ["支持", "支持", "反对", "支持"] + [None] * 4})
    go, not_real, losing, not_worth = qualify(frame, stakeholders=team, config=config)
    assert go["rww_screen"] == "go"
    assert not_real["rww_screen"] == "not_real" and not_real["win_score"] == 100.0  # win high, yet it stops at real
    assert not_real["rww_reason"].startswith("是不是虚的？未通过（real_score 20.0 < 50），评估到此为止")
    assert "项目的预算：偏弱 / budget: weak" in not_real["rww_reason"]
    assert "the evaluation stops here" in not_real["rww_reason"]
    assert losing["rww_screen"] == "cannot_win" and "竞争态势：偏弱 / competition: weak" in losing["rww_reason"]
    assert not_worth["rww_screen"] == "not_worth"


# -- BANT and MEDDICC: optional plugins, the same hooks, no core change --------------------------------------


@pytest.fixture
def methods(monkeypatch):
    """The kam_methods package, loaded through the entry points its pyproject.toml declares."""
    monkeypatch.syspath_prepend(str(METHODS))
    declared = tomllib.loads((METHODS / "pyproject.toml").read_text(encoding="utf-8"))
    eps = declared["project"]["entry-points"]["kamcore"]
    assert eps == {"bant": "kam_methods.bant", "meddicc": "kam_methods.meddicc"}
    kam = Kam()
    for name, value in eps.items():
        kam.register(EntryPoint(name=name, value=value, group="kamcore").load(), name)
    kam.check()
    yield kam
    for module in [m for m in sys.modules if m.startswith("kam_methods")]:
        del sys.modules[module]
    importlib.invalidate_caches()


def test_bant_through_the_qualify_hook(methods):
    rows = qualify({"编号": ["A", "B"], "项目的预算": ["有", "无"], "人脉资源": ["决策者", None],
                    "客户的应用或项目": ["清楚", "不清楚"], "采购时间": ["2009.05", None], "紧迫性": ["紧迫", "不急"]},
                   kam=methods)
    a, b = rows
    assert [a[f"bant_{k}"] for k in ("budget", "authority", "need", "timeline")] == ["yes"] * 4
    assert a["bant_score"] == 4 and a["bant_gaps"] is None
    assert [b[f"bant_{k}"] for k in ("budget", "authority", "need", "timeline")] == ["no", "unknown", "no", "no"]
    assert b["bant_gaps"] == "B, A, N, T"
    assert a["qualification"] == "needs_info"  # the built-in qualification is still there, beside BANT


def test_meddicc_through_summarise_stakeholders_and_qualify(methods):
    opps = pl.read_csv(EXAMPLES / "opportunities_en.csv", infer_schema=False)
    team = pl.read_csv(EXAMPLES / "stakeholders_en.csv", infer_schema=False)
    scored = kamcore.score_frame(opps, kam=methods, stakeholders=team).scored
    rows = {r["opportunity_id"]: r for r in scored.iter_rows(named=True)}
    assert rows["OPP-1001"]["meddicc_economic_buyer"] and rows["OPP-1001"]["meddicc_champion"]
    assert rows["OPP-1001"]["meddicc_score"] == 7 and rows["OPP-1001"]["meddicc_gaps"] is None
    assert rows["OPP-1003"]["meddicc_economic_buyer"] is False  # the managing director opposes us
    assert "E" in rows["OPP-1003"]["meddicc_gaps"].split(", ")
    assert rows["OPP-1004"]["meddicc_economic_buyer"] is False  # nobody listed: the null-id row
    assert {"bant_score", "stakeholder_flags", "qualification"} <= set(scored.columns)


def test_meddicc_without_stakeholders_says_unknown(methods):
    row, = qualify({"opportunity_id": ["X"], "need_clarity": ["clear"]}, kam=methods)
    assert row["meddicc_champion_ok"] == "unknown" and row["meddicc_economic_buyer_ok"] == "unknown"
