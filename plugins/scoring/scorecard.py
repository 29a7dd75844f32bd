"""The ten-criterion scorecard of the source documents (销售机会评估表), as data-driven rules.

Each criterion is compiled from kam.toml into one polars expression (value lookups and numeric
bins, never ``eval``), so the whole scorecard runs inside the streaming query. This plugin also adds
``band``, ``quadrant`` and ``reasons``, and the documented default mapping to ``win_probability``.
"""

from __future__ import annotations

import math
from importlib.resources import files

from kamcore import hookimpl
from kamcore.errors import ConfigError
from kamcore.registry import BLOCKS, Criterion
from kamcore.schema import OPPORTUNITY

DEFAULTS = files(__package__).joinpath("scorecard.toml").read_text(encoding="utf-8")
QUADRANTS = {  # (real high, worth high) -> code; the labels are in docs/scorecard.md
    (True, True): "pursue", (False, True): "develop", (True, False): "qualify_out", (False, False): "drop"}
QUADRANT_ZH = {"pursue": "全力争取", "develop": "培育机会", "qualify_out": "低成本处理", "drop": "放弃"}
BLOCK_LABELS = {"real": ("是不是虚的", "is it real"), "worth": ("值得赢吗", "is it worth winning"),
                "win": ("能赢吗", "can we win")}


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def compile_term(term: dict, where: str) -> tuple:
    """(points expression, maximum, input column) for one term: a lookup or bins.

    Lookups on canonical coded columns match the normalised codes directly; on any other column
    they match the trimmed text in lower, upper or title case. Whole points (the form's 0 to 3) give
    integer points: written as 3, not 3.0, and twice as fast to write as floats.
    """
    import polars as pl

    from kamcore.normalise import lookup, variants, vocabulary

    c = pl.col
    if not isinstance(term, dict) or not isinstance(term.get("column"), str):
        raise ConfigError(f"{where} needs a `column`")
    column = term["column"]
    if ("points" in term) == ("bins" in term):
        raise ConfigError(f"{where} needs exactly one of `points` (value lookup) or `bins` (numeric)")
    if "points" in term:
        table = term["points"]
        if not isinstance(table, dict) or not table:
            raise ConfigError(f"{where}.points must be a table of value = points")
        points = {}
        spec = OPPORTUNITY.get(column)
        if spec is not None and spec.vocab:  # a coded column holds codes: 清楚 in the rules means `clear`
            codes = vocabulary(spec, {})
            for k, v in table.items():
                code = codes.get(str(k).strip()) or codes.get(str(k).strip().lower())
                if code is None:
                    raise ConfigError(f"{where}.points: {k!r} is not a value of {column} "
                                      f"(codes: {', '.join(sorted(spec.vocab))})")
                points[code] = _number(v, f"{where}.points.{k}")
            text = c(column)
        else:
            for k, v in table.items():
                for spelling in variants(str(k).strip()):
                    points[spelling] = _number(v, f"{where}.points.{k}")
            text = c(column).cast(pl.String).str.strip_chars()
        dtype = _points_type(points.values())
        expr = lookup(text, {k: _typed(v, dtype) for k, v in points.items()}, dtype)
        return expr, max(points.values()), column
    bins = term["bins"]
    if not isinstance(bins, list) or not bins or not all(isinstance(b, list) and len(b) == 2 for b in bins):
        raise ConfigError(f"{where}.bins must be a list of [threshold, points] pairs")
    pairs = [(_number(t, f"{where}.bins"), _number(p, f"{where}.bins")) for t, p in bins]
    if [t for t, _ in pairs] != sorted((t for t, _ in pairs), reverse=True):
        raise ConfigError(f"{where}.bins thresholds must go from highest to lowest")
    below = _number(term.get("below", 0), f"{where}.below")
    dtype = _points_type([p for _, p in pairs] + [below])
    x = c(column).cast(pl.Float64, strict=False)
    expr = pl.when(x.is_null()).then(pl.lit(None, dtype))
    for threshold, points in pairs:
        expr = expr.when(x >= threshold).then(pl.lit(_typed(points, dtype), dtype))
    return expr.otherwise(pl.lit(_typed(below, dtype), dtype)), max([p for _, p in pairs] + [below]), column


