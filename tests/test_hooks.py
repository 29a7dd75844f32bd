"""One test (at least) per hook in kamcore.hookspecs, through the real pipeline on real files.

Each plugin is a small class with ``@hookimpl`` methods, registered on a :class:`kamcore.plugins.Kam`
that has also loaded the built-ins from their entry points, as ``kam`` does.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click
import polars as pl
import pytest
from click.testing import CliRunner

import kamcore
from kamcore import hookimpl
from kamcore.config import default_config_text, load_config
from kamcore.errors import ConfigError
from kamcore.pipeline import run_score
from kamcore.plugins import Kam
from kamcore.registry import Criterion, Importer, ReadOptions, Source, Writer, WinModel

pytestmark = pytest.mark.usefixtures("clean_kam")
IDS = [f"OPP-{i}" for i in range(1, 6)]


def kam_with(*named_plugins: tuple[str, object]) -> Kam:
    kam = Kam(load_entry_points=True)
    for name, plugin in named_plugins:
        kam.register(plugin, name)
    kam.check()
    return kam


def read_export(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def run(kam: Kam, inputs: list[Path], output: Path, config_path: Path | None = None, **options) -> dict:
    return run_score(inputs, output, kam=kam, config=load_config(config_path, kam.config_defaults()), **options)


# -- register_importers -------------------------------------------------------------------------

RECORDS = """\
#kam-records v1
编号 = R-1
客户名称 = 华能集团
项目的预算 = 有
客户的应用或项目 = 清楚

编号 = R-2
客户名称 = Acme Corp
项目的预算 = maybe

