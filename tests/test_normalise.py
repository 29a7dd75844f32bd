"""Value normalisation: vocabularies, amounts, dates and percentages, with hypothesis properties.

The normaliser runs here as it runs in `kam score`: :class:`kamcore.normalise.Plan` over a lazy frame
of raw text (see helpers.normalise), and through :func:`kamcore.score_frame` where headers matter.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from helpers import kam_env, normalise  # noqa: E402,F401

import kamcore  # noqa: E402
from kamcore.config import load_config  # noqa: E402
from kamcore.normalise import MISSING  # noqa: E402
from kamcore.plugins import get_kam  # noqa: E402
from kamcore.schema import CODE, LEVEL_OR_AMOUNT, OPPORTUNITY  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def one(column: str, values: list[str | None], **kw) -> pl.DataFrame:
    return normalise({column: values}, **kw)


def codes(column: str, values: list[str | None], **kw) -> list[str | None]:
    out = one(column, values, **kw)
    assert out["problem:" + column].to_list() == [None] * len(values), out
    return out[column].to_list()


# -- vocabularies -------------------------------------------------------------------------------

def test_funding_status():
    assert codes("funding_status", ["到位", "一半到位", "未到位", "部分到位", "已到位", "In Place", "partial"]) == [
        "in_place", "partial", "not_in_place", "partial", "in_place", "in_place", "partial"]


def test_funding_source():
    assert codes("funding_source", ["政府", "银行", "企业自筹", "其他", "财政拨款", "Self-funded", "BANK"]) == [
        "government", "bank", "self_funded", "other", "government", "self_funded", "bank"]


@pytest.mark.parametrize("column, standard, code", [
    ("need_clarity", "清楚", "clear"),          # item 1's standard
    ("business_condition", "强劲", "strong"),   # item 2
    ("approval_status", "健全", "approved"),    # item 3
    ("budget_status", "有", "allocated"),       # item 4
    ("urgency", "清楚", "high"),                # item 5: the seed's standard is 清楚
])
def test_the_seed_standards_map_to_the_best_code(column, standard, code):
    assert codes(column, [standard, f" {standard} "]) == [code, code]


def test_the_seed_standards_earn_full_points():
    row = kamcore.score_one({"编号": "S", "客户的应用或项目": "清楚", "客户的业务状况": "强劲",
                             "客户的项目立项业务状况": "健全", "项目的预算": "有", "资金状况": "到位",
                             "项目对客户的紧迫性": "清楚"})
    assert [row[k] for k in ("p1_need", "p2_business", "p3_approval", "p4_budget", "p5_urgency")] == [
        3.0, 3.0, 3.0, 3.0, 3.0]
    assert row["real_score"] == 100.0


def test_the_seven_lead_channels():
    assert codes("lead_source", ["门市", "电话", "E-mail", "老客户介绍", "销售自拓", "市场活动", "其他"]) == [
        "walk_in", "phone", "email", "referral", "self_sourced", "event", "other"]
    assert codes("lead_source", ["e-mail", "EMAIL", "Walk-in", "referral"]) == ["email", "email", "walk_in", "referral"]


def test_stages_and_levels():
    assert codes("stage", ["潜在", "意向", "方案", "谈判成交", "赢单", "丢单", "Closed Won"]) == [
        "potential", "intent", "solution", "negotiation", "won", "lost", "won"]
    assert codes("risk", ["低", "中", "高", "Low", "HIGH"]) == ["low", "medium", "high", "low", "high"]
    assert codes("strategic_value", ["高", "中", "低"]) == ["high", "medium", "low"]


def test_vocabularies_match_after_lower_casing():
    """schema.Column documents that synonyms "are matched after trimming and lower-casing"."""
    out = normalise({"lead_source": ["eMail"], "funding_status": ["iN pLaCe"], "stage": ["CLOSED won"]})
    assert out.select("lead_source", "funding_status", "stage").row(0) == ("email", "in_place", "won")
    assert out.select(pl.col("^problem:.*$")).row(0) == (None, None, None)


@pytest.mark.parametrize("token", ["", "  ", "-", "--", "—", "N/A", "n/a", "#N/A", "NULL", "未知", "不详", "?", "？"])
def test_missing_tokens_are_null_without_a_problem(token):
    out = normalise({"funding_status": [token], "deal_size": [token], "purchase_date": [token], "margin": [token]})
    row = out.row(0, named=True)
    assert row["funding_status"] is None and row["deal_size"] is None and row["purchase_date"] is None
    assert row["margin"] is None
    assert all(row[k] is None for k in row if k.startswith("problem:"))


def test_unknown_code_is_a_problem_naming_the_codes():
    out = one("funding_status", ["半到位"])
    assert out["funding_status"].to_list() == [None]
    reason = out["problem:funding_status"][0]
    assert "unknown value" in reason and "in_place" in reason and "not_in_place" in reason


def test_user_values_table_extends_a_vocabulary():
    config = load_config(None, get_kam().config_defaults(),
                         overrides={"values": {"budget_status": {"TBD": "none", "待定": ""}}})
    out = one("budget_status", ["tbd", "待定", "有"], config=config)
    assert out["budget_status"].to_list() == ["none", None, "allocated"]
    assert out["problem:budget_status"].to_list() == [None, None, None]


# -- amounts ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, amount, currency", [
    ("1.2亿", 1.2e8, "CNY"),
    ("120万", 1.2e6, "CNY"),
    ("¥1,200,000", 1.2e6, "CNY"),
    ("￥1,200,000", 1.2e6, "CNY"),
    ("850000元", 850_000, "CNY"),
    ("US$120,000", 120_000, "USD"),
    ("12万美元", 120_000, "USD"),
    ("1200000", 1.2e6, "CNY"),
    ("1,200,000.50", 1_200_000.5, "CNY"),
    ("98000.75", 98_000.75, "CNY"),
    ("0", 0, "CNY"),
    ("12 万", 120_000, "CNY"),
    ("1.5 亿元", 1.5e8, "CNY"),
    ("RMB 5000", 5000, "CNY"),
    ("5000 USD", 5000, "USD"),
    ("€45,000", 45_000, "EUR"),
    ("250k", 250_000, "CNY"),
    ("$1.2m", 1.2e6, "USD"),
])
def test_amounts(text, amount, currency):
    out = one("deal_size", [text])
    row = out.row(0, named=True)
    assert row["problem:deal_size"] is None
    assert row["deal_size"] == pytest.approx(amount, rel=1e-12)
    assert row["currency"] == currency


def test_amounts_are_converted_to_the_base_currency():
    out = one("deal_size", ["US$120,000", "120万", "€10,000"])
    assert out["deal_size_base"].to_list() == pytest.approx([864_000, 1_200_000, 78_000])


def test_currency_column_applies_when_the_amount_names_none():
    out = normalise({"deal_size": ["120,000", "120,000", "¥5"], "currency": ["USD", "美元", "USD"]})
    assert out["currency"].to_list()[:2] == ["USD", "USD"]
    assert out["deal_size_base"].to_list()[:2] == pytest.approx([864_000, 864_000])
    assert out["problem:deal_size"].to_list()[:2] == [None, None]
    # ¥ in the text against USD in the column: a contradiction is reported, never silently resolved
    assert "contradicts the currency column" in out["problem:deal_size"][2]


def test_currency_named_in_the_amount_fills_an_empty_currency_column():
    out = normalise({"deal_size": ["$4.5m", "120万"], "currency": [None, None]})
    assert out["currency"].to_list() == ["USD", "CNY"]
    assert out["deal_size_base"].to_list() == pytest.approx([4.5e6 * 7.2, 1.2e6])


@pytest.mark.parametrize("text", ["abc", "一百万", "1.2.3", "12万亿x", "0x10", "$", "万"])
def test_unparseable_amount_is_a_problem(text):
    out = one("deal_size", [text])
    assert out["deal_size"].to_list() == [None]
    assert out["problem:deal_size"][0].startswith("not an amount")


NON_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400"]


def test_non_finite_amount_text_is_a_problem():
    """"nan" or "inf" in 标的 is not an amount; accepting it gives the deal full revenue points."""
    out = one("deal_size", NON_FINITE)
    assert out["deal_size"].to_list() == [None] * len(NON_FINITE)
    assert out["problem:deal_size"].null_count() == 0


def test_non_finite_margin_text_is_a_problem():
    """"nan" in 我们的利润 is not a percentage; accepting it gives full margin points."""
    out = one("margin", NON_FINITE)
    assert out["margin"].to_list() == [None] * len(NON_FINITE)
    assert out["problem:margin"].null_count() == 0


@pytest.mark.parametrize("header, unit", [("标的(单位:亿)", 1e8), ("标的（单位：亿）", 1e8), ("标的\n(单位: 亿)", 1e8),
                                          ("标的(亿)", 1e8), ("标的", 1.0)])
def test_header_unit_applies_to_bare_numbers(header, unit):
    result = kamcore.score_frame(pl.DataFrame({"编号": ["A", "B", "C"], header: ["1.5", "8", "120万"]}))
    assert result.rejects.height == 0
    sizes = result.scored["deal_size"].to_list()
    assert sizes[:2] == pytest.approx([1.5 * unit, 8 * unit])
    assert sizes[2] == pytest.approx(1.2e6)  # a unit written in the cell wins over the header's


@pytest.mark.parametrize("header, unit, currency", [
    ("标的(万元)", 1e4, "CNY"), ("标的（万元）", 1e4, "CNY"), ("金额【单位：万元】", 1e4, "CNY"), ("合同金额(元)", 1.0, "CNY"),
    ("预计金额/百万元", 1e6, "CNY"), ("标的(千万)", 1e7, "CNY"), ("标的(人民币万元)", 1e4, "CNY"), ("项目金额(万美元)", 1e4, "USD"),
    ("Deal size (USD)", 1.0, "USD"), ("Amount (USD k)", 1e3, "USD"), ("Amount [$m]", 1e6, "USD"),
    ("Deal value (EUR thousands)", 1e3, "EUR"), ("amount (in USD)", 1.0, "USD"), ("Amount (units: USD)", 1.0, "USD")])
def test_an_amount_header_with_a_note_of_its_unit_or_currency_is_read_by_it(header, unit, currency):
    """CRM exports name the unit and currency of an amount column in its header: 标的(万元), Amount (USD k)."""
    result = kamcore.score_frame(pl.DataFrame({"编号": ["A", "B", "C"], header: ["1.5", "1,200", "120万美元"]}))
    assert result.rejects.height == 0
    scored = result.scored
    assert scored["deal_size"].to_list() == pytest.approx([1.5 * unit, 1200 * unit, 1.2e6])
    assert scored["currency"].to_list() == [currency, currency, "USD"]  # a currency written in the cell wins


def test_future_revenue_given_as_an_amount_takes_its_headers_unit():
    """我们的未来销售收入 holds a level or an amount; under 未来销售收入(万元) a plain number is in 万元."""
    frame = pl.DataFrame({"编号": ["a", "b", "c", "d", "e"], "我们的未来销售收入(万元)": ["300", "高", "1.5", "500万", "2,000"]})
    scored = kamcore.score_frame(frame).scored
    assert scored["future_revenue"].to_list() == [None, "high", None, None, None]
    assert scored["future_revenue_amount"].to_list() == [3_000_000.0, None, 15_000.0, 5_000_000.0, 20_000_000.0]
    plain = kamcore.score_frame(frame.rename({"我们的未来销售收入(万元)": "我们的未来销售收入"})).scored
    assert plain["future_revenue_amount"].to_list() == [300.0, None, 1.5, 5_000_000.0, 2_000.0]


def test_a_currency_column_wins_over_the_currency_a_header_names():
    result = kamcore.score_frame(pl.DataFrame({"编号": ["A", "B"], "Amount (USD)": ["100", "200"], "币种": ["EUR", None]}))
    assert result.scored["currency"].to_list() == ["EUR", "USD"]


@pytest.mark.parametrize("headers, mapped", [
    (["采购时间(预计)"], [None]),  # a note that is not a unit says nothing of what the column holds
    (["备注(万元)"], [None]), (["标的(面议)"], [None]), (["标的(USD/EUR)"], [None]),  # text, not an amount; no unit
    (["我们的利润(%)", "Deal size (USD k)"], ["margin", "deal_size"]), (["利润率/%"], ["margin"]),
    (["我们的利润(万元)"], [None]),  # a percentage column in 万元 is not a percentage
    (["标的(万元)", "标的"], None),  # two headers naming deal_size: refused, as ever
])
def test_a_note_maps_only_an_amount_by_its_unit_or_a_percentage_by_percent(headers, mapped):
    from kamcore.errors import InputError
    from kamcore.headers import map_headers
    from kamcore.schema import OPPORTUNITY_COLUMNS

    if mapped is None:
        with pytest.raises(InputError, match="both map to 'deal_size'"):
            map_headers(headers, OPPORTUNITY_COLUMNS, {})
        return
    result = map_headers(headers, OPPORTUNITY_COLUMNS, {})
    assert [result[h] if result[h] in OPPORTUNITY else None for h in headers] == mapped


def test_stage_and_status_names_chinese_crms_use_read_as_the_seeds():
    """初步接洽 / 需求确认 / 方案报价 / 谈判审核 (a Chinese CRM's default funnel) are the seed's four sales stages;
    资金到位 and 预算已批 say what 到位 and 有 say."""
    assert codes("stage", ["初步接洽", "需求确认", "方案报价", "谈判审核", "商务谈判", "合同谈判", "线索", "报价"]) == [
        "potential", "intent", "solution", "negotiation", "negotiation", "negotiation", "potential", "solution"]
    assert codes("funding_status", ["资金到位", "资金部分到位", "资金未到位"]) == ["in_place", "partial", "not_in_place"]
    assert codes("budget_status", ["预算已批", "预算已落实"]) == ["allocated", "allocated"]


def test_future_revenue_is_a_level_or_an_amount():
    out = one("future_revenue", ["高", "中", "低", "300万", "big"])
    assert out["future_revenue"].to_list() == ["high", "medium", "low", None, None]
    assert out["future_revenue_amount"].to_list() == [None, None, None, 3e6, None]
    assert out["problem:future_revenue"].to_list()[:4] == [None] * 4
    assert out["problem:future_revenue"][4] is not None


def test_percent():
    out = one("margin", ["35%", "35.5", "24.1 %", "12％", "0.35", "abc%"])
    assert out["margin"].to_list()[:5] == pytest.approx([35, 35.5, 24.1, 12, 0.35])
    assert out["margin"][5] is None and out["problem:margin"][5].startswith("not a percentage")


def test_currency_words():
    out = one("currency", ["人民币", "RMB", "usd", "美金", "HKD", "€", "chf", "dollars"])
    assert out["currency"].to_list() == ["CNY", "CNY", "USD", "USD", "HKD", "EUR", "CHF", None]
    assert out["problem:currency"].to_list()[:7] == [None] * 7
    assert out["problem:currency"][7] is not None


def test_competitors_count_or_names():
    out = one("competitors", ["3", "华为、浪潮", "Oracle, SAP, Infor", "H3C", None])
    assert out["competitor_count"].to_list() == [3, 2, 3, 1, None]


# -- dates --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, date, precision", [
    ("2009.05", dt.date(2009, 5, 1), "month"),
    ("2010.1", dt.date(2010, 1, 1), "month"),     # = January 2010
    ("2010.10", dt.date(2010, 10, 1), "month"),
    ("2009.12", dt.date(2009, 12, 1), "month"),
    ("2009/5/1", dt.date(2009, 5, 1), "day"),
    ("2009-05-01", dt.date(2009, 5, 1), "day"),
    ("2009-5-1", dt.date(2009, 5, 1), "day"),
    ("2009.05.20", dt.date(2009, 5, 20), "day"),
    ("2009-05-01 10:30", dt.date(2009, 5, 1), "day"),
    ("2009-05-01T10:30:00", dt.date(2009, 5, 1), "day"),
    ("2009年5月1日", dt.date(2009, 5, 1), "day"),
    ("2009-05", dt.date(2009, 5, 1), "month"),
    ("2009/5", dt.date(2009, 5, 1), "month"),
    ("2009年5月", dt.date(2009, 5, 1), "month"),
    ("2009-Q2", dt.date(2009, 4, 1), "quarter"),
    ("2009Q4", dt.date(2009, 10, 1), "quarter"),
    ("2009 q3", dt.date(2009, 7, 1), "quarter"),
    ("2009年第2季度", dt.date(2009, 4, 1), "quarter"),
    ("2009年第1季", dt.date(2009, 1, 1), "quarter"),
    ("2009年", dt.date(2009, 1, 1), "year"),
    ("2008-02-29", dt.date(2008, 2, 29), "day"),
])
def test_dates(text, date, precision):
    row = one("purchase_date", [text]).row(0, named=True)
    assert row["problem:purchase_date"] is None
    assert (row["purchase_date"], row["purchase_date_precision"]) == (date, precision)


@pytest.mark.parametrize("text", ["2009-02-30", "2009-02-29", "2009-13", "2009-13-01", "2009-00-10", "2009-Q5",
                                  "5/1/09", "31/31/2009", "May 2009", "明年", "2009-05-01-02", "12345", "99999"])
def test_invalid_dates_are_problems(text):
    row = one("purchase_date", [text]).row(0, named=True)
    assert row["purchase_date"] is None and row["purchase_date_precision"] is None
    assert row["problem:purchase_date"].startswith("not a date")


def test_an_ambiguous_day_month_date_is_refused_without_a_configured_order():
    out = one("purchase_date", ["05/06/2024", "25/12/2024", "12/25/2024", "07/07/2024"])
    assert out["purchase_date"].to_list() == [None, dt.date(2024, 12, 25), dt.date(2024, 12, 25), dt.date(2024, 7, 7)]
    problem = out["problem:purchase_date"][0]
    assert problem.startswith("ambiguous date 05/06/2024") and "[dates]" in problem
    # a date only one order can read is accepted, and the row says which order was used
    assert out["value_flags"].to_list()[1:] == [
        "purchase_date: 25/12/2024: 只有日/月顺序读得通，读作 2024-12-25 / only dmy reads as a date (2024-12-25)",
        "purchase_date: 12/25/2024: 只有月/日顺序读得通，读作 2024-12-25 / only mdy reads as a date (2024-12-25)",
        None]


@pytest.mark.parametrize("order, expected", [("dmy", dt.date(2024, 6, 5)), ("mdy", dt.date(2024, 5, 6))])
def test_a_configured_date_order_reads_day_month_dates(tmp_path, order, expected):
    (tmp_path / "kam.toml").write_text(f'[dates]\norder = "{order}"\n', encoding="utf-8")
    config = load_config(tmp_path / "kam.toml", get_kam().config_defaults())
    out = one("purchase_date", ["05/06/2024", "05.06.2024 09:30", "2024-06-05"], config=config)
    assert out["purchase_date"].to_list()[:2] == [expected, expected]
    assert out["purchase_date_precision"].to_list() == ["day"] * 3
    assert out["problem:purchase_date"].to_list() == [None] * 3
    assert out["value_flags"].to_list() == [None] * 3
    bad = one("purchase_date", ["31/31/2024"], config=config)
    assert bad["problem:purchase_date"][0] == f"not a date: 31/31/2024 is not a valid {order} date"


def test_an_unknown_date_order_is_a_config_error(tmp_path):
    from kamcore.errors import ConfigError
    (tmp_path / "kam.toml").write_text('[dates]\norder = "dd/mm"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[dates\] order"):
        one("purchase_date", ["2024-01-01"], config=load_config(tmp_path / "kam.toml", get_kam().config_defaults()))


def test_excel_serial_dates_are_read_and_flagged():
    out = one("purchase_date", ["39934", "45292.5", "20090501"])
    assert out["purchase_date"].to_list() == [dt.date(2009, 5, 1), dt.date(2024, 1, 1), dt.date(2009, 5, 1)]
    assert out["problem:purchase_date"].to_list() == [None] * 3
    flags = out["value_flags"].to_list()
    assert flags[0] == ("purchase_date: 39934: Excel 日期序号，读作 2009-05-01 / looks like an Excel serial date and was "
                        "read as 2009-05-01 (format the column as dates in Excel to avoid this)")
    assert "2024-01-01" in flags[1] and flags[2] is None  # 20090501 is a plain compact date


def test_full_width_digits_and_signs_are_read():
    out = normalise({"deal_size": ["１２０万", "￥１，２００，０００", "１．２亿"],
                     "purchase_date": ["２００９年５月", "２００９．０５", "２００９－０５－０１"],
                     "stage": ["ｐｒｏｐｏｓａｌ", "方案", "ＮＥＧＯＴＩＡＴＩＯＮ"]})
    assert out["deal_size"].to_list() == pytest.approx([1.2e6, 1.2e6, 1.2e8])
    assert out["purchase_date"].to_list() == [dt.date(2009, 5, 1)] * 3
    assert out["stage"].to_list() == ["solution", "solution", "negotiation"]
    for name in ("deal_size", "purchase_date", "stage"):
        assert out["problem:" + name].to_list() == [None] * 3


@pytest.mark.parametrize("text", ["面议", "价格面议", "待定", "TBD", "to be negotiated", "Negotiable"])
def test_to_be_negotiated_is_missing_with_a_flag_not_a_problem(text):
    row = one("deal_size", [text]).row(0, named=True)
    assert row["deal_size"] is None and row["deal_size_base"] is None and row["currency"] is None
    assert row["problem:deal_size"] is None
    assert row["value_flags"] == f"deal_size: {text}: 面议，暂无金额，按未知计 / to be negotiated, no amount yet; scored as unknown"


def test_negotiable_deal_scores_its_size_criterion_unknown():
    result = kamcore.score_frame(pl.DataFrame({"编号": ["N-1"], "标的": ["面议"], "资金状况": ["到位"]}))
    assert result.rejects.height == 0
    row = result.scored.row(0, named=True)
    assert "面议" in row["value_flags"]
    assert row["p6_revenue"] is None  # 我们的短期销售收入 reads deal_size: unknown, not 0 points
    assert "我们的短期销售收入：未知 / short-term revenue: unknown" in row["reasons"]


@pytest.mark.parametrize("text, middle, currency", [
    ("100-200万", 1.5e6, "CNY"),
    ("100万~200万", 1.5e6, "CNY"),
    ("100万至200万元", 1.5e6, "CNY"),
    ("$1m–$2m", 1.5e6, "USD"),
    ("1,000 - 3,000 USD", 2000, "USD"),
    ("１００～２００万", 1.5e6, "CNY"),
])
def test_a_range_gives_its_midpoint_with_a_flag(text, middle, currency):
    row = one("deal_size", [text]).row(0, named=True)
    assert row["problem:deal_size"] is None
    assert row["deal_size"] == pytest.approx(middle)
    assert row["currency"] == currency
    assert row["value_flags"].startswith("deal_size: ")
    assert row["value_flags"].endswith(f": 区间，取中点 {middle:,.0f} / a range: its midpoint {middle:,.0f} is used")


@pytest.mark.parametrize("text", ["100万-200", "200-100万", "$1m-€2m", "1-2-3万", "-5万"])
def test_what_is_not_a_clear_range_is_a_problem(text):
    row = one("deal_size", [text]).row(0, named=True)
    assert row["deal_size"] is None
    assert row["problem:deal_size"].startswith("not an amount")


def test_flags_of_several_columns_share_one_cell():
    out = normalise({"deal_size": ["面议", "120万"], "purchase_date": ["39934", "2009-05"]})
    assert out["value_flags"][0].startswith("deal_size: 面议")
    assert "; purchase_date: 39934: Excel 日期序号" in out["value_flags"][0]
    assert out["value_flags"][1] is None


@pytest.mark.parametrize("column, yes, no", [("budget_status", "allocated", "none"), ("need_clarity", "clear", "unclear"),
                                             ("approval_status", "approved", "not_started")])
def test_booleans_come_from_an_explicit_table(column, yes, no):
    assert codes(column, ["是", "Y", "true", "√", "否", "N", "false", "×"]) == [yes] * 4 + [no] * 4


def test_ids_are_kept_as_text_byte_for_byte():
    ids = ["00123", "0061x00000A1", "1.50", "1e5", "ＩＤ-７", "编号 7"]
    result = kamcore.score_frame(pl.DataFrame({"编号": ids, "标的": ["120万"] * len(ids)}))
    assert result.scored["opportunity_id"].to_list() == ids


# -- the plan ------------------------------------------------------------------------------------

@pytest.mark.parametrize("units", [{}, {"deal_size": 1e4}])
def test_each_fast_path_step_works_out_each_costly_part_once(units):
    """The streaming engine evaluates a part used twice in one select twice (an Enum cast, a strip, a regex
    over a million cells): each step of the fast paths names each such part of a raw column once, and the
    next step reads its result as a column."""
    from kamcore.normalise import Plan

    plan = Plan(list(OPPORTUNITY), OPPORTUNITY, load_config(None, get_kam().config_defaults()), units)
    steps = plan._fast_paths()
    assert len(steps) == 2
    costly = re.compile(r'col\("[^"]+"\)\.(?:cast\(Enum|str\.\w+\(\[[^\]]*)')
    for step in steps:
        parts = [part for expr in step for part in costly.findall(str(expr))]
        assert len(parts) == len(set(parts)), sorted(p for p in parts if parts.count(p) > 1)
    first = [part for expr in steps[0] for part in costly.findall(str(expr))]
    assert sum(".cast(Enum" in part for part in first) == sum(
        1 for name, column in OPPORTUNITY.items() if column.kind in (CODE, LEVEL_OR_AMOUNT) or name == "currency")


# -- properties ---------------------------------------------------------------------------------

UNITS = {"": 1, "万": 10_000, "亿": 100_000_000, "k": 1000, "K": 1000, "m": 1_000_000}
PREFIXES = {"": None, "¥": "CNY", "￥": "CNY", "US$": "USD", "$": "USD", "RMB": "CNY", "€": "EUR", "HK$": "HKD"}
SUFFIXES = {"": None, "元": "CNY", "美元": "USD", "USD": "USD", "人民币": "CNY", "欧元": "EUR", "港币": "HKD"}


@st.composite
def written_amounts(draw):
    """(text, amount, currency) for amounts as people type them."""
    whole = draw(st.integers(0, 10**9))
    cents = draw(st.one_of(st.none(), st.integers(0, 99)))
    digits = f"{whole:,}" if draw(st.booleans()) else str(whole)
    number = digits + ("" if cents is None else f".{cents:02d}")
    unit = draw(st.sampled_from(sorted(UNITS)))
    prefix = draw(st.sampled_from(sorted(PREFIXES)))
    suffix = "" if prefix else draw(st.sampled_from(sorted(SUFFIXES)))
    space = draw(st.sampled_from(["", " "]))
    text = f"{prefix}{space}{number}{space}{unit}{space}{suffix}".strip()
    value = (whole + (cents or 0) / 100) * UNITS[unit]
    return text, value, PREFIXES[prefix] or SUFFIXES[suffix] or "CNY"


def full_width(text: str) -> str:
    """The text as a Chinese input method in full-width mode types it."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


@PROPERTY
@given(st.lists(written_amounts(), min_size=1, max_size=40), st.booleans())
def test_amount_parser_round_trips_written_amounts(cases, wide):
    out = one("deal_size", [full_width(text) if wide else text for text, _, _ in cases])
    for (text, value, currency), row in zip(cases, out.iter_rows(named=True)):
        assert row["problem:deal_size"] is None, text
        assert row["deal_size"] == pytest.approx(value, rel=1e-9, abs=1e-6), text
        assert row["currency"] == currency, text
        assert row["value_flags"] is None, text


@PROPERTY
@given(st.lists(st.tuples(written_amounts(), written_amounts()), min_size=1, max_size=20))
def test_ranges_of_written_amounts_give_the_midpoint_or_a_problem(pairs):
    texts = [f"{a}-{b}" for (a, _, _), (b, _, _) in pairs]
    out = one("deal_size", texts)
    for text, ((_, low, _), (_, high, _)), row in zip(texts, pairs, out.iter_rows(named=True)):
        if row["problem:deal_size"] is None:  # accepted: the midpoint of two amounts, flagged
            assert row["deal_size"] is not None and "range" in row["value_flags"], text
            assert min(low, high) - 0.01 <= row["deal_size"] <= max(low, high) + 0.01, text
        else:
            assert row["deal_size"] is None and row["value_flags"] is None, text


@st.composite
def written_dates(draw):
    """(text, first day of the period, precision) for dates in the formats the seed and exports use."""
    d = draw(st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)))
    y, m, q = d.year, d.month, (d.month - 1) // 3 + 1
    forms = [
        (f"{y}-{m:02d}-{d.day:02d}", d, "day"), (f"{y}/{m}/{d.day}", d, "day"), (f"{y}.{m:02d}.{d.day:02d}", d, "day"),
        (f"{y}年{m}月{d.day}日", d, "day"), (f"{y}-{m}-{d.day} 08:15", d, "day"),
        (f"{y}.{m:02d}", d.replace(day=1), "month"), (f"{y}.{m}", d.replace(day=1), "month"),
        (f"{y}-{m:02d}", d.replace(day=1), "month"), (f"{y}/{m}", d.replace(day=1), "month"),
        (f"{y}年{m}月", d.replace(day=1), "month"),
        (f"{y}-Q{q}", dt.date(y, 3 * q - 2, 1), "quarter"), (f"{y}年第{q}季度", dt.date(y, 3 * q - 2, 1), "quarter"),
        (f"{y}q{q}", dt.date(y, 3 * q - 2, 1), "quarter"),
        (f"{y}年", dt.date(y, 1, 1), "year"),
    ]
    return draw(st.sampled_from(forms))


