"""Frozen records for one opportunity, one stakeholder and one problem, for code that embeds kamcore.

Batches flow through the pipeline as polars frames; these records are the row-sized view of the same
contract (docs/schema.md). ``from_row`` takes a row of *normalised* canonical values (a row of the
scored output, or of :func:`kamcore.score_frame`'s result) and keeps unknown columns in ``extra``.
Coded fields are validated against the schema's vocabulary, so a record is always a valid one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from attrs import field, fields, frozen, validators

from .schema import OPPORTUNITY, STAKEHOLDER


def _code(column: str, table: dict):
    return validators.optional(validators.in_(sorted(table[column].vocab)))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _date(value: Any) -> dt.date | None:
    if value is None or value == "" or isinstance(value, dt.date):
        return value or None
    return dt.date.fromisoformat(str(value))


class _FromRow:
    @classmethod
    def from_row(cls, row: dict[str, Any]):
        """Build from a dict of canonical column names; other keys are kept in ``extra``."""
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in row.items() if k in names}
        return cls(**known, extra={k: v for k, v in row.items() if k not in names})


@frozen
class Opportunity(_FromRow):
    """One opportunity in canonical form (销售机会)."""

    opportunity_id: str = field(converter=str)
    account: str | None = field(default=None, converter=_text)
    project_name: str | None = field(default=None, converter=_text)
    stage: str | None = field(default=None, validator=_code("stage", OPPORTUNITY))
    dev_stage: str | None = field(default=None, validator=_code("dev_stage", OPPORTUNITY))
    lead_source: str | None = field(default=None, validator=_code("lead_source", OPPORTUNITY))
    deal_size: float | None = field(default=None, converter=_number)
    currency: str | None = field(default=None, converter=_text)
    purchase_date: dt.date | None = field(default=None, converter=_date)
    purchase_date_precision: str | None = field(
        default=None, validator=validators.optional(validators.in_(["day", "month", "quarter", "year"])))
    funding_source: str | None = field(default=None, validator=_code("funding_source", OPPORTUNITY))
    funding_status: str | None = field(default=None, validator=_code("funding_status", OPPORTUNITY))
    need_clarity: str | None = field(default=None, validator=_code("need_clarity", OPPORTUNITY))
    business_condition: str | None = field(default=None, validator=_code("business_condition", OPPORTUNITY))
    approval_status: str | None = field(default=None, validator=_code("approval_status", OPPORTUNITY))
    budget_status: str | None = field(default=None, validator=_code("budget_status", OPPORTUNITY))
    urgency: str | None = field(default=None, validator=_code("urgency", OPPORTUNITY))
    future_revenue: str | None = field(default=None, validator=_code("future_revenue", OPPORTUNITY))
    margin: float | None = field(default=None, converter=_number)
    risk: str | None = field(default=None, validator=_code("risk", OPPORTUNITY))
    strategic_value: str | None = field(default=None, validator=_code("strategic_value", OPPORTUNITY))
    competitors: str | None = field(default=None, converter=_text)
    owner: str | None = field(default=None, converter=_text)
    outcome: str | None = field(default=None, validator=_code("outcome", OPPORTUNITY))
    extra: dict[str, Any] = field(factory=dict)


@frozen
class Stakeholder(_FromRow):
    """One person on a deal (关键人物). Personal fields stay in ``extra`` and are never logged."""

    opportunity_id: str = field(converter=str)
    name: str | None = field(default=None, converter=_text, repr=False)
    title: str | None = field(default=None, converter=_text)
    department: str | None = field(default=None, converter=_text)
    role: str | None = field(default=None, validator=_code("role", STAKEHOLDER))
    style: str | None = field(default=None, validator=_code("style", STAKEHOLDER))
    stance: str | None = field(default=None, validator=_code("stance", STAKEHOLDER))
    influence: str | None = field(default=None, validator=_code("influence", STAKEHOLDER))
    closeness_trend: str | None = field(default=None, validator=_code("closeness_trend", STAKEHOLDER))
    trust_trend: str | None = field(default=None, validator=_code("trust_trend", STAKEHOLDER))
    extra: dict[str, Any] = field(factory=dict, repr=False)


@frozen
class Problem:
    """Why one value of one row was not accepted: where it is, and what to do about it."""

    file: str
    line: int | None
    column: str
    reason: str
    value: str = ""
    opportunity_id: str | None = None
    header: str | None = None  # the column's header as the input names it (标的 for deal_size)
