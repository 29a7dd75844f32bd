"""能赢吗? (Can we win?): an optional third block beside Real and Worth, and George Day's gated
Real-Win-Worth screen (off by default: ``[win_block] enabled = true`` in kam.toml).

- ``register_criteria``: items 11–13 in block ``win``, compiled from ``[win_block.criteria.*]`` exactly as
  the scorecard compiles its items: competition (``competitor_count``), our position with the decision
  maker (``decision_maker_stance``) and the coach (``coach_present``), the last two from the stakeholder
  coverage of ``kam score --stakeholders``.
- ``score_columns``: ``rww_screen`` (``not_real`` · ``cannot_win`` · ``not_worth`` · ``go``) and
  ``rww_reason``. The screen is gated: a deal whose Real block fails stops there, and the reason names
  the Real items that failed; Win and Worth are judged only for a real deal.
"""

from __future__ import annotations

from importlib.resources import files

from kamcore import hookimpl
from kamcore_plugins.scoring.scorecard import _number, register_criteria_table

DEFAULTS = files(__package__).joinpath("win_block.toml").read_text(encoding="utf-8")
SCREENS = (("real", "not_real", "是不是虚的？未通过", "Is it real? failed"),
           ("win", "cannot_win", "能赢吗？未通过", "Can we win? failed"),
           ("worth", "not_worth", "值得赢吗？未通过", "Is it worth winning? failed"))


def _settings(config) -> dict:
    return config.section("win_block")


@hookimpl
def register_config_defaults(register):
    register("win_block", DEFAULTS)


@hookimpl
def register_criteria(register, config):
    settings = _settings(config)
    if settings.get("enabled", False):
        register_criteria_table(register, settings.get("criteria", {}), "win_block")


def block_reason(block: str, criteria, share: float):
    """The block's weak and unknown items, in words."""
    import polars as pl

    c = pl.col
    items = [pl.when(c(k.column).is_null()).then(pl.lit(f"{k.label_zh}：未知 / {k.label_en}: unknown"))
             .when(c(k.column) <= share * k.max_points).then(pl.lit(f"{k.label_zh}：偏弱 / {k.label_en}: weak"))
             for k in criteria if k.block == block]
    return pl.concat_str(items, separator="; ", ignore_nulls=True) if items else pl.lit("")


@hookimpl
def register_column_labels(register, config):
    from kamcore.registry import ColumnLabel

    if not _settings(config).get("enabled", False):
        return
    register(ColumnLabel("rww_screen", "真实-能赢-值得 筛选", "Real-Win-Worth screen",
                         " · ".join(f"{code} {zh}" for _, code, zh, _ in SCREENS) + " · go 三项均通过"))
    register(ColumnLabel("rww_reason", "筛选理由", "Screen reason", "中文 / English"))


@hookimpl
def score_columns(config, criteria):
    import polars as pl

    c = pl.col
    settings = _settings(config)
    if not settings.get("enabled", False):
        return None
    share = _number(settings.get("weak_share", 0.34), "[win_block].weak_share")
    blocks = {k.block for k in criteria}
    screen, reason = pl.lit("go"), pl.lit("三项均通过 / real, winnable and worth winning")
    for block, code, zh, en in reversed(SCREENS):  # built back to front: the first failing block decides
        if block not in blocks:
            continue
        bar = _number(settings.get(f"{block}_pass", 50), f"[win_block].{block}_pass")
        fails = (c(f"{block}_score") < bar).fill_null(True)
        stop = "，评估到此为止 / the evaluation stops here" if block == "real" else ""
        words = pl.concat_str([pl.lit(f"{zh}（{block}_score "), c(f"{block}_score").cast(pl.String),
                               pl.lit(f" < {bar:g}）{stop.split(' / ')[0]} / {en} ({block}_score "),
                               c(f"{block}_score").cast(pl.String),
                               pl.lit(f" < {bar:g}){(', ' + stop.split(' / ')[1]) if stop else ''}: "),
                               block_reason(block, criteria, share)])
        screen = pl.when(fails).then(pl.lit(code)).otherwise(screen)
        reason = pl.when(fails).then(words).otherwise(reason)
    return {"rww_screen": screen, "rww_reason": reason}
