"""The streaming pipeline: import → normalise and validate → qualify → score → write, in one pass.

Everything between reading and writing is one lazy polars query run by the streaming engine, so
memory stays flat however large the export. The query has two sinks fed by the same scan: the
scored rows, and the rejected rows with their reasons. Rows in = rows scored + rows rejected, and the
run summary says so.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
from attrs import evolve
from attrs import has as attrs_has

from . import __version__
from .config import Config
from .errors import ConfigError, DataError, InputError, KamError, OutputError, PluginError, ReadAgain
from .headers import header_unit, map_headers, personal_headers
from .normalise import BLANK, PROBLEM, RECORD, ROW, SRC, Plan, bilingual
from .packing import pack, packing, unpacked, zip_member
from .profiles import apply_profile
from . import repeats
from .repeats import IdSpill, id_columns
from .registry import ReadOptions, Source
from .injection import neutralise_frame
from .schema import AMOUNT, DERIVED_FROM, LEVEL_OR_AMOUNT, OPPORTUNITY, OPPORTUNITY_COLUMNS, PERSONAL_FIELDS, STAKEHOLDER_COLUMNS, TEXT
from .scoring import ScoringPlan

c = pl.col
log = logging.getLogger("kamcore")  # warnings the kam command shows on stderr
QUARANTINE_COLUMNS = ("__q_column", "__q_reason", "__q_value")  # a quarantined record: where, why, preview
KEY, MATCHED = "__people_key", "__people_matched"
FILLED = "__filled"  # scores only: true when a dropped pass-through field of the record is filled
REJECT_COLUMNS = ["file", "line", "column", "header", "reason", "value", "opportunity_id"]
PREVIEW_CHARS = 60


class Prepared:
    """One run's query: the normalised frame (with problems), the plans, and the output frames."""

    def __init__(self, frames: list[pl.LazyFrame], labels: list[str], config: Config, kam,
                 header_units: dict[str, float], made_up: frozenset[str] = frozenset(), people: People | None = None,
                 personal: frozenset[str] = frozenset(), *, mappings: list[dict[str, str]] | None = None,
                 plan: Plan | None = None, scoring: ScoringPlan | None = None, scores_only: bool = False,
                 header_currencies: dict[str, str] | None = None):
        self.config = config
        self.personal = personal  # personal columns left out of the scored rows
        self.labels = labels
        self.people = people
        self.header_units, self.made_up, self.mappings = header_units, made_up, mappings or []
        self.header_currencies = header_currencies or {}  # amount column -> the currency its header names
        lf = pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]
        self.schema = lf.collect_schema()  # every input's numbered columns: what a piece of any input is widened to
        names = [n for n in self.schema.names() if n not in (SRC, ROW, *QUARANTINE_COLUMNS)]
        quarantine = QUARANTINE_COLUMNS[1] if QUARANTINE_COLUMNS[1] in self.schema else None
        self.scores_only = scores_only
        self.input_names = [n for n in names if n not in personal]  # before a scores-only run leaves any out
        self.scoring = scoring or ScoringPlan(kam, config, scores_only=scores_only)
        if scores_only:
            lf, names = self._project(lf, names, made_up)
        # a blank line (every field empty) is not a row: skipped and counted, never rejected
        self.plan = plan or Plan(names, OPPORTUNITY, config, header_units, not_read=made_up, quarantine=quarantine,
                                 header_currencies=self.header_currencies)
        self.frame = self.plan.on_frame(lf)
        self.ok = self.plan.ok
        self.bad = ~self.plan.ok & ~c(BLANK)

    def _project(self, lf: pl.LazyFrame, names: list[str], made_up: frozenset[str]):
        """Scores only: drop the pass-through columns (text, and columns kam does not know) that nothing
        written reads, right after the scan, so they are never carried through the batch steps. Which rows
        are blank, scored or rejected does not change: one flag column says whether a dropped field was filled.
        """
        passing = [n for n in names if OPPORTUNITY.get(n) is None or OPPORTUNITY[n].kind == TEXT]
        summary = self.people.summary if self.people is not None else None
        read = self.scoring.kept_columns(set(names) | set(summary.columns if summary is not None else ()))
        dropped = [n for n in passing if read is not None and n not in read and n not in made_up]
        if not dropped:
            return lf, names
        filled = pl.when(pl.any_horizontal(c(n).is_not_null() for n in dropped)).then(pl.lit(True)).alias(FILLED)
        return lf.with_columns(filled).drop(dropped), [n for n in names if n not in dropped] + [FILLED]

    def report_columns(self) -> list[str]:
        """The columns ``report_run`` is told of, the same whatever is written: the export's (personal ones
        left out), the columns the normaliser and the stakeholders add, then the criteria's inputs it lacks."""
        given = set(self.input_names) | set(self.scoring.missing_inputs) | {FILLED}
        return self.input_names + [n for n in self.scoring.input_columns if n not in given] + self.scoring.missing_inputs

    def guide(self, names: list[str]) -> tuple:
        """The column guide of the written ``names`` (:mod:`kamcore.guide`): the export's columns kam does not
        read are labelled as such."""
        from .guide import column_guide

        kept = [n for n in self.input_names if n not in OPPORTUNITY]
        return column_guide(names, self.scoring.criteria, self.scoring.kam.column_labels(self.config), kept)

    def scored(self) -> pl.LazyFrame:
        rows = self.frame.filter(self.ok).select(self.plan.output(self.personal))
        if self.people is not None and self.people.summary is not None:
            rows = self.people.join(rows)
        return self.scoring.on_frame(rows)

    def streamed(self, ids: IdSpill | None = None) -> tuple[pl.LazyFrame, Split]:
        """The scored rows as one chain from the scan, with the rejected rows and the counts gathered on the way.

        Three sinks fed by one scan (scored, rejected, counts) made the streaming engine buffer the normalised
        rows for the slowest branch, the scored one, so memory grew with the file; a single chain lets the
        slow end hold the reader back. ``ids`` gathers the scored rows' ids on the way.
        """
        split = Split(self, ids)
        rows = self.frame.map_batches(split, schema=split.schema, streamable=True)
        if self.people is not None and self.people.summary is not None:
            rows = self.people.join(rows)
        return self.scoring.on_frame(rows), split

    def scored_ids(self) -> pl.LazyFrame:
        """The scored rows' input, record and trimmed id (:mod:`kamcore.repeats`)."""
        return self.frame.filter(self.ok).select(id_columns())

    def rejected(self) -> pl.LazyFrame:
        """One row per rejected record: where it is, the raw values of its failing columns, the problems."""
        return self.frame.filter(self.bad).select(self.reject_columns())

    def reject_columns(self) -> list[pl.Expr]:
        columns = list(self.plan.problems)
        raw = [(c(QUARANTINE_COLUMNS[2]) if name == RECORD else c(name)).cast(pl.String).alias("__v__" + name)
               for name in columns]
        where = [c(QUARANTINE_COLUMNS[0])] if RECORD in columns else []
        ident = c("opportunity_id") if "opportunity_id" in columns else pl.lit(None, pl.String)
        return [c(SRC), c(ROW), ident.alias("__id"), *raw, *where, *[c(PROBLEM + n) for n in columns]]

    def counts(self) -> pl.LazyFrame:
        """Rows and accepted rows per input file, as plain sums (a group_by would hold rows in memory)."""
        return self.frame.select(self.count_columns())

    def count_columns(self) -> list[pl.Expr]:
        sums = []
        for src in range(len(self.labels)):
            mine = c(SRC) == src
            sums += [mine.sum().alias(f"rows_{src}"), (mine & self.ok).sum().alias(f"ok_{src}"),
                     (mine & c(BLANK)).sum().alias(f"blank_{src}")]
        if self.people is not None:  # scored opportunities that have people in the stakeholder table
            ids = self.people.ids()
            sums.append((self.ok & c("opportunity_id").str.strip_chars().is_in(ids)).sum().alias("with_people"))
        return sums


