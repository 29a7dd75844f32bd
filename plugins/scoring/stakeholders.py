"""Built-in stakeholder intelligence (关键人物信息表 / 角色表 / 客户全貌): classify the people on a deal,
draw who influences whom, and sum each deal's people up into coverage columns and red flags.

- ``classify_stakeholders`` (``trylast``, so an installed plugin replaces it): the given role, style,
  stance, influence, traits and trends normalised to codes; a missing role inferred from title and
  department by the keyword rules of ``[stakeholders]`` in kam.toml, a missing style from the traits
  (气质, 思想, 口才), a missing stance for a coach (our insider supports us), a missing influence from the
  influence graph, the title and the role. Every inferred column has ``<column>_source``: ``given``
  or ``inferred``. The graph (受谁影响 / 能影响谁) is a scipy sparse matrix; ``reach`` is how many people
  someone influences, directly or through others, and ``influenced_by_count`` how many influence them.
- ``summarise_stakeholders``: per opportunity, the coverage (decision maker known and their stance,
  coach, gatekeepers, supporters and opponents, role coverage) and the red flags as columns, and the
  flags in words (``stakeholder_flags``: "没有教练 / no coach identified" …). Only aggregates: no name
  or other personal field reaches the scored output.
- ``register_commands``: ``kam classify PEOPLE -o OUT`` writes the classified table.
"""

from __future__ import annotations

import re
from importlib.resources import files

import click

from kamcore import hookimpl
from kamcore.errors import ConfigError
from kamcore.schema import STAKEHOLDER

DEFAULTS = files(__package__).joinpath("stakeholders.toml").read_text(encoding="utf-8")
CODED = [name for name, column in STAKEHOLDER.items() if column.vocab]
ROLES = tuple(STAKEHOLDER["role"].vocab)
STYLES = tuple(STAKEHOLDER["style"].vocab)
LEVELS = tuple(STAKEHOLDER["influence"].vocab)
SEPARATORS = r"\s*(?:[、,，;；/|&＆]|\band\b|和|及)\s*"
STANCE_RANK = {"oppose": 0, "neutral": 1, "support": 2}  # a decision maker's least favourable stance counts

FLAGS = {  # column -> (condition, text) in the order the flags are listed
    "no_people": "未列出关键人物 / no stakeholders listed",
    "no_decision_maker": "关键决策者未知 / decision maker not identified",
    "decision_maker_opposes": "关键决策者反对我们 / the decision maker opposes us",
    "decision_maker_stance_unknown": "关键决策者立场不明 / the decision maker's stance is unknown",
    "no_coach": "没有教练 / no coach identified",
    "no_technical_gatekeeper": "技术把关者未知 / technical gatekeeper not identified",
    "no_business_gatekeeper": "业务把关者未知 / business gatekeeper not identified",
    "high_influence_opponents": "高影响力反对者 {n} 人 / high-influence opponents ({n})",
    "relationship_down": "亲近度或信任度下降 {n} 人 / closeness or trust falling ({n})",
    "single_threaded": "单线联系：只有一位联系人 / single-threaded: only one contact",
}


# -- settings ------------------------------------------------------------------------------------


def keyword_pattern(words, where: str) -> str | None:
    """One case-insensitive regex for a list of keywords; Latin words match whole words only."""
    if words is None:
        return None
    if isinstance(words, str) or not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
        raise ConfigError(f"{where} must be a list of words")
    parts = []
    for word in words:
        escaped = re.escape(word.strip())
        parts.append(f"(?:^|[^a-z0-9]){escaped}(?:[^a-z0-9]|$)" if word.isascii() else escaped)
    return "(?i)" + "|".join(parts) if parts else None


