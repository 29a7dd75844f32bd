"""``kam columns``: what each column of the scored file is called in Chinese and English, and what it holds.

The same guide the XLSX output carries as its 列说明 Columns sheet, for a CSV, JSON Lines or Parquet
output, or before a run: every column ``kam score`` writes for an export with every column of the schema
(with ``--stakeholders``, the coverage columns a stakeholder table adds), labelled by the core and by the
installed plugins, under the effective configuration (a model or the win block adds columns).
"""

from __future__ import annotations

from pathlib import Path

import click

from kamcore import hookimpl

FORMATS = ("text", "csv", "markdown")
HEADER = ("column", "label_zh", "label_en", "meaning")


def render(guide, fmt: str) -> str:
    """The guide as ``text`` (a block per column), ``csv`` (safe to open in Excel) or a ``markdown`` table."""
    if fmt == "csv":  # as kam's CSV writer writes text: what a spreadsheet would run, prefixed with '
        import polars as pl

        from kamcore.injection import neutralise_frame

        table = pl.DataFrame([(label.name, label.label_zh, label.label_en, label.meaning) for label in guide],
                             schema=list(HEADER), orient="row")
        return neutralise_frame(table).write_csv()
    if fmt == "markdown":
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        lines = ["| column | 中文 | English | meaning |", "|---|---|---|---|"]
        lines += [f"| `{cell(label.name)}` | {cell(label.label_zh)} | {cell(label.label_en)} | {cell(label.meaning)} |"
                  for label in guide]
        return "\n".join(lines) + "\n"
    blocks = []
    for label in guide:
        title = " / ".join(part for part in (label.label_zh, label.label_en) if part)
        blocks.append(f"{label.name}  {title}".rstrip() + (f"\n    {label.meaning}" if label.meaning else ""))
    return "\n".join(blocks) + "\n"


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                  help="kam.toml (default: ./kam.toml if present).")
    @click.option("--stakeholders", is_flag=True,
                  help="Include the coverage columns that kam score --stakeholders adds.")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
                  help="text: a block per column; csv: one row per column (UTF-8 with BOM, for Excel); "
                       "markdown: a table.")
    def columns(config_path, stakeholders, fmt):
        """Say what each column of the scored file is (中文 / English), as the XLSX output's 列说明 sheet does."""
        import sys

        from kamcore import column_guide

        text = render(column_guide(config=config_path, stakeholders=stakeholders), fmt)
        if fmt == "csv":
            sys.stdout.buffer.write(b"\xef\xbb\xbf" + text.encode("utf-8"))
            sys.stdout.flush()
        else:
            click.echo(text, nl=False)
