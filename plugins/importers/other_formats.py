"""Files kam recognises but does not read: it says what they are and how to get a table out of them.

Exports arrive under misleading names: a CRM's "Excel export" is often an HTML table saved as
``.xls``, a legacy ``.xls`` is an OLE2 compound file, a password-protected ``.xlsx`` is OLE2 too, and
an API dump may be one JSON array instead of JSON Lines. The content decides (the file name does not):
this importer claims such files with high confidence, and its ``read`` refuses them with one clear
message and a hint (exit 4, nothing written), rather than letting the CSV reader mis-parse them.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from kamcore import hookimpl
from kamcore.errors import InputError
from kamcore.registry import Importer, ReadOptions, Source

SAVE_AS = "open it in Excel and save it as .xlsx or as CSV UTF-8, or export CSV from the system it came from"
_HTML_STARTS = ("<!doctype html", "<html", "<table", "<head", "<body", "<meta", "<style", "<!--")


def _text(head: bytes) -> str:
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):].decode(encoding, errors="replace")
    return head.decode("utf-8", errors="replace")


def identify(head: bytes) -> tuple[str, str] | None:
    """(what the file is, what to do) for a format kam refuses; None for anything else."""
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return ("a legacy Excel 97-2003 workbook (.xls), or a password-protected workbook (both are OLE2 files)",
                "save it as .xlsx or CSV UTF-8 in Excel (remove the password first)")
    if head.startswith(b"%PDF"):
        return "a PDF document", "export the report as CSV or .xlsx instead"
    for magic, what in ((b"\x28\xb5\x2f\xfd", "Zstandard-compressed"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
                        (b"Rar!\x1a\x07", "a RAR archive")):
        if head.startswith(magic):
            return (what if what.startswith("a ") else f"{what} data",
                    "unpack it first; kam reads CSV and JSON Lines packed with gzip, bzip2, xz or zip itself")
    if head.startswith(b"PK\x03\x04"):
        if b"opendocument.spreadsheet" in head[:200]:
            return "an OpenDocument spreadsheet (.ods)", "save it as .xlsx or CSV UTF-8"
        if b"word/" in head:
            return "a Word document", "kam reads tables: export the data as CSV or .xlsx"
        if b"ppt/" in head:
            return "a PowerPoint presentation", "kam reads tables: export the data as CSV or .xlsx"
        return None
    text = _text(head[:8192]).lstrip().lower()
    if text.startswith("mime-version:"):
        return "a web archive (MHTML), as some systems save an \"Excel\" export", SAVE_AS
    if text.startswith("<?xml"):
        if "urn:schemas-microsoft-com:office:spreadsheet" in text:
            return "an Excel 2003 XML spreadsheet", SAVE_AS
        if "<html" not in text:
            return "an XML document", "kam reads CSV, .xlsx and JSON Lines: export one of those"
    if text.startswith(_HTML_STARTS) or (text.startswith("<") and ("<table" in text or "<html" in text)):
        return "an HTML page (a web report saved with a spreadsheet's name, as many CRMs do)", SAVE_AS
    if text.startswith("["):
        return "a JSON array, not JSON Lines", "convert it: jq -c '.[]' FILE > FILE.jsonl"
    return None


def read(path: Path, options: ReadOptions) -> Source:
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    found = identify(head)
    what, hint = found if found else ("a format kam does not read", "kam reads CSV, .xlsx and JSON Lines")
    named = f" (its name says {path.suffix})" if path.suffix else ""
    raise InputError(f"{path}: this file is {what}{named}, not a table kam can read", hint=hint)


def sniff(head: bytes, suffix: str) -> int:
    return 97 if identify(head) else 0


@hookimpl
def register_importers(register):
    register(Importer(name="other_formats", read=read, sniff=sniff,
                      description="recognises HTML, legacy .xls, PDF, ODS, JSON arrays, 7z/RAR/zstd … and refuses them "
                                  "with a hint"))
