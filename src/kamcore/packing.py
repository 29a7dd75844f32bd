"""Packed outputs: ``-o scored.csv.gz`` (or ``.bz2``, ``.xz``, ``.zip``) writes what ``scored.csv`` would hold,
compressed.

The writer chosen for the inner name (``scored.csv``: CSV) writes a plain temporary file as usual; it is
then compressed block by block on every core into consecutive gzip members (bzip2, xz streams). Each
block is a valid file of the format, and every tool that reads the format reads them in order (gzip -d,
zcat, Python's gzip, pandas, kam itself), so the result is one file whose content is the plain output.
A ``.zip`` (what Windows opens with a double click) holds the plain output as its one member
(``scored.csv``), deflated in one stream on one core.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

PACKED_SUFFIXES = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zip": "zip"}
BLOCK_BYTES = 16 << 20  # compressed on their own: big enough that the ratio does not suffer


def packing(path: Path | None) -> str | None:
    """``gzip``, ``bzip2``, ``xz`` or ``zip`` for an output named ``….gz``, ``….bz2``, ``….xz`` or ``….zip``,
    else None."""
    return PACKED_SUFFIXES.get(path.suffix.lower()) if path is not None else None


def unpacked(path: Path) -> Path:
    """The name whose suffix chooses the writer: ``scored.csv`` for ``scored.csv.gz``."""
    return path.with_suffix("") if packing(path) else path


def _compressor(name: str):
    import bz2
    import gzip
    import lzma

    if name == "gzip":
        return lambda block: gzip.compress(block, compresslevel=6, mtime=0)  # mtime 0: the same bytes every run
    return {"bzip2": bz2.compress, "xz": lzma.compress}[name]


def zip_member(target: Path, extensions: tuple[str, ...]) -> str:
    """The name of a zip output's one member: the zip's own name without ``.zip`` (``scored.csv`` for
    ``scored.csv.zip``), with the format's first extension added when that name lacks one of the format's
    (``report.csv`` for ``report.zip``), so the member opens with a double click too."""
    name = unpacked(target).name
    if extensions and Path(name).suffix.lower() not in extensions:
        name += extensions[0]
    return name


def pack(source: Path, target: Path, name: str, block: int = BLOCK_BYTES,
         on_block: Callable[[int, int], None] | None = None, member: str | None = None) -> None:
    """Compress ``source`` into ``target``, ``block`` bytes at a time on every core (the compressors release
    the interpreter lock), writing the blocks in order; ``on_block(bytes done, bytes in all)`` after each.
    ``member``: a zip's member name (default: the zip's own name without ``.zip``)."""
    from concurrent.futures import ThreadPoolExecutor

    if name == "zip":
        return _zip(source, target, block, on_block, member or unpacked(target).name)
    compress = _compressor(name)
    workers = os.cpu_count() or 1
    total, done = source.stat().st_size, 0
    with open(source, "rb") as src, open(target, "wb") as dst, ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        wrote = False
        while True:
            data = src.read(block)
            if data:
                pending.append((len(data), pool.submit(compress, data)))
            while pending and (len(pending) > workers or not data):  # at most a block per core waiting
                size, future = pending.popleft()
                dst.write(future.result())
                wrote, done = True, done + size
                if on_block is not None:
                    on_block(done, total)
            if not data:
                break
        if not wrote:  # an empty file still gets its format's header
            dst.write(compress(b""))


def _zip(source: Path, target: Path, block: int, on_block: Callable[[int, int], None] | None, member: str) -> None:
    """A zip of one member, the plain output under ``member`` (:func:`zip_member`), with a fixed date so that a
    run gives the same bytes every time."""
    import zipfile

    total, done = source.stat().st_size, 0
    entry = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
    entry.compress_type, entry.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
    with open(source, "rb") as src, zipfile.ZipFile(target, "w", allowZip64=True) as archive, \
            archive.open(entry, "w", force_zip64=total >= zipfile.ZIP64_LIMIT) as dst:
        while data := src.read(block):
            dst.write(data)
            done += len(data)
            if on_block is not None:
                on_block(done, total)
