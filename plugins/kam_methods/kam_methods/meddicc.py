"""MEDDICC (Metrics, Economic buyer, Decision criteria, Decision process, Identify pain, Champion,
Competition) through kamcore's ``summarise_stakeholders`` and ``qualify`` hooks.

``summarise_stakeholders`` adds, per opportunity, ``meddicc_economic_buyer`` (a decision maker who does
not oppose us) and ``meddicc_champion`` (a coach, or a supporter who could become one, with medium or
high influence: a MEDDICC champion has power and sells for us). ``qualify`` then adds one yes / no /
unknown column per letter, ``meddicc_score`` (0–7) and ``meddicc_gaps``.
"""

from kamcore import hookimpl

from . import column, gaps, verdict


@hookimpl
def summarise_stakeholders(stakeholders, config):
    import polars as pl

    c = pl.col
    people = stakeholders
    for name in ("role", "stance", "influence", "coach_potential"):
        if name not in people.columns:
            people = people.with_columns(pl.lit(None, pl.String).alias(name))
    powerful = c("influence").is_in(["high", "medium"]).fill_null(False)
    champion = ((c("role") == "coach") | ((c("stance") == "support") & (c("coach_potential") == "yes"))).fill_null(False)
    buyer = ((c("role") == "decision_maker") & (c("stance") != "oppose").fill_null(True)).fill_null(False)
    keyed = people.filter(c("opportunity_id").is_not_null()).group_by("opportunity_id", maintain_order=True).agg(
        buyer.any().alias("meddicc_economic_buyer"), (champion & powerful).any().alias("meddicc_champion"))
    nobody = pl.DataFrame({"opportunity_id": [None], "meddicc_economic_buyer": [False], "meddicc_champion": [False]},
                          schema=keyed.schema)
    return pl.concat([keyed, nobody])


@hookimpl
def qualify(batch, config):
    import polars as pl

    need = column(batch, "need_clarity")
    approval = column(batch, "approval_status")
    buyer = column(batch, "meddicc_economic_buyer").cast(pl.String)
    champion = column(batch, "meddicc_champion").cast(pl.String)
    criteria = column(batch, "technical_gatekeeper_known").cast(pl.String)
    parts = {
        "M": verdict(column(batch, "deal_size").is_not_null() & column(batch, "margin").is_not_null()),
        "E": verdict(buyer == "true", buyer == "false"),
        "D": verdict((criteria == "true") & (need == "clear"), criteria == "false"),
        "DP": verdict(approval.is_in(["approved", "in_progress"]), approval == "not_started"),
        "I": verdict((need == "clear") & column(batch, "urgency").is_in(["high", "medium"]), need == "unclear"),
        "C": verdict(champion == "true", champion == "false"),
        "CO": verdict(column(batch, "competitor_count").is_not_null()),
    }
    names = {"M": "meddicc_metrics", "E": "meddicc_economic_buyer_ok", "D": "meddicc_decision_criteria",
             "DP": "meddicc_decision_process", "I": "meddicc_pain", "C": "meddicc_champion_ok",
             "CO": "meddicc_competition"}
    return batch.select(*[v.alias(names[k]) for k, v in parts.items()],
                        pl.sum_horizontal([(v == "yes").cast(pl.Int32) for v in parts.values()]).alias("meddicc_score"),
                        gaps(parts).alias("meddicc_gaps"))
