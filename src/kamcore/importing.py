"""Helpers every importer shares: finding the header row, naming columns, totals rows, and building a
lazy frame of text columns from rows read in Python (xlsx, JSON Lines).

Also :func:`frame_stream`, a lazy frame read one piece at a time (Parquet slices, the Dask engine's
scored pieces), and the reading of packed exports (gzip, bzip2, xz, a zip of one file: :func:`open_input`,
:func:`inflate`, :func:`inflated_head`), so that every text importer inflates them, and refuses a
decompression bomb, the same way.

Importers are plugins (``register_importers``); these helpers are core so that a third-party importer
judges a header row, a totals row and a duplicate header exactly as the built-ins do.
"""

from __future__ import annotations

import io
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .errors import InputError
from .headers import alias_table, clean_header, header_key

log = logging.getLogger("kamcore.importers")

HEADER_SEARCH_ROWS = 50  # a header further down than this is not looked for
CHUNK_ROWS = 50_000  # rows per polars chunk when an importer builds its frame from Python rows
PROGRESS_ROWS = 10_000  # rows between two reports of a FrameBuilder's progress

# the first non-empty cell of a totals row (合计 = total, 总计 = grand total, 小计 = subtotal)
TOTAL_WORDS = frozenset({"合计", "总计", "小计", "总合计", "合計", "總計", "小計", "共计", "汇总", "total", "totals",
                         "grand total", "subtotal", "sub total", "sub-total", "sum", "summe", "gesamt"})


def header_table(user_columns: Mapping[str, str] | None = None) -> dict[str, str]:
    """header key -> canonical column, from the schema's aliases and the user's ``[columns]`` table."""
    from .schema import OPPORTUNITY_COLUMNS

    table = alias_table(OPPORTUNITY_COLUMNS)
    for header, target in (user_columns or {}).items():
        if target:
            table[header_key(header)] = target
    return table


def header_matches(row: Iterable, table: Mapping[str, str]) -> int:
    """How many distinct canonical columns the cells of ``row`` name."""
    return len({table[k] for k in (header_key(str(v)) for v in row if v is not None and str(v).strip()) if k in table})


def find_header(rows: list[list], table: Mapping[str, str]) -> int:
    """The index of the header among the first rows of a table (title rows, report filters and blank
    rows come before it).

    The row naming the most canonical columns (at least two) wins, the first one on a tie. A table whose
    headers kam does not know (a mapping in kam.toml is still to be written) gets the first row with at
    least half as many filled cells as the widest row: title and filter rows fill one or two cells.
    """
    rows = rows[:HEADER_SEARCH_ROWS]
    if not rows:
        return 0
    matches = [header_matches(row, table) for row in rows]
    best = max(matches)
    if best >= 2:
        return matches.index(best)
    filled = [sum(1 for v in row if v is not None and str(v).strip()) for row in rows]
    widest = max(filled)
    if widest <= 1:
        return next((i for i, n in enumerate(filled) if n), 0)
    need = max(2, math.ceil(widest / 2))
    return next(i for i, n in enumerate(filled) if n >= need)


