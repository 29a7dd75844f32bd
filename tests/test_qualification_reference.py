"""The built-in qualification as polars expressions (``qualify_columns``) gives, row for row, the words of
the per-batch Python algorithm it replaced, kept below as the reference: on every sales stage × every
development stage × every combination of fact states, with the default gates and with a ladder longer
than one table of `missing` words, and on real column values with and without stakeholder columns.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import kam_env  # noqa: E402,F401

from kamcore.config import load_config  # noqa: E402
from kamcore.plugins import get_kam  # noqa: E402
from kamcore_plugins.scoring import qualification  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
COLUMNS = ["qualification", "supported_stage", "supported_dev_stage", "missing", "next_action"]
STAGES = [None, "potential", "intent", "solution", "negotiation", "won", "lost", "bogus"]
DEV_STAGES = [None, "target", "information", "assessment", "relationship", "closing"]


# -- the reference: the per-batch algorithm of the qualify hook, as it was -----------------------------------

MET, MISSING, FAILED = 2, 1, 0
TRACKS = (("stage", "sales_stages", "supported_stage"), ("dev_stage", "dev_stages", "supported_dev_stage"))


def ref_fact_state(name: str, spec: dict, columns: set[str]):
    c = pl.col
    met, failed = [], []
    for source in spec["sources"]:
        column = source["column"]
        if column not in columns:
            continue
        text = c(column).cast(pl.String)
        if "met" in source:
            met.append(text.is_in(qualification._words(source["met"], "")))
        if "failed" in source:
            failed.append(text.is_in(qualification._words(source["failed"], "")))
        if source.get("known"):
            met.append(c(column).is_not_null())
        if "contains" in source:
            words = qualification._words(source["contains"], "")
            met.append(text.str.contains("(?i)" + "|".join(re.escape(w) for w in words)))
        number = c(column).cast(pl.Float64, strict=False)
        if "met_above" in source:
            met.append(number > float(source["met_above"]))
        if "met_below" in source:
            met.append(number < float(source["met_below"]))
    is_met = pl.any_horizontal(met).fill_null(False) if met else pl.lit(False)
    is_failed = pl.any_horizontal(failed).fill_null(False) if failed else pl.lit(False)
    return pl.when(is_met).then(MET).when(is_failed).then(FAILED).otherwise(MISSING)


class RefTrack:
    def __init__(self, column: str, key: str, settings: dict, states: dict):
        stages = settings[key]
        self.column, self.stages = column, list(stages)
        self.first: dict[str, int] = {}
        for index, stage in enumerate(self.stages):
            for fact in stages[stage]:
                self.first.setdefault(fact, index)
        self.names = settings.get("stage_names", {})

    def name(self, stage: str) -> str:
        return str(self.names.get(stage, stage))

    def claimed(self, columns: set[str]):
        claimed = pl.lit(None, pl.Int32)
        if self.column in columns:
            for index, stage in enumerate(self.stages):
                claimed = pl.when(pl.col(self.column) == stage).then(pl.lit(index, pl.Int32)).otherwise(claimed)
        return claimed

    def expressions(self, bits: dict[str, int], claimed_column: str):
        c = pl.col
        claimed = c(claimed_column)
        state = {f: c(f"__fact_{f}") for f in self.first}

        def mask(conditions: dict) -> pl.Expr:
            if not conditions:
                return pl.lit(0, pl.Int64)
            return pl.sum_horizontal([cond.fill_null(False).cast(pl.Int64) * (1 << bits[f])
                                      for f, cond in conditions.items()])

        return {"claimed": claimed,
                "missing": mask({f: (claimed >= i) & (state[f] != MET) for f, i in self.first.items()}),
                "failed": mask({f: (claimed >= i) & (state[f] == FAILED) for f, i in self.first.items()}),
                "upcoming": mask({f: (claimed + 1 == i) & (state[f] != MET) for f, i in self.first.items()}),
                "supported": self.furthest(state)}

    @staticmethod
    def verdict(prefix: str):
        c = pl.col
        return (pl.when(c(f"{prefix}claimed").is_null()).then(pl.lit(None, pl.Int32))
                .when(c(f"{prefix}failed") > 0).then(pl.lit(FAILED)).when(c(f"{prefix}missing") > 0)
                .then(pl.lit(MISSING)).otherwise(pl.lit(MET)))

    def furthest(self, state: dict):
        chain = None
        for index in range(len(self.stages) - 1, -1, -1):
            ok = pl.all_horizontal([state[f] == MET for f, i in self.first.items() if i <= index] or [pl.lit(True)])
            stage = pl.lit(self.stages[index])
            chain = pl.when(ok).then(stage) if chain is None else chain.when(ok).then(stage)
        return chain.otherwise(pl.lit(None, pl.String))

    def ordered(self, mask: int, bits: dict[str, int]) -> list[str]:
        return [f for f in sorted(self.first, key=lambda f: (self.first[f], bits[f])) if mask >> bits[f] & 1]

    def texts(self, key: dict, facts: dict, bits: dict[str, int]) -> tuple:
        verdict, claimed = key["verdict"], key["claimed"]
        label = {FAILED: "disqualified", MISSING: "needs_info", MET: "qualified"}[verdict]
        missing = [str(facts[f].get("label", f)) for f in self.ordered(key["missing"], bits)]
        if verdict == FAILED:
            first = self.ordered(key["failed"], bits)[0]
            action = str(facts[first].get("fail_action", facts[first].get("action", first)))
        elif verdict == MISSING:
            first = self.ordered(key["missing"], bits)[0]
            action = str(facts[first].get("action", first))
        else:
            upcoming = self.ordered(key["upcoming"], bits)
            if upcoming:
                action = str(facts[upcoming[0]].get("action", upcoming[0]))
            elif claimed + 1 < len(self.stages):
                zh, _, en = self.name(self.stages[claimed + 1]).partition(" / ")
                action = f"推进到下一阶段：{zh} / move on to the next stage: {en or zh}"
            else:
                action = qualification.FINAL_ACTION
        return label, "; ".join(missing) or None, action


def reference(batch: pl.DataFrame, config) -> pl.DataFrame:
    """The qualification columns as the per-batch qualify hook made them (integer masks as expressions, then
    the words per distinct combination in Python, joined back)."""
    c = pl.col
    columns = set(batch.columns)
    settings = config.section("qualification")
    facts = settings["facts"]
    states = {name: ref_fact_state(name, spec, columns) for name, spec in facts.items()}
    bits = {name: i for i, name in enumerate(facts)}
    tracks = [RefTrack(column, key, settings, states) for column, key, _ in TRACKS]
    keys = ["claimed", "verdict", "missing", "failed", "upcoming"]
    ladders = list(zip(("sales", "dev"), tracks))
    use_dev = c("__sales_verdict").is_null() | (c("__dev_verdict").is_not_null()
                                                 & (c("__dev_verdict") < c("__sales_verdict")))
    frame = (batch.lazy()
             .select([s.alias(f"__fact_{n}") for n, s in states.items()]
                     + [c(t.column) if t.column in columns else pl.lit(None, pl.String).alias(t.column)
                        for t in tracks])
             .with_columns([t.claimed(columns).alias(f"__{name}_at") for name, t in ladders])
             .select([c("stage").is_in(["won", "lost"]).fill_null(False).alias("__closed"),
                      *[e.alias(f"__{name}_{k}") for name, t in ladders
                        for k, e in t.expressions(bits, f"__{name}_at").items()]])
             .with_columns([RefTrack.verdict(f"__{name}_").alias(f"__{name}_verdict") for name, _ in ladders])
             .with_columns([use_dev.alias("__use_dev")])
             .select(["__closed",
                      pl.when(c("__use_dev")).then(pl.lit(1)).otherwise(pl.lit(0)).cast(pl.Int8).alias("__track"),
                      *[pl.when(c("__use_dev")).then(c(f"__dev_{k}")).otherwise(c(f"__sales_{k}")).alias(f"__{k}")
                        for k in keys],
                      c("__sales_supported").alias("supported_stage"),
                      c("__dev_supported").alias("supported_dev_stage")])
             .collect())
    names = ["__closed", "__track", *[f"__{k}" for k in keys]]
    combos = frame.select(names).unique()
    texts = []
    for row in combos.iter_rows():  # per-row ok: distinct combinations only (the reference)
        key = dict(zip((n.removeprefix("__") for n in names), row))
        if key["closed"]:
            texts.append((None, None, None))
        elif key["verdict"] is None:
            texts.append(("needs_info", qualification.UNKNOWN_STAGE, qualification.UNKNOWN_ACTION))
        else:
            texts.append(tracks[key["track"]].texts(key, facts, bits))
    lookup = combos.with_columns(pl.Series(name, [t[i] for t in texts], dtype=pl.String)
                                 for i, name in enumerate(("qualification", "missing", "next_action")))
    joined = frame.join(lookup, on=names, how="left", nulls_equal=True, maintain_order="left")
    return joined.select(COLUMNS)


# -- the expressions, as the core applies them -----------------------------------------------------------------


def expressions(batch: pl.DataFrame, config) -> pl.DataFrame:
    frame = batch.lazy()
    steps = qualification.qualify_columns(config=config, columns=frozenset(batch.columns))
    for step in steps:
        frame = frame.with_columns(expr.alias(name) for name, expr in step.items())
    return frame.collect(engine="streaming").select(COLUMNS)


def assert_same(batch: pl.DataFrame, config) -> pl.DataFrame:
    got, want = expressions(batch, config), reference(batch, config)
    assert got.schema == want.schema
    differ = batch.with_row_index().hstack(got.select(pl.all().name.prefix("got_"))).filter(
        pl.any_horizontal(got[n].ne_missing(want[n]) for n in COLUMNS))
    assert differ.height == 0, f"{differ.height} rows differ, e.g. {differ.head(3).to_dicts()}"
    return got


def config_with(tmp_path, text: str = ""):
    (tmp_path / "kam.toml").write_text(text, encoding="utf-8")
    return load_config(tmp_path / "kam.toml", get_kam().config_defaults())


def product(**values: list) -> pl.DataFrame:
    """Every combination of the given column values, one row each."""
    frame = None
    for name, options in values.items():
        column = pl.DataFrame({name: options}, schema={name: pl.String})
        frame = column if frame is None else frame.join(column, how="cross")
    return frame


def fact_per_column(config) -> tuple[str, pl.DataFrame]:
    """kam.toml giving every fact a column of its own (met by "y", failed by "n" where the fact can fail),
    and every combination of the facts' states, crossed with every sales and development stage."""
    facts = config.section("qualification")["facts"]
    lines, values = [], {}
    for name, spec in facts.items():
        can_fail = any("failed" in s for s in spec["sources"])
        lines.append(f'[qualification.facts.{name}]\nsources = [{{ column = "f_{name}", met = ["y"]'
                     + (', failed = ["n"]' if can_fail else "") + " }]\n")
        values[f"f_{name}"] = ["y", None, "n"] if can_fail else ["y", None]
    frame = product(stage=STAGES, dev_stage=DEV_STAGES).join(product(**values), how="cross")
    return "".join(lines), frame