@PROPERTY
@given(st.lists(written_dates(), min_size=1, max_size=40))
def test_date_parser_gives_the_date_back(cases):
    out = one("purchase_date", [text for text, _, _ in cases])
    for (text, date, precision), row in zip(cases, out.iter_rows(named=True)):
        assert row["problem:purchase_date"] is None, text
        assert (row["purchase_date"], row["purchase_date_precision"]) == (date, precision), text


@PROPERTY
@given(st.lists(st.one_of(written_dates().map(lambda case: case[0]),
                          st.text(alphabet="0123456789-/.Qq年月日第季度 +:T", max_size=12)), min_size=1, max_size=40))
@example(["2009-05", "2009.5", "2009-13", "02009-05", "20090-05", "2009.Q2", "2009/Q2", "2009Q2", "0999-05",
          "2009-05-", "2009-5-1", "5/1/09", "2009", "2009-Q0"])
def test_dates_read_in_the_stream_are_what_the_parser_reads(texts):
    """The streaming fast paths (days, months, quarters) and the Python parser agree on every text."""
    from kamcore.normalise import read_date

    out = one("purchase_date", texts)
    for text, row in zip(texts, out.iter_rows(named=True)):
        date, precision, problem, _ = read_date(text)
        assert (row["purchase_date"], row["purchase_date_precision"]) == (date, precision), text
        assert row["problem:purchase_date"] == problem, text


