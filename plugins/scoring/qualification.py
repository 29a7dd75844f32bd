"""Built-in qualification (资格审查): the sales stages (阶段) and the development stages (大客户开发流程) as
gates that require information, "有则进入下一阶段，无则终止".

The gates and the evidence they read are data (``[qualification]`` in kam.toml, see qualification.toml).
Through the ``qualify`` batch hook, before the criteria, every opportunity gets:

- ``qualification``: ``qualified``, ``needs_info`` or ``disqualified`` (empty for won and lost deals);
- ``supported_stage`` / ``supported_dev_stage``: the furthest stage the evidence supports;
- ``missing``: what the deal's stage needs and the evidence does not show (zh / en);
- ``next_action``: what to do next, in words (zh / en).

It reads the stakeholder coverage columns (``decision_maker_known``, ``coach_present`` …) when
``kam score --stakeholders`` gives them, and the seed's 人脉资源 (``contacts``) otherwise.
"""

from __future__ import annotations

import re
from importlib.resources import files

from kamcore import hookimpl
from kamcore.errors import ConfigError
from kamcore.schema import OPPORTUNITY

DEFAULTS = files(__package__).joinpath("qualification.toml").read_text(encoding="utf-8")
TRACKS = (("stage", "sales_stages", "supported_stage"), ("dev_stage", "dev_stages", "supported_dev_stage"))
CLOSED = ("won", "lost")
MET, MISSING, FAILED = 2, 1, 0
FINAL_ACTION = "促成成交：高层沟通、考察、系统支持 / close: executive meetings, site visits, system support"
UNKNOWN_STAGE = "销售阶段 / the sales stage"
UNKNOWN_ACTION = "确认机会所处的销售阶段 / confirm which stage the deal is in"


def _words(value, where: str) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list")
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in value]


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def fact_state(name: str, spec: dict, columns: set[str]):
    """MET, FAILED or MISSING per row for one fact, from the sources whose column the batch has."""
    import polars as pl

    c = pl.col
    where = f"[qualification.facts.{name}]"
    sources = spec.get("sources")
    if not isinstance(sources, list) or not sources:
        raise ConfigError(f"{where} needs a list of sources")
    met, failed = [], []
    for i, source in enumerate(sources):
        here = f"{where}.sources[{i}]"
        if not isinstance(source, dict) or not isinstance(source.get("column"), str):
            raise ConfigError(f"{here} needs a column")
        column = source["column"]
        kinds = {"met", "failed", "known", "contains", "met_above", "met_below"} & set(source)
        if not kinds - {"failed"}:
            raise ConfigError(f"{here} needs one of met, known, contains, met_above, met_below")
        if column not in columns:
            continue
        text = c(column).cast(pl.String)  # codes are lower case already; true / false for flags
        if "met" in source:
            met.append(text.is_in(_words(source["met"], f"{here}.met")))
        if "failed" in source:
            failed.append(text.is_in(_words(source["failed"], f"{here}.failed")))
        if source.get("known"):
            met.append(c(column).is_not_null())
        if "contains" in source:
            words = _words(source["contains"], f"{here}.contains")
            met.append(text.str.contains("(?i)" + "|".join(re.escape(w) for w in words)))
        number = c(column).cast(pl.Float64, strict=False)
        if "met_above" in source:
            met.append(number > _number(source["met_above"], f"{here}.met_above"))
        if "met_below" in source:
            met.append(number < _number(source["met_below"], f"{here}.met_below"))
    is_met = pl.any_horizontal(met).fill_null(False) if met else pl.lit(False)
    is_failed = pl.any_horizontal(failed).fill_null(False) if failed else pl.lit(False)
    return pl.when(is_met).then(MET).when(is_failed).then(FAILED).otherwise(MISSING)