def column_names(headers: list, source: str,
                 user_columns: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Names for the columns under ``headers``, and notes: cleaned (``clean_header``), ``column_<n>`` for an
    empty header or one polars would read as a pattern rather than a name (``*``, ``^…$``).

    A header repeated (as CRM exports repeat 备注 or Created By across objects) is kept under ``<name>_<n>``
    (its column number), with a warning, when kam reads neither column; when kam reads it (a canonical
    column's alias, or a header the user's ``[columns]`` maps), which one to read would be a guess: an
    :class:`InputError` (``[columns]`` mapping the header to ``""`` keeps both, unread).
    """
    from .schema import OPPORTUNITY_COLUMNS, STAKEHOLDER_COLUMNS

    read = None  # built at the first repeat: most files have none
    names: list[str] = []
    notes: list[str] = []
    seen: dict[str, int] = {}
    for index, header in enumerate(headers, start=1):
        name = clean_header("" if header is None else str(header))
        if not name or name == "*" or (name.startswith("^") and name.endswith("$")):
            name = f"column_{index}"
        if name in seen:
            if read is None:
                user = {header_key(h): target for h, target in (user_columns or {}).items()}
                read = ({**alias_table(OPPORTUNITY_COLUMNS), **alias_table(STAKEHOLDER_COLUMNS)}.keys()
                        | {k for k, target in user.items() if target}) - {k for k, target in user.items() if not target}
            kept = f"{name}_{index}"
            taken = kept in seen or kept in {clean_header(str(h)) for h in headers if h is not None}
            if header_key(name) in read or taken:
                raise InputError(f"{source}: columns {seen[name]} and {index} are both named {name!r}",
                                 hint="rename one of them in the export (kam would read only one of the two), or keep "
                                      f"both as text kam does not read: '{name}' = \"\" in [columns] of kam.toml")
            notes.append(warn(f"{source}: columns {seen[name]} and {index} are both named {name!r}; kam reads "
                              f"neither, and column {index} is kept as {kept!r}"))
            name = kept
        seen[name] = index
        names.append(name)
    return names, notes


def as_text(column, dtype):
    """The polars expression giving ``column``'s values as the text a CSV export would hold, or ``None`` when
    they have none (binary, durations): numbers as polars writes them, timestamps to the second, a list of
    strings joined by ``; `` (competitors: ``H3C; Lenovo``), other nested values as compact JSON. For typed
    inputs (Parquet, a data frame given to :func:`kamcore.score_frame`)."""
    import polars as pl

    if dtype == pl.String:
        return column
    if dtype == pl.Datetime:
        return column.dt.strftime("%Y-%m-%d %H:%M:%S")
    if dtype == pl.List(pl.String):  # names, as a CSV export lists them (competitors: H3C; Lenovo)
        return column.list.join("; ")
    if dtype.is_nested():  # {"v": …} encoded, then the braces and the key cut off
        encoded = pl.struct(column.alias("v")).struct.json_encode()
        return pl.when(column.is_not_null()).then(encoded.str.strip_prefix('{"v":').str.strip_suffix("}"))
    if dtype.is_numeric() or dtype in (pl.Boolean, pl.Date, pl.Time, pl.Categorical, pl.Enum, pl.Null):
        return column.cast(pl.String)
    return None  # binary, durations …: refused before the run, naming the column


def is_totals_label(value) -> bool:
    """``合计``, ``总计:``, ``Grand Total`` … (case, spaces and a trailing colon ignored)."""
    if value is None:
        return False
    text = clean_header(str(value)).rstrip(":：").strip().lower()
    return text in TOTAL_WORDS


def totals_label(row: Iterable) -> str | None:
    """The label when the first filled cell of ``row`` says it is a totals row, else None."""
    for value in row:
        if value is not None and str(value).strip():
            return str(value).strip() if is_totals_label(value) else None
    return None


PREVIEW_CHARS = 40


def preview(column: str | None, value) -> str:
    """A short preview of a raw value for an error message; personal stakeholder fields are masked."""
    from .schema import PERSONAL_FIELDS, STAKEHOLDER_COLUMNS

    if value is None:
        return ""
    if column is not None:
        personal = {k for k, name in alias_table(STAKEHOLDER_COLUMNS).items() if name in PERSONAL_FIELDS}
        if column in PERSONAL_FIELDS or header_key(column) in personal:
            return "***"
    text = str(value)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def warn(note: str) -> str:
    """Log an importer's note as a warning (shown on stderr by `kam`) and return it for Source.notes."""
    log.warning("%s", note)
    return note


class FrameBuilder:
    """Collects rows of text into a lazy polars frame of ``String`` columns, one chunk at a time.

    Each chunk of :data:`CHUNK_ROWS` rows is turned into a ``DataFrame`` column by column and written to a
    temporary Arrow IPC file, so memory stays flat however many rows there are; :meth:`frame` scans the
    chunks lazily. Call :meth:`cleanup` when the run is over (``Source.cleanup``).
    """

    def __init__(self, columns: list[str], prefix: str = "kam-rows-", on_rows: Callable[[int], None] | None = None):
        self.columns = list(columns)
        self.on_rows = on_rows  # told the rows added so far, every PROGRESS_ROWS rows and every frame
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self.files: list[Path] = []
        self.buffer: list[list] = [[] for _ in self.columns]
        self.rows = 0  # rows added
        self.pending = 0  # rows not yet written to a chunk

    def add(self, values: list) -> None:
        for column, value in zip(self.buffer, values):  # per-row ok: appends to column lists
            column.append(value)
        self.rows += 1
        self.pending += 1
        if self.pending >= CHUNK_ROWS:
            self.flush()
        if self.on_rows is not None and self.rows % PROGRESS_ROWS == 0:
            self.on_rows(self.rows)

    def add_column(self, name: str) -> None:
        """A column first seen after some rows (JSON Lines): earlier rows have no value."""
        self.columns.append(name)
        self.buffer.append([None] * self.pending)

    def flush(self) -> None:
        import polars as pl

        if not self.pending:
            return
        # stored by position (c0, c1 …): a name such as "*" or "^x$" would be a pattern to pl.col()
        frame = pl.DataFrame({f"c{i}": pl.Series(values, dtype=pl.String) for i, values in enumerate(self.buffer)})
        if not self.columns:  # rows without any column (``{}`` in JSON Lines): keep their count
            frame = self.empty_rows(self.pending)
        path = self.folder / f"chunk-{len(self.files):06d}.arrow"
        frame.write_ipc(path)
        self.files.append(path)
        self.buffer = [[] for _ in self.columns]
        self.pending = 0

    @staticmethod
    def empty_rows(count: int):
        """A chunk of ``count`` rows without any value (``{}`` in JSON Lines): one null column, so that the
        rows are counted; :meth:`frame` never selects it."""
        import polars as pl

        return pl.repeat(None, count, dtype=pl.String, eager=True).alias("__empty__").to_frame()

    def add_frame(self, frame) -> None:
        """Rows already in a frame of String columns ``c0``, ``c1`` … (by position, as :meth:`flush` stores
        them), written as one chunk after the rows added before."""
        self.flush()
        path = self.folder / f"chunk-{len(self.files):06d}.arrow"
        frame.write_ipc(path)
        self.files.append(path)
        self.rows += frame.height
        if self.on_rows is not None:
            self.on_rows(self.rows)

    def reset(self) -> None:
        """Forget every row added (an importer starting over another way)."""
        for path in self.files:
            path.unlink(missing_ok=True)
        self.files, self.rows, self.pending = [], 0, 0
        self.buffer = [[] for _ in self.columns]

    def frame(self):
        """The lazy frame of every row added, with every column (missing ones as null in early chunks)."""
        import polars as pl

        self.flush()
        schema = {name: pl.String for name in self.columns}
        if not self.files:
            return pl.LazyFrame(schema=schema)
        scans = [pl.scan_ipc(path) for path in self.files]
        lazy = pl.concat(scans, how="diagonal") if len(scans) > 1 else scans[0]
        have = set(lazy.collect_schema().names())
        return lazy.select([(pl.col(f"c{i}") if f"c{i}" in have else pl.lit(None, pl.String)).alias(name)
                            for i, name in enumerate(self.columns)])

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def frame_stream(frames: Callable[[], Iterable], schema):
    """A lazy frame of the frames (eager or lazy) that ``frames()`` yields, each read only when the query
    asks for the next; the query's filter, projection and row limit are applied to each, in that order, so
    a source read slice by slice never decodes far ahead of the slowest step."""
    import polars as pl
    from polars.io.plugins import register_io_source

    def read(with_columns, predicate, n_rows, batch_size):
        left = n_rows
        if left is not None and left <= 0:
            return
        for frame in frames():
            lazy = frame.lazy()
            if predicate is not None:
                lazy = lazy.filter(predicate)
            if with_columns is not None:
                lazy = lazy.select(with_columns)
            if left is not None:  # a writer that wants the first rows only
                lazy = lazy.head(left)
            frame = lazy.collect()
            yield frame
            if left is not None:
                left -= frame.height
                if left <= 0:  # the next frame is not read
                    return

    return register_io_source(read, schema=pl.Schema(schema))


# -- compressed inputs --------------------------------------------------------------------------

# magic bytes -> what packs the file: big CRM exports often come gzip-compressed, or zipped
COMPRESSIONS = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}
MAX_INFLATE_RATIO = 200  # inflated / compressed size; override with KAM_MAX_INFLATE_RATIO
INFLATE_GRACE = 1 << 20  # output up to this size is never a bomb
_ZIP_JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")  # what archivers add beside the file


