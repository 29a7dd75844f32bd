"""Embedding kamcore: score a data frame, or one opportunity, with the same numbers as ``kam score``."""

from __future__ import annotations

from typing import Any

import polars as pl
from attrs import frozen

from .config import Config, load_config
from .errors import DataError, InputError, KamError
from .importing import as_text
from .normalise import ROW
from .pipeline import explode_rejects, prepare_frames, stakeholder_frame, summarise_people
from .plugins import Kam, get_kam
from .profiles import apply_profile
from .repeats import ID, find_repeated


@frozen
class ScoreResult:
    """Scored rows, rejected problems (one row per problem: line, column, reason, value) and the opportunity
    ids more than one scored row carries (``opportunity_id`` trimmed, ``rows``, and their 1-based ``lines``
    in the frame; no rows when every id is unique): a join back on ``opportunity_id`` would meet two scores."""

    scored: Any
    rejects: Any
    repeated: Any = None


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
    texts = []
    for index, (name, dtype) in enumerate(frame.schema.items()):  # as the Parquet importer reads typed columns
        text = as_text(pl.nth(index), dtype)
        if text is None:
            raise InputError(f"column {name!r} holds {dtype} values, which cannot be read as text",
                             hint="leave the column out of the frame, or give it as text")
        texts.append(text.alias(name))
    return frame.select(texts), is_pandas


def _people(stakeholders, config: Config, kam: Kam):
    """The classified and summed-up stakeholder table, or None."""
    if stakeholders is None:
        return None
    if isinstance(stakeholders, list):  # a list of dicts, one per person
        stakeholders = pl.DataFrame([{k: None if v is None else str(v) for k, v in person.items()}
                                     for person in stakeholders])
    text, _ = _as_text(stakeholders)
    return summarise_people(stakeholder_frame(text, config), config, kam)


def score_frame(frame, config: Config | str | None = None, *, kam: Kam | None = None,
                stakeholders=None, profile: str | None = None, include_pii: bool = False) -> ScoreResult:
    """Score a data frame of opportunities (any headers the CLI accepts). Returns polars frames, or
    pandas frames when given pandas. ``line`` in the rejects is the 1-based row number in ``frame``.
    ``stakeholders``: a data frame of the people on the deals (关键人物信息表 / 角色表), as ``kam score
    --stakeholders`` reads it; their per-opportunity coverage columns are joined onto the opportunities.
    ``profile``: a CRM profile (``"salesforce"``, ``"hubspot"``, a .toml path) or ``"auto"`` to detect
    one from the headers as ``kam score`` does; ``None`` (the default) uses none. Columns holding a
    person's data (联系人电话, birthday …) are left out of ``scored`` unless ``include_pii``."""
    kam, config = _session(config, kam)
    text, is_pandas = _as_text(frame)
    if profile is not None:
        config, _ = apply_profile(config, kam, None if profile == "auto" else profile, text.lazy())
    prepared, _ = prepare_frames([(text.lazy(), "<frame>")], config, kam, _people(stakeholders, config, kam),
                                 include_pii=include_pii)
    scored, rejected, ids = pl.collect_all([prepared.scored(), prepared.rejected(), prepared.scored_ids()])
    rejects = explode_rejects(rejected, list(prepared.plan.problems), ["<frame>"],
                              lambda src, rows: {r: r + 1 for r in rows}, prepared.mappings)
    repeated = find_repeated(ids.lazy(), ids.height).select(
        pl.col(ID).alias("opportunity_id"), "rows", (pl.col(ROW) + 1).alias("lines"))
    if is_pandas:
        return ScoreResult(scored.to_pandas(), rejects.to_pandas(), repeated.to_pandas())
    return ScoreResult(scored, rejects, repeated)