编号 = R-3
客户名称 = 小王商贸
项目的预算 = 无
"""


class RecordsImporter:
    """Reads 'key = value' blocks separated by blank lines, a format the CSV importer cannot read."""

    @staticmethod
    def parse(path: Path) -> list[tuple[int, dict[str, str]]]:
        records, current, start = [], {}, None
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.startswith("#"):
                continue
            if not line.strip():
                if current:
                    records.append((start, current))
                current, start = {}, None
                continue
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
            start = start or number
        if current:
            records.append((start, current))
        return records

    def read(self, path: Path, options: ReadOptions) -> Source:
        records = self.parse(path)
        keys = list(dict.fromkeys(k for _, r in records for k in r))
        frame = pl.DataFrame({k: [r.get(k) for _, r in records] for k in keys}, schema={k: pl.String for k in keys})
        lines = [start for start, _ in records]
        return Source(path=path, frame=frame.lazy(), record_lines=lambda rows: {i: lines[i] for i in rows},
                      notes=(f"{path.name}: {len(records)} records",))

    @staticmethod
    def sniff(head: bytes, suffix: str) -> int:
        return 100 if head.startswith(b"#kam-records") else 0

    @hookimpl
    def register_importers(self, register):
        register(Importer(name="records", read=self.read, sniff=self.sniff, description="key = value blocks"))


def test_register_importers_reads_a_new_format_with_its_own_line_numbers(tmp_path, export_csv):
    path = tmp_path / "deals.kamr"
    path.write_text(RECORDS, encoding="utf-8")
    kam = kam_with(("records", RecordsImporter()))
    assert {"csv", "records"} <= set(kam.importers().items)  # beside the other built-in importers

    summary = run(kam, [path, export_csv], tmp_path / "out.csv")
    assert [i["importer"] for i in summary["inputs"]] == ["records", "csv"]  # chosen by content, per file
    assert summary["rows"] == {"in": 8, "scored": 7, "rejected": 1}
    assert f"{path.name}: 3 records" in summary["notes"]
    scored = pl.read_csv(tmp_path / "out.csv")
    assert scored["opportunity_id"].to_list() == ["R-1", "R-3", *IDS]
    assert scored.filter(pl.col("opportunity_id") == "R-1")["p4_budget"].item() > 0
    rejects = list(csv.DictReader((tmp_path / "out.csv.rejects.csv").open(encoding="utf-8-sig")))
    assert [(r["file"], r["line"], r["column"], r["value"], r["opportunity_id"]) for r in rejects] == [
        (str(path), "7", "budget_status", "maybe", "R-2")]  # the line the importer reported for record 2


def test_register_importers_can_be_forced_by_name(tmp_path):
    path = tmp_path / "deals.txt"
    path.write_text(RECORDS.replace("#kam-records v1\n", ""), encoding="utf-8")  # no magic line: not sniffed
    kam = kam_with(("records", RecordsImporter()))
    summary = run(kam, [path], tmp_path / "out.csv", importer="records")
    assert summary["inputs"][0]["importer"] == "records" and summary["rows"]["in"] == 3


# -- register_writers ---------------------------------------------------------------------------


class TsvWriter:
    @hookimpl
    def register_writers(self, register):
        register(Writer(name="tsv", extensions=(".tsv",),
                        sink=lambda frame, path: frame.sink_csv(path, separator="\t", lazy=True),
                        description="tab-separated values"))


def test_register_writers_adds_an_output_format(tmp_path, export_csv):
    kam = kam_with(("tsv_writer", TsvWriter()))
    assert {"csv", "jsonl", "parquet", "tsv"} <= set(kam.writers().items)
    summary = run(kam, [export_csv], tmp_path / "out.tsv")  # format from the suffix
    assert summary["format"] == "tsv"
    tsv = pl.read_csv(tmp_path / "out.tsv", separator="\t")
    run(kam, [export_csv], tmp_path / "ref.csv")
    reference = pl.read_csv(tmp_path / "ref.csv")
    assert tsv.columns == reference.columns
    assert tsv["total_score"].to_list() == reference["total_score"].to_list()
    assert tsv["opportunity_id"].to_list() == IDS

    run(kam, [export_csv], tmp_path / "scores.txt", fmt="tsv")  # or named with --format
    assert (tmp_path / "scores.txt").read_text(encoding="utf-8").startswith("opportunity_id\taccount\t")


# -- register_criteria --------------------------------------------------------------------------


class ReferencesCriteria:
    """Criterion 11 in the Worth block, and an unnumbered criterion in a new block, both reading config."""

    @hookimpl
    def register_config_defaults(self, register):
        register("references", '[references]\nmarker = "ref:"\n')

    @hookimpl
    def register_criteria(self, register, config):
        marker = config.section("references")["marker"]
        count = pl.col("notes").str.count_matches(marker, literal=True)
        register(Criterion(name="references", block="worth", number=11, max_points=3, label_zh="推荐",
                           label_en="references", inputs=("notes",),
                           points=pl.when(pl.col("notes").is_null()).then(None).otherwise(pl.min_horizontal(count, 3))))
        register(Criterion(name="few_competitors", block="win", max_points=2, weight=2.0, label_zh="竞争少",
                           label_en="few competitors", inputs=("competitor_count",),
                           points=(2 - pl.col("competitor_count").clip(0, 2)).cast(pl.Float64)))


def test_register_criteria_adds_points_and_changes_the_block_scores(export_csv, tmp_path):
    base = kamcore.score_frame(read_export(export_csv), kam=kam_with()).scored
    kam = kam_with(("references", ReferencesCriteria()))
    scored = kamcore.score_frame(read_export(export_csv), kam=kam).scored

    criteria_columns = [c for c in scored.columns if c.startswith("p") and c[1:2].isdigit() or c.startswith("p_")]
    assert criteria_columns[-2:] == ["p11_references", "p_few_competitors"]  # scorecard order: numbered first
    assert scored["p11_references"].to_list() == [2.0, None, 3.0, 0.0, 1.0]
    assert scored["p_few_competitors"].to_list() == [0.0, 0.0, 0.0, 2.0, 1.0]
    # integer points stay integers (as the built-in scorecard's), any other points are Float64
    assert scored.schema["p11_references"] == pl.Int32 and scored.schema["p1_need"] == pl.Int32
    assert scored.schema["p_few_competitors"] == pl.Float64
    assert scored["unknown_criteria"].to_list() == [u + (i == 1) for i, u in enumerate(base["unknown_criteria"])]
    assert scored["win_score"].to_list() == [0.0, 0.0, 0.0, 100.0, 50.0]  # a new block gets its own score
    assert scored["real_score"].to_list() == base["real_score"].to_list()

    builtin = list(kam_with().criteria(load_config(None, kam_with().config_defaults())))
    worth_top = sum(k.weight * k.max_points for k in builtin if k.block == "worth")
    worth_got = [s * worth_top / 100 for s in base["worth_score"].to_list()]
    expected = [round(100 * (g + (p or 0)) / (worth_top + 3), 1) for g, p in zip(worth_got, scored["p11_references"])]
    assert scored["worth_score"].to_list() == pytest.approx(expected, abs=0.06)
    assert scored["total_score"].to_list() != base["total_score"].to_list()


def test_register_criteria_receives_the_effective_config(export_csv, tmp_path):
    (tmp_path / "kam.toml").write_text('[references]\nmarker = "ref: A"\n', encoding="utf-8")  # the user's file
    kam = kam_with(("references", ReferencesCriteria()))
    scored = kamcore.score_frame(read_export(export_csv), kam=kam).scored  # ./kam.toml is found
    assert scored["p11_references"].to_list() == [0.0, None, 1.0, 0.0, 0.0]


# -- register_win_models ------------------------------------------------------------------------


class Models:
    @hookimpl
    def register_win_models(self, register):
        from sklearn.linear_model import LogisticRegression

        register(WinModel(name="scorecard_logit", build=lambda **params: LogisticRegression(**params),
                          description="logistic regression on the criteria points"))


def test_register_win_models_builds_an_unfitted_estimator_that_fits_scored_rows(export_csv):
    kam = kam_with(("models", Models()))
    models = kam.win_models()
    assert "scorecard_logit" in models.items and models.owners["scorecard_logit"] == "models"
    estimator = models["scorecard_logit"].build(C=0.5)
    assert estimator.get_params()["C"] == 0.5 and not hasattr(estimator, "classes_")

    scored = kamcore.score_frame(read_export(export_csv), kam=kam).scored
    features = scored.select([c for c in scored.columns if c.startswith("p") and c[1].isdigit()]).fill_null(0)
    outcome = ["won", "lost", "won", "lost", "lost"]
    fitted = estimator.fit(features.to_numpy(), outcome)
    assert fitted is estimator and list(estimator.classes_) == ["lost", "won"]
    won = list(estimator.classes_).index("won")
    probability = estimator.predict_proba(features.to_numpy())[:, won]
    assert probability[0] > probability[3]


# -- register_config_defaults -------------------------------------------------------------------


class Defaults:
    @hookimpl
    def register_config_defaults(self, register):
        register("pipeline_check", '# pipeline_check: flags stale deals\n[pipeline_check]\nmax_age_days = 90\n'
                                   '[pipeline_check.labels]\nstale = "停滞"\n')


def test_register_config_defaults_are_merged_overridden_and_written_by_init(tmp_path):
    kam = kam_with(("defaults", Defaults()))
    sections = kam.config_defaults()
    assert {"scorecard", "pipeline_check", "stakeholders", "qualification", "win_block"} <= set(sections)
    config = load_config(None, sections)
    assert config.section("pipeline_check") == {"max_age_days": 90, "labels": {"stale": "停滞"}}

    user = tmp_path / "mine.toml"
    user.write_text("[pipeline_check]\nmax_age_days = 30\n", encoding="utf-8")
    config = load_config(user, sections)
    assert config.section("pipeline_check") == {"max_age_days": 30, "labels": {"stale": "停滞"}}  # deep merge

    text = default_config_text(sections)  # what `kam init` writes
    assert "# pipeline_check: flags stale deals" in text and "[scorecard]" in text and "[currency]" in text


def test_register_config_defaults_with_invalid_toml_is_a_config_error():
    class Broken:
        @hookimpl
        def register_config_defaults(self, register):
            register("broken_section", "[broken_section\nx = 1\n")

    kam = kam_with(("broken_defaults", Broken()))
    with pytest.raises(ConfigError, match=r"defaults of \[broken_section\]: invalid TOML"):
        load_config(None, kam.config_defaults())


# -- register_commands --------------------------------------------------------------------------


class Commands:
    @hookimpl
    def register_commands(self, cli):
        @cli.command("top")
        @click.argument("path", type=click.Path(path_type=Path))
        @click.option("-n", default=2)
        def top(path, n):
            """Print the n best opportunities of an export."""
            scored = kamcore.score_frame(pl.read_csv(path, infer_schema=False)).scored
            for row in scored.sort("total_score", descending=True).head(n).iter_rows(named=True):
                click.echo(f"{row['opportunity_id']} {row['total_score']}")


def test_register_commands_adds_a_subcommand(export_csv):
    group = click.Group("kam")
    kam_with(("commands", Commands())).add_commands(group)
    assert {"top", "classify"} <= set(group.commands)  # beside the built-in plugins' commands
    result = CliRunner().invoke(group, ["top", str(export_csv), "-n", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["OPP-1 100.0", "OPP-3 86.7"]


# -- qualify ------------------------------------------------------------------------------------


class Qualify:
    seen: list[list[str]] = []

    @hookimpl
    def qualify(self, batch, config):
        Qualify.seen.append(batch.columns)
        big = pl.col("deal_size_base") >= 1_000_000
        open_stage = pl.col("stage").is_in(["potential", "intent", "solution", "negotiation"])
        return batch.select(
            (big & open_stage).alias("qualified"),
            pl.when(~open_stage).then(pl.lit("closed")).when(~big).then(pl.lit("small deal")).alias("qualify_reason"))


def test_qualify_adds_columns_from_normalised_values(export_csv, tmp_path):
    Qualify.seen = []
    kam = kam_with(("gate", Qualify()))
    scored = kamcore.score_frame(read_export(export_csv), kam=kam).scored
    assert scored["qualified"].to_list() == [True, True, True, False, False]
    assert scored["qualify_reason"].to_list() == [None, None, None, "small deal", "small deal"]
    assert all("total_score" not in cols and "deal_size_base" in cols for cols in Qualify.seen)  # before scoring

    run(kam, [export_csv], tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["qualified"] for r in rows] == [True, True, True, False, False]


# -- qualify_columns ----------------------------------------------------------------------------


class QualifyColumns:
    """The gate above as expressions, in two steps: temporary columns, then the verdict and its reason."""

    calls: list[frozenset] = []

    @hookimpl
    def qualify_columns(self, config, columns):
        QualifyColumns.calls.append(columns)
        c = pl.col
        big = (c("deal_size_base") >= 1_000_000).fill_null(False) if "deal_size_base" in columns else pl.lit(False)
        open_stage = c("stage").is_in(["potential", "intent", "solution", "negotiation"]).fill_null(False) \
            if "stage" in columns else pl.lit(False)
        return [{"__gate_big": big, "__gate_open": open_stage},
                {"gate_qualified": c("__gate_big") & c("__gate_open"),
                 "gate_reason": pl.when(~c("__gate_open")).then(pl.lit("closed"))
                 .when(~c("__gate_big")).then(pl.lit("small deal"))}]


class ReadsTheGate:
    """A criterion, score_columns and the qualify batch hook, all reading the qualify_columns columns."""

    seen: list[list[str]] = []

    @hookimpl
    def register_criteria(self, register):
        register(Criterion(name="gate", block="win", max_points=3, label_zh="资格", label_en="gate",
                           points=pl.col("gate_qualified").cast(pl.Float64) * 3))

    @hookimpl
    def score_columns(self):
        return {"gate_label": pl.when(pl.col("gate_qualified")).then(pl.lit("go")).otherwise(pl.lit("stop"))}

    @hookimpl
    def qualify(self, batch):
        ReadsTheGate.seen.append(batch.columns)
        return batch.select(pl.col("gate_reason").fill_null("ok").alias("gate_echo"))


def test_qualify_columns_adds_expressions_seen_by_everything_after_them(export_csv, tmp_path):
    QualifyColumns.calls, ReadsTheGate.seen = [], []
    kam = kam_with(("gate_exprs", QualifyColumns()), ("reads_gate", ReadsTheGate()))
    scored = kamcore.score_frame(read_export(export_csv), kam=kam).scored
    assert scored["gate_qualified"].to_list() == [True, True, True, False, False]  # as the qualify hook above
    assert scored["gate_reason"].to_list() == [None, None, None, "small deal", "small deal"]
    assert scored["p_gate"].to_list() == [3.0, 3.0, 3.0, 0.0, 0.0]
    assert scored["gate_label"].to_list() == ["go", "go", "go", "stop", "stop"]
    assert scored["gate_echo"].to_list() == ["ok", "ok", "ok", "small deal", "small deal"]
    assert not [name for name in scored.columns if name.startswith("__")]  # the temporary columns are dropped
    columns = scored.columns  # expressions, then the qualify hook, before the criteria
    assert columns.index("gate_reason") < columns.index("gate_echo") < columns.index("p1_need")
    assert columns.index("next_action") < columns.index("gate_echo")  # the built-in qualification: expressions too
    assert len(QualifyColumns.calls) == 1  # once per run, with the batch's columns
    assert {"deal_size_base", "stage", "opportunity_id"} <= QualifyColumns.calls[0]
    assert isinstance(QualifyColumns.calls[0], frozenset) and "total_score" not in QualifyColumns.calls[0]
    assert all({"gate_qualified", "qualification"} <= set(cols) for cols in ReadsTheGate.seen)

    summary = run(kam, [export_csv], tmp_path / "out.csv")
    assert {"gate_qualified", "gate_reason", "gate_echo", "qualification"} <= set(summary["columns"]["scores"])
    assert pl.read_csv(tmp_path / "out.csv")["gate_reason"].to_list() == [None, None, None, "small deal",
                                                                         "small deal"]
    assert len(QualifyColumns.calls) == 2


def test_qualify_columns_sees_only_the_columns_the_export_has(tmp_path):
    QualifyColumns.calls = []
    path = _write(tmp_path / "few.csv", "编号,标的\nF-1,300万\nF-2,\n")
    scored = kamcore.score_frame(read_export(path), kam=kam_with(("gate_exprs", QualifyColumns()))).scored
    assert "stage" not in QualifyColumns.calls[0]
    assert scored["gate_reason"].to_list() == ["closed", "closed"]  # no stage column: not an open stage


# -- classify_stakeholders ----------------------------------------------------------------------

STAKEHOLDERS = """\
编号,姓名,职务,角色,性格,立场,项目影响力,亲近度
OPP-1,张三,总经理,关键决策者,老虎,支持,高,上升
OPP-1,李四,信息中心主任,技术把关者,猫头鹰,中立,中,持平
OPP-2,Jane Doe,CFO,economic buyer,peacock,oppose,high,down
"""


class TitleClassifier:
    """Infers influence from the title, overriding the built-in classifier (which is trylast)."""

    @hookimpl
    def classify_stakeholders(self, stakeholders):
        senior = pl.col("title").str.contains("总经理|CFO|CEO")
        return stakeholders.with_columns(pl.when(senior).then(pl.lit("high")).otherwise(pl.lit("low"))
                                         .alias("influence"), pl.lit("title").alias("influence_source"))


class Passes:
    calls = 0

    @hookimpl
    def classify_stakeholders(self, stakeholders, config):
        Passes.calls += 1
        return None


def test_classify_stakeholders_builtin_maps_the_codes(tmp_path):
    frame = pl.read_csv(_write(tmp_path / "people.csv", STAKEHOLDERS), infer_schema=False)
    result = kamcore.classify_stakeholders(frame, kam=kam_with())
    assert result["role"].to_list() == ["decision_maker", "technical_gatekeeper", "decision_maker"]
    assert result["style"].to_list() == ["tiger", "owl", "peacock"]
    assert result["stance"].to_list() == ["support", "neutral", "oppose"]
    assert result["influence_source"].to_list() == ["given"] * 3


def test_classify_stakeholders_first_result_of_a_plugin_wins(tmp_path):
    frame = pl.read_csv(_write(tmp_path / "people.csv", STAKEHOLDERS), infer_schema=False)
    result = kamcore.classify_stakeholders(frame, kam=kam_with(("titles", TitleClassifier())))
    assert result["influence"].to_list() == ["high", "low", "high"]
    assert result["influence_source"].to_list() == ["title"] * 3
    assert result["role"].to_list() == ["关键决策者", "技术把关者", "economic buyer"]  # the built-in did not run
    assert result["name"].to_list() == ["张三", "李四", "Jane Doe"]  # same rows, same order


def test_classify_stakeholders_none_passes_to_the_builtin(tmp_path):
    Passes.calls = 0
    frame = pl.read_csv(_write(tmp_path / "people.csv", STAKEHOLDERS), infer_schema=False)
    result = kamcore.classify_stakeholders(frame, kam=kam_with(("passes", Passes())))
    assert Passes.calls == 1
    assert result["role"].to_list() == ["decision_maker", "technical_gatekeeper", "decision_maker"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- score --------------------------------------------------------------------------------------


class EchoScore:
    """A Python batch hook: sees the scorecard's columns, returns new ones in batch order."""

    batches: list[int] = []

    @hookimpl
    def score(self, batch):  # asks only for what it needs: no config
        EchoScore.batches.append(batch.height)
        ids = batch.get_column("opportunity_id").to_list()
        totals = batch.get_column("total_score").to_list()
        return pl.DataFrame({"echo_id": ids,
                             "priority": [None if t is None else ("hot" if t >= 75 else "warm" if t >= 50 else "cold")
                                          for t in totals]},  # per-row ok: a test plugin
                            schema={"echo_id": pl.String, "priority": pl.String})


