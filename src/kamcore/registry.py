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
    ``verify()`` raises the importer's error when a check it runs beside the scan (``defer_checks``)
    found the file unreadable; callers run it before trusting what the frame gave, and after a read error.
    """

    path: Path
    frame: Any  # polars.LazyFrame
    record_lines: Callable[[list[int]], dict[int, int]]
    encoding: str = "utf-8"
    delimiter: str | None = None
    header_line: int = 1
    notes: tuple[str, ...] = ()
    cleanup: Callable[[], None] = lambda: None
    verify: Callable[[], None] = lambda: None


@frozen
class ReadOptions:
    """What the user said about reading inputs (more options arrive with new importers).

    ``sheet``: the worksheet of a workbook to read (its name, or its 1-based position), ``None`` for the
    first sheet whose header names canonical columns. ``columns``: the user's ``[columns]`` table from
    kam.toml (header = canonical column), so an importer can recognise the header row of an export whose
    headers only the user's mapping knows.
    """

    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    columns: dict[str, str] | None = field(default=None, eq=False)
    # an importer may run a whole-file check beside the scan instead of before it, reporting through
    # Source.verify(): the CSV structure check then costs no wall time of its own
    defer_checks: bool = False


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
    the core can run it together with the rejects in one streaming pass.
    """

    name: str = field(validator=_check_name)
    extensions: tuple[str, ...]
    sink: Callable[[Any, Path], Any]
    description: str = ""


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
class WinModel:
    """A named way to build an unfitted scikit-learn classifier for ``kam train``."""

    name: str = field(validator=_check_name)
    build: Callable[..., Any]
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