_BZIP2_BLOCKS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")  # a block, or the end (empty)


def compression(head: bytes) -> str | None:
    """``gzip``, ``bzip2``, ``xz`` or ``zip`` when the file's first bytes say it is packed, else None. (An
    .xlsx is a zip too: its importer claims it first, by its content.) bzip2's magic is text (``BZh``), so
    its level digit and first block's magic must follow: a CSV whose first header starts with BZh is text."""
    for magic, name in COMPRESSIONS.items():
        if head.startswith(magic):
            if name == "bzip2" and not (head[3:4].isdigit() and head[3:4] != b"0" and head[4:10] in _BZIP2_BLOCKS):
                continue
            return name
    return None


def inflated_head(head: bytes, size: int = 1 << 16) -> bytes:
    """The first bytes of what a packed head holds (as much as it gives, up to ``size``; a zip's first
    file), for sniffing; ``head`` itself when it is not packed, ``b""`` when it is damaged."""
    import bz2
    import lzma
    import zlib

    name = compression(head)
    try:
        if name is None:
            return head
        if name == "gzip":
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(head, size)
        if name == "bzip2":
            return bz2.BZ2Decompressor().decompress(head, size)
        if name == "xz":
            return lzma.LZMADecompressor().decompress(head, size)
        method = int.from_bytes(head[8:10], "little")  # a zip's local file header, then the first file's data
        data = head[30 + int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little"):]
        if method == 0:
            return data[:size]
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, size) if method == 8 else b""
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return b""