def test_score_adds_python_columns(export_csv):
    scored = kamcore.score_frame(read_export(export_csv), kam=kam_with(("echo", EchoScore()))).scored
    assert scored["priority"].to_list() == ["hot", "warm", "hot", "cold", "warm"]
    assert scored["echo_id"].to_list() == IDS


def test_score_keeps_batch_order_in_the_streaming_pipeline(tmp_path):
    EchoScore.batches = []
    rows = 60_000
    lines = ["编号,客户名称,项目的预算,客户的应用或项目,标的"]
    lines += [f"S-{i},客户{i % 97},{'有' if i % 3 else '无'},{'清楚' if i % 2 else '不清楚'},{i}万" for i in range(rows)]
    path = _write(tmp_path / "big.csv", "\n".join(lines) + "\n")
    summary = run(kam_with(("echo", EchoScore())), [path], tmp_path / "big.parquet")
    assert summary["rows"] == {"in": rows, "scored": rows, "rejected": 0}
    out = pl.read_parquet(tmp_path / "big.parquet")
    assert out.height == rows
    assert (out["echo_id"] == out["opportunity_id"]).all()  # every batch's new columns line up with its rows
    assert sum(EchoScore.batches) == rows and len(EchoScore.batches) > 2  # the empty probe, then real batches