def role_rules(settings: dict) -> list[dict]:
    rules = settings.get("role_rules", [])
    if not isinstance(rules, list):
        raise ConfigError("[[stakeholders.role_rules]] must be an array of tables")
    compiled = []
    for i, rule in enumerate(rules):
        where = f"[[stakeholders.role_rules]] #{i + 1}"
        if not isinstance(rule, dict) or rule.get("role") not in ROLES:
            raise ConfigError(f"{where} needs a role, one of {', '.join(ROLES)}")
        if rule.get("require", "any") not in ("any", "both"):
            raise ConfigError(f"{where}.require must be \"any\" or \"both\"")
        title = keyword_pattern(rule.get("title"), f"{where}.title")
        department = keyword_pattern(rule.get("department"), f"{where}.department")
        if title is None and department is None:
            raise ConfigError(f"{where} needs `title` or `department` words")
        compiled.append({"role": rule["role"], "title": title, "department": department,
                         "unless": keyword_pattern(rule.get("unless"), f"{where}.unless"),
                         "both": rule.get("require") == "both"})
    return compiled


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


# -- classification ------------------------------------------------------------------------------


def _contains(column: str, pattern: str | None):
    import polars as pl

    if pattern is None:
        return pl.lit(False)
    return pl.col(column).str.contains(pattern).fill_null(False)


def infer_role(frame, settings: dict):
    """The role the rules give for each row's title and department (null when none matches)."""
    import polars as pl

    guess = pl.lit(None, pl.String)
    for rule in reversed(role_rules(settings)):  # built back to front: the first matching rule wins
        title, department = _contains("title", rule["title"]), _contains("department", rule["department"])
        hit = (title & department) if rule["both"] else (title | department)
        if rule["unless"]:
            hit = hit & ~(_contains("title", rule["unless"]) | _contains("department", rule["unless"]))
        guess = pl.when(hit).then(pl.lit(rule["role"])).otherwise(guess)
    return guess


def infer_style(settings: dict):
    """The style the traits (气质, 思想, 口才) point to, or null."""
    import polars as pl

    style = settings.get("style", {})
    traits, quadrants = style.get("traits", {}), style.get("quadrants", {})
    if not isinstance(traits, dict) or not isinstance(quadrants, dict):
        raise ConfigError("[stakeholders.style.traits] and [stakeholders.style.quadrants] must be tables")
    pace, people = [], []
    for column in ("temperament", "thinking", "eloquence"):
        for code in STAKEHOLDER[column].vocab:
            value = traits.get(code, [0, 0])
            if not isinstance(value, list) or len(value) != 2:
                raise ConfigError(f"[stakeholders.style.traits].{code} must be [pace, people]")
            hit = (pl.col(column) == code).fill_null(False)
            pace.append(pl.when(hit).then(_number(value[0], code)).otherwise(0.0))
            people.append(pl.when(hit).then(_number(value[1], code)).otherwise(0.0))
    pace_sign, people_sign = pl.sum_horizontal(pace).sign(), pl.sum_horizontal(people).sign()
    guess = pl.lit(None, pl.String)
    for name, (a, b) in quadrants.items():
        if name not in STYLES:
            raise ConfigError(f"[stakeholders.style.quadrants]: {name!r} is not a style ({', '.join(STYLES)})")
        guess = pl.when((pace_sign == a) & (people_sign == b)).then(pl.lit(name)).otherwise(guess)
    return guess


def references(frame):
    """(from row, to row) influence edges and, per row, how many names in 受谁影响 / 能影响谁 matched nobody.

    A reference is matched within the same opportunity against names, then titles, then role words
    (决策者, decision maker …); one reference may match several people (two 副局长).
    """
    import polars as pl

    from kamcore.normalise import vocabulary

    n = frame.height
    roles = vocabulary(STAKEHOLDER["role"], {})
    index: dict[tuple, list[int]] = {}
    ids = frame.get_column("opportunity_id").to_list()
    for field in ("name", "title"):
        if field in frame.columns:
            for row, (opp, value) in enumerate(zip(ids, frame.get_column(field).to_list())):
                if value:
                    index.setdefault((opp, field, value.strip().lower()), []).append(row)
    by_role: dict[tuple, list[int]] = {}
    if "role" in frame.columns:
        for row, (opp, role) in enumerate(zip(ids, frame.get_column("role").to_list())):
            if role:
                by_role.setdefault((opp, role), []).append(row)

    def resolve(opp, text: str) -> list[int]:
        key = text.strip().lower()
        for field in ("name", "title"):
            if (opp, field, key) in index:
                return index[(opp, field, key)]
        role = roles.get(text.strip()) or roles.get(key)
        return by_role.get((opp, role), []) if role else []

    edges, unresolved = set(), [0] * n
    for column, outgoing in (("influences", True), ("influenced_by", False)):
        if column not in frame.columns:
            continue
        for row, (opp, text) in enumerate(zip(ids, frame.get_column(column).to_list())):
            if not text:
                continue
            for part in re.split(SEPARATORS, text):
                if not part.strip():
                    continue
                found = resolve(opp, part)
                if not found:
                    unresolved[row] += 1
                for other in found:
                    if other != row:
                        edges.add((row, other) if outgoing else (other, row))
    return sorted(edges), pl.Series("unresolved_links", unresolved, dtype=pl.Int32)


