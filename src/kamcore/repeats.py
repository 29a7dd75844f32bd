"""Opportunity ids that more than one scored row carries, found in memory that does not grow with the export.

Two exports that overlap (``kam score q3.csv q3_revised.csv``), or a CRM that lists a deal once per
product line, give the same opportunity twice: both rows are scored, and a join back into the CRM on
``opportunity_id`` then meets two scores. The run says so in its summary (``repeated_ids``) and in a
warning, with where the first few are.

The scored rows' ids (trimmed, as the stakeholder join reads them) are written with their input and record
numbers to Arrow IPC files in the run's work folder as the rows stream. After the pass they are read back
one part at a time, the parts cut by a hash of the id, so that about :data:`PART_ROWS` ids are held at once
however many rows there are; a cheap hash finds the candidates, and the ids themselves decide.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from pathlib import Path

import polars as pl

from .normalise import ROW, SRC

c = pl.col
ID, HASH = "__id", "__id_hash"
PART_ROWS = 1 << 20  # ids compared at once
SPILL_ROWS = 1 << 17  # ids gathered before they are written out
EXAMPLES = 5  # repeated ids the summary shows where to find
PLACES = 3  # rows shown for each
log = logging.getLogger("kamcore")


def id_columns() -> list[pl.Expr]:
    """What a batch of scored rows gives the spill: input, record and id, as they are (no copy)."""
    return [c(SRC), c(ROW), c("opportunity_id")]


def _spilled_columns() -> list[pl.Expr]:
    """What the spill writes: input, record, trimmed id and its hash (computed a spill, not a batch, at a time)."""
    ident = c("opportunity_id").cast(pl.String).str.strip_chars()
    return [c(SRC).cast(pl.UInt32), c(ROW).cast(pl.UInt32), ident.alias(ID), ident.hash(seed=1).alias(HASH)]


class IdSpill:
    """The scored rows' ids, gathered batch by batch (from any thread) into files in ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.pending: list[pl.DataFrame] = []
        self.pending_rows = 0
        self.files: list[Path] = []
        self.rows = 0
        self.lock = threading.Lock()

    def add(self, frame: pl.DataFrame) -> None:
        """Keep a frame of :func:`id_columns`."""
        if frame.height == 0:
            return
        with self.lock:
            self.pending.append(frame)
            self.pending_rows += frame.height
            self.rows += frame.height
            if self.pending_rows >= SPILL_ROWS:
                self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        path = self.folder / f"ids-{len(self.files):05d}.arrow"
        pl.concat(self.pending, rechunk=False).select(_spilled_columns()).write_ipc(path, compression="uncompressed")
        self.files.append(path)
        self.pending, self.pending_rows = [], 0

    def repeated(self, part_rows: int = PART_ROWS) -> pl.DataFrame:
        """:func:`find_repeated` over every id spilled so far."""
        with self.lock:
            self._flush()
        if not self.files:
            return _EMPTY
        return find_repeated(pl.scan_ipc(self.files), self.rows, part_rows)


_EMPTY = pl.DataFrame(schema={ID: pl.String, "rows": pl.UInt32, SRC: pl.List(pl.UInt32), ROW: pl.List(pl.UInt32)})


def find_repeated(ids: pl.LazyFrame, rows: int, part_rows: int = PART_ROWS) -> pl.DataFrame:
    """One row per id that more than one of ``ids`` (:func:`id_columns`, or the spilled columns) carries: the
    trimmed id, how many rows, and where they are (``src`` and ``row`` lists, in input order), in the order of
    their first row. ``rows`` (how many ids there are) sets how many parts, of about ``part_rows`` ids each,
    are compared one at a time."""
    if HASH not in ids.collect_schema():
        ids = ids.select(_spilled_columns())
    parts = max(1, math.ceil(rows / part_rows))
    found = [_EMPTY]
    for part in range(parts):  # the hashes of a part first (8 bytes an id), then the few rows they point to
        mine = c(HASH) % parts == part if parts > 1 else pl.lit(True)
        hashes = (ids.select(HASH).filter(mine).sort(HASH)  # sorted, a repeat follows its twin:
                  .filter(c(HASH) == c(HASH).shift(1)).unique().collect())  # quicker than a hash table
        if hashes.height == 0:
            continue
        candidates = ids.filter(mine & c(HASH).is_in(hashes.get_column(HASH).implode())).collect()
        candidates = candidates.filter(c(ID).is_duplicated())  # the ids decide, not their hashes
        if candidates.height:
            found.append(candidates.sort(SRC, ROW).group_by(ID, maintain_order=True).agg(
                pl.len().cast(pl.UInt32).alias("rows"), c(SRC).cast(pl.UInt32), c(ROW).cast(pl.UInt32)))
    return pl.concat(found).sort(pl.col(SRC).list.first(), pl.col(ROW).list.first())


def report(repeated: pl.DataFrame, labels: list[str],
           lines: Callable[[int, list[int]], dict[int, int]]) -> dict:
    """The summary's ``repeated_ids``: how many ids more than one row carries, those rows, and the first
    :data:`EXAMPLES` ids with the file and physical line of their first :data:`PLACES` rows."""
    shown = repeated.head(EXAMPLES).with_columns(c(SRC).list.head(PLACES), c(ROW).list.head(PLACES))
    wanted: dict[int, list[int]] = {}
    for srcs, rows in zip(shown[SRC].to_list(), shown[ROW].to_list()):
        for src, row in zip(srcs, rows):
            wanted.setdefault(src, []).append(row)
    where = {src: lines(src, rows) for src, rows in wanted.items()}
    examples = [{"opportunity_id": ident, "rows": count,
                 "at": [{"file": labels[src], "line": where[src].get(row)} for src, row in zip(srcs, rows)]}
                for ident, count, srcs, rows in shown.iter_rows()]  # per-row ok: EXAMPLES rows at most
    return {"ids": repeated.height, "rows": int(repeated["rows"].sum() or 0), "examples": examples}


def warning(found: dict) -> str | None:
    """The run's note about repeated ids, or None when there are none."""
    if not found["ids"]:
        return None
    first = found["examples"][0]
    places = ", ".join(f"{p['file']} line {p['line']}" for p in first["at"])
    more = f"; {found['ids'] - 1} more id(s) repeated" if found["ids"] > 1 else ""
    return (f"{found['ids']} opportunity id(s) on more than one scored row ({found['rows']} rows): "
            f"{first['opportunity_id']!r} on {first['rows']} rows ({places}){more}; each row was scored "
            "(summary: repeated_ids)")