# -- score_columns ------------------------------------------------------------------------------


class Expressions:
    received: list[tuple[int | None, str]] = []

    @hookimpl
    def score_columns(self, config, criteria):
        Expressions.received = [(k.number, k.name) for k in criteria]
        real = [k.column for k in criteria if k.block == "real"]
        return {"real_known": pl.sum_horizontal([pl.col(c).is_not_null() for c in real]).cast(pl.Int32),
                "score_gap": (pl.col("real_score") - pl.col("worth_score")).round(1)}


def test_score_columns_adds_expressions_and_sees_the_criteria_in_order(export_csv):
    kam = kam_with(("expressions", Expressions()), ("references", ReferencesCriteria()))
    scored = kamcore.score_frame(read_export(export_csv), kam=kam).scored
    assert [number for number, _ in Expressions.received] == [*range(1, 12), None]  # scorecard order
    assert Expressions.received[-2:] == [(11, "references"), (None, "few_competitors")]
    assert scored["real_known"].to_list() == [5, 5, 5, 5, 5]
    gap = [round(r - w, 1) for r, w in zip(scored["real_score"], scored["worth_score"])]
    assert scored["score_gap"].to_list() == pytest.approx(gap, abs=1e-9)


def test_score_columns_are_listed_in_the_run_summary(export_csv, tmp_path):
    summary = run(kam_with(("expressions", Expressions())), [export_csv], tmp_path / "out.csv")
    assert {"real_known", "score_gap", "band", "win_probability"} <= set(summary["columns"]["scores"])
    assert "real_known" in pl.read_csv(tmp_path / "out.csv").columns


