"""BANT (Budget, Authority, Need, Timeline) through kamcore's ``qualify`` hook.

Adds ``bant_budget``, ``bant_authority``, ``bant_need``, ``bant_timeline`` (yes / no / unknown),
``bant_score`` (0–4, the yeses) and ``bant_gaps`` (the letters still open). Authority reads the
stakeholder coverage (``decision_maker_known``) when ``kam score --stakeholders`` gives it, else 人脉资源.
"""

from kamcore import hookimpl

from . import column, gaps, verdict


@hookimpl
def qualify(batch, config):
    import polars as pl

    budget = column(batch, "budget_status")
    funding = column(batch, "funding_status")
    contacts = column(batch, "contacts").cast(pl.String).str.to_lowercase()
    dm = column(batch, "decision_maker_known").cast(pl.String)
    need = column(batch, "need_clarity")
    urgency = column(batch, "urgency")
    parts = {
        "B": verdict(budget.is_in(["allocated", "partial"]) | funding.is_in(["in_place", "partial"]),
                     budget == "none"),
        "A": verdict((dm == "true") | contacts.str.contains("决策者|decision maker"), dm == "false"),
        "N": verdict(need == "clear", need == "unclear"),
        "T": verdict(column(batch, "purchase_date").is_not_null() & urgency.is_in(["high", "medium"]),
                     urgency == "low"),
    }
    names = {"B": "bant_budget", "A": "bant_authority", "N": "bant_need", "T": "bant_timeline"}
    return batch.select(*[v.alias(names[k]) for k, v in parts.items()],
                        pl.sum_horizontal([(v == "yes").cast(pl.Int32) for v in parts.values()]).alias("bant_score"),
                        gaps(parts).alias("bant_gaps"))