class Split:
    """The batch step of :meth:`Prepared.streamed`: passes the accepted rows on, keeps the per-batch counts
    and the rejected rows (few, and read whole after the pass anyway)."""

    def __init__(self, prepared: Prepared, ids: IdSpill | None = None):
        self.ok, self.bad = prepared.ok, prepared.bad
        self.ids, self.id_exprs = ids, id_columns()
        self.output = prepared.plan.output(prepared.personal)
        self.reject_exprs, self.count_exprs = prepared.reject_columns(), prepared.count_columns()
        probe = prepared.frame.head(0).collect()
        self.schema = probe.select(self.output).schema
        self.empty_rejects = probe.select(self.reject_exprs)
        self.empty_counts = probe.select(self.count_exprs)
        self.rejects: list[pl.DataFrame] = []
        self.counts: list[pl.DataFrame] = []
        self.rows = 0
        sources = range(len(prepared.labels))
        self.ok_names, self.blank_names = [f"ok_{i}" for i in sources], [f"blank_{i}" for i in sources]

    def __call__(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.rows += batch.height  # read so far, for the progress line (an int per batch, from any thread)
        counts = batch.select(self.count_exprs)
        self.counts.append(counts)
        ok = sum(counts.item(0, name) for name in self.ok_names)
        if ok < batch.height:  # else the usual batch: every row scored, nothing to filter
            if ok + sum(counts.item(0, name) for name in self.blank_names) < batch.height:
                self.rejects.append(batch.filter(self.bad).select(self.reject_exprs))
            batch = batch.filter(self.ok)
        if self.ids is not None:
            self.ids.add(batch.select(self.id_exprs))
        return batch.select(self.output)

    def totals(self) -> dict:
        """The counts of every batch, summed (batches may arrive in any order)."""
        return pl.concat([self.empty_counts, *self.counts]).sum().row(0, named=True)

    def rejected(self) -> pl.DataFrame:
        """The rejected rows in file order, as :meth:`Prepared.rejected` gives them."""
        return pl.concat([self.empty_rejects, *self.rejects]).sort(SRC, ROW)


def prepare_frames(sources: list[tuple[pl.LazyFrame, str]], config: Config, kam,
                   people: People | None = None, include_pii: bool = False,
                   quarantined: list[dict] | None = None, scores_only: bool = False) -> tuple[Prepared, list[str]]:
    """Map headers, number the records and build the query for raw text frames (one per input).

    Columns holding a person's data (联系人电话, birthday …: :func:`kamcore.headers.personal_headers`)
    are read, but left out of the scored rows unless ``include_pii``. ``scores_only``: the id and the
    score columns only."""
    frames, labels, notes, units, currencies, made_up, personal, mappings = [], [], [], {}, {}, set(), set(), []
    user_mapping = config.section("columns")
    for index, (frame, label) in enumerate(sources):
        headers = frame.collect_schema().names()
        mapping = map_headers(headers, OPPORTUNITY_COLUMNS, user_mapping, source=label)
        found = sorted(personal_headers(headers, mapping))
        if found and not include_pii:
            personal.update(mapping[h] for h in found)
            notes.append(f"{label}: personal column(s) {', '.join(found)} left out of the output "
                         "(--include-pii keeps them)")
        for header, name in mapping.items():
            kind = OPPORTUNITY[name].kind if name in OPPORTUNITY else None
            declared = header_unit(header) if kind in (AMOUNT, LEVEL_OR_AMOUNT) else None
            if declared is not None:
                unit, currency = declared
                if unit != 1.0:
                    units[name] = unit
                if currency is not None and kind == AMOUNT:  # a level-or-amount's amounts have no currency
                    currencies[name] = currency
        if "opportunity_id" not in mapping.values():
            notes.append(f"{label}: no opportunity_id column; ids were made from the file name and row number")
            made_up.add("opportunity_id")
        frames.append(number_records(frame, index, label, mapping,
                                     quarantined=quarantined[index] if quarantined else None))
        labels.append(label)
        mappings.append(mapping)
    return Prepared(frames, labels, config, kam, units, frozenset(made_up), people, frozenset(personal),
                    mappings=mappings, scores_only=scores_only, header_currencies=currencies), notes


def number_records(frame: pl.LazyFrame, index: int, label: str, mapping: dict[str, str],
                   first: int = 0, quarantined: dict[int, tuple[str, str, str]] | None = None) -> pl.LazyFrame:
    """Canonical names, the record index (from ``first``: a piece of a file knows where it starts) and the
    input's number; an input without ids gets them from its file name and record number. Records the
    importer quarantined (``Source.quarantined``) get their column, reason and preview, so they are
    rejected, never scored."""
    frame = frame.rename(mapping).with_row_index(ROW, offset=first).with_columns(pl.lit(index, pl.UInt32).alias(SRC))
    if "opportunity_id" not in mapping.values():
        stem = Path(label).stem
        frame = frame.select(pl.format("{}-{}", pl.lit(stem), c(ROW) + 1).alias("opportunity_id"), pl.all())
    if quarantined:
        rows = list(quarantined)
        frame = frame.with_columns(
            c(ROW).replace_strict(rows, [quarantined[r][i] for r in rows], default=None, return_dtype=pl.String)
            .alias(name) for i, name in enumerate(QUARANTINE_COLUMNS))
    return frame


# -- stakeholders: a small table, read whole, classified and summed up per opportunity ----------


class People:
    """The stakeholder table of a run: classified people, and their per-opportunity summary.

    ``summary`` has one row per ``opportunity_id`` (plus, optionally, a row with a null id: the values for
    opportunities nobody is listed for) and is left-joined onto the opportunity stream. The build side
    of that join is this small frame, so memory stays flat however many opportunities stream past.
    """

    def __init__(self, people: pl.DataFrame, classified: pl.DataFrame, classifier: str | None,
                 summary: pl.DataFrame | None, owners: dict[str, str], files: list[str] | None = None):
        self.people, self.classified, self.classifier = people, classified, classifier
        self.summary, self.owners, self.files = summary, owners, files or []

    def ids(self) -> list[str]:
        return self.people.get_column("opportunity_id").drop_nulls().unique().to_list()

    def join(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """Left-join the summary columns onto the opportunities by (trimmed) opportunity_id, in order."""
        summary = self.summary
        names = set(rows.collect_schema().names())
        for name in summary.columns:
            if name != "opportunity_id" and name in names:
                raise PluginError(f"plugin {self.owners[name]!r} returned column {name!r} from summarise_stakeholders, "
                                  "which the opportunities already have", hint="give the column another name")
        added = [n for n in summary.columns if n != "opportunity_id"]
        keyed = summary.filter(c("opportunity_id").is_not_null()).rename({"opportunity_id": KEY})
        keyed = keyed.with_columns(pl.lit(True).alias(MATCHED))
        default = summary.filter(c("opportunity_id").is_null())
        fill = [pl.when(c(MATCHED)).then(c(n)).otherwise(pl.lit(default[n][0], summary.schema[n])).alias(n)
                for n in added] if default.height else []

        def join_batch(batch: pl.DataFrame) -> pl.DataFrame:
            # one eager hash join per batch against the small table: a lazy join beside the rejects and
            # counts sinks of the same scan made the streaming engine hold about twice the memory
            out = batch.with_columns(c("opportunity_id").str.strip_chars().alias(KEY)).join(
                keyed, on=KEY, how="left", maintain_order="left")
            return (out.with_columns(fill) if fill else out).drop(KEY, MATCHED)

        probe = join_batch(rows.head(0).collect())
        return rows.map_batches(join_batch, schema=probe.schema, streamable=True)

    def report(self, with_people: int | None = None) -> dict:
        """Counts for the run summary (no names, no personal values)."""
        ids = self.people.get_column("opportunity_id")
        report = {"files": self.files, "people": self.people.height,
                  "people_without_opportunity_id": int(ids.null_count()),
                  "opportunities_listed": int(ids.drop_nulls().n_unique()),
                  "classified_by": self.classifier,
                  "summarised_by": sorted(set(self.owners.values())),
                  "columns": [n for n in (self.summary.columns if self.summary is not None else [])
                              if n != "opportunity_id"]}
        if with_people is not None:
            report["opportunities_scored_with_people"] = with_people
        return report


# the stakeholder columns that say something about a person (a table with none of them is most likely not one)
DESCRIBING = frozenset(c.name for c in STAKEHOLDER_COLUMNS if not c.personal) - {"opportunity_id"}


def stakeholder_frame(text: pl.DataFrame, config: Config, source: str = "<stakeholders>",
                      require_id: bool = True) -> pl.DataFrame:
    """A raw stakeholder table under canonical column names: text trimmed, missing tokens null, blank rows
    dropped. Without ``require_id`` a table with no opportunity_id gets an empty one (classifying only)."""
    from .normalise import key

    mapping = map_headers(text.columns, STAKEHOLDER_COLUMNS, config.section("columns"), source=source)
    if not set(mapping.values()) & DESCRIBING:
        log.warning("%s: none of the columns that describe a person is in it (角色 role, 职务 title, 所在处室 "
                    "department, 性格 style, 立场 stance, 项目影响力 influence …): every role, style and stance is "
                    "unknown; is this a people file (关键人物信息表 / 角色表)?", source)
    frame = text.rename(mapping)
    frame = frame.with_columns(key(c(n).cast(pl.String)).alias(n) for n in frame.columns)
    if frame.width:
        frame = frame.filter(~pl.all_horizontal(c(n).is_null() for n in frame.columns))
    if "opportunity_id" not in frame.columns and not require_id:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("opportunity_id"))
    if "opportunity_id" not in frame.columns:
        raise InputError(f"{source}: the stakeholder table has no opportunity_id column (编号)",
                         hint="every person must name the opportunity they belong to; map the header under [columns]")
    return frame


def stakeholder_options(config: Config, sheet: str | None = None) -> ReadOptions:
    """Read options for a stakeholder table: the sheet, and its headers (so an importer finds the header row)."""
    from .headers import alias_table

    known = {alias: name for alias, name in alias_table(STAKEHOLDER_COLUMNS).items()}
    return ReadOptions(sheet=sheet, columns={**known, **config.section("columns")})


def write_frame(frame: pl.DataFrame, output: Path, kam, fmt: str | None = None, stdout=None, guide: tuple = ()) -> None:
    """Write a small, collected table with the writer for ``output`` (atomically, like the scored file;
    compressed when its name says so, as ``table.csv.gz``). ``-`` is standard output (``stdout``, by
    default this process's): CSV unless ``fmt`` names another format. ``guide``: the column guide, for a
    writer that takes one (:mod:`kamcore.guide`)."""
    if str(output) == "-":
        with cleanup_on_signal([]), tempfile.TemporaryDirectory(prefix="kam-stdout-") as folder:
            staged = Path(folder) / f"table.{fmt or 'csv'}"
            write_frame(frame, staged, kam, fmt, guide=guide)
            copy_to_stdout(staged, stdout if stdout is not None else sys.stdout.buffer)
        return
    writer = choose_writer(kam.writers(), fmt, output)
    if not output.parent.is_dir():
        raise OutputError(f"output folder {output.parent} does not exist")
    folder, tmp, plain = output_paths(output)
    with cleanup_on_signal([folder]):
        try:
            folder.mkdir(exist_ok=True)
            pl.collect_all([writer.write(frame.lazy(), plain, guide=guide)])
            finish_output(plain, tmp, output, extensions=writer.extensions)
        except OSError as exc:
            raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None
        replace_atomically(tmp, output)


def collect_source(source: Source) -> pl.DataFrame:
    """A whole source as a frame, without the records its importer quarantined (half-read rows that a
    table read whole, such as people or a training history, must not use)."""
    frame = source.frame.collect()
    if source.quarantined:
        frame = frame.filter(~pl.int_range(frame.height, eager=True).is_in(list(source.quarantined)))
    return frame


def read_stakeholders(paths: list[Path], kam, config: Config, options: ReadOptions = ReadOptions(),
                      importer: str | None = None, require_id: bool = True) -> pl.DataFrame:
    """Read stakeholder files through the importers (stakeholder tables are small: collected whole)."""
    opened = open_sources(paths, kam, options, importer)
    frames = []
    try:
        for source, _ in opened:
            frames.append(stakeholder_frame(collect_source(source), config, str(source.path), require_id))
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"cannot read the stakeholder table: {str(exc).strip().splitlines()[0]}") from None
    finally:
        for source, _ in opened:
            source.cleanup()
    return pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]