@st.composite
def timestamps(draw):
    """Year-first dates (valid or not) with a time of day, as CRMs export them, and near misses."""
    def digits(low, high):
        return draw(st.text("0123456789", min_size=low, max_size=high))

    date = f"{digits(4, 4)}{draw(st.sampled_from('-/.'))}{digits(1, 2)}{draw(st.sampled_from('-/.'))}{digits(1, 2)}"
    time = (draw(st.sampled_from(" Tt")) + digits(1, 2) + ":" + digits(2, 2)
            + draw(st.sampled_from(["", ":00", ":59", ":07.250", ":5", "Z", " ", ":00:00"]))
            + draw(st.sampled_from(["", "", "", " AM", "pm", "P", "Z", "z", "+08:00", "-0800", " +08", "UTC", " GMT",
                                    "+8:00", "Zx", " AM Z"])))
    return draw(st.sampled_from([date + time, " " + date + time, date + time + " ", date + " " + time, date,
                                 date + "\u3000" + time, date + time + time]))


@PROPERTY
@given(st.lists(timestamps(), min_size=1, max_size=40))
@example(["2009-05-01 08:15:00", "2009-02-30 10:00", "2009-5-1T8:15:00.5", "2009-05-01 8:15 ", "0000-00-00 00:00:00",
          "2009/5/1 24:61", "2009.05.01t23:59:59.999", "2009-05-01 08:15 08:15", "2009-05-01T10:30:00.000+0000",
          "2009-05-01T10:30:00Z", "2009-05-01 10:30 PM", "2009-05-01T10:30:00+08:00"])