def test_every_stage_and_every_combination_of_fact_states(tmp_path):
    text, frame = fact_per_column(config_with(tmp_path))
    config = config_with(tmp_path, text)
    assert frame.height == len(STAGES) * len(DEV_STAGES) * 2 ** 10 * 3 ** 3  # 13 facts, 3 of which can fail
    got = assert_same(frame, config)
    assert set(got["qualification"].drop_nulls()) == {"qualified", "needs_info", "disqualified"}
    assert got["missing"].n_unique() > 1000 and got["next_action"].n_unique() > 20
    assert got["supported_stage"].null_count() == 0  # the first stage needs nothing
    assert set(got["supported_dev_stage"]) == set(DEV_STAGES[1:])


def test_a_ladder_longer_than_one_table_of_missing_words(tmp_path):
    """13 facts on the sales ladder: its missing facts are looked up in two tables and joined."""
    facts = "".join(f'[qualification.facts.x{i}]\nlabel = "x{i}"\nsources = [{{ column = "x{i}", met = ["y"]'
                    f'{", failed = [" + chr(34) + "n" + chr(34) + "]" if i % 5 == 0 else ""} }}]\n'
                    for i in range(13))
    config = config_with(tmp_path, facts + '[qualification.sales_stages]\npotential = ["x12"]\n'
                         'intent = ["x0", "x1", "x2", "x3", "x4", "x5"]\nsolution = ["x6", "x7", "x8", "x9"]\n'
                         'negotiation = ["x10", "x11"]\n')
    assert len(qualification.Track("sales", "stage", "sales_stages", "supported_stage",
                                   config.section("qualification"), config.section("qualification")["facts"]).order) \
        > qualification.GROUP
    options = {f"x{i}": ["y", None] + (["n"] if i % 5 == 0 else []) for i in range(13)}
    frame = product(stage=STAGES[:5], dev_stage=DEV_STAGES[:3], **{k: v for k, v in options.items() if k != "x12"})
    frame = frame.with_columns(pl.lit("y").alias("x12"))
    got = assert_same(frame, config)
    assert got["missing"].str.count_matches("; ").max() >= 10  # words from both tables, in stage order