def summarise_people(people: pl.DataFrame, config: Config, kam, files: list[str] | None = None) -> People:
    """Classify the people (firstresult hook) and sum them up per opportunity (collecting hook)."""
    classifier, classified = kam.classifier(people, config)
    if classified is None:
        classified = people
    elif not isinstance(classified, pl.DataFrame) or classified.height != people.height:
        got = f"{classified.height} rows" if isinstance(classified, pl.DataFrame) else type(classified).__name__
        raise PluginError(f"plugin {classifier!r} returned {got} from classify_stakeholders for {people.height} "
                          "people", hint="return the same rows, in the same order")
    summary, owners = merge_summaries(kam.summarise_stakeholders(classified, config), people)
    return People(people, classified, classifier, summary, owners, files)


def merge_summaries(results: list[tuple[str, object]], people: pl.DataFrame) -> tuple[pl.DataFrame | None, dict]:
    """Check the per-opportunity frames plugins returned and join them on opportunity_id."""
    owners: dict[str, str] = {}
    merged = None
    personal_values = set()
    for name in PERSONAL_FIELDS & set(people.columns):
        personal_values.update(people.get_column(name).cast(pl.String).drop_nulls().to_list())
    for plugin, frame in results:
        if not isinstance(frame, pl.DataFrame) or "opportunity_id" not in frame.columns:
            raise PluginError(f"plugin {plugin!r} returned {type(frame).__name__} from summarise_stakeholders, "
                              "expected a polars DataFrame with an opportunity_id column")
        frame = frame.with_columns(c("opportunity_id").cast(pl.String))
        ids = frame.get_column("opportunity_id")
        if ids.drop_nulls().is_duplicated().any() or ids.null_count() > 1:
            raise PluginError(f"plugin {plugin!r} returned more than one row for an opportunity_id from "
                              "summarise_stakeholders")
        for name in frame.columns:
            if name == "opportunity_id":
                continue
            if name in PERSONAL_FIELDS:
                raise PluginError(f"plugin {plugin!r} returned the personal field {name!r} from summarise_stakeholders",
                                  hint="only per-opportunity aggregates may reach the scored output")
            if name in owners:
                raise PluginError(f"column {name!r} is returned by plugin {owners[name]!r} and by plugin {plugin!r} "
                                  "from summarise_stakeholders")
            if frame.schema[name] == pl.String and personal_values and \
                    frame.get_column(name).is_in(list(personal_values)).any():
                raise PluginError(f"plugin {plugin!r} returned personal data (a person's name or details) in column "
                                  f"{name!r} from summarise_stakeholders",
                                  hint="only per-opportunity aggregates may reach the scored output")
            owners[name] = plugin
        merged = frame if merged is None else merged.join(frame, on="opportunity_id", how="full", coalesce=True,
                                                          nulls_equal=True)
    return merged, owners


