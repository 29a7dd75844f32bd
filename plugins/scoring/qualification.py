"""Built-in qualification (资格审查): the sales stages (阶段) and the development stages (大客户开发流程) as
gates that require information, "有则进入下一阶段，无则终止".

The gates and the evidence they read are data (``[qualification]`` in kam.toml, see qualification.toml).
Through the ``qualify_columns`` hook, as polars expressions evaluated inside the streaming query before
the criteria, every opportunity gets:

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
TRACKS = (("sales", "stage", "sales_stages", "supported_stage"),
          ("dev", "dev_stage", "dev_stages", "supported_dev_stage"))
CLOSED = ("won", "lost")
MET, MISSING, FAILED = 2, 1, 0
VERDICTS = ["disqualified", "needs_info", "qualified"]  # by FAILED, MISSING, MET
VERDICT_ZH = {"qualified": "合格", "needs_info": "缺信息", "disqualified": "不合格"}
FINAL_ACTION = "促成成交：高层沟通、考察、系统支持 / close: executive meetings, site visits, system support"
UNKNOWN_STAGE = "销售阶段 / the sales stage"
UNKNOWN_ACTION = "确认机会所处的销售阶段 / confirm which stage the deal is in"
TMP = "__qualification_"  # temporary columns between the steps, dropped by the core after the last one
GROUP = 10  # facts per table of `missing` words (2 ** GROUP entries): a longer ladder uses a table per group


def _words(value, where: str) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list")
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in value]


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def _one_of(text, words: list[str]):
    """``text.is_in(words)``; a few comparisons are faster than a set lookup for the short lists of codes."""
    import polars as pl

    if len(words) > 8:
        return text.is_in(words)
    return pl.any_horizontal([text == pl.lit(w, pl.String) for w in words]) if words else pl.lit(False)


def fact_tests(name: str, spec: dict, columns: frozenset[str]):
    """(met, failed) per row for one fact, from the sources whose column the batch has: two boolean
    expressions, ``failed`` None when no source can fail. The fact is met when ``met``, failed when not met
    and ``failed``, and missing otherwise."""
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
            met.append(_one_of(text, _words(source["met"], f"{here}.met")))
        if "failed" in source:
            failed.append(_one_of(text, _words(source["failed"], f"{here}.failed")))
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
    return is_met, pl.any_horizontal(failed).fill_null(False) if failed else None


class Track:
    """One ladder of stages (sales or development) compiled into integer expressions.

    The ladder's facts get one bit each, in the order the stages need them (then in the order of
    [qualification.facts]), so the first fact of a mask is its lowest bit and the facts a stage needs,
    with the earlier stages', are the lowest ``count[stage]`` bits."""

    def __init__(self, name: str, column: str, key: str, output: str, settings: dict, facts: dict):
        stages = settings.get(key, {})
        if not isinstance(stages, dict) or not stages:
            raise ConfigError(f"[qualification.{key}] must be a table of stage = [facts]")
        codes = OPPORTUNITY[column].vocab
        self.name, self.column, self.output = name, column, output
        self.stages = list(stages)
        for stage in self.stages:
            if stage not in codes:
                raise ConfigError(f"[qualification.{key}]: {stage!r} is not a {column} code ({', '.join(codes)})")
        first: dict[str, int] = {}  # fact -> index of the first stage that needs it
        for index, stage in enumerate(self.stages):
            for fact in _words(stages[stage], f"[qualification.{key}].{stage}"):
                if fact not in facts:
                    raise ConfigError(f"[qualification.{key}].{stage}: no fact named {fact!r} in [qualification.facts]")
                first.setdefault(fact, index)
        listed = list(facts)
        self.order = sorted(first, key=lambda f: (first[f], listed.index(f)))  # fact of bit 0, bit 1 …
        self.count = [sum(i <= index for i in first.values()) for index in range(len(self.stages))]
        self.names = settings.get("stage_names", {})

    def stage_name(self, stage: str) -> str:
        return str(self.names.get(stage, stage))

    def needed(self, index: int) -> int:
        """The mask of the facts the stage ``index`` needs, with the earlier stages'."""
        return (1 << self.count[index]) - 1

    def claimed(self, columns: frozenset[str]):
        """The index of the deal's stage on this ladder (null when unknown or not on it)."""
        import polars as pl

        if self.column not in columns:
            return pl.lit(None, pl.Int64)
        chain = None
        for index, stage in enumerate(self.stages):
            is_stage = pl.col(self.column) == pl.lit(stage, pl.String)
            chain = (pl.when(is_stage) if chain is None else chain.when(is_stage)).then(pl.lit(index, pl.Int64))
        return chain.otherwise(pl.lit(None, pl.Int64))

    def mask(self, bits: dict[str, object]):
        """An Int64 with the bit of each fact whose boolean expression in ``bits`` is true."""
        import polars as pl

        terms = [pl.when(test).then(pl.lit(1 << self.order.index(f), pl.Int64)).otherwise(pl.lit(0, pl.Int64))
                 for f, test in bits.items() if f in self.order]
        return pl.sum_horizontal(terms) if terms else pl.lit(0, pl.Int64)

    def stage_masks(self, claimed):
        """(needed, upcoming) per row: the facts needed up to the claimed stage, and the facts the next
        stage adds (null when the stage is unknown)."""
        import polars as pl

        last = len(self.stages) - 1
        index = range(len(self.stages))
        upcoming = [self.needed(i + 1) ^ self.needed(i) if i < last else 0 for i in index]
        return (lookup(claimed, [self.needed(i) for i in index], pl.Int64), lookup(claimed, upcoming, pl.Int64))

    def action_key(self, claimed, missing, failing, upcoming):
        """What to do next, as a key of :meth:`actions`: the first failed fact's way out, else the first missing
        fact's action, else the first fact the next stage needs, else the next stage, else closing."""
        import polars as pl

        n = len(self.order)
        first = lambda mask: mask.bitwise_trailing_zeros().cast(pl.Int64)  # noqa: E731 - the lowest bit
        return (pl.when(failing != 0).then(first(failing)).when(missing != 0).then(n + first(missing))
                .when(upcoming != 0).then(2 * n + first(upcoming)).otherwise(3 * n + claimed))

    def actions(self, facts: dict) -> list[str]:
        """The words of every :meth:`action_key`, by key."""
        def action(f: str, failing: bool = False) -> str:
            spec = facts[f]
            return str(spec.get("fail_action", spec.get("action", f)) if failing else spec.get("action", f))

        words = [action(f, failing=True) for f in self.order] + [action(f) for f in self.order] * 2
        for stage in self.stages[1:]:
            zh, _, en = self.stage_name(stage).partition(" / ")
            words.append(f"推进到下一阶段：{zh} / move on to the next stage: {en or zh}")
        return words + [FINAL_ACTION]

    def labels(self, facts: dict, mask: int) -> str | None:
        """The labels of the facts in ``mask``, in order."""
        return "; ".join(str(facts[f].get("label", f)) for bit, f in enumerate(self.order) if mask >> bit & 1) or None

    def supported(self, unmet):
        """The furthest stage whose facts, and every earlier stage's, are all met (gates are cumulative): found
        from the lowest unmet fact."""
        import polars as pl

        n = len(self.order)
        lowest = unmet.bitwise_trailing_zeros().cast(pl.Int64).clip(upper_bound=n)  # n: every fact is met
        stages = [([s for s, count in zip(self.stages, self.count) if count <= bit] or [None])[-1]
                  for bit in range(n + 1)]
        return lookup(lowest, stages, pl.String)


