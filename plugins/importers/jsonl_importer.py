"""JSON Lines importer: one JSON object per line, as APIs and log shippers write them.

A file of plain lines (flat objects, the usual case) is read in bulk by :mod:`.jsonl_columns`; any other
is parsed a line at a time with Python's ``json`` module, so that what polars' fast reader would accept
silently is refused, with the line named: invalid JSON, ``NaN`` / ``Infinity`` (not JSON, though many
writers emit them), a key that appears twice in one object (which value would count?), and a line that
is not an object. A file with such lines is refused as a whole (exit 4, nothing written); the message
names the first five bad lines and how many there are.

Values become text, as every importer gives them: strings as they are, numbers exactly as written
(``120000``, ``1.50``; never re-formatted), ``true``/``false``, ``null`` as missing. **Nested** objects and
arrays are kept as compact JSON text (``{"a":1}``, ``["x","y"]``) rather than refused: an API export
often carries a list of tags or a nested owner, and losing the row for it would be worse; a canonical
column that receives JSON text is then rejected by the normaliser like any other unreadable value.
Columns are the keys, in the order they first appear; an object without a key has no value there.
Blank lines are skipped. The encoding is UTF-8 (with or without BOM), as JSON requires. A gzip, bzip2
or xz file, or a zip of one file, is inflated as it is read (``kamcore.importing.open_input``).
"""

from __future__ import annotations

import json
from pathlib import Path

from kamcore import hookimpl
from kamcore.errors import InputError
from kamcore.importing import (FrameBuilder, column_names, compression, describe_packing, inflated_head, log,
                               open_input, warn)
from kamcore.registry import Importer, ReadOptions, Source

MAX_BAD_LINES_SHOWN = 5
HINT = ("JSON Lines holds one complete JSON object per line; NaN, Infinity and repeated keys are not JSON "
        "(a JSON array converts with: jq -c '.[]' FILE > FILE.jsonl)")


class _Refused(ValueError):
    pass


class _Number(str):
    """A JSON number, kept as the text it was written as."""


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _Refused(f"the key {key!r} appears twice in one object")
        obj[key] = value
    return obj


def _constant(name: str):
    raise _Refused(f"{name} is not a JSON number (NaN and Infinity are refused)")


def _plain(value):
    """Nested values back to plain JSON types (numbers from their text) for re-encoding."""
    if isinstance(value, _Number):
        number = float(value) if any(ch in value for ch in ".eE") else int(value)
        return number if number == number and number not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def text_of(value) -> str | None:
    """One JSON value as the text of a cell."""
    if value is None:
        return None
    if isinstance(value, str):  # strings and numbers (kept as written)
        return str(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


def parse_line(text: str) -> dict:
    """One line as an object, or :class:`ValueError` saying why not."""
    try:
        obj = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_int=_Number,
                         parse_float=_Number)
    except _Refused:
        raise
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(obj, dict):
        kind = {list: "an array", str: "a string", _Number: "a number"}.get(type(obj), "a " + type(obj).__name__)
        raise ValueError(f"expected an object {{…}}, found {kind if obj is not None else 'null'}")
    if "\\ud" in text or "\\uD" in text:  # a surrogate escape: fine in a pair (an emoji), not alone
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a \\ud800-\\udfff escape without its pair is not a character") from None
    return obj


def read(path: Path, options: ReadOptions) -> Source:
    return _read(path, options)


def _read(path: Path, options: ReadOptions, rows_by: str = "auto") -> Source:
    """:func:`read`; ``rows_by``: "auto" (in bulk when every line is plain, else a line at a time), "bulk" or
    "lines" (one way only; "bulk" refuses a file that is not plain)."""
    from .jsonl_columns import NotPlain, read_lines

    builder: FrameBuilder | None = None
    try:
        body = None
        if rows_by != "lines":
            builder = FrameBuilder([], prefix="kam-jsonl-", on_rows=options.on_rows)
            with open_input(path) as handle:  # inflated on the fly when compressed
                body = read_lines(handle, builder)
            if body is None:
                if rows_by == "bulk":
                    raise NotPlain(f"{path}: not plain JSON Lines")
                builder.cleanup()
                builder = None
        if body is None:
            builder = FrameBuilder([], prefix="kam-jsonl-", on_rows=options.on_rows)
            body = _read_each_line(path, builder)
        log.debug("%s: lines read %s", path, "in bulk" if body.in_bulk else "one at a time (not every line is plain)")
        if not body.keys:
            raise InputError(f"{path}: no records (every line is blank)")
        names, repeated = column_names(body.keys, str(path), options.columns)
        import polars as pl

        frame = builder.frame().select(pl.nth(i).alias(name) for i, name in enumerate(names))  # by position
    except BaseException:
        if builder is not None:
            builder.cleanup()
        raise
    with open(path, "rb") as handle:
        packed = compression(handle.read(16))
    notes = [f"{path}: {builder.rows} record(s) read"] + ([describe_packing(path, packed)] if packed else []) + repeated
    if body.blank:
        notes.append(warn(f"{path}: {body.blank} blank line(s) were skipped"))
    lines = body.lines

    def record_lines(indexes: list[int]) -> dict[int, int]:
        return {i: lines[i] for i in indexes if 0 <= i < len(lines)}

    return Source(path=path, frame=frame, record_lines=record_lines, encoding="utf-8", delimiter=None,
                  header_line=0, notes=tuple(notes), cleanup=builder.cleanup)


def _read_each_line(path: Path, builder: FrameBuilder):
    """Every line through :func:`parse_line`, added to ``builder``; a file with lines that are not JSON Lines
    records is refused, naming the first few."""
    from .jsonl_columns import Lines

    body = Lines()
    bad: list[str] = []
    bad_count = 0
    with open_input(path) as handle:  # inflated on the fly when compressed
        for number, raw in enumerate(handle, start=1):  # per-row ok: json.loads checks each line (NaN, keys)
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: line {number}: byte {exc.start + 1} of the line is not UTF-8",
                                 hint="JSON Lines is UTF-8; convert the file, e.g. iconv -f gb18030 -t utf-8") from None
            if not text.strip():
                body.blank += 1
                continue
            try:
                obj = parse_line(text)
            except ValueError as exc:
                bad_count += 1
                if len(bad) < MAX_BAD_LINES_SHOWN:
                    bad.append(f"line {number}: {exc}")
                continue
            if bad_count:
                continue  # the file is refused: only count the bad lines
            row = [None] * len(body.keys)
            for key, value in obj.items():
                if key not in body.positions:
                    row.append(None)
                row[body.position(key, builder)] = text_of(value)
            builder.add(row)
            body.lines.append(number)
    if bad_count:
        more = f"; {bad_count - len(bad)} more bad line(s)" if bad_count > len(bad) else ""
        raise InputError(f"{path}: {bad_count} line(s) are not JSON Lines records: {'; '.join(bad)}{more}",
                         hint=HINT)
    return body


def sniff(head: bytes, suffix: str) -> int:
    """Text whose first character is ``{`` (a BOM and white space allowed before it), compressed or not."""
    if compression(head):
        head = inflated_head(head)
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text.startswith(b"{"):
        return 0
    return 90 if suffix in (".jsonl", ".ndjson", ".json") else 80


@hookimpl
def register_importers(register):
    register(Importer(name="jsonl", read=read, sniff=sniff,
                      description="JSON Lines, one object per line; NaN, Infinity and repeated keys refused"))