def test_timestamps_read_as_what_the_parser_reads(texts):
    """Timestamps are parsed once per day, not once per row (a column of them has a value per row): each row
    still gets what the parser reads from its whole text, flags included."""
    from kamcore.normalise import read_date

    out = one("purchase_date", texts)
    for text, row in zip(texts, out.iter_rows(named=True)):
        date, precision, problem, flag = read_date(text)
        assert (row["purchase_date"], row["purchase_date_precision"], row["problem:purchase_date"]) == (
            date, precision, problem), text
        assert row["value_flags"] == (f"purchase_date: {flag}" if flag else None), text


@pytest.mark.parametrize("text, order", [("5/1/2009 10:30 AM", "mdy"), ("5/1/2009 10:30:00 PM", "mdy"),
                                         ("1/5/2009 22:30", "dmy"), ("25/12/2009 9:05 am", "")])
def test_day_month_year_timestamps_are_read_with_their_order(text, order):
    """Report exports in a US or UK locale (5/1/2009 10:30 AM): the date, read in the configured order."""
    from kamcore.normalise import read_date

    day = dt.date(2009, 5, 1) if order else dt.date(2009, 12, 25)
    assert read_date(text, order)[:3] == (day, "day", None)


def test_a_column_of_timestamps_is_parsed_once_per_day():
    from kamcore.normalise import Plan

    start = dt.datetime(2024, 1, 1)
    stamps = [(start + dt.timedelta(minutes=37 * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(20_000)]
    plan = Plan(["purchase_date"], OPPORTUNITY, load_config(None, get_kam().config_defaults()), {})
    frame = pl.LazyFrame({"purchase_date": stamps})
    out = plan.on_frame(frame).select(*plan.output()).collect()
    assert out["purchase_date"].to_list() == [dt.date.fromisoformat(s[:10]) for s in stamps]
    assert set(out["purchase_date_precision"]) == {"day"}
    parsed = plan.caches["purchase_date"].table.to_series(0)  # a parsed date per distinct value the parser saw
    assert len(parsed) == len({s[:10] for s in stamps}) == 514


def test_distinct_parses_each_value_once_and_starts_over_past_its_limit():
    import random

    from kamcore.normalise import Distinct

    calls = []

    def parse(value):
        calls.append(value)
        return len(value), value.upper()

    distinct = Distinct(parse, (pl.Int64, pl.String), limit=50)
    rng = random.Random(5)

    def check(batch):
        length, upper = distinct.map(pl.Series(batch, dtype=pl.String))
        assert length.to_list() == [None if v is None else len(v) for v in batch]
        assert upper.to_list() == [None if v is None else v.upper() for v in batch]

    few = [f"w{i}" for i in range(40)]
    batches = [[rng.choice(few + [None]) for _ in range(rng.randint(0, 80))] for _ in range(40)]
    for batch in batches + [[None] * 5, []]:
        check(batch)
    assert sorted(calls) == sorted({v for b in batches for v in b if v is not None})  # once per value, not per row
    many = [f"w{i}" for i in range(300)]
    for _ in range(40):
        check([rng.choice(many + [None]) for _ in range(rng.randint(0, 80))])
    assert len(calls) > len(many)  # past 50 values it started over, parsing some values again
    assert distinct.table.height < 50 + 80


def test_distinct_is_safe_from_several_threads():
    from concurrent.futures import ThreadPoolExecutor

    from kamcore.normalise import Distinct

    distinct = Distinct(lambda value: (int(value) * 2,), (pl.Int64,))

    def work(seed):
        import random

        rng = random.Random(seed)
        for _ in range(30):
            values = [str(rng.randrange(5000)) for _ in range(500)]
            (doubled,) = distinct.map(pl.Series(values))
            assert doubled.to_list() == [int(v) * 2 for v in values]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(8)))
    assert distinct.table.height <= 5000


