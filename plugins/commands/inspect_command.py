"""``kam inspect FILE``: what kam detects in an export, before a large run.

Shows the importer chosen (and how confident each one was), the encoding, the delimiter, the header
row, the CRM profile (given or detected), the notes the importer made (rows skipped, footers and totals left out, formulas without values),
how each header maps onto a canonical column and which headers are left over, which inputs of the
scorecard the file lacks, and a few sample rows. Personal stakeholder fields (birthday, phone, family
…) are masked in the sample. ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from kamcore import hookimpl
from kamcore.cli import DELIMITER, DELIMITER_HELP
from kamcore.headers import display_width

SAMPLE_CHARS = 60
MASK = "***"


def inspect_file(path: Path, *, config_path: Path | None = None, sheet: str | None = None,
                 encoding: str | None = None, delimiter: str | None = None, importer: str | None = None,
                 rows: int = 5, profile: str | None = None) -> dict:
    """Everything ``kam inspect`` shows, as a dict. ``-`` is standard input."""
    from kamcore.config import load_config
    from kamcore.errors import InputError
    from kamcore.headers import map_headers, personal_headers
    from kamcore.pipeline import STDIN, choose_importer
    from kamcore.plugins import get_kam
    from kamcore.profiles import apply_profile
    from kamcore.registry import ReadOptions
    from kamcore.schema import OPPORTUNITY_COLUMNS

    if path == STDIN:
        return _inspect_standard_input(config_path=config_path, sheet=sheet, encoding=encoding,
                                       delimiter=delimiter, importer=importer, rows=rows, profile=profile)
    kam = get_kam()
    config = load_config(config_path, kam.config_defaults())
    importers = kam.importers()
    chosen = choose_importer(path, importers, importer)
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    confidence = {imp.name: imp.sniff(head, path.suffix.lower()) for imp in importers}
    user_columns = config.section("columns")
    quiet = logging.getLogger("kamcore.importers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the importer's warnings are in the report's notes
    try:
        source = chosen.read(path, ReadOptions(encoding=encoding, delimiter=delimiter, sheet=sheet,
                                               columns=user_columns))
    finally:
        quiet.setLevel(level)
    try:
        import polars as pl

        try:
            headers = source.frame.collect_schema().names()
            sample = source.frame.head(rows).collect()
        except pl.exceptions.PolarsError as exc:
            raise InputError(f"{path}: cannot read: {str(exc).strip().splitlines()[0]}") from None
        profiles = logging.getLogger("kamcore.profiles")
        level = profiles.level
        profiles.setLevel(logging.ERROR)  # the detection note is in the report's notes
        try:
            config, detected = apply_profile(config, kam, profile, source.frame)
        finally:
            profiles.setLevel(level)
        mapping = map_headers(headers, OPPORTUNITY_COLUMNS, config.section("columns"), source=str(path))
        canonical = {c.name for c in OPPORTUNITY_COLUMNS}
        inputs = sorted({name for criterion in kam.criteria(config) for name in criterion.inputs if name in canonical})
        masked = personal_headers(headers, mapping)

        def show(header: str, value):
            if value is None:
                return None
            if header in masked:
                return MASK
            text = str(value)
            return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + "…"

        sample_rows = [{h: show(h, v) for h, v in zip(headers, row)}
                       for row in sample.rows()]
        return {
            "file": str(path),
            "importer": chosen.name,
            "confidence": dict(sorted(confidence.items(), key=lambda item: -item[1])),
            "encoding": source.encoding,
            "delimiter": source.delimiter,
            "header_line": source.header_line,
            "profile": config.profile,
            "profile_detected": bool(detected),
            "notes": list(source.notes) + detected,
            "columns": [{"header": h, "column": mapping[h] if mapping[h] in canonical else None,
                         "personal": h in masked, **_declared(h, mapping[h])} for h in headers],
            "unmapped": [h for h in headers if mapping[h] not in canonical],
            "missing_inputs": [name for name in inputs if name not in mapping.values()],
            "sample_rows": sample_rows,
        }
    finally:
        source.cleanup()


def _declared(header: str, name: str) -> dict:
    """``unit`` and ``currency`` an amount column's header declares (标的(万元): 10000, CNY), as the run reads them."""
    from kamcore.headers import header_unit
    from kamcore.schema import AMOUNT, OPPORTUNITY

    column = OPPORTUNITY.get(name)
    declared = header_unit(header) if column is not None and column.kind == AMOUNT else None
    if declared is None:
        return {}
    unit, currency = declared
    return {"unit": unit, **({"currency": currency} if currency else {})}