# -- win_probability ----------------------------------------------------------------------------


class FlatProbability:
    @hookimpl
    def win_probability(self, criteria):
        assert criteria, "criteria are passed in"
        return (pl.col("real_score") / 200 + 0.25).round(3)


class NoOpinion:
    @hookimpl
    def win_probability(self, config, criteria):
        return None


def test_win_probability_first_result_of_a_plugin_overrides_the_scorecard(export_csv, tmp_path):
    kam = kam_with(("flat", FlatProbability()))
    scored = kamcore.score_frame(read_export(export_csv), kam=kam).scored
    expected = [r / 200 + 0.25 for r in scored["real_score"]]
    assert scored["win_probability"].to_list() == pytest.approx(expected, abs=0.0006)
    assert scored["win_probability"].to_list() != default_probabilities(export_csv)
    summary = run(kam, [export_csv], tmp_path / "out.csv")
    assert summary["win_probability_from"] == "flat"


def default_probabilities(export_csv: Path) -> list[float]:
    return kamcore.score_frame(read_export(export_csv), kam=kam_with()).scored["win_probability"].to_list()


def test_win_probability_none_falls_back_to_the_scorecard(export_csv, tmp_path):
    kam = kam_with(("no_opinion", NoOpinion()))
    assert kamcore.score_frame(read_export(export_csv), kam=kam).scored["win_probability"].to_list() == \
        default_probabilities(export_csv)
    assert run(kam, [export_csv], tmp_path / "out.csv")["win_probability_from"] == "scorecard"