def _points_type(values):
    import polars as pl

    return pl.Int32 if all(float(v).is_integer() for v in values) else pl.Float64


def _typed(value: float, dtype):
    return int(value) if dtype.is_integer() else value


def compile_criterion(name: str, spec: dict, section: str = "scorecard") -> Criterion:
    import polars as pl

    where = f"[{section}.criteria.{name}]"
    terms = spec.get("terms")
    if not isinstance(terms, list) or not terms:
        raise ConfigError(f"{where} needs at least one [[...terms]] entry")
    compiled = [compile_term(t, f"{where}.terms[{i}]") for i, t in enumerate(terms)]
    combine = spec.get("combine", "sum")
    if combine == "sum" and len(compiled) == 1:  # (the streaming engine would evaluate a guarded sum's term twice)
        points = compiled[0][0]
        top = compiled[0][1]
    elif combine == "sum":
        known = pl.any_horizontal([e.is_not_null() for e, _, _ in compiled])
        points = pl.when(known).then(pl.sum_horizontal([e for e, _, _ in compiled]))
        top = sum(m for _, m, _ in compiled)
    elif combine == "first":
        points = pl.coalesce([e for e, _, _ in compiled])
        top = max(m for _, m, _ in compiled)
    else:
        raise ConfigError(f"{where}.combine must be \"sum\" or \"first\", got {combine!r}")
    if spec.get("block") not in BLOCKS:
        raise ConfigError(f"{where}.block must be one of {', '.join(BLOCKS)}")
    if top <= 0:
        raise ConfigError(f"{where} can never earn points: its maximum is {top}")
    try:
        return Criterion(name=name, block=spec["block"], points=points, max_points=top,
                         label_zh=str(spec.get("label_zh", name)), label_en=str(spec.get("label_en", name)),
                         number=spec.get("number"), weight=_number(spec.get("weight", 1.0), f"{where}.weight"),
                         inputs=tuple(col for _, _, col in compiled), standard_zh=str(spec.get("standard_zh", "")))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


@hookimpl
def register_config_defaults(register):
    register("scorecard", DEFAULTS)


def register_criteria_table(register, criteria, section: str) -> None:
    """Compile and register each enabled criterion of a ``[<section>.criteria]`` table."""
    if not isinstance(criteria, dict):
        raise ConfigError(f"[{section}.criteria] must be a table of criteria")
    for name, spec in criteria.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"[{section}.criteria.{name}] must be a table")
        if spec.get("enabled", True):
            register(compile_criterion(name, spec, section))


@hookimpl
def register_criteria(register, config):
    register_criteria_table(register, config.section("scorecard").get("criteria", {}), "scorecard")


def reasons(criteria, settings: dict):
    """Doubtful Real block, unknown and weak criteria, in Chinese and English, '; '-separated.

    Each row's findings are packed into a bit mask; the text is built once per distinct mask in a
    batch (a few hundred), not once per row.
    """
    import polars as pl

    c = pl.col
    share = _number(settings.get("weak_share", 0.34), "[scorecard].weak_share")
    findings: list[tuple[object, str]] = []
    if any(k.block == "real" for k in criteria):
        doubt = _number(settings.get("doubtful_real", 40), "[scorecard].doubtful_real")
        findings.append((c("real_score") < doubt, "真实性存疑 / doubtful that the deal is real"))
    findings += [(c(k.column).is_null(), f"{k.label_zh}：未知 / {k.label_en}: unknown") for k in criteria]
    findings += [(c(k.column) <= share * k.max_points, f"{k.label_zh}：偏弱 / {k.label_en}: weak") for k in criteria]
    if len(findings) > 62:
        raise ConfigError("the scorecard has too many criteria to explain (at most 30)")
    labels = [text for _, text in findings]
    mask = pl.sum_horizontal([cond.fill_null(False).cast(pl.Int64) * (1 << i) for i, (cond, _) in enumerate(findings)])
    cache: dict[int, str] = {}

    def text_of(bits: int) -> str:
        if bits not in cache:
            cache[bits] = "; ".join(t for i, t in enumerate(labels) if bits >> i & 1) or "无明显短板 / no weak criteria"
        return cache[bits]

    def explain(masks):
        if masks.is_empty():  # an empty batch: no mask to look up, and the words are still text
            return pl.Series(masks.name, [], dtype=pl.String)
        distinct = masks.unique().to_list()
        return masks.replace_strict(distinct, [text_of(m) for m in distinct], return_dtype=pl.String)

    return mask.map_batches(explain, return_dtype=pl.String, is_elementwise=True)