class Track:
    """One ladder of stages (sales or development) compiled into expressions."""

    def __init__(self, column: str, key: str, output: str, settings: dict, states: dict):
        stages = settings.get(key, {})
        if not isinstance(stages, dict) or not stages:
            raise ConfigError(f"[qualification.{key}] must be a table of stage = [facts]")
        codes = OPPORTUNITY[column].vocab
        self.column, self.output = column, output
        self.stages = list(stages)
        for stage in self.stages:
            if stage not in codes:
                raise ConfigError(f"[qualification.{key}]: {stage!r} is not a {column} code ({', '.join(codes)})")
        self.first: dict[str, int] = {}  # fact -> index of the first stage that needs it
        for index, stage in enumerate(self.stages):
            for fact in _words(stages[stage], f"[qualification.{key}].{stage}"):
                if fact not in states:
                    raise ConfigError(f"[qualification.{key}].{stage}: no fact named {fact!r} in [qualification.facts]")
                self.first.setdefault(fact, index)
        self.states = states
        self.names = settings.get("stage_names", {})

    def name(self, stage: str) -> str:
        return str(self.names.get(stage, stage))

    def claimed(self, columns: set[str]):
        """The index of the deal's stage on this ladder (null when unknown or not on it)."""
        import polars as pl

        claimed = pl.lit(None, pl.Int32)
        if self.column in columns:
            for index, stage in enumerate(self.stages):
                claimed = pl.when(pl.col(self.column) == stage).then(pl.lit(index, pl.Int32)).otherwise(claimed)
        return claimed

    def expressions(self, bits: dict[str, int], claimed_column: str):
        """Integer expressions per row: claimed stage index, verdict (null when the stage is unknown),
        bit masks of the facts missing / failed for the claimed stage and missing for the next one, and
        the furthest supported stage. Text is made later, once per distinct combination."""
        import polars as pl

        c = pl.col
        claimed = c(claimed_column)
        state = {f: c(f"__fact_{f}") for f in self.first}

        def mask(conditions: dict) -> pl.Expr:
            if not conditions:
                return pl.lit(0, pl.Int64)
            return pl.sum_horizontal([cond.fill_null(False).cast(pl.Int64) * (1 << bits[f])
                                      for f, cond in conditions.items()])

        missing = mask({f: (claimed >= i) & (state[f] != MET) for f, i in self.first.items()})
        failed = mask({f: (claimed >= i) & (state[f] == FAILED) for f, i in self.first.items()})
        upcoming = mask({f: (claimed + 1 == i) & (state[f] != MET) for f, i in self.first.items()})
        return {"claimed": claimed, "missing": missing, "failed": failed, "upcoming": upcoming,
                "supported": self.furthest(state)}

    @staticmethod
    def verdict(prefix: str):
        """MET, MISSING or FAILED from the ladder's mask columns; null when the stage is unknown."""
        import polars as pl

        c = pl.col
        return (pl.when(c(f"{prefix}claimed").is_null()).then(pl.lit(None, pl.Int32))
                .when(c(f"{prefix}failed") > 0).then(pl.lit(FAILED)).when(c(f"{prefix}missing") > 0)
                .then(pl.lit(MISSING)).otherwise(pl.lit(MET)))

    def furthest(self, state: dict):
        """The last stage whose facts, and every earlier stage's facts, are all met (gates are cumulative)."""
        import polars as pl

        chain = None
        for index in range(len(self.stages) - 1, -1, -1):
            ok = pl.all_horizontal([state[f] == MET for f, i in self.first.items() if i <= index] or [pl.lit(True)])
            stage = pl.lit(self.stages[index])
            chain = pl.when(ok).then(stage) if chain is None else chain.when(ok).then(stage)
        return chain.otherwise(pl.lit(None, pl.String))

    def ordered(self, mask: int, bits: dict[str, int]) -> list[str]:
        """The facts in ``mask``, in the order the stages need them."""
        return [f for f in sorted(self.first, key=lambda f: (self.first[f], bits[f])) if mask >> bits[f] & 1]

    def texts(self, key: dict, facts: dict, bits: dict[str, int]) -> tuple:
        """(qualification, missing, next_action) for one combination of the integer columns."""
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
                action = FINAL_ACTION
        return label, "; ".join(missing) or None, action


_PLANS: dict = {}  # (id of config, columns) -> (config, plan): built once per run, not once per batch