@st.composite
def formatted_amounts(draw):
    """Amounts as spreadsheets and Chinese exports write them, and near misses (spaces, full-width signs, ſ for s,
    three decimals, runaway sizes, a unit with no number)."""
    whole = draw(st.one_of(st.integers(0, 10**6), st.integers(0, 10**9), st.integers(0, 10**14)))
    body = f"{whole:,}" if draw(st.booleans()) else str(whole)
    return (draw(st.sampled_from(["", "", "$", "US$", "us$", "uſ$", "HK$", "¥", "￥", "€", "£", "RMB", "cny", "Usd"]))
            + draw(st.sampled_from(["", "", "", " "])) + body
            + draw(st.one_of(st.sampled_from(["", "", ".5", ".125", ".", ".999"]),
                             st.integers(0, 99).map(lambda cents: f".{cents:02d}")))
            + draw(st.sampled_from(["", "", "万", "亿", "千", "k", "K", "\u212a", "m", "M", "mn", "bn", "Bn"]))
            + draw(st.sampled_from(["", "", "元", "美元", "欧元", "人民币", "港币", "rmb", "USD", "jpy", "元 "])))


@PROPERTY
@given(st.lists(formatted_amounts(), min_size=1, max_size=40), st.sampled_from([1.0, 10_000.0]))
@example(["1,166,911.50", "143,181.36", "¥850,000", "16.4万欧元", "9,999,999,999,999.99", "999999999999.99", "uſ$100", "5\u212a",
          "1,2,3", "¥ 99,600", "1.005k", "面议", "$", "", "abc", "100-200万"], 1.0)
