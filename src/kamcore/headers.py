"""Map the headers of an export onto canonical column names, in Chinese and in English.

A header is compared after NFKC folding (full-width to half-width), removing zero-width characters,
white space, underscores and hyphens, and lower-casing; so ``Opportunity ID``, ``opportunity_id`` and
``Ｏｐｐｏｒｔｕｎｉｔｙ　ＩＤ`` all match. A user's ``[columns]`` table in kam.toml wins over the built-in aliases; mapping a header to ``""`` keeps it
as it is.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import ConfigError, InputError
from .schema import Column

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SEPARATORS = re.compile(r"[\s_\-]+")


def clean_header(header: str) -> str:
    """The header as a person reads it: NFKC, no zero-width characters, single spaces, trimmed."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", header))
    return " ".join(text.split())


def header_key(header: str) -> str:
    """The key headers are matched on."""
    return _SEPARATORS.sub("", clean_header(header)).lower()


def display_width(text: str) -> int:
    """Columns a text takes in a terminal or a spreadsheet cell: a Chinese (wide) character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def alias_table(columns: tuple[Column, ...]) -> dict[str, str]:
    """header key -> canonical name, from each column's name, labels and aliases."""
    table: dict[str, str] = {}
    for column in columns:
        for alias in (column.name, column.label_zh, column.label_en, *column.aliases):
            table.setdefault(header_key(alias), column.name)
    return table


_NOTED = re.compile(r"^(.+?)\s*(?:\((.+)\)|\[(.+)\]|【(.+)】|/\s*([^/]+))$")
PERCENT_NOTES = ("%", "百分比", "percent", "pct")


def header_note(header: str) -> tuple[str, str] | None:
    """(the header, its note) for a header ending in a note: 标的(万元), 金额【单位：万元】, 利润率/%, Amount [USD]."""
    found = _NOTED.match(clean_header(header))
    if not found:
        return None
    return found.group(1), next(g for g in found.groups()[1:] if g is not None).strip()


def header_unit(header: str) -> tuple[float, str | None] | None:
    """(multiplier, currency) an amount column's header declares: in a note (标的(万元), 标的(单位: 亿),
    Deal size (USD k)) or, for a header the user maps, anywhere in it (合同额万元); None when it declares none."""
    from .normalise import unit_note

    noted = header_note(header)
    if noted is not None and (found := unit_note(noted[1])) is not None:
        return found
    text = clean_header(header)
    return next(((unit, None) for word, unit in (("亿", 1e8), ("千万", 1e7), ("百万", 1e6), ("万", 1e4)) if word in text),
                None)


def _noted_column(header: str, table: dict[str, str], kinds: dict[str, str]) -> str | None:
    """The amount (or level-or-amount) or percentage column a header names before a note of its unit or
    currency (标的(万元) is deal_size in 万元), else None: another note (采购时间(预计)) does not say what the
    column holds."""
    from .normalise import unit_note
    from .schema import AMOUNT, LEVEL_OR_AMOUNT, PERCENT

    noted = header_note(header)
    if noted is None:
        return None
    base, note = noted
    target = table.get(header_key(base))
    if target is None:
        return None
    if kinds.get(target) in (AMOUNT, LEVEL_OR_AMOUNT) and unit_note(note) is not None:
        return target
    if kinds.get(target) == PERCENT and note.lower() in PERCENT_NOTES:
        return target
    return None


def map_headers(headers: list[str], columns: tuple[Column, ...], user_mapping: dict[str, str],
                source: str = "input") -> dict[str, str]:
    """Return {header as in the file: output name} for every header.

    Mapped headers get their canonical name; others keep their cleaned name. A header that names an amount
    column before a note of its unit or currency (标的(万元), Deal size (USD)), or a percentage column before
    ``(%)``, is that column (:func:`header_unit` reads the note). Two headers that land on the same name are
    an :class:`InputError` naming both.
    """
    from .schema import OPPORTUNITY, STAKEHOLDER

    canonical = {c.name for c in columns}
    user = {}
    keep = set()
    for header, target in user_mapping.items():
        if target == "":  # "keep this header as it is": opt out of the built-in aliases
            keep.add(header_key(header))
            continue
        if target not in OPPORTUNITY and target not in STAKEHOLDER:
            raise ConfigError(f"[columns] maps {header!r} to {target!r}, which is not a canonical column",
                              hint="see docs/schema.md for the column names")
        if target in canonical:
            user[header_key(header)] = target
    aliases = alias_table(columns)
    kinds = {c.name: c.kind for c in columns}
    known = {**aliases, **user}  # what a header before a note may name
    result: dict[str, str] = {}
    owner: dict[str, str] = {}
    for header in headers:
        key = header_key(header)
        name = (clean_header(header) if key in keep else user.get(key) or aliases.get(key)
                or _noted_column(header, known, kinds) or clean_header(header) or "column")
        if name in owner:
            raise InputError(f"{source}: columns {owner[name]!r} and {header!r} both map to {name!r}",
                             hint=f'to read {owner[name]!r} as {name} and keep {header!r} as it is, put "{header}" = "" '
                                  "under [columns] in kam.toml (or the other way round)")
        owner[name] = header
        result[header] = name
    return result


def personal_headers(headers: list[str], mapping: dict[str, str]) -> set[str]:
    """Headers holding a personal stakeholder field (kamcore.schema.PERSONAL_FIELDS): a header named
    like one (电话, birthday …), or one that contains such a name (联系人电话, contact phone); short
    English names (name, age) only when they are the whole header, so "Project name" is not masked, and a
    header kam maps to an opportunity column (人脉资源 / contacts) is that column, not a person's field."""
    from .schema import OPPORTUNITY_COLUMNS, PERSONAL_FIELDS, STAKEHOLDER_COLUMNS

    keys = {k for k, name in alias_table(STAKEHOLDER_COLUMNS).items() if name in PERSONAL_FIELDS}
    parts = {k for k in keys if (not k.isascii() and len(k) >= 2) or (k.isascii() and len(k) >= 5)}

    canonical = {c.name for c in OPPORTUNITY_COLUMNS}

    def personal(header: str) -> bool:
        key = header_key(header)
        if key in keys or mapping.get(header) in PERSONAL_FIELDS:
            return True
        return mapping.get(header) not in canonical and any(part in key for part in parts)

    return {h for h in headers if personal(h)}