def _plan(config, columns: frozenset):
    """The expressions and the words cache for one run; building them costs more than running them."""
    import polars as pl

    c = pl.col
    cached = _PLANS.get((id(config), columns))
    if cached is not None and cached[0] is config:
        return cached[1]
    settings = config.section("qualification")
    facts = settings.get("facts", {})
    if not isinstance(facts, dict) or not facts:
        raise ConfigError("[qualification.facts] must be a table of facts")
    if len(facts) > 62:
        raise ConfigError("[qualification.facts] has too many facts (at most 62)")
    states = {name: fact_state(name, spec, columns) for name, spec in facts.items()}
    bits = {name: i for i, name in enumerate(facts)}
    tracks = [Track(column, key, output, settings, states) for column, key, output in TRACKS]
    keys = ["claimed", "verdict", "missing", "failed", "upcoming"]
    ladders = list(zip(("sales", "dev"), tracks))
    use_dev = c("__sales_verdict").is_null() | (c("__dev_verdict").is_not_null()
                                                 & (c("__dev_verdict") < c("__sales_verdict")))
    plan = {
        "facts": facts, "bits": bits, "tracks": tracks, "words": {},
        # in steps, each evaluated once: the verdicts feed both the choice of ladder and every chosen column
        "steps": [
            ("select", [s.alias(f"__fact_{n}") for n, s in states.items()]
             + [c(t.column) if t.column in columns else pl.lit(None, pl.String).alias(t.column) for t in tracks]),
            ("with", [t.claimed(columns).alias(f"__{name}_at") for name, t in ladders]),
            ("select", [c("stage").is_in(list(CLOSED)).fill_null(False).alias("__closed"),
                        *[e.alias(f"__{name}_{k}") for name, t in ladders
                          for k, e in t.expressions(bits, f"__{name}_at").items()]]),
            ("with", [Track.verdict(f"__{name}_").alias(f"__{name}_verdict") for name, _ in ladders]),
            ("with", [use_dev.alias("__use_dev")]),
            ("select", ["__closed",
                        pl.when(c("__use_dev")).then(pl.lit(1)).otherwise(pl.lit(0)).cast(pl.Int8).alias("__track"),
                        *[pl.when(c("__use_dev")).then(c(f"__dev_{k}")).otherwise(c(f"__sales_{k}")).alias(f"__{k}")
                          for k in keys],
                        c("__sales_supported").alias("supported_stage"),
                        c("__dev_supported").alias("supported_dev_stage")]),
        ],
        "names": ["__closed", "__track", *[f"__{k}" for k in keys]],
    }
    _PLANS.clear()  # one run at a time: keep only the current plan
    _PLANS[(id(config), columns)] = (config, plan)
    return plan


def qualify_frame(batch, config):
    """The qualification columns for a batch (the same columns and types for every batch).

    The gates run as integer expressions; the words are made once per distinct combination of stage,
    verdict and missing facts (a few dozen per run), not once per row.
    """
    import polars as pl

    plan = _plan(config, frozenset(batch.columns))
    frame = batch.lazy()
    for kind, exprs in plan["steps"]:
        frame = frame.select(exprs) if kind == "select" else frame.with_columns(exprs)
    frame = frame.collect()  # one query per batch: each eager step would cost a round trip of its own
    names, words, tracks = plan["names"], plan["words"], plan["tracks"]
    combos = frame.select(names).unique()
    texts_by_combo = []
    for row in combos.iter_rows():  # per-row ok: distinct combinations only, cached across batches
        if row not in words:
            key = dict(zip((n.removeprefix("__") for n in names), row))
            if key["closed"]:
                words[row] = (None, None, None)
            elif key["verdict"] is None:
                words[row] = ("needs_info", UNKNOWN_STAGE, UNKNOWN_ACTION)
            else:
                words[row] = tracks[key["track"]].texts(key, plan["facts"], plan["bits"])
        texts_by_combo.append(words[row])
    lookup = combos.with_columns(pl.Series(name, [t[i] for t in texts_by_combo], dtype=pl.String)
                                 for i, name in enumerate(("qualification", "missing", "next_action")))
    joined = frame.join(lookup, on=names, how="left", nulls_equal=True, maintain_order="left")
    return joined.select("qualification", "supported_stage", "supported_dev_stage", "missing", "next_action")


@hookimpl
def register_config_defaults(register):
    register("qualification", DEFAULTS)


@hookimpl
def qualify(batch, config):
    if config.section("qualification").get("enabled", True) is False:
        return None
    return qualify_frame(batch, config)
