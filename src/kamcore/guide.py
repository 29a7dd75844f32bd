"""The column guide (列说明): each output column's Chinese and English name, and what it holds.

The scored file keeps kam's canonical column names (what a CRM joins on, what kam reads back); the guide
is for the person who opens it in Excel: the workbook carries it as a second sheet, and ``kam columns``
prints it. The core labels what it owns (the schema's columns and their codes, the columns the normaliser
derives, each criterion's points, the block scores, the total, the unknown count and the win probability);
plugins label the columns they add with ``register_column_labels``; a column of the export that kam does
not read is labelled as such.
"""

from __future__ import annotations

from collections.abc import Iterable

from .registry import ColumnLabel, Criterion
from .schema import (AMOUNT, CODE, COUNT_OR_NAMES, CURRENCY, DATE, ID, LEVEL_OR_AMOUNT, OPPORTUNITY, PERCENT,
                     STAKEHOLDER, TEXT, Column)

BLOCK_LABELS = {"real": ("是不是虚的？得分", "Is it real? score"),
                "worth": ("值得赢吗？得分", "Is it worth winning? score"),
                "win": ("能赢吗？得分", "Can we win? score")}

DERIVED_LABELS = {  # column: (中文, English, meaning)
    "deal_size_base": ("标的（本位币）", "Deal size in the base currency",
                       "按 [currency] 汇率换算，便于比较 / converted at the [currency] rates of kam.toml, to compare deals"),
    "purchase_date_precision": ("采购时间精度", "Purchase date precision",
                                "day 日 · month 月 · quarter 季 · year 年：原表写到哪一级 / how precise the export was"),
    "future_revenue_amount": ("我们的未来销售收入（金额）", "Future revenue (amount)",
                              "以金额而非高中低给出时 / when given as an amount instead of a level"),
    "competitor_count": ("竞争对手数", "Number of competitors", "给出的数目，或数出的名称 / given, or counted from the names"),
    "value_flags": ("取值备注", "Value notes", "带备注接受的值（面议、区间中点、Excel 日期序号…），格式 column: note / "
                    "values accepted with a note (面议, a range's midpoint, an Excel serial date …), as column: note"),
}

KIND_MEANINGS = {
    ID: "原样保留 / as in the export",
    TEXT: "原样保留 / as in the export",
    AMOUNT: "金额，单位已换算（万、亿已乘开） / an amount, units multiplied out (万, 亿)",
    CURRENCY: "币种代码 / ISO 4217 code (CNY, USD …)",
    DATE: "日期 YYYY-MM-DD，精度见 {name}_precision / a date, YYYY-MM-DD; its precision is in {name}_precision",
    PERCENT: "百分点：35 即 35% / percentage points: 35 is 35%",
    COUNT_OR_NAMES: "原样保留，数目见 competitor_count / as in the export; the count is in competitor_count",
}

SCORE_LABELS = {
    "total_score": ("总分", "Total score", "0–100：各项得分占满分之比，未知项计 0 分 / 0–100: the points over the "
                    "maximum, an unknown item earning none"),
    "unknown_criteria": ("未知项数", "Unknown items", "缺少信息、未计分的项数 / items not scored for want of "
                         "information"),
    "win_probability": ("赢单概率", "Win probability", "0–1"),
}

FROM_EXPORT = ("原表列", "From the export", "kam 未读取，原样保留 / not read by kam, kept as written")


def codes(column: Column, only: Iterable[str] | None = None) -> str:
    """``potential 潜在 · intent 意向 …``: each code (of ``only``, if given) with its Chinese label."""
    vocab = column.vocab or {}
    return " · ".join(f"{code} {vocab[code][0]}" for code in (vocab if only is None else only))


def schema_label(column: Column) -> ColumnLabel:
    if column.kind in (CODE, LEVEL_OR_AMOUNT):
        meaning = codes(column)
        if column.kind == LEVEL_OR_AMOUNT:
            meaning += f"; 金额见 {column.name}_amount / an amount is in {column.name}_amount"
    else:
        meaning = KIND_MEANINGS.get(column.kind, "").format(name=column.name)
    return ColumnLabel(column.name, column.label_zh, column.label_en, meaning)


def criterion_label(criterion: Criterion) -> ColumnLabel:
    number = f"{criterion.number}. " if criterion.number is not None else ""
    points = f"{criterion.max_points:g}"
    standard = f"（评估标准：{criterion.standard_zh}）" if criterion.standard_zh else ""
    meaning = f"0–{points} 分{standard}，空为信息不足 / 0–{points} points, empty when unknown"
    return ColumnLabel(criterion.column, number + criterion.label_zh, number + criterion.label_en, meaning)


SOURCE_MEANING = "given 表中给出 · inferred 推断 / given in the table · inferred by kam"


def people_labels() -> dict[str, ColumnLabel]:
    """The stakeholder schema's columns (关键人物信息表), and ``<column>_source`` for each coded one that kam may
    infer (``kam classify``)."""
    labels = {name: schema_label(column) for name, column in STAKEHOLDER.items()}
    labels |= {f"{name}_source": ColumnLabel(f"{name}_source", f"{column.label_zh}（来源）", f"{column.label_en} (source)",
                                             SOURCE_MEANING)
               for name, column in STAKEHOLDER.items() if column.kind == CODE}
    return labels


def core_labels(criteria: Iterable[Criterion]) -> dict[str, ColumnLabel]:
    """Every label the core gives: the schema (opportunities, then people), the derived columns, the criteria
    and the scores."""
    criteria = list(criteria)
    labels = people_labels() | {name: schema_label(column) for name, column in OPPORTUNITY.items()}
    labels |= {name: ColumnLabel(name, *words) for name, words in DERIVED_LABELS.items()}
    labels |= {k.column: criterion_label(k) for k in criteria}
    for block, (zh, en) in BLOCK_LABELS.items():
        numbers = [k.number for k in criteria if k.block == block and k.number is not None]
        items = f"{min(numbers)}–{max(numbers)}" if numbers else ""
        meaning = "0–100" + (f"，第 {items} 项 / 0–100, items {items}" if items else "")
        labels[f"{block}_score"] = ColumnLabel(f"{block}_score", zh, en, meaning)
    labels |= {name: ColumnLabel(name, *words) for name, words in SCORE_LABELS.items()}
    return labels


def column_guide(names: Iterable[str], criteria: Iterable[Criterion], plugin_labels: Iterable[ColumnLabel],
                 from_export: Iterable[str] = ()) -> tuple[ColumnLabel, ...]:
    """One label per name, in order: "from the export" for a column of the input kam does not read
    (``from_export``), else the core's, else a plugin's, else the name alone."""
    labels = {label.name: label for label in plugin_labels} | core_labels(criteria)
    kept = set(from_export)
    return tuple(ColumnLabel(name, *FROM_EXPORT) if name in kept else labels.get(name, ColumnLabel(name, "", ""))
                 for name in names)