def choose_importer(path: Path, importers, name: str | None = None):
    """The importer named by the user, else the one most confident about the file's content."""
    if name:
        if name not in importers:
            raise InputError(f"no importer named {name!r}; installed: {', '.join(sorted(importers.items))}")
        return importers[name]
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head:
        raise InputError(f"{path}: the file is empty")
    ranked = sorted(((imp.sniff(head, path.suffix.lower()), imp.name) for imp in importers), reverse=True)
    if not ranked or ranked[0][0] <= 0:
        raise InputError(f"{path}: no installed importer can read this file",
                         hint=f"importers: {', '.join(sorted(importers.items)) or 'none'}; see `kam plugins --all`")
    return importers[ranked[0][1]]


# output names that promise a format no built-in writer writes (a plugin's writer may claim them)
FORMATS_NOT_WRITTEN = {".xls": "Excel 97-2003", ".xlsm": "Excel with macros", ".xlsb": "Excel binary",
                       ".ods": "OpenDocument", ".numbers": "Apple Numbers", ".feather": "Arrow IPC",
                       ".arrow": "Arrow IPC", ".orc": "ORC", ".avro": "Avro", ".html": "HTML", ".htm": "HTML",
                       ".xml": "XML", ".pdf": "PDF", ".docx": "Word", ".tab": "tab-separated text",
                       ".tsv": "tab-separated text: a plugin can add it, docs/plugins.md shows how"}


def choose_writer(writers, fmt: str | None, output: Path | None):
    """The writer named by ``--format``, else the one whose extensions match the output (without a
    ``.gz``, ``.bz2``, ``.xz`` or ``.zip`` that packs it), else CSV."""
    output = unpacked(output) if output is not None else None
    if fmt:
        if fmt in writers:
            return writers[fmt]
        by_extension = [w for w in writers if "." + fmt.lower().lstrip(".") in w.extensions]
        if by_extension:
            return by_extension[0]
        raise ConfigError(f"no writer for format {fmt!r}; installed: {', '.join(sorted(writers.items)) or 'none'}")
    if output is not None and output.suffix:
        for writer in writers:
            if output.suffix.lower() in writer.extensions:
                return writer
        if output.suffix.lower() in FORMATS_NOT_WRITTEN:  # CSV under such a name would open as a broken file
            known = sorted(e for w in writers for e in w.extensions)
            raise ConfigError(f"no writer for {output.suffix} files ({FORMATS_NOT_WRITTEN[output.suffix.lower()]}); "
                              f"kam writes {', '.join(known)}",
                              hint="name the output with one of these, e.g. -o scored.xlsx, or give --format")
    if "csv" in writers:
        return writers["csv"]
    raise ConfigError("no writer for CSV is installed", hint="check KAM_LOAD_PLUGINS / KAM_DISABLE_PLUGINS")


STDIN = Path("-")  # the input that means standard input
STDIN_NAME = "<stdin>"  # what it is called in messages, the rejects file and the summary


def open_sources(paths: list[Path], kam, options: ReadOptions, importer: str | None = None,
                 stdin: Path | None = None) -> list[tuple[Source, str]]:
    """Each path read by its importer; when one fails, those opened before it are cleaned up (their
    temporary inflated or transcoded copies deleted). ``-`` is standard input, read from ``stdin`` (the
    file :func:`spool_stdin` made) or, without it, spooled here for as long as its source lives, and named
    ``<stdin>`` wherever a file is named (a cell starting with - would be neutralised as a formula in the
    rejects file)."""
    if paths.count(STDIN) > 1:
        raise ConfigError("standard input (-) can be read once per run")
    importers = kam.importers()
    opened = []
    try:
        for path in paths:
            if path == STDIN:
                opened.append(_open_stdin(stdin, importers, options, importer) if stdin is not None
                              else _open_spooled_stdin(importers, options, importer))
                continue
            chosen = choose_importer(path, importers, importer)
            opened.append((chosen.read(path, options), chosen.name))
    except BaseException:
        for source, _ in opened:
            source.cleanup()
        raise
    return opened