# -- report_run ---------------------------------------------------------------------------------


class Reporter:
    received: list = []

    @hookimpl
    def report_run(self, config, columns):
        Reporter.received.append((config, columns))
        return {"columns": len(columns), "has_owner": "owner" in columns, "rules": config.sha256[:8],
                "notes": [f"{len(columns)} columns seen"]}


class Silent:
    @hookimpl
    def report_run(self, columns):
        return None


def test_report_run_writes_each_plugins_report_and_notes_to_the_summary(export_csv, tmp_path):
    Reporter.received = []
    summary = run(kam_with(("reporter", Reporter()), ("silent", Silent())), [export_csv], tmp_path / "out.csv")
    (config, columns), = Reporter.received  # once per run
    assert columns[:3] == ["opportunity_id", "account", "project_name"] and "owner" in columns
    assert "urgency" in columns and "p1_need" not in columns  # what scoring sees, before it adds its columns
    assert summary["reports"] == {"reporter": {"columns": len(columns), "has_owner": True,
                                               "rules": summary["config"]["sha256"][:8],
                                               "notes": [f"{len(columns)} columns seen"]}}
    assert f"{len(columns)} columns seen" in summary["notes"]


def test_report_run_is_told_the_same_columns_when_only_the_scores_are_written(export_csv, tmp_path):
    """--scores-only leaves text columns out of the query (notes, owner); the plugin hears of them all the same."""
    told = []
    for scores_only in (False, True):
        Reporter.received = []
        run(kam_with(("reporter", Reporter())), [export_csv], tmp_path / f"out{scores_only}.csv", scores_only=scores_only)
        told.append(Reporter.received[0][1])
    assert told[0] == told[1] and {"notes", "owner", "account"} <= set(told[1])
    assert "__filled" not in told[1]