def reach(n: int, edges: list[tuple[int, int]]):
    """(reach, influenced_by_count) per person: how many people each one reaches along influence edges,
    and by how many people each one is reached (scipy's shortest paths, per connected group)."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, shortest_path

    out, into = np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int32)
    if not edges or n == 0:
        return out, into
    rows, cols = zip(*edges)
    graph = coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(n, n)).tocsr()
    count, labels = connected_components(graph, directed=True, connection="weak")
    sizes = np.bincount(labels, minlength=count)
    for group in np.flatnonzero(sizes > 1):
        members = np.flatnonzero(labels == group)
        distances = shortest_path(graph[members][:, members], directed=True, unweighted=True)
        reached = np.isfinite(distances) & (distances > 0)
        out[members], into[members] = reached.sum(axis=1), reached.sum(axis=0)
    return out, into


@hookimpl(trylast=True)
def classify_stakeholders(stakeholders, config):
    import polars as pl

    from kamcore.normalise import key, lookup, vocabulary

    c = pl.col
    settings = config.section("stakeholders")
    values = config.get("values", {})
    frame = stakeholders
    for name in ("opportunity_id", "title", "department", "role", "style", "stance", "influence", "temperament",
                 "thinking", "eloquence", "influenced_by", "influences", "name"):
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(name))
    frame = frame.with_columns(lookup(key(c(name).cast(pl.String)), vocabulary(STAKEHOLDER[name], values.get(name, {})))
                               .alias(name) for name in CODED if name in frame.columns)

    def sourced(column: str, guess):
        return [pl.when(c(column).is_not_null()).then(pl.lit("given"))
                .when(guess.is_not_null()).then(pl.lit("inferred")).alias(f"{column}_source"),
                pl.coalesce(c(column), guess).alias(column)]

    frame = frame.with_columns(sourced("role", infer_role(frame, settings)) + sourced("style", infer_style(settings)))
    frame = frame.with_columns(sourced("stance", pl.when(c("role") == "coach").then(pl.lit("support"))))
    number = pl.int_range(pl.len()).over("opportunity_id") + 1
    frame = frame.with_columns(pl.format("{}#{}", c("opportunity_id").fill_null("?"), number).alias("person_id"))
    edges, unresolved = references(frame)
    out, into = reach(frame.height, edges)
    ids = frame.get_column("person_id").to_list()
    influences, influencers = [[] for _ in ids], [[] for _ in ids]
    for a, b in edges:
        influences[a].append(ids[b])
        influencers[b].append(ids[a])
    frame = frame.with_columns(pl.Series("reach", out, dtype=pl.Int32),
                               pl.Series("influenced_by_count", into, dtype=pl.Int32), unresolved,
                               pl.Series("influences_ids", [", ".join(x) or None for x in influences], dtype=pl.String),
                               pl.Series("influenced_by_ids", [", ".join(x) or None for x in influencers],
                                         dtype=pl.String))
    influence = settings.get("influence", {})
    high_reach = _number(settings.get("high_reach", 2), "[stakeholders].high_reach")
    by_role = influence.get("by_role", {})
    low = keyword_pattern(influence.get("low_titles", []), "[stakeholders.influence].low_titles")
    guess = (pl.when(c("reach") >= high_reach).then(pl.lit("high"))
             .when(_contains("title", low)).then(pl.lit("low"))
             .otherwise(lookup(c("role"), {k: v for k, v in by_role.items() if v in LEVELS})))
    frame = frame.with_columns(sourced("influence", guess))
    for name in ("closeness_trend", "trust_trend", "temperament", "thinking", "eloquence", "coach_potential"):
        if name in frame.columns:
            frame = frame.with_columns(pl.when(c(name).is_not_null()).then(pl.lit("given")).alias(f"{name}_source"))
    first = ["person_id", "opportunity_id"]
    return frame.select(first + [n for n in frame.columns if n not in first])


# -- per-opportunity coverage and red flags ------------------------------------------------------


def coverage_expressions(settings: dict) -> list:
    """Aggregations over one opportunity's classified people."""
    import polars as pl

    c = pl.col
    roles = settings.get("coverage_roles", ["decision_maker", "technical_gatekeeper", "business_gatekeeper", "coach"])
    if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
        raise ConfigError(f"[stakeholders].coverage_roles must list roles among {', '.join(ROLES)}")
    is_dm = c("role") == "decision_maker"
    rank = c("stance").replace_strict(STANCE_RANK, default=None, return_dtype=pl.Int8)
    worst = rank.filter(is_dm).min()
    dm_stance = (pl.when(worst == 0).then(pl.lit("oppose")).when(worst == 1).then(pl.lit("neutral"))
                 .when(worst == 2).then(pl.lit("support")).otherwise(pl.lit(None, pl.String)))
    down = (c("closeness_trend") == "down").fill_null(False) | (c("trust_trend") == "down").fill_null(False)
    return [
        pl.len().cast(pl.Int32).alias("stakeholder_count"),
        is_dm.any().alias("decision_maker_known"),
        dm_stance.alias("decision_maker_stance"),
        (c("role") == "coach").any().alias("coach_present"),
        ((c("coach_potential") == "yes") & (c("role") != "coach").fill_null(True)).sum().cast(pl.Int32)
        .alias("coach_candidates"),
        (c("role") == "technical_gatekeeper").any().alias("technical_gatekeeper_known"),
        (c("role") == "business_gatekeeper").any().alias("business_gatekeeper_known"),
        (c("role") == "project_lead").any().alias("project_lead_known"),
        (pl.sum_horizontal([(c("role") == r).any().cast(pl.Int32) for r in roles]) / len(roles)).round(2)
        .alias("role_coverage"),
        (c("stance") == "support").sum().cast(pl.Int32).alias("supporters"),
        (c("stance") == "oppose").sum().cast(pl.Int32).alias("opponents"),
        ((c("stance") == "oppose") & (c("influence") == "high")).sum().cast(pl.Int32).alias("high_influence_opponents"),
        down.sum().cast(pl.Int32).alias("relationship_down"),
        c("reach").max().cast(pl.Int32).alias("max_reach"),
    ]