def validate_frame(frame, config: Config | str | None = None, *, kam: Kam | None = None) -> list:
    """Every problem in a frame of opportunities at once, as :class:`kamcore.records.Problem` records
    (one per failing value, not just the first); an empty list means every row can be scored."""
    from .records import Problem

    kam, config = _session(config, kam)
    text, _ = _as_text(frame)
    prepared, _ = prepare_frames([(text.lazy(), "<frame>")], config, kam)
    rejects = explode_rejects(prepared.rejected().collect(), list(prepared.plan.problems), ["<frame>"],
                              lambda src, rows: {r: r + 1 for r in rows}, prepared.mappings)
    return [Problem(**row) for row in rejects.iter_rows(named=True)]  # per-row ok: problems only


def score_one(opportunity: dict, config: Config | str | None = None, *, kam: Kam | None = None,
              stakeholders: list[dict] | None = None) -> dict:
    """Score one opportunity given as a dict (and, optionally, its people as a list of dicts); raises
    :class:`DataError` with the reasons if it is rejected."""
    frame = pl.DataFrame({k: [None if v is None else str(v)] for k, v in opportunity.items()})
    result = score_frame(frame, config, kam=kam, stakeholders=stakeholders)
    if result.scored.height == 0:
        problems = "; ".join(f"{r['column']}: {r['reason']}" for r in result.rejects.to_dicts())  # per-row ok: one row
        raise DataError(f"opportunity rejected: {problems}")
    return result.scored.row(0, named=True)


def classify_stakeholders(frame, config: Config | str | None = None, *, kam: Kam | None = None):
    """Map a stakeholder table's headers and classify it through the ``classify_stakeholders`` hook."""
    kam, config = _session(config, kam)
    text, is_pandas = _as_text(frame)
    people = stakeholder_frame(text, config, require_id=False)
    result = kam.classify_stakeholders(people, config)
    result = people if result is None else result
    return result.to_pandas() if is_pandas else result


def stakeholder_coverage(frame, config: Config | str | None = None, *, kam: Kam | None = None):
    """Per-opportunity coverage and red flags of a stakeholder table (the ``summarise_stakeholders``
    hooks' columns, one row per opportunity_id); ``None`` when no plugin sums stakeholders up."""
    kam, config = _session(config, kam)
    text, is_pandas = _as_text(frame)
    summary = summarise_people(stakeholder_frame(text, config), config, kam).summary
    return summary.to_pandas() if is_pandas and summary is not None else summary


def column_guide(columns=None, config: Config | str | None = None, *, kam: Kam | None = None,
                 stakeholders: bool = False) -> list:
    """What each output column is called in Chinese and English and what it holds, as
    :class:`kamcore.registry.ColumnLabel` records, in order (the workbook's 列说明 sheet, ``kam columns``).

    ``columns``: the names to label (``result.scored.columns``; a column kam knows nothing of gets empty
    labels). ``None``: every column ``kam score`` writes for an export with every column of the schema, and
    with ``stakeholders`` the coverage columns a stakeholder table adds."""
    from .guide import column_guide as guide
    from .scoring import ScoringPlan
    from .schema import OPPORTUNITY_COLUMNS, STAKEHOLDER_COLUMNS

    kam, config = _session(config, kam)
    if columns is None:
        every = pl.DataFrame({c.name: pl.Series([], dtype=pl.String) for c in OPPORTUNITY_COLUMNS})
        people = (pl.DataFrame({c.name: pl.Series([], dtype=pl.String) for c in STAKEHOLDER_COLUMNS})
                  if stakeholders else None)
        columns = score_frame(every, config, kam=kam, stakeholders=people).scored.columns
    elif not isinstance(columns, list | tuple):
        columns = list(columns.columns) if hasattr(columns, "columns") else list(columns)
    return list(guide(columns, ScoringPlan(kam, config).criteria, kam.column_labels(config)))


__all__ = ["ScoreResult", "score_frame", "score_one", "validate_frame", "classify_stakeholders", "stakeholder_coverage",
           "column_guide"]