def test_report_run_names_the_criteria_inputs_the_export_lacks_last(tmp_path):
    export = tmp_path / "few.csv"
    export.write_text("编号,项目的预算,负责人\nA-1,有,张三\n", encoding="utf-8")
    Reporter.received = []
    summary = run(kam_with(("reporter", Reporter())), [export], tmp_path / "out.csv")
    columns = Reporter.received[0][1]
    assert columns[:4] == ["opportunity_id", "budget_status", "owner", "value_flags"]  # the export's, then these:
    lacking = columns[4:]
    assert {"urgency", "margin", "deal_size_base"} <= set(lacking)
    assert [n for n in summary["notes"] if n.startswith("no column ")] == [
        f"no column {name!r} in the input: the criteria reading it score unknown" for name in lacking]


@pytest.mark.parametrize("report, why", [
    ({"when": {1, 2}}, "not JSON"),
    ({"ratio": float("nan")}, "not JSON"),
    ({1: "a"}, "expected a dict with str keys"),
    ("text", "returned str from report_run"),
    ({"notes": "one note"}, "not a list of strings"),
    ({"notes": [1]}, "not a list of strings"),
])
def test_report_run_that_is_not_json_stops_the_run_before_anything_is_replaced(export_csv, tmp_path, report, why):
    class Bad:
        @hookimpl
        def report_run(self):
            return report

    out = tmp_path / "out.csv"
    out.write_text("the previous output\n", encoding="utf-8")
    with pytest.raises(kamcore.errors.PluginError, match=f"plugin 'bad'.*{why}"):
        run(kam_with(("bad", Bad())), [export_csv], out)
    assert out.read_text(encoding="utf-8") == "the previous output\n"
    assert not (tmp_path / "out.csv.summary.json").exists()