@contextlib.contextmanager
def spool_stdin(inputs: list[Path], stream=None):
    """Standard input (``stream``, by default this process's) in a temporary file for as long as the run
    needs it, when ``-`` is among ``inputs``: importers sniff, check and re-read files (for the rejects'
    lines, and when a run starts over). Yields its path, or None."""
    import shutil

    if STDIN not in inputs:
        yield None
        return
    if inputs.count(STDIN) > 1:
        raise ConfigError("standard input (-) can be read once per run")
    folder = Path(tempfile.mkdtemp(prefix="kam-stdin-"))
    try:
        spooled = folder / "stdin"
        with open(spooled, "wb") as out:
            shutil.copyfileobj(stream if stream is not None else sys.stdin.buffer, out, 1 << 20)
        yield spooled
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _open_spooled_stdin(importers, options: ReadOptions, importer: str | None) -> tuple[Source, str]:
    """Standard input spooled for one source, for callers that read it whole and once (the stakeholder
    tables of ``kam classify`` and ``kam score --stakeholders``); the source's cleanup removes the file."""
    spool = contextlib.ExitStack()
    spooled = spool.enter_context(spool_stdin([STDIN]))
    try:
        source, name = _open_stdin(spooled, importers, options, importer)
    except BaseException:
        spool.close()
        raise

    def cleanup():
        try:
            source.cleanup()
        finally:
            spool.close()

    return evolve(source, cleanup=cleanup), name


@contextlib.contextmanager
def named_stdin(spooled: Path):
    """While the spooled standard input is read: its temporary path is ``<stdin>`` in the warnings importers
    log and in a kam error raised. Yields the renaming, for the notes."""
    def named(text: str) -> str:
        return text.replace(str(spooled), STDIN_NAME)

    def rename(record: logging.LogRecord) -> bool:  # the warnings importers log while they read (warn())
        record.msg = named(str(record.msg))
        record.args = tuple(named(a) if isinstance(a, str) else a for a in record.args or ())
        return True

    importers_log = logging.getLogger("kamcore.importers")
    importers_log.addFilter(rename)
    try:
        yield named
    except KamError as exc:
        raise type(exc)(named(exc.message), hint=exc.hint) from None
    finally:
        importers_log.removeFilter(rename)


def _open_stdin(spooled: Path, importers, options: ReadOptions, importer: str | None) -> tuple[Source, str]:
    """The spooled standard input read by its importer, named ``<stdin>``; its pieces travel to Dask workers
    with their bytes (the spooled file is this machine's)."""
    with named_stdin(spooled) as named:
        chosen = choose_importer(spooled, importers, importer)
        source = chosen.read(spooled, options)

    def split(size: int) -> list:
        return [evolve(piece, shared=False) if attrs_has(type(piece)) else piece.inline()
                for piece in source.split(size)]

    return evolve(source, path=Path(STDIN_NAME), notes=tuple(named(n) for n in source.notes),
                  split=split if source.split is not None else None), chosen.name


def mask(column: str, value: str | None) -> str:
    """A short, safe preview of a rejected value: personal fields are never shown."""
    if value is None:
        return ""
    if column in PERSONAL_FIELDS:
        return "***"
    return value if len(value) <= PREVIEW_CHARS else value[:PREVIEW_CHARS] + "…"


def explode_rejects(frame: pl.DataFrame, columns: list[str], labels: list[str],
                    lines: Callable[[int, list[int]], dict[int, int]],
                    mappings: list[dict[str, str]] | None = None) -> pl.DataFrame:
    """One row per problem: file, physical line, column (kam's name), header (as the file names it, from
    ``mappings``: each input's header -> column; empty for a column kam made), reason, masked value,
    opportunity id.

    Runs on the rejected rows only (collected after the pass), so per-record Python is fine here.
    """
    out: dict[str, list] = {k: [] for k in REJECT_COLUMNS}
    headers = [{name: header for header, name in mapping.items()} for mapping in mappings or []]
    where: dict[int, dict[int, int]] = {}
    for src in frame.get_column(SRC).unique().to_list():
        where[src] = lines(src, frame.filter(c(SRC) == src).get_column(ROW).to_list())
    for record in frame.iter_rows(named=True):  # per-row ok: rejected rows only, after the streaming pass
        broken = record.get(PROBLEM + RECORD) is not None  # a half-read record: its values mean nothing
        for name in columns:
            reason = record[PROBLEM + name]
            if reason is None or (broken and name != RECORD):
                continue
            out["file"].append(labels[record[SRC]])
            out["line"].append(where[record[SRC]].get(record[ROW]))
            column = record[QUARANTINE_COLUMNS[0]] if name == RECORD else name
            out["column"].append(column)
            named = headers[record[SRC]] if record[SRC] < len(headers) else {}
            out["header"].append(named.get(column, column if name == RECORD else None))
            out["reason"].append(bilingual(reason))
            out["value"].append(record["__v__" + name] if name == RECORD else mask(name, record["__v__" + name]))
            out["opportunity_id"].append(record["__id"])
    return pl.DataFrame(out, schema={"file": pl.String, "line": pl.Int64, "column": pl.String, "header": pl.String,
                                     "reason": pl.String, "value": pl.String, "opportunity_id": pl.String})


def side_paths(output: Path | None) -> tuple[Path, Path]:
    """Where the rejects file and the run summary go: beside the output (or in the current folder)."""
    if output is None:
        return Path("kam-score.rejects.csv"), Path("kam-score.summary.json")
    return output.with_name(output.name + ".rejects.csv"), output.with_name(output.name + ".summary.json")


def refuse_writing_over_inputs(outputs: list[Path], inputs: list[Path]) -> None:
    """Refuse, before anything is read, an output that is one of the run's inputs (``-o deals.csv`` for
    ``deals.csv``, under any name or link): it would replace the export it is made from."""
    for output in outputs:
        for given in inputs:
            with contextlib.suppress(OSError):  # an output that does not exist yet is no input
                if given != STDIN and os.path.samefile(output, given):
                    raise OutputError(f"{output} is an input of this run: writing it would replace that file",
                                      hint="write the output under another name (-o)")


