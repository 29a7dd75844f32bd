"""JSON Lines read in bulk: a chunk of lines at a time through polars' own JSON Lines reader, with the
values :mod:`.jsonl_importer` gives a line at a time (numbers exactly as written, strings decoded).

Python's ``json`` module, with the hooks that keep numbers as written and refuse NaN and repeated keys,
costs about 20 us a line (200,000 lines: 4.4 s). Here 8 MiB of lines at a time is checked in Rust: every
line against one strict pattern, its keys cut out in order; polars' reader then decodes the strings, and a
number or boolean is taken from the line as written (polars would write ``1.50`` as ``1.5``). A chunk whose
lines hold only keys seen before, in their usual order, each with a kind of value seen before, is matched
against one pattern of those keys (:class:`Known`) instead of having its keys cut out; the next two chunks
are cut in other threads while one is added.

Only plain lines are read this way: one flat object per line whose values are strings, numbers, ``true``,
``false`` or ``null``; keys without quotes, commas, braces or colons, not starting with a space, and
without escapes but those of non-ASCII characters (``\\u7f16\\u53f7``, as Python's json writes 编号); no key
twice; no half of a surrogate pair escaped alone (a pair, ``\\ud83d\\ude00``, is an emoji and fine); UTF-8
throughout; blank lines holding spaces, tabs or a carriage return only. Anything else (a nested value, NaN,
a line that is not JSON …) makes :func:`read_lines` return None, and the importer reads the file a line at
a time: the same rows, notes and errors either way (tests compare the two). The key rule is what makes
cutting the keys out exact: a key that keeps to it cannot be mistaken for a string's contents. Keys are
handled as written (escapes and all) and named by what they read as; one key written both ways in one file
is left to the line reader.
"""

from __future__ import annotations

import io
import json
from array import array
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from kamcore.importing import FrameBuilder

CHUNK = 8 << 20  # bytes of lines read at a time
AHEAD = 2  # chunks cut in other threads while one is added
MAX_KNOWN_KEYS = 200  # keys a pattern of known keys may name (a wider file has its keys cut out every time)
_WS = r"[ \t\r]*"  # JSON's white space inside one line
_CHARS = r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*'  # a string's characters, escapes included
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_VALUE = f'(?:"{_CHARS}"|{_NUMBER}|true|false|null)'
_PAIR = f'"{_CHARS}"{_WS}:{_WS}{_VALUE}'
_LINE = rf"^{_WS}\{{{_WS}(?:{_PAIR}{_WS}(?:,{_WS}{_PAIR}{_WS})*)?\}}{_WS}$"
_BLANK = f"^{_WS}$"
_KEY = f'[{{,]{_WS}"(?:[^"\\\\]|\\\\.)*"{_WS}:{_WS}.'  # a key and its value's first character (line is plain)
# a character from U+0080 to U+FFFF but a surrogate, escaped (json.dumps' default writes non-ASCII keys so)
_KEY_ESCAPE = (r"\\u(?:00[89a-fA-F][0-9a-fA-F]|0[1-9a-fA-F][0-9a-fA-F]{2}|[1-9a-cA-C][0-9a-fA-F]{3}"
               r"|[dD][0-7][0-9a-fA-F]{2}|[eEfF][0-9a-fA-F]{3})")
_KEY_TEXT = rf'^(?:[^"\\]|{_KEY_ESCAPE})*$'  # a key as written: no escape but those
_SAFE_KEY = r'^[^\s",{}:\\][^",{}:\\]*$'  # the key rule, on the key read (module docstring)
_SURROGATE = r"\\u[dD][89a-fA-F]"
_SURROGATE_PAIR = r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"  # an astral character, escaped
_LINE_STARTS = (b"{", b" ", b"\t", b"\r", b"\n")  # how a plain or blank line starts
_NOT_TEXT = "-0123456789tf"  # first characters of a number or a boolean


class NotPlain(Exception):
    """A line the bulk reader leaves to the line-at-a-time reader."""


class Lines:
    """What a read gives besides the rows (in the importer's FrameBuilder): the keys in the order they
    first appear, each row's line number, the blank lines skipped, and whether it was read in bulk."""

    def __init__(self, in_bulk: bool = False):
        self.in_bulk = in_bulk
        self.keys: list[str] = []
        self.positions: dict[str, int] = {}
        self.lines = array("I")
        self.blank = 0
        self.known: Known | None = None  # what the lines so far hold (the bulk reader's)

    def position(self, key: str, builder: FrameBuilder, name: str | None = None) -> int:
        """The column of ``key``, a new one (and in ``builder``) when first seen, named ``name`` (the key read,
        when ``key`` is as written with escapes) or ``key``."""
        if key not in self.positions:
            self.positions[key] = len(self.keys)
            self.keys.append(key if name is None else name)
            builder.add_column(self.keys[-1])
        return self.positions[key]