def flag_columns():
    """Each red flag as a condition on the coverage columns."""
    import polars as pl

    c = pl.col
    return {
        "no_people": c("stakeholder_count") == 0,
        "no_decision_maker": (c("stakeholder_count") > 0) & ~c("decision_maker_known"),
        "decision_maker_opposes": c("decision_maker_stance") == "oppose",
        "decision_maker_stance_unknown": c("decision_maker_known") & c("decision_maker_stance").is_null(),
        "no_coach": (c("stakeholder_count") > 0) & ~c("coach_present"),
        "no_technical_gatekeeper": (c("stakeholder_count") > 0) & ~c("technical_gatekeeper_known"),
        "no_business_gatekeeper": (c("stakeholder_count") > 0) & ~c("business_gatekeeper_known"),
        "high_influence_opponents": c("high_influence_opponents") > 0,
        "relationship_down": c("relationship_down") > 0,
        "single_threaded": c("stakeholder_count") == 1,
    }


def with_flags(summary):
    import polars as pl

    c = pl.col
    conditions = flag_columns()
    texts = []
    for flag, condition in conditions.items():
        text = FLAGS[flag]
        if "{n}" in text:
            column = "high_influence_opponents" if flag == "high_influence_opponents" else "relationship_down"
            before, middle, after = text.split("{n}", 2)
            words = pl.concat_str([pl.lit(before), c(column).cast(pl.String), pl.lit(middle), c(column).cast(pl.String),
                                   pl.lit(after)])
        else:
            words = pl.lit(text)
        texts.append(pl.when(condition.fill_null(False)).then(words))
    count = pl.sum_horizontal([cond.fill_null(False).cast(pl.Int32) for cond in conditions.values()])
    flags = pl.concat_str(texts, separator="; ", ignore_nulls=True)
    return summary.with_columns(pl.when(flags != "").then(flags).otherwise(pl.lit(None, pl.String))
                                .alias("stakeholder_flags"), count.cast(pl.Int32).alias("stakeholder_flag_count"))


