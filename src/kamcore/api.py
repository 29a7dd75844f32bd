"""Embedding kamcore: score a data frame, or one opportunity, with the same numbers as ``kam score``."""

from __future__ import annotations

from typing import Any

import polars as pl
from attrs import frozen

from .config import Config, load_config
from .errors import DataError, KamError
from .headers import map_headers
from .pipeline import explode_rejects, prepare_frames
from .plugins import Kam, get_kam
from .schema import STAKEHOLDER_COLUMNS


@frozen
class ScoreResult:
    """Scored rows and rejected problems (one row per problem: line, column, reason, value)."""

    scored: Any
    rejects: Any


def _session(config: Config | str | None, kam: Kam | None) -> tuple[Kam, Config]:
    kam = kam or get_kam()
    if not isinstance(config, Config):
        config = load_config(config, kam.config_defaults())
    return kam, config


def _as_text(frame) -> tuple[pl.DataFrame, bool]:
    """A polars frame of strings (what importers produce), and whether the input was pandas."""
    is_pandas = type(frame).__module__.startswith("pandas")
    if is_pandas:
        try:
            frame = pl.from_pandas(frame)
        except ImportError as exc:  # text columns of a pandas frame cross over through Arrow
            raise KamError("scoring a pandas frame needs pyarrow: pip install 'kamcore[pandas]'") from exc
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"expected a polars or pandas DataFrame, got {type(frame).__name__}")
    return frame.with_columns(pl.all().cast(pl.String)), is_pandas


def score_frame(frame, config: Config | str | None = None, *, kam: Kam | None = None) -> ScoreResult:
    """Score a data frame of opportunities (any headers the CLI accepts). Returns polars frames, or
    pandas frames when given pandas. ``line`` in the rejects is the 1-based row number in ``frame``."""
    kam, config = _session(config, kam)
    text, is_pandas = _as_text(frame)
    prepared, _ = prepare_frames([(text.lazy(), "<frame>")], config, kam)
    scored, rejected = pl.collect_all([prepared.scored(), prepared.rejected()])
    rejects = explode_rejects(rejected, list(prepared.plan.problems), ["<frame>"],
                              lambda src, rows: {r: r + 1 for r in rows})
    if is_pandas:
        return ScoreResult(scored.to_pandas(), rejects.to_pandas())
    return ScoreResult(scored, rejects)


def validate_frame(frame, config: Config | str | None = None, *, kam: Kam | None = None) -> list:
    """Every problem in a frame of opportunities at once, as :class:`kamcore.records.Problem` records
    (one per failing value, not just the first); an empty list means every row can be scored."""
    from .records import Problem

    kam, config = _session(config, kam)
    text, _ = _as_text(frame)
    prepared, _ = prepare_frames([(text.lazy(), "<frame>")], config, kam)
    rejects = explode_rejects(prepared.rejected().collect(), list(prepared.plan.problems), ["<frame>"],
                              lambda src, rows: {r: r + 1 for r in rows})
    return [Problem(**row) for row in rejects.iter_rows(named=True)]  # per-row ok: problems only


def score_one(opportunity: dict, config: Config | str | None = None, *, kam: Kam | None = None) -> dict:
    """Score one opportunity given as a dict; raises :class:`DataError` with the reasons if it is rejected."""
    frame = pl.DataFrame({k: [None if v is None else str(v)] for k, v in opportunity.items()})
    result = score_frame(frame, config, kam=kam)
    if result.scored.height == 0:
        problems = "; ".join(f"{r['column']}: {r['reason']}" for r in result.rejects.to_dicts())  # per-row ok: one row
        raise DataError(f"opportunity rejected: {problems}")
    return result.scored.row(0, named=True)


def classify_stakeholders(frame, config: Config | str | None = None, *, kam: Kam | None = None):
    """Map a stakeholder table's headers and classify it through the ``classify_stakeholders`` hook."""
    kam, config = _session(config, kam)
    text, is_pandas = _as_text(frame)
    mapping = map_headers(text.columns, STAKEHOLDER_COLUMNS, config.section("columns"), source="<stakeholders>")
    result = kam.classify_stakeholders(text.rename(mapping), config)
    result = text.rename(mapping) if result is None else result
    return result.to_pandas() if is_pandas else result


__all__ = ["ScoreResult", "score_frame", "score_one", "validate_frame", "classify_stakeholders"]