def test_real_column_values_with_and_without_stakeholder_columns(tmp_path):
    config = config_with(tmp_path)
    export = product(stage=STAGES, dev_stage=DEV_STAGES, need_clarity=[None, "clear", "partial", "unclear"],
                     budget_status=[None, "allocated", "partial", "none"], funding_status=[None, "in_place", "partial"],
                     approval_status=[None, "approved", "in_progress"],
                     contacts=[None, "决策者、支持者", "教练", "Economic Buyer; coach", "someone"],
                     decision_maker_stance=[None, "support", "oppose"], purchase_date=[None, "2025-09-01"])
    export = export.with_columns(pl.col("purchase_date").str.to_date(), pl.lit(1.5).alias("deal_size"))
    assert_same(export, config)
    coverage = product(stakeholder_count=["0", "3"], decision_maker_known=["false", "true"],
                       coach_present=["false", "true"], relationship_down=["0", "2"])
    coverage = coverage.with_columns(pl.col("stakeholder_count", "relationship_down").cast(pl.Int32),
                                     pl.col("decision_maker_known", "coach_present") == "true")
    people = export.filter(pl.col("contacts").is_null() & pl.col("purchase_date").is_not_null()).drop("contacts")
    assert_same(people.join(coverage, how="cross"), config)  # the summarise_stakeholders columns, as joined on
    assert_same(export.select("need_clarity", "contacts"), config)  # no stage columns at all

