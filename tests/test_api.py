"""The embedding API: score_frame on polars (and pandas) frames, score_one on a dict.

score_one wraps the batch path, so it must give the same numbers as score_frame and as `kam score`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import SCORE_COLUMNS, ZH, invoke, kam_env, sample_rows, table, write_export  # noqa: E402,F401

import kamcore  # noqa: E402
from kamcore.errors import ConfigError, DataError  # noqa: E402
from kamcore.normalise import variants  # noqa: E402
from kamcore.schema import CODE, LEVEL_OR_AMOUNT, OPPORTUNITY, OPPORTUNITY_COLUMNS  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")


def zh_rows(n=10, seed=21) -> list[dict[str, str]]:
    """Sample opportunities keyed by their Chinese headers, as a salesperson's sheet has them."""
    return [{ZH[k]: v for k, v in row.items()} for row in sample_rows(n, seed)]


def frame_of(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame({k: [r.get(k) for r in rows] for k in rows[0]}, schema={k: pl.String for k in rows[0]})


# -- score_frame --------------------------------------------------------------------------------

def test_score_frame_on_a_polars_frame():
    rows = zh_rows()
    rows[3]["标的"] = "很多"
    result = kamcore.score_frame(frame_of(rows))
    assert isinstance(result, kamcore.ScoreResult)
    assert isinstance(result.scored, pl.DataFrame) and isinstance(result.rejects, pl.DataFrame)
    assert result.scored.height == 9
    assert set(SCORE_COLUMNS) <= set(result.scored.columns)
    assert result.rejects.select("line", "column", "value", "opportunity_id").rows() == [
        (4, "deal_size", "很多", rows[3]["编号"])]  # line = 1-based row of the frame
    assert result.scored["win_probability"].is_between(0, 1).all()


def test_score_frame_accepts_typed_columns():
    import datetime as dt

    typed = pl.DataFrame({"opportunity_id": ["T1"], "deal_size": [1_200_000], "margin": [35.0],
                          "purchase_date": [dt.date(2009, 5, 1)], "need_clarity": ["clear"]})
    text = pl.DataFrame({"opportunity_id": ["T1"], "deal_size": ["1200000"], "margin": ["35%"],
                         "purchase_date": ["2009-05-01"], "need_clarity": ["清楚"]})
    assert_frame_equal(kamcore.score_frame(typed).scored, kamcore.score_frame(text).scored)


def test_score_frame_reads_nested_and_timestamp_columns_as_the_parquet_importer_does():
    """A list of competitors, a timestamp, a struct: the text a CSV export would hold (was a polars error)."""
    import datetime as dt

    from kamcore.errors import InputError

    typed = pl.DataFrame({"opportunity_id": ["T1", "T2"], "competitors": [["H3C", "Lenovo"], None],
                          "purchase_date": [dt.datetime(2009, 5, 1, 10, 30, 5, 123), None],
                          "notes": [{"source": "crm", "score": 1}, None]})
    text = pl.DataFrame({"opportunity_id": ["T1", "T2"], "competitors": ["H3C; Lenovo", None],
                         "purchase_date": ["2009-05-01 10:30:05", None], "notes": ['{"source":"crm","score":1}', None]})
    scored = kamcore.score_frame(typed).scored
    assert_frame_equal(scored, kamcore.score_frame(text).scored)
    assert scored["competitor_count"].to_list() == [2, None]
    with pytest.raises(InputError, match="column 'took' holds Duration"):
        kamcore.score_frame(pl.DataFrame({"opportunity_id": ["T1"], "took": [dt.timedelta(days=2)]}))


def test_score_frame_rejects_other_objects():
    with pytest.raises(TypeError):
        kamcore.score_frame([{"编号": "1"}])


def test_score_frame_with_a_config_path(tmp_path):
    config = tmp_path / "strict.toml"
    config.write_text("[scorecard.bands]\nA = 101\nB = 100\nC = 99\n", encoding="utf-8")
    frame = frame_of(zh_rows(6))
    assert set(kamcore.score_frame(frame, str(config)).scored["band"]) == {"D"}
    bad = tmp_path / "bad.toml"
    bad.write_text("[columns]\nx = 'nope'\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        kamcore.score_frame(frame, bad)


def test_score_frame_on_a_pandas_frame():
    pd = pytest.importorskip("pandas")
    rows = zh_rows()
    rows[2]["采购时间"] = "2009-02-30"
    pandas_frame = pd.DataFrame(rows)
    result = kamcore.score_frame(pandas_frame)
    assert isinstance(result.scored, pd.DataFrame) and isinstance(result.rejects, pd.DataFrame)
    expected = kamcore.score_frame(frame_of(rows))
    assert_frame_equal(pl.from_pandas(result.scored), expected.scored, check_dtypes=False)
    assert list(result.rejects["line"]) == [3]


# -- score_one ----------------------------------------------------------------------------------

def test_score_one_equals_the_batch_row():
    rows = zh_rows(12)
    batch = kamcore.score_frame(frame_of(rows)).scored
    assert batch.height == 12
    for i, row in enumerate(rows):
        assert kamcore.score_one(row) == batch.row(i, named=True)


def test_score_one_equals_the_cli(tmp_path):
    rows = zh_rows(10, seed=8)
    src = write_export(tmp_path / "export.csv", table([dict(r) for r in rows]))
    out = tmp_path / "scored.csv"
    assert invoke("score", src, "-o", out).exit_code == 0
    api = kamcore.score_frame(frame_of(rows)).scored
    cli = pl.read_csv(out, schema_overrides=api.schema)
    assert cli.columns == api.columns
    # a CSV cannot tell an empty text cell from a missing one; everything else must match exactly
    as_written = pl.col(pl.String).replace("", None)
    assert_frame_equal(cli.with_columns(as_written), api.with_columns(as_written), check_exact=True)
    for i, row in enumerate(rows):
        single = kamcore.score_one(row)
        assert {k: single[k] for k in SCORE_COLUMNS} == {k: cli[k][i] for k in SCORE_COLUMNS}


def test_score_one_accepts_python_values_and_english_headers():
    one = kamcore.score_one({"Opportunity ID": "E1", "Deal size": 1_200_000, "margin": 35, "risk": "Low",
                             "strategic value": "HIGH", "urgency": "urgent"})
    assert (one["p6_revenue"], one["p8_margin"], one["p9_risk"], one["p10_strategic"], one["p5_urgency"]) == (
        3.0, 3.0, 3.0, 3.0, 3.0)
    assert one["worth_score"] == pytest.approx(80.0)  # future revenue unknown: 12 of 15


def test_score_one_raises_data_error_with_the_reasons():
    with pytest.raises(DataError) as info:
        kamcore.score_one({"编号": "X", "标的": "很多", "采购时间": "2009-02-30"})
    message = str(info.value)
    assert "deal_size" in message and "purchase_date" in message and "not an amount" in message


def test_validate_frame_lists_every_problem_with_the_header_the_frame_gives():
    frame = pl.DataFrame({"编号": ["X", "Y", None], "标的": ["很多", "120万", "5万"],
                          "采购时间": ["2009-02-30", "2009-05", "2010"], "销售阶段": ["方案", "跟进中", "意向"]})
    problems = kamcore.validate_frame(frame)
    found = sorted((p.line, p.column, p.header, p.value, p.opportunity_id) for p in problems)
    assert found == [(1, "deal_size", "标的", "很多", "X"), (1, "purchase_date", "采购时间", "2009-02-30", "X"),
                     (2, "stage", "销售阶段", "跟进中", "Y"), (3, "opportunity_id", "编号", "", None)]
    stage = next(p for p in problems if p.column == "stage")
    assert stage.reason.startswith("不在词表中 / unknown value: expected one of potential 潜在, intent 意向, "
                                   "solution 方案")
    assert stage.file == "<frame>"
    assert kamcore.validate_frame(frame.filter(pl.col("编号") == "Z")) == []
    result = kamcore.score_frame(frame)  # the same problems, as a frame
    assert sorted(result.rejects["header"].to_list()) == sorted(p.header for p in problems)


def test_a_status_column_of_running_deals_is_scored_not_rejected():
    """A CRM's status column lists the deals still running: those are what kam scores (outcome `open`); a
    status that says neither open, won nor lost (Closed: won or lost?) is still rejected, with the codes."""
    frame = pl.DataFrame({"商机编号": ["A", "B", "C", "D", "E"], "商机状态": ["进行中", "赢单", "Open", "In Progress", "Closed"],
                          "商机来源": ["官网", "陌生拜访", "400电话", "研讨会", "合作伙伴"]})
    result = kamcore.score_frame(frame)
    assert result.scored["outcome"].to_list() == ["open", "won", "open", "open"]
    assert result.scored["lead_source"].to_list() == ["email", "self_sourced", "phone", "event"]
    assert result.rejects.select("opportunity_id", "column", "header", "value").rows() == [
        ("E", "outcome", "商机状态", "Closed")]
    assert result.rejects["reason"][0].startswith("不在词表中 / unknown value: expected one of won 赢单, lost 丢单, "
                                                  "open 进行中")


# -- batch equals single, for random valid opportunities ------------------------------------------

def spellings(column) -> list[str]:
    """Every spelling of every code of a coded column that the normaliser documents as matched."""
    words = {w for code, synonyms in column.vocab.items() for w in (code, *synonyms)}
    return sorted({v for w in words for v in variants(w)})


CODED = [c for c in OPPORTUNITY_COLUMNS if c.kind in (CODE, LEVEL_OR_AMOUNT) and c.vocab]
AMOUNTS = st.one_of(
    st.sampled_from(["1.2亿", "120万", "¥1,200,000", "850000元", "US$120,000", "12万美元", "€45,000", "3.5万", "0"]),
    st.integers(0, 5 * 10**8).map(str),
    st.integers(0, 5 * 10**6).map(lambda n: f"{n:,}"),
    st.decimals(0, 9999, places=2).map(lambda d: f"{d}万"),
)
DATES = st.one_of(
    st.sampled_from(["2009.05", "2010.1", "2009/5/1", "2009-05-01", "2009-Q2", "2009年第2季度", "2025年"]),
    st.dates().filter(lambda d: 1900 <= d.year <= 2099).map(lambda d: d.isoformat()),
)
MARGINS = st.one_of(st.floats(-10, 90, allow_nan=False).map(lambda x: f"{x:.1f}%"),
                    st.integers(0, 80).map(str))
MAYBE = lambda strategy: st.one_of(st.none(), st.just(""), strategy)  # noqa: E731


@st.composite
def opportunity(draw, style: str):
    def header(name: str) -> str:
        column = OPPORTUNITY[name]
        return {"canonical": name, "zh": column.label_zh, "en": column.label_en}[style]

    row = {header("account"): draw(st.text(alphabet="华信科技集团有限公司 Acme&-=", max_size=10))}
    for column in CODED:
        values = st.sampled_from(spellings(column))
        if column.kind == LEVEL_OR_AMOUNT:
            values = st.one_of(values, AMOUNTS)
        row[header(column.name)] = draw(MAYBE(values))
    row[header("deal_size")] = draw(MAYBE(AMOUNTS))
    row[header("purchase_date")] = draw(MAYBE(DATES))
    row[header("margin")] = draw(MAYBE(MARGINS))
    row[header("competitors")] = draw(MAYBE(st.sampled_from(["0", "3", "华为、浪潮", "Oracle, SAP", "H3C"])))
    return row


@st.composite
def opportunities(draw):
    style = draw(st.sampled_from(["canonical", "zh", "en"]))
    rows = draw(st.lists(opportunity(style), min_size=1, max_size=6))
    id_header = {"canonical": "opportunity_id", "zh": "编号", "en": "Opportunity ID"}[style]
    return [{id_header: f"H{i}", **row} for i, row in enumerate(rows)]


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(opportunities())
def test_score_one_equals_score_frame_for_random_valid_opportunities(rows):
    result = kamcore.score_frame(frame_of(rows))
    assert result.rejects.height == 0, result.rejects.to_dicts()
    assert result.scored.height == len(rows)
    for i, row in enumerate(rows):
        single = kamcore.score_one(row)
        assert single == result.scored.row(i, named=True)
        assert 0 <= single["win_probability"] <= 1 and single["band"] in helpers.BANDS