def zip_member(path: Path) -> str:
    """The one file a zip archive holds (besides folders and what archivers add); an error otherwise."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist()
                     if not i.is_dir() and not any(part in i.filename for part in _ZIP_JUNK)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: the zip archive is damaged: {exc}", hint="copy or download the file again") from None
    if len(names) != 1:
        listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise InputError(f"{path}: a zip archive of {len(names)} files{': ' + listed if names else ''}; kam reads "
                         "an archive that holds one export", hint="unzip it and score the export(s) inside: "
                                                                  "kam score FILE [FILE …]")
    return names[0]


def describe_packing(path: Path, name: str) -> str:
    """The note a run summary gets for a packed input."""
    if name == "zip":
        return f"{path}: a zip archive; its file {zip_member(path)} was read"
    return f"{path}: {name}-compressed, read inflated"


class _Inflating(io.RawIOBase):
    """A packed file's content, refused once it grows past the ratio limit (a decompression bomb), with
    its errors in kam's words."""

    def __init__(self, path: Path, name: str):
        import bz2
        import gzip
        import lzma
        import zipfile

        self.path, self.name = path, name
        self.limit = max(INFLATE_GRACE, max_inflate_ratio() * path.stat().st_size)
        self.given = 0
        if name == "zip":
            member = zip_member(path)
            self.archive = zipfile.ZipFile(path)
            try:
                self.inner = self.archive.open(member)
            except RuntimeError as exc:  # encrypted
                self.archive.close()
                raise InputError(f"{path}: cannot open {member} in the zip archive: {exc}",
                                 hint="unzip it (with its password) and score the file inside") from None
            except (zipfile.BadZipFile, NotImplementedError) as exc:
                self.archive.close()
                raise InputError(f"{path}: cannot open {member} in the zip archive: {exc}",
                                 hint="unzip it and score the file inside") from None
        else:
            self.archive = None
            self.inner = {"gzip": gzip, "bzip2": bz2, "xz": lzma}[name].open(path, "rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        import lzma
        import zipfile
        import zlib

        try:
            n = self.inner.readinto(buffer)
        except EOFError:
            raise InputError(f"{self.path}: the {self.name} data ends early (the file was cut off)",
                             hint="copy or download the file again") from None
        except (OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
            raise InputError(f"{self.path}: the {self.name} data is damaged: {exc}",
                             hint="copy or download the file again") from None
        self.given += n
        if self.given > self.limit:
            raise InputError(f"{self.path}: inflates to more than {max_inflate_ratio()} times its size: refused "
                             "as a decompression bomb",
                             hint="if the file is genuine, decompress it yourself or raise KAM_MAX_INFLATE_RATIO")
        return n

    def close(self) -> None:
        self.inner.close()
        if self.archive is not None:
            self.archive.close()
        super().close()


def max_inflate_ratio() -> int:
    value = os.environ.get("KAM_MAX_INFLATE_RATIO", "")
    return int(value) if value.isdigit() and int(value) > 0 else MAX_INFLATE_RATIO


def open_input(path: Path):
    """The file for reading in binary, inflated on the fly when it is packed (gzip, bzip2, xz, a zip of
    one file)."""
    with open(path, "rb") as handle:
        name = compression(handle.read(16))
    if name is None:
        return open(path, "rb")
    return io.BufferedReader(_Inflating(path, name), 1 << 20)


def inflate(path: Path, prefix: str = "kam-inflated-") -> Path:
    """A temporary, inflated copy of a packed file (the caller deletes it)."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".txt")
    try:
        with open_input(path) as src, os.fdopen(fd, "wb") as dst:
            try:
                shutil.copyfileobj(src, dst, 1 << 20)
            except OSError as exc:
                raise InputError(f"{path}: cannot inflate it into {tempfile.gettempdir()}: {exc.strerror or exc}",
                                 hint="the inflated copy needs room there; set TMPDIR to a larger folder") from None
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)