@hookimpl(trylast=True)
def summarise_stakeholders(stakeholders, config):
    import polars as pl

    c = pl.col
    settings = config.section("stakeholders")
    people = stakeholders
    for name in ("role", "stance", "influence", "closeness_trend", "trust_trend", "coach_potential"):
        if name not in people.columns:
            people = people.with_columns(pl.lit(None, pl.String).alias(name))
    if "reach" not in people.columns:
        people = people.with_columns(pl.lit(0, pl.Int32).alias("reach"))
    exprs = coverage_expressions(settings)
    keyed = people.filter(c("opportunity_id").is_not_null()).group_by("opportunity_id", maintain_order=True).agg(exprs)
    empty = people.head(0).select(exprs)  # the values for an opportunity with nobody listed
    empty = empty.with_columns(pl.lit(None, pl.String).alias("opportunity_id"),
                               *[pl.lit(False).alias(n) for n in empty.columns if empty.schema[n] == pl.Boolean],
                               *[pl.lit(0, empty.schema[n]).alias(n) for n in ("stakeholder_count", "coach_candidates",
                                                                                 "supporters", "opponents",
                                                                                 "high_influence_opponents",
                                                                                 "relationship_down")],
                               pl.lit(0.0).alias("role_coverage"))
    summary = pl.concat([keyed, empty.select(keyed.columns)], how="vertical_relaxed")
    return with_flags(summary)


# -- kam classify ---------------------------------------------------------------------------------


COLUMN_LABELS = {  # column: (中文, English, meaning), as docs/stakeholders.md explains them
    # kam classify: per person
    "person_id": ("人员编号", "Person ID", "<编号>#<n>：不用姓名也能区分 / who is who without a name"),
    "reach": ("影响范围", "Reach", "直接或间接影响的人数 / people this person influences, directly or through others"),
    "influenced_by_count": ("受影响人数", "Influenced by (count)", "影响此人的人数 / people who influence this person"),
    "unresolved_links": ("未匹配的引用", "Unresolved links", "受谁影响 / 能影响谁 中对不上任何人的 / references that "
                         "matched nobody"),
    "influences_ids": ("能影响谁（编号）", "Influences (ids)", "person_id"),
    "influenced_by_ids": ("受谁影响（编号）", "Influenced by (ids)", "person_id"),
    # kam score --stakeholders, kam classify --coverage: per opportunity
    "stakeholder_count": ("关键人物数", "People listed", "0 为未列出 / 0 when none"),
    "decision_maker_known": ("关键决策者已知", "Decision maker known", "true / false"),
    "decision_maker_stance": ("关键决策者态度", "Decision maker's stance", "其中最不利的态度 / the least favourable "
                              "among them: " + " · ".join(f"{code} {words[0]}" for code, words in
                                                          STAKEHOLDER["stance"].vocab.items())),
    "coach_present": ("有教练", "Coach present", "true / false"),
    "coach_candidates": ("可能成为教练的人数", "Possible coaches", "是否有可能成为我们的教练 = 是"),
    "technical_gatekeeper_known": ("技术把关者已知", "Technical gatekeeper known", "true / false"),
    "business_gatekeeper_known": ("业务把关者已知", "Business gatekeeper known", "true / false"),
    "project_lead_known": ("项目牵头人已知", "Project lead known", "true / false"),
    "role_coverage": ("角色覆盖率", "Role coverage", "0–1：[stakeholders] coverage_roles 中已列出的比例 / share "
                      "listed"),
    "supporters": ("支持者人数", "Supporters", ""),
    "opponents": ("反对者人数", "Opponents", ""),
    "high_influence_opponents": ("高影响力反对者人数", "High-influence opponents", ""),
    "relationship_down": ("关系下降人数", "Relationships falling", "亲近度或信任度下降 / closeness or trust falling"),
    "max_reach": ("最大影响范围", "Widest reach", "一人直接或间接影响的人数 / people one person influences"),
    "stakeholder_flags": ("关键人物风险", "Stakeholder red flags", "中文 / English"),
    "stakeholder_flag_count": ("风险数", "Red flags", ""),
}


