"""What plugins register, as frozen records, and the registry that validates them.

Plugins build these records and hand them to the ``register`` callback of a registry hook. The core
checks each record's type and name, refuses duplicates with one clear error, and remembers which
plugin added what (``kam plugins`` shows it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import field, frozen, validators

from .errors import PluginError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
BLOCKS = ("real", "worth", "win")


def _check_name(instance, attribute, value):
    if not _NAME.match(value):
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must be snake_case ASCII, got {value!r}")


@frozen
class Source:
    """An opened input file: a lazy frame of its raw text columns plus what is needed to report on it.

    ``frame`` has one ``String`` column per input column, named as in the file (whitespace cleaned),
    one row per record. ``record_lines(indexes)`` maps 0-based record indexes to 1-based physical
    lines of the file; it is only called for rejected rows, so it may re-read the file.

    ``split(size)`` is optional, for engines that read the input on other machines (``--engine dask``):
    it cuts the records of ``frame`` into pieces of about ``size`` bytes, in order. Each piece is a
    picklable object with ``records`` (how many records it holds), ``shared`` (true when it reads the
    user's file, so a worker can open the same path; false when it reads a temporary file of this
    process) and ``read()`` (a ``polars.DataFrame`` of its records, exactly as ``frame`` has them),
    and ``inline()`` (the same piece with its bytes carried along). Without ``split`` the engine reads
    ``frame`` itself and hands the rows over.

    ``quarantined`` maps a record index to ``(column, reason, preview)`` for records the importer could
    only half read (a row with too many or too few fields): ``frame`` still has a row for each, and the
    core sends those rows to the rejects file instead of scoring them. The preview is already masked.

    ``verify()`` raises the importer's error when a check it runs beside the scan (``defer_checks``)
    found the file unreadable (or :class:`kamcore.errors.ReadAgain` when it found records to quarantine
    that the scan read as rows); callers run it before trusting what the frame gave, and after a read
    error.
    """

    path: Path
    frame: Any  # polars.LazyFrame
    record_lines: Callable[[list[int]], dict[int, int]]
    encoding: str = "utf-8"
    delimiter: str | None = None
    header_line: int = 1
    notes: tuple[str, ...] = ()
    cleanup: Callable[[], None] = lambda: None
    split: Callable[[int], list] | None = None
    quarantined: dict[int, tuple[str, str, str]] = field(factory=dict, eq=False)
    verify: Callable[[], None] = lambda: None


DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def named_delimiter(text: str | None) -> str | None:
    """A delimiter as a user writes it: one ASCII character, or ``tab`` (also ``\\t`` as a shell passes it),
    ``comma``, ``semicolon``, ``pipe``, ``space``. A ValueError says what else was given: polars splits on a
    single byte, and a quote or a line break cannot separate values."""
    if text is None:
        return None
    named = DELIMITER_NAMES.get(text.lower(), text) if len(text) > 1 else text
    if len(named) != 1 or not named.isascii() or named in "\"\r\n\0":
        hint = " (a full-width character: write it as its ASCII form)" if len(named) == 1 and not named.isascii() else ""
        raise ValueError(f"{text!r} is not a delimiter: give one ASCII character other than a quote or a line break, "
                         f"or tab, comma, semicolon, pipe, space{hint}")
    return named


@frozen
class ReadOptions:
    """What the user said about reading inputs (more options arrive with new importers).

    ``sheet``: the worksheet of a workbook to read (its name, or its 1-based position), ``None`` for the
    first sheet whose header names canonical columns. ``columns``: the user's ``[columns]`` table from
    kam.toml (header = canonical column), so an importer can recognise the header row of an export whose
    headers only the user's mapping knows.
    """

    encoding: str | None = None
    delimiter: str | None = field(default=None, converter=named_delimiter)  # "tab", ";" … (named_delimiter)
    sheet: str | None = None
    columns: dict[str, str] | None = field(default=None, eq=False)
    # an importer may run a whole-file check beside the scan instead of before it, reporting through
    # Source.verify(): the CSV structure check then costs no wall time of its own
    defer_checks: bool = False
    # ... and, with check_apart, in a child process, where it does not wait for the interpreter lock that the
    # batch steps hold; the kam command allows it (a program embedding kamcore may not be able to start one)
    check_apart: bool = False
    # an importer that reads a file whole before it is scored (a workbook, JSON Lines) calls this now and then
    # with the rows read so far: kam shows them on its progress line ("reading")
    on_rows: Callable[[int], None] | None = field(default=None, eq=False)


@frozen
class Importer:
    """Reads one kind of file into a :class:`Source`.

    ``sniff(head, suffix)`` gets the first 64 KiB of the file and its lower-case suffix and returns a
    confidence from 0 (not mine) to 100 (certainly mine); the content decides, the suffix only breaks ties.
    """

    name: str = field(validator=_check_name)
    read: Callable[[Path, ReadOptions], Source]
    sniff: Callable[[bytes, str], int]
    description: str = ""


@frozen
class Writer:
    """Writes the scored rows in one format.

    ``sink(frame, path)`` returns a *lazy* sink (``frame.sink_csv(path, lazy=True)`` and the like), so
    the core can run it together with the rejects in one streaming pass. ``joinable`` says that files of
    consecutive pieces of rows, each written by ``sink``, join into the file of all the rows by dropping
    from each the bytes written for no rows (CSV's header, nothing for JSON Lines): the Dask engine then
    has the workers write their pieces and only joins them.
    """

    name: str = field(validator=_check_name)
    extensions: tuple[str, ...]
    sink: Callable[[Any, Path], Any]
    description: str = ""
    joinable: bool = False

    def takes(self, parameter: str) -> bool:
        """Whether ``sink`` has a keyword ``parameter`` (``trusted``, ``guide``): sinks written before it was
        offered take the two arguments every sink takes."""
        import inspect

        try:
            return parameter in inspect.signature(self.sink).parameters
        except (TypeError, ValueError):  # a callable without a signature
            return False

    def write(self, frame, path: Path, trusted: frozenset[str] = frozenset(), guide: tuple = ()):
        """The lazy sink of ``frame``. A sink with a ``trusted`` parameter is also told the text columns that
        hold only kam's own codes (no formula can be in them, so a CSV sink need not check them); one with a
        ``guide`` parameter gets the column guide, a :class:`ColumnLabel` per column of ``frame``, in order
        (the XLSX writer writes it as a second sheet)."""
        extra = {name: value for name, value in (("trusted", trusted), ("guide", guide)) if self.takes(name)}
        return self.sink(frame, path, **extra)


@frozen
class Criterion:
    """One scorecard item: a polars expression giving its points, ``null`` when its input is unknown."""

    name: str = field(validator=_check_name)
    block: str = field(validator=validators.in_(BLOCKS))
    points: Any  # polars.Expr
    max_points: float = field(validator=validators.gt(0))
    label_zh: str
    label_en: str
    number: int | None = None
    weight: float = field(default=1.0, validator=validators.ge(0))
    inputs: tuple[str, ...] = ()
    standard_zh: str = ""

    @property
    def column(self) -> str:
        """The output column holding this criterion's points, e.g. ``p4_budget``."""
        return f"p{self.number}_{self.name}" if self.number is not None else f"p_{self.name}"


@frozen
class ColumnLabel:
    """What an output column is called in Chinese and in English, and what it holds, for the people who read
    the scored file: the workbook's column guide (列说明) and ``kam columns`` show it.

    ``meaning`` is one short line, in both languages where a reader needs both (``高 high · 中 medium``).
    """

    name: str = field(validator=validators.min_len(1))
    label_zh: str
    label_en: str
    meaning: str = ""


@frozen
class WinModel:
    """A named way to build an unfitted scikit-learn classifier for ``kam train``."""

    name: str = field(validator=_check_name)
    build: Callable[..., Any]
    description: str = ""


@frozen
class Profile:
    """One CRM's export conventions, as configuration: a kam.toml-shaped ``config`` (``[columns]``,
    ``[values.<column>]``, ``[dates]``, ``[currency]``) merged *under* the user's kam.toml.

    ``detect`` lists headers that identify the CRM's exports; a file with at least ``min_matches`` of
    them (compared as headers are, docs/schema.md) selects the profile when ``--profile`` is not given.
    """

    name: str = field(validator=_check_name)
    label: str
    config: dict = field(eq=False)
    detect: tuple[str, ...] = ()
    min_matches: int = 3
    description: str = ""


class Registry:
    """Collects one kind of record from plugins, refusing duplicates and remembering the owner."""

    def __init__(self, kind: type, key: Callable[[Any], str] = lambda item: item.name):
        self.kind = kind
        self.key = key
        self.items: dict[str, Any] = {}
        self.owners: dict[str, str] = {}

    def register_from(self, plugin: str) -> Callable[[Any], None]:
        """The ``register`` callback handed to one plugin's hook implementation."""

        def register(item):
            if not isinstance(item, self.kind):
                raise PluginError(f"plugin {plugin!r} registered {item!r}, expected a {self.kind.__name__}")
            name = self.key(item)
            if name in self.items:
                raise PluginError(
                    f"{self.kind.__name__} {name!r} is registered twice: by plugin {self.owners[name]!r} "
                    f"and by plugin {plugin!r}",
                    hint=f"disable one of them with KAM_DISABLE_PLUGINS={plugin}",
                )
            self.items[name] = item
            self.owners[name] = plugin

        return register

    def __iter__(self):
        return iter(self.items.values())

    def __len__(self):
        return len(self.items)

    def __getitem__(self, name):
        return self.items[name]

    def __contains__(self, name):
        return name in self.items