def test_formatted_amounts_are_read_as_the_parser_reads_them(texts, unit):
    """The native reading of 1,166,911.50, ¥850,000 or 16.4万欧元 (one per row in many exports, too many to parse in
    Python) gives what read_amount gives; what it does not read is left to read_amount, in the stream too."""
    from kamcore.normalise import formatted_amounts, read_amount

    amounts, currencies = formatted_amounts(pl.Series(texts, dtype=pl.String), unit)
    for text, amount, currency in zip(texts, amounts, currencies):
        if amount is not None:
            assert (amount, currency, None, None) == read_amount(text, unit), text
    out = one("deal_size", texts, header_units={"deal_size": unit})
    for text, row in zip(texts, out.iter_rows(named=True)):
        amount, _, problem, flag = read_amount(text, unit)
        assert (row["deal_size"], row["problem:deal_size"]) == (amount, problem), text
        assert row["value_flags"] == (f"deal_size: {flag}" if flag else None), text


@PROPERTY
@given(st.lists(st.tuples(st.integers(1000, 10**13), st.integers(0, 99), st.sampled_from(["", ".d", ".dd"])),
                min_size=1, max_size=40), st.sampled_from([1.0, 10_000.0]))
def test_grouped_numbers_alone_are_read_as_the_parser_reads_them(cases, unit):
    """A batch of spreadsheet numbers only (1,166,911.50) takes a shorter native path: the same values."""
    from kamcore.normalise import formatted_amounts, read_amount

    texts = [f"{whole:,}" + {"": "", ".d": f".{cents % 10}", ".dd": f".{cents:02d}"}[form] for whole, cents, form in cases]
    amounts, currencies = formatted_amounts(pl.Series(texts), unit)
    assert currencies.to_list() == [None] * len(texts)
    for text, amount in zip(texts, amounts):
        expected = read_amount(text, unit)[0]
        assert amount == (expected if expected < 1e12 else None), text