class Known:
    """The keys read so far as written (``\\u6807`` escapes and all), their columns, the keys they read as,
    the kinds of value seen for each (text; numbers or booleans), and the pattern of a line with nothing new
    (None for a very wide file). Never changed once made: chunks cut in other threads read the one they
    were given."""

    def __init__(self, positions: dict[str, int], names: dict[str, str], kinds: dict[str, tuple[bool, bool]],
                 order: list[str]):
        self.keys, self.positions, self.kinds = tuple(positions), dict(positions), dict(kinds)
        self.names = dict(names)
        self.pattern = _line_pattern(order, self.kinds) if len(order) <= MAX_KNOWN_KEYS else None


class _Piece:
    """One chunk, cut: its lines, the blank ones, the others (``n``, ``text``), and their values when every
    one holds only what was known when it was cut (else None: the keys are cut out in order)."""

    def __init__(self, data: bytes, count: int, rows, frame):
        self.data, self.count, self.rows, self.frame = data, count, rows, frame


def read_lines(handle, builder) -> Lines | None:
    """Every line of the binary ``handle`` (inflated already), added to ``builder`` a chunk at a time; None,
    with nothing added, when a line is not plain (see the module docstring). The next chunks are cut in
    other threads meanwhile (polars lets go of the interpreter lock), with what was known when each began."""
    import polars as pl

    body = Lines(in_bulk=True)
    first_line = 1
    try:
        with ThreadPoolExecutor(max_workers=AHEAD, thread_name_prefix="kam-jsonl") as pool:
            pending: deque = deque()
            for data in _chunks(handle):
                pending.append(pool.submit(_cut, pl, data, body.known))
                if len(pending) > AHEAD:
                    first_line += _add(pl, pending.popleft().result(), first_line, body, builder)
            while pending:
                first_line += _add(pl, pending.popleft().result(), first_line, body, builder)
    except (NotPlain, pl.exceptions.PolarsError):  # the line reader reads it, or says what is wrong
        builder.reset()
        return None
    return body


def _chunks(handle):
    """The file's bytes, CHUNK or so at a time, each ending with a whole line (a BOM at the start dropped,
    as the line reader drops it)."""
    rest = handle.read(3)
    if rest == b"\xef\xbb\xbf":
        rest = b""
    while data := handle.read(CHUNK):
        data = rest + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no line end yet: a long line
            rest = data
            continue
        rest = data[cut:]
        yield data[:cut]
    if rest:
        yield rest


def _cut(pl, data: bytes, known: Known | None) -> _Piece:
    """One chunk checked and cut into lines; its values too when it holds nothing new to ``known``."""
    if data[:1] not in _LINE_STARTS:
        raise NotPlain  # (also what polars' readers would take for compressed data: zstd, zlib)
    count = data.count(b"\n") + (not data.endswith(b"\n"))
    # lines as they are (CR LF's CR dropped, an empty line null): no quoting, and a separator JSON text never
    # holds raw; a line with one would be two columns, refused here
    lines = pl.read_csv(data, has_header=False, separator="\x1f", quote_char=None, infer_schema=False,
                        new_columns=["text"]).with_row_index("n")
    text = pl.col("text")
    checks = {"blank": text.is_null() | text.str.contains(_BLANK), "plain": text.str.contains(_LINE),
              "surrogate": text.str.contains(_SURROGATE)}
    if known is not None and known.pattern is not None:
        checks["known"] = text.str.contains(known.pattern)
    checked = lines.select(**checks)
    if lines.height != count or not (checked["blank"] | checked["plain"]).all() or _lone_surrogate(pl, lines, checked):
        raise NotPlain
    rows = lines.filter(~checked["blank"])
    frame = None
    if "known" in checks and rows.height and checked["known"].filter(~checked["blank"]).all():
        frame = _values(pl, data, rows, known.keys, known)  # no new key, none out of order, no new kind
    return _Piece(data, lines.height, rows, frame)


def _lone_surrogate(pl, lines, checked) -> bool:
    """Whether a line escapes half of a surrogate pair alone (polars would read it as an empty string; the
    line reader refuses it). An emoji escaped as a pair, as Python's json writes it, is read by polars as
    the line reader reads it. Escaped backslashes are dropped first, left to right as JSON reads them, so
    that an escaped backslash followed by the text ``ud83d`` is not taken for an escape."""
    if not checked["surrogate"].any():
        return False
    text = lines.filter(checked["surrogate"]).get_column("text")
    bare = text.str.replace_all("\\\\", "", literal=True).str.replace_all(_SURROGATE_PAIR, "")
    return bool(bare.str.contains(_SURROGATE).any())