@hookimpl
def register_column_labels(register):
    from kamcore.registry import ColumnLabel

    for name, words in COLUMN_LABELS.items():
        register(ColumnLabel(name, *words))


@hookimpl
def register_config_defaults(register):
    register("stakeholders", DEFAULTS)


@hookimpl
def register_commands(cli):
    from pathlib import Path

    from kamcore.cli import DELIMITER, DELIMITER_HELP

    @cli.command()
    @click.argument("people", nargs=-1, required=True, type=click.Path(path_type=Path, allow_dash=True))
    @click.option("-o", "--output", type=click.Path(path_type=Path, allow_dash=True), required=True,
                  help="Classified table (format from the suffix: .csv, .xlsx, .jsonl, .parquet), or - for "
                       "standard output (CSV).")
    @click.option("--coverage", type=click.Path(path_type=Path, allow_dash=True), default=None,
                  help="Also write the per-opportunity coverage and red flags to this file (- : standard "
                       "output).")
    @click.option("--include-pii", "--personal", "personal", is_flag=True,
                  help="Keep personal fields (name, birthday, hometown, family …); left out by default.")
    @click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                  help="kam.toml to use (default: $KAM_CONFIG, else ./kam.toml if present).")
    @click.option("--sheet", default=None, help="Worksheet of a workbook, by name or 1-based number.")
    @click.option("--encoding", default=None, help="Input encoding, when detection is not enough (e.g. big5).")
    @click.option("--delimiter", type=DELIMITER, default=None, help=DELIMITER_HELP)
    def classify(people, output, coverage, personal, config_path, sheet, encoding, delimiter):
        """Classify the people on the deals: role, style, stance, influence and reach.

        Reads 关键人物信息表 / 角色表 exports (Chinese or English headers) and writes one row per person;
        every inferred value says so in <column>_source (given or inferred). Personal fields are left
        out unless --include-pii is given. PEOPLE - reads standard input.
        """
        from attrs import evolve

        from kamcore.config import load_config
        from kamcore.guide import column_guide
        from kamcore.pipeline import (read_stakeholders, refuse_writing_over_inputs, stakeholder_options,
                                      summarise_people, write_frame)
        from kamcore.plugins import get_kam
        from kamcore.schema import PERSONAL_FIELDS

        if str(output) == "-" and coverage is not None and str(coverage) == "-":
            raise click.UsageError("standard output (-) can take one table: give --coverage a file")
        refuse_writing_over_inputs([output, *([coverage] if coverage is not None else [])], list(people))
        kam = get_kam()
        config = load_config(config_path, kam.config_defaults())
        options = evolve(stakeholder_options(config, sheet), encoding=encoding, delimiter=delimiter)
        table = read_stakeholders(list(people), kam, config, options, require_id=coverage is not None)
        result = summarise_people(table, config, kam)
        classified = result.classified
        if not personal:  # 受谁影响 / 能影响谁 name people: influences_ids / influenced_by_ids say the same by id
            named = PERSONAL_FIELDS | {"influenced_by", "influences"}
            classified = classified.drop([n for n in classified.columns if n in named])
        labels = kam.column_labels(config)
        kept = [n for n in table.columns if n not in STAKEHOLDER]  # the people file's columns kam does not read
        write_frame(classified, output, kam, guide=column_guide(classified.columns, (), labels, kept))
        if coverage is not None and result.summary is not None:
            summary = result.summary.filter(result.summary["opportunity_id"].is_not_null())
            write_frame(summary, coverage, kam, guide=column_guide(summary.columns, (), labels))
        inferred = {n[: -len("_source")]: int((classified[n] == "inferred").sum())
                    for n in classified.columns if n.endswith("_source")}
        said = ", ".join(f"{n} {k}" for n, k in inferred.items() if k)
        where = "standard output" if str(output) == "-" else output
        click.echo(f"kam: {classified.height} people classified -> {where}"
                   + (f" (inferred: {said})" if said else ""), err=True)