def lookup(index, values: list, dtype):
    """``values[index]`` per row (null for a null index): a gather from a small literal, made once per row."""
    import polars as pl

    return pl.lit(pl.Series(values, dtype=dtype)).gather(index)


def qualification_steps(config, columns: frozenset[str]) -> list[dict]:
    """The qualification columns as ``qualify_columns`` steps, all integers until the last: each fact met or
    failed; each ladder's claimed stage and fact masks; its verdict and next action as keys; the worse
    ladder's; then the five output columns, in order, whose words are looked up once per row."""
    import polars as pl

    c = pl.col
    settings = config.section("qualification")
    facts = settings.get("facts", {})
    if not isinstance(facts, dict) or not facts:
        raise ConfigError("[qualification.facts] must be a table of facts")
    if len(facts) > 62:
        raise ConfigError("[qualification.facts] has too many facts (at most 62)")
    tests = {name: fact_tests(name, spec, columns) for name, spec in facts.items()}  # checks every fact
    tracks = [Track(name, column, key, output, settings, facts) for name, column, key, output in TRACKS]
    used = [f for f in facts if any(f in t.order for t in tracks)]

    def tmp(name: str):
        return c(TMP + name)

    # 1. per fact: met, and failed (not met, and ruled out); per ladder: the claimed stage's index
    step1 = {f"{TMP}met_{f}": tests[f][0] for f in used}
    step1 |= {f"{TMP}failed_{f}": ~tests[f][0] & tests[f][1] for f in used if tests[f][1] is not None}
    step1 |= {f"{TMP}{t.name}_at": t.claimed(columns) for t in tracks}
    step1[f"{TMP}closed"] = c("stage").is_in(list(CLOSED)).fill_null(False) if "stage" in columns else pl.lit(False)
    # 2. per ladder: the unmet and failed facts, the facts needed up to the claimed stage and the next stage's
    step2 = {}
    for t in tracks:
        needed, upcoming = t.stage_masks(tmp(f"{t.name}_at"))
        step2 |= {f"{TMP}{t.name}_unmet": t.mask({f: ~tmp(f"met_{f}") for f in used}),
                  f"{TMP}{t.name}_failed": t.mask({f: tmp(f"failed_{f}") for f in used if f"{TMP}failed_{f}" in step1}),
                  f"{TMP}{t.name}_needed": needed, f"{TMP}{t.name}_upcoming": upcoming}
    # 3. per ladder: the missing (or failed) facts of the claimed stage, the verdict and the next action's key
    step3 = {}
    for t in tracks:
        at, unmet, needed = tmp(f"{t.name}_at"), tmp(f"{t.name}_unmet"), tmp(f"{t.name}_needed")
        missing, failing = unmet & needed, tmp(f"{t.name}_failed") & needed
        upcoming = unmet & tmp(f"{t.name}_upcoming")
        step3 |= {f"{TMP}{t.name}_missing": missing,
                  f"{TMP}{t.name}_verdict": (pl.when(at.is_null()).then(pl.lit(None, pl.Int64))
                                             .when(failing != 0).then(pl.lit(FAILED, pl.Int64))
                                             .when(missing != 0).then(pl.lit(MISSING, pl.Int64))
                                             .otherwise(pl.lit(MET, pl.Int64))),
                  f"{TMP}{t.name}_action": t.action_key(at, missing, failing, upcoming)}
    # 4. the worse ladder (sales on a tie): its verdict, and keys for the words of missing and next_action
    sales, dev = (tmp(f"{t.name}_verdict") for t in tracks)
    use_dev = sales.is_null() | (dev.is_not_null() & (dev < sales))
    verdict = pl.when(use_dev).then(dev).otherwise(sales)
    closed = tmp("closed")
    # the words of every key (0: the unknown stage), each ladder's keys after the previous ladder's; `missing`
    # has a table per GROUP facts (the missing facts of a group, as a number, in the group's table)
    action_words, action_keys = [UNKNOWN_ACTION], []
    groups = max(-(-len(t.order) // GROUP) for t in tracks) or 1
    missing_words: list[list] = [[UNKNOWN_STAGE if g == 0 else None] for g in range(groups)]
    missing_keys: list[list] = [[] for _ in range(groups)]
    for t in tracks:
        action_keys.append(tmp(f"{t.name}_action") + len(action_words))
        action_words += t.actions(facts)
        for g, (words, keys) in enumerate(zip(missing_words, missing_keys)):
            size, shift = len(t.order[g * GROUP:(g + 1) * GROUP]), 1 << (g * GROUP)
            mask = tmp(f"{t.name}_missing")
            keys.append((mask if g == 0 and size == len(t.order) else (mask // shift) % (1 << size)) + len(words))
            words += [t.labels(facts, value * shift) for value in range(1 << size)]

    def pick(keys: list, unknown):
        """The key of the worse ladder; ``unknown`` for an unknown stage, null for a closed deal."""
        return (pl.when(closed).then(pl.lit(None, pl.Int64)).when(verdict.is_null()).then(unknown)
                .when(use_dev).then(keys[1]).otherwise(keys[0]))

    step4 = {f"{TMP}verdict": verdict, f"{TMP}action": pick(action_keys, pl.lit(0, pl.Int64)),
             **{f"{TMP}missing_{g}": pl.when(verdict == MET).then(pl.lit(None, pl.Int64))
                .otherwise(pick(keys, pl.lit(0 if g == 0 else None, pl.Int64)))
                for g, keys in enumerate(missing_keys)}}
    # 5. the words, each made once per row
    missing = [lookup(tmp(f"missing_{g}"), words, pl.String)
               for g, words in enumerate(missing_words)]
    if groups > 1:  # the groups' words together; null when nothing is missing (key null in every group)
        text = pl.concat_str(missing, separator="; ", ignore_nulls=True)
        missing = [pl.when(tmp("missing_0").is_not_null()).then(text).otherwise(pl.lit(None, pl.String))]
    verdict = pl.when(closed).then(pl.lit(None, pl.Int64)).otherwise(tmp("verdict").fill_null(MISSING))
    outputs = {"qualification": lookup(verdict, VERDICTS, pl.String),
               **{t.output: t.supported(tmp(f"{t.name}_unmet")) for t in tracks},
               "missing": missing[0],
               "next_action": lookup(tmp("action"), action_words, pl.String)}
    return [step1, step2, step3, step4, outputs]


@hookimpl
def register_column_labels(register):
    from kamcore.guide import codes
    from kamcore.registry import ColumnLabel

    register(ColumnLabel("qualification", "资格审查", "Qualification",
                         " · ".join(f"{code} {zh}" for code, zh in VERDICT_ZH.items())
                         + "（赢单、丢单为空 / empty for won and lost deals）"))
    register(ColumnLabel("supported_stage", "证据支持的销售阶段", "Sales stage the evidence supports",
                         codes(OPPORTUNITY["stage"], ("potential", "intent", "solution", "negotiation"))))
    register(ColumnLabel("supported_dev_stage", "证据支持的开发阶段", "Development stage the evidence supports",
                         codes(OPPORTUNITY["dev_stage"])))
    register(ColumnLabel("missing", "缺少的信息", "Missing information",
                         "本阶段需要而证据未显示的 / what the deal's stage needs and the evidence does not show"))
    register(ColumnLabel("next_action", "下一步行动", "Next action", "中文 / English"))


@hookimpl
def register_config_defaults(register):
    register("qualification", DEFAULTS)


@hookimpl
def qualify_columns(config, columns):
    if config.section("qualification").get("enabled", True) is False:
        return None
    return qualification_steps(config, frozenset(columns))