def _add(pl, piece: _Piece, first_line: int, body: Lines, builder) -> int:
    """A cut chunk's rows added to ``builder`` (its keys cut out first when it holds something new); the
    lines it holds."""
    rows = piece.rows
    body.blank += piece.count - rows.height
    body.lines.frombytes((rows["n"].cast(pl.UInt32) + first_line).to_numpy().tobytes())
    if not rows.height:
        return piece.count
    frame = piece.frame
    if frame is None:  # the keys cut out of every line
        known_names = body.known.names if body.known is not None else {}
        keys, read_as = _keys(pl, rows, known_names)
        names = keys["key"].unique(maintain_order=True).to_list()  # in the order they first appear
        kinds = dict(body.known.kinds) if body.known is not None else {}
        seen = keys.group_by("key").agg(text=(pl.col("kind") == '"').any(),
                                        other=pl.col("kind").is_in(list(_NOT_TEXT)).any())
        for key, has_text, has_other in seen.iter_rows():  # per-row ok: a row per key, not per record
            had_text, had_other = kinds.get(key, (False, False))
            kinds[key] = (had_text or has_text, had_other or has_other)
        for key in names:  # per key
            body.position(key, builder, read_as.get(key))  # known keys have their column already
        # the order of keys within a line: the fullest line's (writers that leave out null values keep it)
        fullest = keys["n"].value_counts(sort=True)["n"][:1]
        order = keys.filter(pl.col("n").is_in(fullest.to_list()))["key"].to_list()
        order += [key for key in body.positions if key not in order]  # per key
        body.known = Known(body.positions, {**known_names, **read_as}, kinds, order)
        frame = _values(pl, piece.data, rows, names, body.known)
    builder.add_frame(frame)
    return piece.count


def _values(pl, data: bytes, rows, names: list[str] | tuple, known: Known):
    """The values of ``names`` on each line of the chunk, as text, in columns ``c<position>``: strings
    decoded by polars' reader, numbers and booleans as the line writes them (polars writes 1.50 as 1.5)."""
    if not names:  # lines {} only: rows without values (FrameBuilder's column for counting them)
        return FrameBuilder.empty_rows(rows.height)
    frame = pl.read_ndjson(io.BytesIO(data), schema={known.names[name]: pl.String for name in names})
    if frame.height != rows.height:
        raise NotPlain
    frame.columns = [f"c{known.positions[name]}" for name in names]  # by position: "^a$" is a pattern to pl.col
    columns = []
    for name in names:
        has_text, has_other = known.kinds[name]
        read = pl.col(f"c{known.positions[name]}")
        value = rows["text"].str.extract(_value_of(name), 1) if has_other else read
        columns.append((pl.coalesce(value, read) if has_text and has_other else value).alias(read.meta.output_name()))
    return frame.select(columns)


def _keys(pl, rows, known: dict[str, str]):
    """Each line's keys as written (``n``, ``key``) in order, with the first character of the value
    (``kind``), and the key each new one reads as (``\\u6807\\u7684`` as 标的); :class:`NotPlain` when a key
    breaks the key rule, comes twice in one line, or reads as a key written another way before."""
    keys = (rows.select("n", key=pl.col("text").str.extract_all(_KEY)).explode("key").drop_nulls("key")
            .select("n", kind=pl.col("key").str.slice(-1),
                    key=pl.col("key").str.strip_chars_start("{, \t\r").str.head(-1).str.strip_chars_end(": \t\r")
                    .str.slice(1).str.head(-1)))
    if not keys["key"].str.contains(_KEY_TEXT).all():
        raise NotPlain  # an escape other than a non-ASCII character's
    read_as = {key: json.loads(f'"{key}"') if "\\" in key else key  # per key
               for key in keys["key"].unique(maintain_order=True).to_list() if key not in known}
    taken = set(known.values())
    if len(set(read_as.values())) < len(read_as) or taken & set(read_as.values()):
        raise NotPlain  # one key written two ways (标的, \u6807\u7684): the line reader's column, or its error
    names = keys["key"].replace_strict({**known, **read_as}, return_dtype=pl.String)
    if not names.str.contains(_SAFE_KEY).all() or keys.select(pl.struct(pl.col("n"), names).is_duplicated().any()).item():
        raise NotPlain  # a key twice in one object: the line reader names the line
    return keys, read_as


def _literal(key: str) -> str:
    """``key`` as a pattern that matches it only (Rust's regex syntax)."""
    return "".join(ch if ch.isalnum() or ch == "_" else f"\\x{{{ord(ch):x}}}" for ch in key)


def _line_pattern(keys: list[str], kinds: dict[str, tuple[bool, bool]]) -> str:
    """The pattern of a line with some of ``keys``, in their order, each value of a kind seen for it before
    (text, a number or boolean, null). Commas are left to :data:`_LINE`."""
    values = {(False, False): "null", (True, False): f'(?:"{_CHARS}"|null)',
              (False, True): f"(?:{_NUMBER}|true|false|null)", (True, True): _VALUE}
    pairs = "".join(f'(?:{_WS},?{_WS}"{_literal(key)}"{_WS}:{_WS}{values[kinds[key]]})?' for key in keys)
    return rf"^{_WS}\{{{pairs}{_WS}\}}{_WS}$"


def _value_of(key: str) -> str:
    """The pattern of a number or boolean after ``key`` (a safe key: see the module docstring)."""
    return f'[{{,]{_WS}"{_literal(key)}"{_WS}:{_WS}({_NUMBER}|true|false)'
