"""`kam score --scores-only`: the id and the score columns, the same rows, rejects and counts as a full run,
and no work for the columns it does not write."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import (ZH, invoke, kam_env, read_csv, read_rejects, read_summary, sample_rows, table,  # noqa: E402,F401
                     write_export)

from kamcore import hookimpl  # noqa: E402
from kamcore.config import load_config  # noqa: E402
from kamcore.pipeline import prepare_frames  # noqa: E402
from kamcore.plugins import Kam, get_kam  # noqa: E402
from kamcore.registry import Criterion  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")

WRITTEN = ["opportunity_id", "p1_need", "p2_business", "p3_approval", "p4_budget", "p5_urgency", "p6_revenue",
           "p7_future", "p8_margin", "p9_risk", "p10_strategic", "real_score", "worth_score", "total_score",
           "unknown_criteria", "band", "quadrant", "win_probability"]


def set_cell(rows, record: int, header: str, value: str) -> None:
    rows[record][rows[0].index(header)] = value


@pytest.fixture
def export(tmp_path):
    rows = table(sample_rows(30, seed=5), ZH)
    set_cell(rows, 3, "资金状况", "半到位")     # rejected: unknown code in a column scores-only does not write
    set_cell(rows, 5, "销售阶段", "很快")        # rejected: the stage is read by no criterion
    set_cell(rows, 7, "备注", "=1+1")           # formula-like text in a dropped column
    set_cell(rows, 9, "编号", "")               # rejected: no id; its notes are filled, so it is not blank
    set_cell(rows, 9, "备注", "only a note")
    for header in rows[0]:                      # record 12: only the notes are filled
        set_cell(rows, 12, header, "")
    set_cell(rows, 12, "备注", "a lone note")
    for header in rows[0]:                      # record 14: blank
        set_cell(rows, 14, header, "")
    return write_export(tmp_path / "export.csv", rows)


def test_scores_only_writes_the_score_columns_of_the_same_rows(tmp_path, export):
    full, scores = tmp_path / "full.csv", tmp_path / "scores.csv"
    assert invoke("score", export, "-o", full).exit_code == 0
    result = invoke("score", export, "-o", scores, "--scores-only")
    assert result.exit_code == 0, result.output
    got, whole = read_csv(scores), read_csv(full)
    assert got.columns == WRITTEN
    assert got.height == whole.height > 0
    assert got.equals(whole.select(WRITTEN))


def test_scores_only_rejects_and_counts_as_a_full_run(tmp_path, export):
    full, scores = tmp_path / "full.csv", tmp_path / "scores.csv"
    assert invoke("score", export, "-o", full).exit_code == 0
    assert invoke("score", export, "-o", scores, "--scores-only").exit_code == 0
    assert read_rejects(scores).equals(read_rejects(full))
    a, b = read_summary(scores), read_summary(full)
    assert a["rows"] == b["rows"] and a["rows"]["rejected"] == 4
    assert a["blank_lines_skipped"] == b["blank_lines_skipped"] == 1
    assert a["scores_only"] is True and b["scores_only"] is False
    assert a["columns"]["scores"] == WRITTEN[1:]


def test_scores_only_drops_pass_through_columns_before_normalising(export):
    kam = get_kam()
    config = load_config(None, kam.config_defaults())
    frame = pl.scan_csv(export, infer_schema=False)
    prepared, _ = prepare_frames([(frame.rename(dict(zip(ZH.values(), ZH.keys())), strict=False), "x")],
                                 config, kam, scores_only=True)
    names = set(prepared.plan.names)
    assert {"notes", "account", "project_name", "owner"}.isdisjoint(names)
    assert {"opportunity_id", "stage", "funding_status", "deal_size"} <= names  # still validated
    assert prepared.scored().collect_schema().names() == WRITTEN
    # the qualification adds columns nothing written reads: it is not part of the query
    assert prepared.scoring.batch_columns == [] and prepared.scoring.qualify_columns == []
    full, _ = prepare_frames([(frame.rename(dict(zip(ZH.values(), ZH.keys())), strict=False), "x")], config, kam)
    assert "notes" in full.plan.names


def test_scores_only_keeps_a_text_column_a_criterion_reads(tmp_path, export):
    config = tmp_path / "kam.toml"
    config.write_text('[scorecard.criteria.owner_known]\nblock = "real"\nlabel_en = "owner"\n'
                      '[[scorecard.criteria.owner_known.terms]]\ncolumn = "owner"\n'
                      'points = { "张伟" = 2, "李娜" = 1 }\n', encoding="utf-8")
    full, scores = tmp_path / "full.csv", tmp_path / "scores.csv"
    assert invoke("score", export, "-o", full, "--config", config).exit_code == 0
    result = invoke("score", export, "-o", scores, "--config", config, "--scores-only")
    assert result.exit_code == 0, result.output
    got, whole = read_csv(scores), read_csv(full)
    assert "p_owner_known" in got.columns and "owner" not in got.columns
    assert got.equals(whole.select(got.columns))
    points = whole["p_owner_known"]
    assert 0 < points.null_count() < points.len()  # the criterion really read the owners: some match, some not


class CountedQualification:
    """A qualify_columns expression that counts the batches it is evaluated on."""

    batches = 0

    @staticmethod
    def count(ids: pl.Series) -> pl.Series:
        CountedQualification.batches += 1
        return ids.is_not_null()

    @hookimpl
    def qualify_columns(self, columns):
        return {"counted": pl.col("opportunity_id").map_batches(self.count, return_dtype=pl.Boolean)}


class QualifiedCriterion:
    """A criterion reading the built-in qualification (and so, through its gates, 人脉资源 in contacts)."""

    @hookimpl
    def register_criteria(self, register):
        points = pl.col("qualification").replace_strict({"qualified": 2.0, "needs_info": 1.0, "disqualified": 0.0},
                                                        default=None, return_dtype=pl.Float64)
        register(Criterion(name="qualified", block="win", max_points=2, label_zh="资格", label_en="qualified",
                           points=points))


def kam_with(*named: tuple[str, object]) -> Kam:
    kam = Kam(load_entry_points=True)
    for name, plugin in named:
        kam.register(plugin, name)
    kam.check()
    return kam


def test_scores_only_does_not_compute_the_qualification_nothing_written_reads(tmp_path, export):
    kam = kam_with(("counted", CountedQualification()))
    CountedQualification.batches = 0
    summary = run_score_with(kam, export, tmp_path / "scores.csv", scores_only=True)
    assert summary["rows"]["scored"] > 0 and CountedQualification.batches == 0
    assert read_csv(tmp_path / "scores.csv").columns == WRITTEN
    config = load_config(None, kam.config_defaults())
    frame = pl.scan_csv(export, infer_schema=False).rename(dict(zip(ZH.values(), ZH.keys())), strict=False)
    prepared, _ = prepare_frames([(frame, "x")], config, kam, scores_only=True)
    plan = prepared.scored().explain(optimized=False)  # left out by kam, not only by the query optimiser
    assert "__qualification_" not in plan and "next_action" not in plan and "counted" not in plan
    assert prepared.scoring.qualify_columns == [] and prepared.scoring.batch_columns == []
    assert "contacts" not in prepared.plan.names  # a text column only the qualification reads: dropped
    run_score_with(kam, export, tmp_path / "full.csv")  # the full run computes it
    assert CountedQualification.batches > 0 and "counted" in read_csv(tmp_path / "full.csv").columns


def test_scores_only_computes_the_qualification_a_written_column_reads(tmp_path, export):
    kam = kam_with(("qualified", QualifiedCriterion()))
    run_score_with(kam, export, tmp_path / "full.csv")
    run_score_with(kam, export, tmp_path / "scores.csv", scores_only=True)
    got, whole = read_csv(tmp_path / "scores.csv"), read_csv(tmp_path / "full.csv")
    assert "p_qualified" in got.columns and "qualification" not in got.columns
    assert got.equals(whole.select(got.columns))
    assert whole["p_qualified"].n_unique() > 1  # the criterion really read the qualification
    config = load_config(None, kam.config_defaults())
    frame = pl.scan_csv(export, infer_schema=False).rename(dict(zip(ZH.values(), ZH.keys())), strict=False)
    prepared, _ = prepare_frames([(frame, "x")], config, kam, scores_only=True)
    assert "contacts" in prepared.plan.names  # kept: the qualification's gates read it


def run_score_with(kam: Kam, export, output, **options) -> dict:
    from kamcore.pipeline import run_score

    return run_score([export], output, kam=kam, config=load_config(None, kam.config_defaults()), **options)