def refuse_repeated_inputs(inputs: list[Path]) -> None:
    """Refuse a file given twice (``kam score q3.csv q3.csv``, or under two names): its rows would be
    scored twice, each id twice in the output."""
    seen: dict[tuple[int, int], Path] = {}
    for given in inputs:
        if given == STDIN:
            continue
        try:
            status = given.stat()
        except OSError:  # missing or unreadable: the importer says so
            continue
        first = seen.setdefault((status.st_dev, status.st_ino), given)
        if first is not given:
            raise ConfigError(f"{given} is given twice" + (f" (also as {first})" if str(first) != str(given) else ""),
                              hint="give each file once")


TEMP_MARK = ".kam-tmp-"
PLAIN_MARK = ".plain"  # the plain content of a packed output, before it is compressed


def temp_path(target: Path) -> Path:
    """A hidden file beside ``target``, named after this process, renamed onto ``target`` when complete."""
    return target.with_name(f".{target.name}{TEMP_MARK}{os.getpid()}")


def output_paths(target: Path) -> tuple[Path, Path, Path]:
    """(folder, complete file, stream file) for an output the streaming engine writes: a hidden folder beside
    ``target`` named as :func:`temp_path` names a file, the file renamed onto ``target`` when complete, and
    the file the writer streams into (the same file, or for a packed output such as ``scored.csv.gz`` the
    plain content that :func:`finish_output` compresses into it). A folder, because the engine opens its
    output twice: a file removed between the two opens (Ctrl-C) comes back, a removed folder does not."""
    folder = temp_path(target)
    done = folder / target.name
    return folder, done, folder / (target.name + PLAIN_MARK) if packing(target) else done


def stream_path(target: Path) -> Path:
    """The temporary file the writer writes for ``target`` (:func:`output_paths`)."""
    return output_paths(target)[2]


def finish_output(plain: Path, tmp: Path, target: Path, on_block: Callable[[int, int], None] | None = None,
                  extensions: tuple[str, ...] = ()) -> None:
    """Compress the plain content into ``tmp`` when ``target`` is packed (then delete it); else nothing.
    ``on_block(bytes done, bytes in all)`` as it goes; ``extensions``: the writer's, to name a zip's member."""
    name = packing(target)
    if name is not None and plain != tmp:
        pack(plain, tmp, name, on_block=on_block, member=zip_member(target, extensions))
        plain.unlink()


def remove_stale_temps(targets: list[Path]) -> int:
    """Delete temporary files that a killed run (SIGKILL, power loss) left beside these targets; a
    file whose process still runs is left alone. Returns how many were removed."""
    removed = 0
    for target in targets:
        for path in target.parent.glob(f".{glob_escape(target.name)}{TEMP_MARK}*"):
            pid = path.name.rsplit(TEMP_MARK, 1)[1]
            if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
                continue
            with contextlib.suppress(OSError):
                remove_temp(path)
                removed += 1
    return removed


def remove_temp(path: Path) -> None:
    """A temporary file, or a work folder of :func:`output_paths` (:func:`remove_folder`)."""
    if path.is_dir():
        remove_folder(path)
    else:
        path.unlink()


def remove_folder(folder: Path, attempts: int = 100) -> None:
    """Delete a work folder of :func:`output_paths` with its files, also those that a query still running
    creates again while it goes (until the folder is gone, when nothing can)."""
    for _ in range(attempts):
        with contextlib.suppress(FileNotFoundError):
            for entry in folder.iterdir():
                with contextlib.suppress(OSError):  # gone already, or (Windows) open in the query's thread
                    entry.unlink()
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # a file came back (or cannot go): try again, then leave it to the next run
            continue