@hookimpl
def score_columns(config, criteria):
    import polars as pl

    c = pl.col
    settings = config.section("scorecard")
    bands = settings.get("bands", {})
    quadrant = settings.get("quadrant", {})
    thresholds = sorted(((_number(v, f"[scorecard.bands].{k}"), k) for k, v in bands.items()), reverse=True)
    band = pl.when(c("total_score").is_null()).then(None)
    for threshold, name in thresholds:
        band = band.when(c("total_score") >= threshold).then(pl.lit(name))
    columns = {"band": band.otherwise(pl.lit("D"))}
    blocks = {k.block for k in criteria}
    if {"real", "worth"} <= blocks:
        real = c("real_score") >= _number(quadrant.get("real", 50), "[scorecard.quadrant].real")
        worth = c("worth_score") >= _number(quadrant.get("worth", 50), "[scorecard.quadrant].worth")
        expr = pl.when(real & worth).then(pl.lit(QUADRANTS[True, True]))
        for (r, w), code in QUADRANTS.items():
            expr = expr.when((real if r else ~real) & (worth if w else ~worth)).then(pl.lit(code))
        columns["quadrant"] = expr
    columns["reasons"] = reasons(criteria, settings)
    return columns


@hookimpl
def register_column_labels(register, config):
    from kamcore.registry import ColumnLabel

    settings = config.section("scorecard")
    bands = sorted(((v, k) for k, v in settings.get("bands", {}).items()
                    if isinstance(v, int | float) and not isinstance(v, bool)), reverse=True)
    register(ColumnLabel("band", "等级", "Band", "按总分 / by total_score: " + " · ".join(
        [f"{name} ≥ {threshold:g}" for threshold, name in bands] + ["D"])))
    quadrant = settings.get("quadrant", {})
    register(ColumnLabel("quadrant", "象限（真实 × 价值）", "Quadrant (real × worth)",
                         " · ".join(f"{code} {QUADRANT_ZH[code]}" for code in QUADRANTS.values())
                         + f"（real_score ≥ {quadrant.get('real', 50)}, worth_score ≥ {quadrant.get('worth', 50)} "
                           "为高 / count as high)"))
    register(ColumnLabel("reasons", "评分理由", "Reasons", "真实性存疑、未知和偏弱的项 / a doubtful Real block, the "
                         "unknown and the weak items"))


@hookimpl(trylast=True)
def win_probability(config, criteria):
    """The documented default: a logistic curve of total_score (50 -> 0.5; 70 -> 0.88; 30 -> 0.12)."""
    import polars as pl

    c = pl.col
    settings = config.section("scorecard").get("probability", {})
    midpoint = _number(settings.get("midpoint", 50), "[scorecard.probability].midpoint")
    scale = _number(settings.get("scale", 10), "[scorecard.probability].scale")
    if scale <= 0:
        raise ConfigError("[scorecard.probability].scale must be positive")
    return (1 / (1 + ((midpoint - c("total_score")) / scale).exp())).round(4)
