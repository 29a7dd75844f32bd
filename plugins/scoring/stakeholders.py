"""Built-in stakeholder classification: normalise the roles, styles, stances and trends a file gives.

Values are mapped to the canonical codes of 关键人物信息表 / 角色表 (decision_maker, tiger, support …);
each coded column gets a ``<column>_source`` column saying ``given`` (or null when missing). The
hook is ``trylast``: an installed plugin that infers more (from titles, traits) takes precedence.
"""

from __future__ import annotations

from kamcore import hookimpl
from kamcore.schema import STAKEHOLDER

CODED = [name for name, column in STAKEHOLDER.items() if column.vocab]


@hookimpl(trylast=True)
def classify_stakeholders(stakeholders, config):
    import polars as pl

    from kamcore.normalise import key, lookup, vocabulary

    values = config.get("values", {})
    exprs = []
    for name in CODED:
        if name not in stakeholders.columns:
            continue
        mapped = lookup(key(pl.col(name).cast(pl.String)), vocabulary(STAKEHOLDER[name], values.get(name, {})))
        exprs += [mapped.alias(name), pl.when(mapped.is_not_null()).then(pl.lit("given")).alias(f"{name}_source")]
    return stakeholders.with_columns(exprs) if exprs else stakeholders