@st.composite
def plain_numbers(draw):
    """Numbers as exports write them, with what a cast to float accepts and the parser does not (-5, 1e5, 5.)."""
    return (draw(st.sampled_from(["", "", "", "-", "+", " "]))
            + draw(st.one_of(st.integers(0, 10**15).map(str), st.integers(0, 10**15).map("{:,}".format),
                             st.sampled_from(["", "0", "00", "１２０", "1,23", "12,345,6", ",123", "1,,234"])))
            + draw(st.sampled_from(["", "", ".", ".5", ".25", ".675", ".565", ".125", ".005", ".9999"]))
            + draw(st.sampled_from(["", "", "", "e5", "E+06", " ", "万"])))


@PROPERTY
@given(st.lists(plain_numbers(), min_size=1, max_size=40), st.sampled_from([1.0, 10_000.0, 100_000_000.0]))
@example(["2.675", "1234.565", "-5", "1e5", "+5", "5.", "-0", ".5", "1166100.00", "99999999999999", "12.345",
          "1,166,911.50", "999,999,999,999.99", "1,000,000,000,000", "-1,000", "1,000.005"], 1.0)
def test_plain_numbers_are_read_as_the_parser_reads_them(texts, unit):
    """Plain and grouped numbers take a native path (most exports write every amount so): the same double as
    read_amount, rounded as it rounds (2.675 is 2.67), and what it rejects (-5, 1e5) is rejected."""
    from kamcore.normalise import read_amount

    out = one("deal_size", texts, header_units={"deal_size": unit})
    for text, row in zip(texts, out.iter_rows(named=True)):
        amount, _, problem, _ = read_amount(text, unit)
        assert (row["deal_size"], row["problem:deal_size"]) == (amount, problem), text


