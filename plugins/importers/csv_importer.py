"""CSV importer: detects the encoding and the delimiter, then lets polars stream the file.

Encodings: UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text", by BOM or by its NUL
pattern) and GB18030 (which covers GBK and GB2312). Anything not UTF-8 is transcoded once, in
chunks, to a temporary UTF-8 file, so memory stays flat. Delimiters: comma, semicolon, tab, pipe.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import tempfile
from pathlib import Path

from kamcore import hookimpl
from kamcore.errors import InputError
from kamcore.registry import Importer, ReadOptions, Source

CANDIDATES = (",", ";", "\t", "|")
SAMPLE = 1 << 16
CHUNK = 1 << 22


def detect_encoding(head: bytes) -> str:
    """Python codec name for the file whose first bytes are ``head``."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        # ASCII in UTF-16 puts a NUL in every other byte; a CJK character (销 = 0x9500) may add a few more
        if odd > len(sample) // 4 and even * 4 < odd:
            return "utf-16-le"
        if even > len(sample) // 4 and odd * 4 < even:
            return "utf-16-be"
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
            return encoding
        except UnicodeDecodeError:
            continue
    raise InputError("cannot tell the text encoding (not UTF-8, UTF-16 or GB18030)",
                     hint="pass --encoding, e.g. --encoding big5")


def sniff_delimiter(text: str) -> str:
    """The candidate that splits the first lines into the same number (>1) of fields most often."""
    lines = text.splitlines()[:50]
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may end in the middle of a line
    best, best_score = ",", (0, 0)
    for delimiter in CANDIDATES:
        try:
            counts = [len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        score = (sum(1 for n in counts if n == counts[0]), counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def transcode(path: Path, encoding: str) -> Path:
    """Write a UTF-8 copy of the file in chunks; an undecodable byte is an error naming its offset."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    fd, name = tempfile.mkstemp(prefix="kam-utf8-", suffix=".csv")
    offset = 0
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            while True:
                chunk = src.read(CHUNK)
                try:
                    dst.write(decoder.decode(chunk, final=not chunk).encode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise InputError(f"{path}: byte {offset + exc.start} is not valid {encoding}",
                                     hint="pass --encoding if the file is in another encoding") from None
                if not chunk:
                    break
                offset += len(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def record_lines(path: Path, delimiter: str, header_line: int):
    """Map 0-based record indexes to 1-based physical lines, reading the file again (rejects only)."""

    def lookup(indexes: list[int]) -> dict[int, int]:
        wanted = set(indexes)
        found: dict[int, int] = {}
        if not wanted:
            return found
        last = max(wanted)
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            for _ in range(header_line):
                next(reader, None)
            record = 0
            start = reader.line_num + 1
            for _ in reader:  # per-row ok: only runs when there are rejects, after the scoring pass
                if record in wanted:  # blank lines count as records here, as they do for polars
                    found[record] = start
                record += 1
                if record > last:
                    break
                start = reader.line_num + 1
        return found

    return lookup


def read(path: Path, options: ReadOptions) -> Source:
    import polars as pl

    with open(path, "rb") as handle:
        head = handle.read(1 << 20)
    try:
        encoding = options.encoding or detect_encoding(head)
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"unknown encoding {options.encoding!r}") from None
    except InputError as exc:
        raise InputError(f"{path}: {exc.message}", hint=exc.hint) from None
    utf8 = path
    cleanup = lambda: None  # noqa: E731
    if codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
        utf8 = transcode(path, encoding)
        cleanup = lambda: utf8.unlink(missing_ok=True)  # noqa: E731
        with open(utf8, "rb") as handle:
            head = handle.read(1 << 20)
    text = codecs.getincrementaldecoder("utf-8-sig")(errors="replace").decode(head[:SAMPLE], final=False)
    delimiter = options.delimiter or sniff_delimiter(text)
    if not text.strip():
        cleanup()
        raise InputError(f"{path}: the file has no header row")
    frame = pl.scan_csv(utf8, infer_schema=False, separator=delimiter, encoding="utf8", raise_if_empty=False)
    try:
        frame.collect_schema()
    except pl.exceptions.PolarsError as exc:
        cleanup()
        raise InputError(f"{path}: cannot parse the header: {str(exc).splitlines()[0]}") from None
    return Source(path=path, frame=frame, record_lines=record_lines(utf8, delimiter, 1), encoding=encoding,
                  delimiter=delimiter, header_line=1, cleanup=cleanup)


def sniff(head: bytes, suffix: str) -> int:
    """Text with a delimiter in its first line is likely CSV; a zip or a binary file is not."""
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return 0
    try:
        encoding = detect_encoding(head)
    except InputError:
        return 0
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head[:SAMPLE], final=False).lstrip("\ufeff")
    if "\x00" in text or text.lstrip().startswith(("{", "[", "<")):
        return 5
    first = text.split("\n", 1)[0]
    score = 60 if any(d in first for d in CANDIDATES) else 20
    return score + (30 if suffix in (".csv", ".tsv", ".txt") else 0)


@hookimpl
def register_importers(register):
    register(Importer(name="csv", read=read, sniff=sniff,
                      description="CSV/TSV text; UTF-8, UTF-8 BOM, UTF-16, GB18030; delimiter sniffed"))