def glob_escape(name: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in name)


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def replace_atomically(tmp: Path, target: Path) -> None:
    try:
        os.replace(tmp, target)
    except PermissionError:
        raise OutputError(f"cannot replace {target}: permission denied",
                          hint="is the file open in another program (Excel locks open files)? Close it and rerun")
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def cleanup_on_signal(paths: list[Path]):
    """Remove temporary files on Ctrl-C or SIGTERM, so an interrupted run leaves no partial file."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        for path in paths:
            with contextlib.suppress(OSError):  # gone already, or (Windows) still open in the query's thread
                remove_temp(path)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


CSV_CHUNK_BYTES = 4 << 20


@contextlib.contextmanager
def csv_chunks(size: int = CSV_CHUNK_BYTES):
    """Let the streaming engine read CSV in chunks of ``size`` bytes during the query (unless the user set
    ``POLARS_CSV_CHUNK_SIZE``). Its default reads far larger chunks ahead, which made the resident memory
    of a 1M-row run 520 MB instead of about 360 MB, for no speed gained; 4 MiB rather than 8 keeps the peak
    of a 4M-row run about 60 MB lower (flat from 1M rows) for about 7 % more CPU on a full run."""
    name = "POLARS_CSV_CHUNK_SIZE"
    if name in os.environ:
        yield
        return
    os.environ[name] = str(size)
    try:
        yield
    finally:
        os.environ.pop(name, None)


ABANDONED_QUERIES: list[threading.Event] = []  # the interrupted queries still running: set once one ends


def query_left_running() -> bool:
    """Whether an interrupted query is still running in its thread. The process must then end with
    ``os._exit``: finalising the interpreter while polars' threads still call the batch hooks aborts it
    ("PyGILState_Release ... finalizing", SIGABRT) instead of exiting with the documented code."""
    return not all(done.is_set() for done in ABANDONED_QUERIES)


def run_query(queries: list, on_progress: Callable[[float], None] | None, errors: list) -> list:
    """Run the lazy sinks together in the streaming engine.

    The query runs in a worker thread while the main thread waits on an event in short steps: Python runs
    signal handlers only in the main thread, so Ctrl-C and SIGTERM stop the run at once (the temporary
    files are removed, and ``kam`` ends the process with the query still running: ``query_left_running``)
    instead of after the last row.
    """
    def collect():
        # the batch hooks allocate many short-lived objects and no cycles worth finding mid-run: the cyclic
        # collector would otherwise pause every batch thread (about a tenth of a run's wall time)
        enabled = gc.isenabled()
        gc.disable()
        try:
            with csv_chunks():
                return pl.collect_all(queries, engine="streaming")
        finally:
            if enabled:
                gc.enable()

    box: dict = {}
    done = threading.Event()

    def work():
        box.update(result=_capture(collect))
        done.set()

    try:
        start = time.perf_counter()
        threading.Thread(target=work, daemon=True).start()
        # Event.wait, not Thread.join: a signal landing inside join() on Python 3.11 marks a running
        # thread as stopped, and the query would look finished when it is not
        while not done.wait(0.2):
            if on_progress is not None:
                on_progress(time.perf_counter() - start)
        if "error" in box["result"]:
            raise box["result"]["error"]
        return box["result"]["value"]
    except KeyboardInterrupt:
        ABANDONED_QUERIES[:] = [*(e for e in ABANDONED_QUERIES if not e.is_set()), done]  # ended ones leave
        raise
    except (pl.exceptions.PolarsError, OSError) as exc:
        for error in errors:  # an exception a plugin raised inside a batch hook
            if isinstance(error, KamError):
                raise error from None
            raise PluginError(f"a plugin failed inside a batch hook: {type(error).__name__}: {error}") from error
        if isinstance(exc, OSError) and not isinstance(exc, pl.exceptions.PolarsError):
            raise OutputError(f"cannot write output: {exc.strerror or exc}") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read the input: {first}",
                         hint="check the file's format with `kam score --debug`; issues with quoting or ragged "
                              "rows are reported here") from None


def stream_local(prepared: Prepared, sources: list[Source], writer, tmp_out: Path,
                 on_progress: Callable[[float, int, str], None] | None,
                 ids: IdSpill | None = None) -> tuple[dict, pl.DataFrame]:
    """The local engine: one chain from the scan to the writer, the rejected rows, counts and scored ids
    (into ``ids``) gathered on the way (:meth:`Prepared.streamed`); (column sums, rejected rows). Each
    source's deferred checks are verified before anything is replaced, and explain a read error best when
    there is one."""
    scored, split = prepared.streamed(ids)
    progress = (lambda elapsed: on_progress(elapsed, split.rows, "scoring")) if on_progress is not None else None
    try:
        guide = prepared.guide(scored.collect_schema().names()) if writer.takes("guide") else ()
        run_query([writer.write(scored, tmp_out, prepared.plan.trusted(), guide)], progress, prepared.scoring.errors)
    except KamError:
        for source in sources:
            source.verify()
        raise
    for source in sources:
        source.verify()
    return split.totals(), split.rejected()


def _capture(fn):
    try:
        return {"value": fn()}
    except BaseException as exc:  # re-raised in the calling thread
        return {"error": exc}


def run_score(inputs: list[Path], output: Path | None, *, kam, config: Config, fmt: str | None = None,
              options: ReadOptions = ReadOptions(), importer: str | None = None, max_rejects: int | None = None,
              on_progress: Callable[[float, int, str], None] | None = None, stdout=None,
              stakeholders: list[Path] | None = None, stakeholder_options: ReadOptions | None = None,
              profile: str | None = None, include_pii: bool = False, engine=None, scores_only: bool = False,
              defer: bool = True, stdin=None) -> dict:
    """Score export files into ``output`` (``None``: write to ``stdout``); return the run summary.

    An input ``Path("-")`` is standard input: ``stdin`` (a binary stream), by default this process's.

    ``stakeholders``: files of the people on the deals (关键人物信息表 / 角色表), read through the importers
    with ``stakeholder_options`` (e.g. another sheet of the same workbook). ``profile``: a CRM profile's
    name or .toml file; ``None`` detects one from the first input's headers (docs/profiles.md).
    ``engine``: ``None`` streams in this process; an engine such as :class:`kamcore.dask_engine.DaskEngine`
    runs the same query on a cluster (``stream`` gives the column sums and the rejected rows, and puts the
    scored rows' ids into its ``ids`` spill; ``describe`` a dict for the summary). ``scores_only``: write the
    opportunity id and the score columns only (rows, rejects and summary as in a full run).
    ``on_progress(elapsed_s, rows, doing)``: called every 0.2 s or so while the rows stream, with the rows read
    so far and ``"scoring"``; then, for a packed output (``scored.csv.gz``), after each block compressed, with
    ``"compressing 40 %"``. ``defer``: let importers check whole files beside the stream; an importer that finds
    records to quarantine only then (:class:`kamcore.errors.ReadAgain`) has the run start over with the checks
    done first.
    """
    arguments = {k: v for k, v in locals().items() if k not in ("defer", "stdin")}
    # refused before anything is read, standard input included (once, not again when the run starts over)
    if STDIN in inputs and STDIN in (stakeholders or []):
        raise ConfigError("standard input (-) can be read once per run")
    refuse_writing_over_inputs([*([output] if output is not None else []), *side_paths(output)],
                               [*inputs, *(stakeholders or [])])
    refuse_repeated_inputs(inputs)
    refuse_repeated_inputs(stakeholders or [])
    with cleanup_on_signal([]), spool_stdin(inputs, stdin) as spooled:  # SIGTERM while inputs are read cleans up too
        try:
            return _run_score(**arguments, spooled=spooled, defer=defer)
        except ReadAgain:  # records to quarantine, found beside a stream that was reading them as rows
            return _run_score(**arguments, spooled=spooled, defer=False)


def _run_score(inputs: list[Path], output: Path | None, *, kam, config: Config, fmt: str | None, options: ReadOptions,
               importer: str | None, max_rejects: int | None, on_progress: Callable[[float, int, str], None] | None,
               stdout, stakeholders: list[Path] | None, stakeholder_options: ReadOptions | None, profile: str | None,
               include_pii: bool, engine, scores_only: bool, defer: bool, spooled: Path | None) -> dict:
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    writer = choose_writer(kam.writers(), fmt, output)
    fmt = writer.name
    # whole-file checks run beside the local stream; every source is verified before any output is replaced
    # (a remote engine cuts the file on record boundaries, which needs the check done first)
    reading = None if on_progress is None else (  # a workbook or JSON Lines file is read whole first
        lambda rows: on_progress(time.perf_counter() - started, rows, "reading"))
    columns = options.columns if options.columns is not None else config.section("columns")  # as kam score passes
    opened = open_sources(inputs, kam, evolve(options, defer_checks=engine is None and defer, on_rows=reading,
                                              columns=columns),
                          importer, spooled)
    sources = [s for s, _ in opened]
    try:
        config, profile_notes = apply_profile(config, kam, profile, sources[0].frame)  # under the user's kam.toml
        people = None
        if stakeholders:
            table = read_stakeholders(stakeholders, kam, config, stakeholder_options or options)
            people = summarise_people(table, config, kam, [str(p) for p in stakeholders])
        prepared, notes = prepare_frames([(s.frame, str(s.path)) for s in sources], config, kam, people,
                                         include_pii=include_pii, quarantined=[s.quarantined for s in sources],
                                         scores_only=scores_only)
        notes = profile_notes + [n for s in sources for n in s.notes] + notes
        rejects_path, summary_path = side_paths(output)
        target = output if output is not None else Path(tempfile.gettempdir()) / f"kam-stdout-{os.getpid()}.{fmt}"
        stale = remove_stale_temps([target, rejects_path, summary_path])  # the plain copy is in the folder
        if stale:
            notes.append(f"removed {stale} temporary file(s) left beside the output by a run that was killed")
        work, tmp_out, tmp_plain = output_paths(target)
        for folder in {target.parent, rejects_path.parent}:
            if not folder.is_dir():
                raise OutputError(f"output folder {folder} does not exist")
        tmp_rej_csv = temp_path(rejects_path)
        with cleanup_on_signal([work, tmp_rej_csv] + ([target] if output is None else [])):
            try:
                work.mkdir(exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
            ids = IdSpill(work)
            if engine is None:
                sums, rejected = stream_local(prepared, sources, writer, tmp_plain, on_progress, ids)
            else:
                sums, rejected = engine.stream(prepared, sources, writer, tmp_plain, on_progress, ids=ids)
            streamed = time.perf_counter()
            counts = pl.DataFrame({key: [sums[f"{key}_{i}"] - (sums[f"blank_{i}"] if key == "rows" else 0)
                                         for i in range(len(sources))] for key in ("rows", "ok", "blank")})
            reject_rows = explode_rejects(
                rejected, list(prepared.plan.problems), prepared.labels,
                lambda src, rows: sources[src].record_lines(rows), prepared.mappings)
            rows_in = int(counts["rows"].sum() or 0)
            rows_ok = int(counts["ok"].sum() or 0)
            if rows_in != rows_ok + rejected.height:
                raise KamError(f"row accounting failed: {rows_in} in, {rows_ok} scored, {rejected.height} rejected")
            if max_rejects is not None and rejected.height > max_rejects:
                raise DataError(f"{rejected.height} rows were rejected, more than --max-rejects {max_rejects}; "
                                "no output was written",
                                hint=_top_reason(reject_rows))
            if output is not None:  # compressed (seconds for a big output) before any file is replaced
                def compressing(done: int, total: int) -> None:
                    on_progress(time.perf_counter() - started, rows_in + int(counts["blank"].sum() or 0),
                                f"compressing {100 * done // max(total, 1)} %")

                try:
                    finish_output(tmp_plain, tmp_out, output, compressing if on_progress is not None else None,
                                  writer.extensions)
                except OSError as exc:
                    raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None
            # once the output is complete (a note about the data, not a reason to stop), before it replaces anything
            if (lacking := missing_inputs_warning(prepared.scoring)) is not None:
                log.warning("%s", lacking)  # on the console; the summary's notes name each column
            repeated = repeats.report(ids.repeated(), prepared.labels,
                                      lambda src, rows: sources[src].record_lines(rows))
            if (note := repeats.warning(repeated)) is not None:
                repeats.log.warning("%s", note)
                notes.append(note)
            reports, plugin_notes = kam.report_run(config, prepared.report_columns())
            notes += plugin_notes
            neutralise_frame(reject_rows).write_csv(tmp_rej_csv)
            replace_atomically(tmp_rej_csv, rejects_path)
            if output is None:
                copy_to_stdout(tmp_out, stdout)
            else:
                replace_atomically(tmp_out, output)
    finally:
        for source in sources:
            source.cleanup()
    # most frequent first, ties by name: group_by's order differs from run to run, the summary must not
    by_reason = reject_rows.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
    by_column = reject_rows.group_by("column").len().sort(["len", "column"], descending=[True, False])
    summary = {
        "kam_version": __version__,
        "started_at": started_at,
        "inputs": [{"path": str(s.path), "importer": name, "encoding": s.encoding, "delimiter": s.delimiter,
                    "header_line": s.header_line, "rows": int(row["rows"]), "rows_rejected": int(row["rows"] - row["ok"])}
                   for (s, name), row in zip(opened, counts.iter_rows(named=True))],  # per-row ok: one per file
        "output": str(output) if output is not None else "-",
        "format": fmt,
        "compression": packing(output),
        "engine": engine.describe() if engine is not None else {"name": "local"},
        "rejects_file": str(rejects_path),
        "rows": {"in": rows_in, "scored": rows_ok, "rejected": rejected.height},
        "blank_lines_skipped": int(counts["blank"].sum() or 0),
        "repeated_ids": repeated,
        "rejects_by_reason": dict(zip(by_reason["reason"], by_reason["len"])),
        "rejects_by_column": dict(zip(by_column["column"], by_column["len"])),
        "scores_only": scores_only,
        "columns": {"criteria": [k.column for k in prepared.scoring.criteria],
                    "scores": prepared.scoring.output_columns()},
        "win_probability_from": prepared.scoring.probability_plugin,
        "stakeholders": people.report(int(sums["with_people"])) if people is not None else None,
        "timings_s": {"stream": round(streamed - started, 3), "total": round(time.perf_counter() - started, 3)},
        "plugins": [{"name": n, "version": v} for n, v in sorted(kam.versions.items())],
        "plugins_failed": kam.failed,
        "reports": reports,
        "config": {"path": str(config.path) if config.path else None, "sha256": config.sha256,
                   "profile": config.profile},
        "notes": notes + [f"no column {name!r} in the input: the criteria reading it score unknown"
                          for name in prepared.scoring.missing_inputs],
        "summary_file": str(summary_path),
    }
    tmp_sum = temp_path(summary_path)
    with cleanup_on_signal([tmp_sum]):
        tmp_sum.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        replace_atomically(tmp_sum, summary_path)
    return summary


def missing_inputs_warning(scoring) -> str | None:
    """One console line when the export lacks columns the scorecard reads: their items score unknown, which an
    unmapped CRM export would otherwise turn silently into low scores. Columns are named as an export names
    them (a derived column by the one it comes from), with the seed's header."""
    lacking = scoring.missing_inputs
    if not lacking:
        return None
    names = list(dict.fromkeys(DERIVED_FROM.get(name, name) for name in lacking))
    shown = ", ".join(f"{n} ({OPPORTUNITY[n].label_zh})" if n in OPPORTUNITY else n for n in names)
    hint = "kam inspect FILE shows how the headers were mapped; map others in [columns] of kam.toml"
    if set(lacking) >= scoring.inputs:
        return (f"none of the columns the scorecard reads is in the input: {shown}; every item scores unknown: "
                f"is this an opportunities export? ({hint})")
    return f"{len(names)} column(s) the scorecard reads are not in the input: {shown}; their items score unknown ({hint})"


def copy_to_stdout(path: Path, stdout) -> None:
    """Stream the finished output to stdout; a reader that stops early (``| head``) is not an error."""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                stdout.write(chunk)
        stdout.flush()
    except BrokenPipeError:
        with contextlib.suppress(OSError):  # keep Python from complaining again when it flushes at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())


def _top_reason(rejects: pl.DataFrame) -> str:
    if rejects.height == 0:
        return "see the rejects"
    row = rejects.row(0, named=True)
    header = row.get("header")
    column = f"{header} ({row['column']})" if header and header != row["column"] else row["column"]
    return f"first: {row['file']} line {row['line']} column {column}: {row['reason']}"