def test_formatted_amounts_hold_only_characters_nfkc_leaves_alone():
    """What makes the native reading exact: NFKC (read_amount's fold) changes none of its characters, and the
    text after an amount's last digit splits into unit and currency word one way only."""
    import string
    import unicodedata

    from kamcore.normalise import _SUFFIX_WORDS, _TAILS, _UNIT_WORDS, FORMATTED_AMOUNT

    assert len(_TAILS) == (len(_UNIT_WORDS) + 1) * (len(_SUFFIX_WORDS) + 1)

    letters = set(FORMATTED_AMOUNT) - set("()?:|^$\\[]{}-,.0123456789") - set(string.ascii_letters)
    assert letters == set("¥€£亿万千元人民币美金欧港日英镑")
    assert all(unicodedata.normalize("NFKC", ch) == ch for ch in letters | set(string.ascii_letters + "0123456789,.$"))


CHECKED = ["deal_size", "purchase_date", "margin", "funding_status", "future_revenue", "currency", "stage"]


@PROPERTY
@given(st.lists(st.one_of(st.text(max_size=12),
                           st.text(alphabet="0123456789,.万亿元¥$-/年月日季度第Qq%: ", max_size=12)),
                min_size=1, max_size=30))
@example(["1e5", "12万万", "2009-02-30", "--", "第2季度", "，", "\u3000", "1,2,3"])
def test_random_text_is_parsed_or_reported_never_silently_dropped(texts):
    out = normalise({name: texts for name in CHECKED})  # must not raise
    assert out.height == len(texts)
    for text, row in zip(texts, out.iter_rows(named=True)):
        blank = text.strip() == "" or text.strip() in MISSING
        for name in CHECKED:
            value, problem = row[name], row["problem:" + name]
            if name == "future_revenue":
                value = value if value is not None else row["future_revenue_amount"]
            if blank:
                continue
            flagged = row["value_flags"] is not None and f"{name}: " in row["value_flags"]
            assert (value is None) != (problem is None) or (value is None and flagged), (name, text, value, problem)
            if isinstance(value, float):
                assert math.isfinite(value), (name, text, value)


def test_schema_vocabularies_are_lower_case_and_unambiguous():
    """What the normaliser relies on: synonyms listed in lower case, one code per spelling."""
    for column in OPPORTUNITY.values():
        seen: dict[str, str] = {}
        for code, synonyms in (column.vocab or {}).items():
            for word in (code, *synonyms):
                assert word == word.lower(), (column.name, word)
                assert seen.setdefault(word, code) == code, (column.name, word, seen[word], code)