def _inspect_standard_input(**options) -> dict:
    """Standard input spooled to a temporary file (importers sniff and re-read), inspected, and named
    ``<stdin>`` in the report and in messages, as ``kam score -`` names it."""
    from kamcore.pipeline import STDIN, STDIN_NAME, named_stdin, spool_stdin

    with spool_stdin([STDIN]) as spooled, named_stdin(spooled) as named:
        report = inspect_file(spooled, **options)
    return {**report, "file": STDIN_NAME, "notes": [named(note) for note in report["notes"]]}


NO_HEADER_LINE = {"parquet": "the file's column names"}  # what names the columns of a file without a header line


def render(report: dict) -> str:
    """The report as text for a terminal."""
    delimiter = report["delimiter"]
    shown = {"\t": "tab", None: "-"}.get(delimiter, repr(delimiter))
    others = ", ".join(f"{name} {score}" for name, score in report["confidence"].items())
    header = "line" if report["delimiter"] is not None else "row"
    lines = [
        f"file        {report['file']}",
        f"importer    {report['importer']}  (sniffed: {others})",
        f"encoding    {report['encoding']}",
        f"delimiter   {shown}",
        f"header      {header} {report['header_line']}" if report["header_line"] else
        f"header      {NO_HEADER_LINE.get(report['importer'], 'keys of each record')}",
        f"profile     {report['profile'] or 'none'}"
        + (" (detected from the headers)" if report["profile_detected"] else ""),
    ]
    if report["notes"]:
        lines.append("notes")
        lines += [f"  - {note}" for note in report["notes"]]
    lines.append("columns     header -> canonical column")
    width = max((display_width(c["header"]) for c in report["columns"]), default=0)
    for column in report["columns"]:
        target = column["column"] or "(not mapped: kept as it is)"
        flag = "  [personal: masked]" if column["personal"] else ""
        if "unit" in column:
            flag += f"  (amounts in {column.get('currency', 'the currency given')}" + (
                f" × {column['unit']:,.0f})" if column["unit"] != 1 else ")")
        pad = " " * (width - display_width(column["header"]))
        lines.append(f"  {column['header']}{pad}  -> {target}{flag}")
    if report["unmapped"]:
        lines.append(f"unmapped    {', '.join(report['unmapped'])}")
        lines.append("            (map them under [columns] in kam.toml, e.g. \"Kundenname\" = \"account\")")
    if report["missing_inputs"]:
        lines.append(f"missing     the scorecard reads these and the file lacks them: {', '.join(report['missing_inputs'])}")
    lines.append(f"sample      first {len(report['sample_rows'])} row(s); personal fields masked")
    for number, row in enumerate(report["sample_rows"], start=1):
        cells = "; ".join(f"{k}={v}" for k, v in row.items() if v is not None)
        lines.append(f"  {number}: {cells}")
    return "\n".join(lines)


@hookimpl
def register_commands(cli):
    @cli.command("inspect")
    @click.argument("file", type=click.Path(path_type=Path, allow_dash=True))
    @click.option("--sheet", default=None, help="Worksheet of an .xlsx or .xls file, by name or 1-based number.")
    @click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                  help="kam.toml whose [columns] mapping to apply (default: $KAM_CONFIG, else ./kam.toml).")
    @click.option("--encoding", default=None, help="Input encoding, when detection is not enough.")
    @click.option("--delimiter", type=DELIMITER, default=None, help=DELIMITER_HELP)
    @click.option("--importer", default=None, help="Force an importer by name.")
    @click.option("--profile", default=None,
                  help="CRM profile: salesforce, hubspot, generic or a .toml file (default: detected).")
    @click.option("--rows", type=click.IntRange(0, 100), default=5, show_default=True, help="Sample rows to show.")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
    def inspect(file, sheet, config_path, encoding, delimiter, importer, profile, rows, as_json):
        """Show what kam detects in FILE: format, encoding, delimiter, header row, column mapping,
        unmapped headers and sample rows (personal fields masked). FILE - reads standard input."""
        report = inspect_file(file, config_path=config_path, sheet=sheet, encoding=encoding, delimiter=delimiter,
                              importer=importer, rows=rows, profile=profile)
        click.echo(json.dumps(report, ensure_ascii=False, indent=2) if as_json else render(report))