# -- every hook at once, one row or many --------------------------------------------------------


def test_score_one_gives_the_batch_numbers_with_plugins(export_csv):
    kam = kam_with(("references", ReferencesCriteria()), ("echo", EchoScore()), ("gate", Qualify()),
                   ("expressions", Expressions()), ("flat", FlatProbability()))
    frame = read_export(export_csv)
    batch = kamcore.score_frame(frame, kam=kam).scored
    for index, row in enumerate(frame.iter_rows(named=True)):  # per-row ok: five rows
        assert kamcore.score_one(row, kam=kam) == batch.row(index, named=True)


@pytest.mark.parametrize("name", ["opportunities_zh.csv", "opportunities_en.csv"])
def test_every_hook_together_on_the_example_exports(name, tmp_path):
    source = Path(__file__).parent.parent / "examples" / name
    assert source.is_file(), f"{source} is missing"
    kam = kam_with(("references", ReferencesCriteria()), ("echo", EchoScore()), ("gate", Qualify()),
                   ("expressions", Expressions()), ("flat", FlatProbability()), ("tsv_writer", TsvWriter()),
                   ("records", RecordsImporter()))
    summary = run(kam, [source], tmp_path / "out.tsv")
    assert summary["inputs"][0]["importer"] == "csv"  # the plugin importer does not claim a CSV file
    assert summary["rows"]["in"] == summary["rows"]["scored"] + summary["rows"]["rejected"]
    assert summary["win_probability_from"] == "flat"
    out = pl.read_csv(tmp_path / "out.tsv", separator="\t", infer_schema_length=None)
    assert out.height == summary["rows"]["scored"] > 0
    assert (out["echo_id"].cast(pl.String) == out["opportunity_id"].cast(pl.String)).all()
    assert {"p11_references", "p_few_competitors", "win_score", "qualified", "real_known", "priority"} <= set(out.columns)
    assert (out["p11_references"].is_null() == out["notes"].is_null()).all()
