"""An example third-party kamcore plugin, registered only through its ``kamcore`` entry point.

- criterion 11 ``references`` (block "worth"): one point per reference named in ``notes``
  (a reference is written ``ref: <who>``), at most 3; unknown when ``notes`` is empty;
- ``qualify`` (Python, per batch): ``example_qualified``, true when the deal is at least ``[example].min_deal`` in the
  base currency;
- ``qualify_columns`` (expression): ``example_referenced``, true when ``notes`` names a reference;
- ``score`` (Python, per batch): ``reference_count``, the raw number of references;
- ``score_columns`` (expression): ``references_share``, the criterion's points as a share of its maximum;
- ``register_config_defaults``: the ``[example]`` section;
- ``register_column_labels``: 中文 / English names of its columns, for the workbook's 列说明 sheet and ``kam columns``
  (``example_qualified`` is left unlabelled on purpose: the guide then gives its name alone);
- ``register_commands``: ``kam example-refs`` prints the reference marker.
"""

import polars as pl

from kamcore import hookimpl
from kamcore.registry import ColumnLabel, Criterion

__version__ = "0.3.0"
MAX_REFERENCES = 3

DEFAULTS = """\
[example]                # kam-example-plugin
marker = "ref:"          # how a reference is written in notes
min_deal = 100000        # example_qualified: deal_size_base at least this
"""


def _marker(config) -> str:
    return str(config.section("example").get("marker", "ref:"))


def _references(config) -> pl.Expr:
    notes = pl.col("notes").cast(pl.String)
    return notes.str.count_matches(_marker(config), literal=True)


@hookimpl
def register_config_defaults(register):
    register("example", DEFAULTS)


@hookimpl
def register_column_labels(register, config):
    register(ColumnLabel("reference_count", "推荐人数", "References named",
                         f"备注中 {_marker(config)} 的次数 / times notes write {_marker(config)}"))
    register(ColumnLabel("references_share", "推荐得分率", "References share", "0–1"))
    register(ColumnLabel("example_referenced", "有推荐", "Referenced", "true / false"))


@hookimpl
def register_criteria(register, config):
    count = _references(config)
    points = pl.when(pl.col("notes").is_null()).then(None).otherwise(pl.min_horizontal(count, MAX_REFERENCES))
    register(Criterion(name="references", block="worth", number=11, points=points, max_points=MAX_REFERENCES,
                       label_zh="客户推荐", label_en="references", inputs=("notes",), standard_zh="有推荐人"))


@hookimpl
def qualify(batch, config):
    minimum = float(config.section("example").get("min_deal", 100000))
    return batch.select((pl.col("deal_size_base") >= minimum).fill_null(False).alias("example_qualified"))


@hookimpl
def qualify_columns(config, columns):
    if "notes" not in columns:
        return {"example_referenced": pl.lit(False)}
    return {"example_referenced": pl.col("notes").str.contains(_marker(config), literal=True).fill_null(False)}


@hookimpl
def score(batch, config):
    return batch.select(_references(config).fill_null(0).cast(pl.Int64).alias("reference_count"))


@hookimpl
def score_columns(config, criteria):
    mine = [k for k in criteria if k.name == "references"]
    if not mine:
        return None
    return {"references_share": (pl.col(mine[0].column) / mine[0].max_points).round(3)}


@hookimpl
def register_commands(cli):
    import click

    @cli.command("example-refs")
    def example_refs():
        """Print how kam-example-plugin recognises a reference in notes."""
        from kamcore.config import load_config
        from kamcore.plugins import get_kam

        click.echo(f"marker={_marker(load_config(None, get_kam().config_defaults()))}")
