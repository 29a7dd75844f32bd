"""The ``kam`` command: one click group. Heavy libraries are imported inside commands, so
``kam --help`` and ``kam --version`` start fast. Errors become one line on stderr and a documented
exit code (``kam exit-codes``); ``--debug`` shows the traceback instead."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click


class Delimiter(click.ParamType):
    """``--delimiter``: one character, or tab, comma, semicolon, pipe, space (kamcore.registry.named_delimiter);
    anything else is a usage error. Plugin commands use it too."""

    name = "delimiter"

    def convert(self, value, param, ctx):
        from .registry import named_delimiter

        try:
            return named_delimiter(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DELIMITER = Delimiter()
DELIMITER_HELP = "Input delimiter, when sniffing is not enough: one character, or tab, comma, semicolon, pipe."


class KamGroup(click.Group):
    """Adds plugin commands, and turns kamcore errors into one clear line and an exit code."""

    owns_process = False  # run by ``kam`` (main), not by a program calling the group in its own process

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        if name not in self.commands:
            self._load_plugin_commands()
        return super().get_command(ctx, name)

    def _load_plugin_commands(self):
        if getattr(self, "_plugins_loaded", False):
            return
        self._plugins_loaded = True
        from .errors import KamError
        from .plugins import get_kam

        try:
            get_kam().add_commands(self)
        except KamError as exc:
            click.echo(f"kam: warning: plugin commands unavailable: {exc}", err=True)

    def invoke(self, ctx):
        from .errors import KamError

        debug = "--debug" in sys.argv[1:] or bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except KamError as exc:
            if debug:
                raise
            click.echo(f"kam: {exc.kind}: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            if not debug and self.owns_process:  # libraries still tearing down (a Dask cluster) would log
                logging.disable(logging.CRITICAL)  # what they drop, up to the process's end
            click.echo("kam: interrupted; no output was replaced", err=True)
            pipeline = sys.modules.get("kamcore.pipeline")
            if pipeline is not None and pipeline.query_left_running():  # the temporary files are gone already
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(OSError, ValueError):
                        stream.flush()
                os._exit(130)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: say so plainly, traceback only with --debug
            if debug:
                raise
            click.echo(f"kam: internal error: {type(exc).__name__}: {exc} (rerun with --debug and report it)",
                       err=True)
            ctx.exit(1)


@click.group(cls=KamGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=lambda ctx, _, value:
              _print_version(ctx) if value else None, help="Show the version and exit.")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
def cli(debug):
    """kam: score key-account opportunities (是不是虚的? 值得赢吗?).

    \b
    Quick start:
      kam score export.csv -o scored.csv
      kam init            # write a commented kam.toml with the defaults
      kam plugins --all   # what is installed
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="kam: %(levelname)s: %(message)s")


def _print_version(ctx) -> None:
    """``kam --version`` without loading plugins or the data libraries."""
    from . import __version__

    click.echo(f"kam, version {__version__}")
    ctx.exit()


def _progress(path: Path):
    """A one-line progress display on stderr, only when stderr is a terminal: the rows read so far, and
    the bytes of the temporary file that becomes ``path`` when the run is complete."""
    if not sys.stderr.isatty():
        return None
    from .pipeline import stream_path

    spinner = "|/-\\"
    state = {"n": 0}
    working = stream_path(path)

    def show(elapsed: float, rows: int, doing: str):
        state["n"] += 1
        try:
            size = working.stat().st_size / 1e6
        except OSError:  # not created yet, or compressed and gone
            size = state.get("size", 0.0)
        state["size"] = size
        sys.stderr.write(f"\rkam: {doing} {spinner[state['n'] % 4]} {elapsed:6.1f} s, {rows:>11,} rows read, "
                         f"{size:8.1f} MB written ")
        sys.stderr.flush()
        state["shown"] = True

    def clear(record=None) -> bool:
        """Wipe the line; also a logging filter, so that a warning during the run starts on a clean line."""
        if state.pop("shown", False):
            sys.stderr.write("\r" + " " * 90 + "\r")
        return True

    show.clear = clear
    return show


@contextlib.contextmanager
def _progress_shown(show):
    """While ``show`` (a :func:`_progress` display, or None) is in use: log records wipe it first; at the
    end it is wiped."""
    handlers = logging.getLogger().handlers if show is not None else []
    for handler in handlers:
        handler.addFilter(show.clear)
    try:
        yield show
    finally:
        for handler in handlers:
            handler.removeFilter(show.clear)
        if show is not None:
            show.clear()


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path, allow_dash=True))
@click.option("-o", "--output", type=str, default=None,
              help="Output file (scored.csv.gz, .bz2, .xz, .zip: compressed), or - for stdout (rejects and "
                   "summary then go to ./kam-score.rejects.csv and ./kam-score.summary.json). Default: <first "
                   "input>.scored.csv beside it.")
@click.option("--format", "fmt", default=None,
              help="Output format: csv, xlsx, jsonl, parquet (default: from -o's suffix).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="kam.toml to use (default: $KAM_CONFIG, else ./kam.toml if present).")
@click.option("--encoding", default=None, help="Input encoding, when detection is not enough (e.g. big5).")
@click.option("--delimiter", type=DELIMITER, default=None, help=DELIMITER_HELP)
@click.option("--importer", default=None, help="Force an importer by name (default: chosen by content).")
@click.option("--sheet", default=None,
              help="Worksheet of an .xlsx or .xls input, by name or 1-based number (default: the first sheet whose "
                   "header kam recognises).")
@click.option("--profile", default=None,
              help="CRM the export comes from: salesforce, hubspot, generic, or a profile .toml file "
                   "(default: detected from the headers; generic turns detection off).")
@click.option("--max-rejects", type=click.IntRange(min=0), default=None,
              help="Fail (exit 5, no output written) when more rows than this are rejected.")
@click.option("--stakeholders", "people", multiple=True, type=click.Path(path_type=Path, allow_dash=True),
              help="The people on the deals (关键人物信息表 / 角色表), keyed by opportunity_id; adds coverage and "
                   "red-flag columns. Repeatable; - reads standard input. May be the input workbook itself (see "
                   "--stakeholder-sheet).")
@click.option("--stakeholder-sheet", default=None,
              help="Worksheet of the stakeholder workbook (default: the second sheet when --stakeholders names an "
                   "input workbook, else the first sheet kam recognises).")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="A win model from `kam train`: win_probability becomes its blend with the scorecard "
                   "(sets [model] path; docs/win_model.md).")
@click.option("--allow-version-mismatch", is_flag=True,
              help="Load a model trained with another scikit-learn version.")
@click.option("--include-pii", is_flag=True,
              help="Keep columns holding a person's data (联系人电话, birthday, family …) in the output; "
                   "left out by default.")
@click.option("--scores-only", is_flag=True,
              help="Write opportunity_id and the score columns only (criterion points, block scores, total_score, "
                   "unknown_criteria, band, quadrant, win_probability), for joining back into a CRM; no input "
                   "columns, no reasons or other text. Rejects and summary as usual.")
@click.option("--quiet", "-q", is_flag=True, help="No summary line on stderr.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where to score: in this process, or on a Dask cluster with identical output (docs/dask.md; "
                   "needs pip install \"kamcore[dask]\").")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="With --engine dask: the scheduler of an existing cluster (tcp://host:8786). Default: start "
                   "a local cluster.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="With --engine dask: worker processes of the local cluster (default: Dask's choice).")
@click.option("--partition-size", default=None, metavar="SIZE",
              help="With --engine dask: input bytes per piece sent to a worker, e.g. 64MB (default: 32MiB).")
def score(inputs, output, fmt, config_path, encoding, delimiter, importer, sheet, profile, max_rejects, people,
          stakeholder_sheet, model_path, allow_version_mismatch, include_pii, scores_only, quiet, engine, scheduler, workers,
          partition_size):
    """Score opportunity exports (CSV, XLSX, JSON Lines, Parquet …, packed or not; - reads standard input)
    with the scorecard and plugins.

    Every row ends up in the output or in <output>.rejects.csv (file, line, column, header, reason);
    a JSON run summary is written to <output>.summary.json.
    """
    from .config import load_config
    from .pipeline import run_score, stakeholder_options
    from .plugins import get_kam
    from .registry import ReadOptions

    _ctrl_c_to_kam_alone()
    runner = _engine(engine, scheduler, workers, partition_size)
    kam = get_kam()
    model = {"path": str(model_path)} if model_path else {}
    if allow_version_mismatch:
        model["allow_version_mismatch"] = True
    config = load_config(config_path, kam.config_defaults(), overrides={"model": model} if model else None)
    if [str(i) for i in (*inputs, *people)].count("-") > 1:
        raise click.UsageError("standard input (-) can be read once per run")
    if output == "-":
        target = None
    elif output:
        target = Path(output)
    elif str(inputs[0]) == "-":
        raise click.UsageError("reading standard input (-) needs -o: a file, or - for standard output")
    else:
        from .packing import unpacked

        first = inputs[0]
        target = first.with_name(unpacked(first).stem + ".scored." + (fmt or "csv"))  # q3.csv.gz -> q3.scored.csv
    with _progress_shown(_progress(target) if target else None) as progress:
        summary = run_score(list(inputs), target, kam=kam, config=config, fmt=fmt,
                            options=ReadOptions(encoding=encoding, delimiter=delimiter, sheet=sheet, check_apart=True,
                                                columns=config.section("columns")), importer=importer,
                            max_rejects=max_rejects, on_progress=progress,
                            stdout=sys.stdout.buffer, stakeholders=list(people) or None, profile=profile,
                            include_pii=include_pii,
                            stakeholder_options=stakeholder_options(config, _stakeholder_sheet(inputs, people,
                                                                                               stakeholder_sheet)),
                            engine=runner, scores_only=scores_only)
    if not quiet:
        rows = summary["rows"]
        where = f" -> {summary['output']}" if target else ""
        click.echo(f"kam: {rows['in']} rows: {rows['scored']} scored, {rows['rejected']} rejected{where} "
                   f"({summary['timings_s']['total']:.1f} s); rejects: {summary['rejects_file']}", err=True)


def _ctrl_c_to_kam_alone() -> None:
    """Put Python's Ctrl-C handler back in front of polars' own. Imported, polars chains its handler before
    Python's, and on Ctrl-C aborts a running query from inside its threads, racing kam's clean-up (its CSV
    sink could print a panic after kam's line). kam stops the run itself: the query's thread is left to
    end with the process."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _engine(name: str, scheduler: str | None, workers: int | None, partition_size: str | None):
    """None for the local engine, else a DaskEngine (dask itself is imported only when it runs)."""
    given = [flag for flag, value in (("--scheduler", scheduler), ("--workers", workers),
                                      ("--partition-size", partition_size)) if value is not None]
    if name != "dask":
        if given:
            raise click.UsageError(f"{given[0]} needs --engine dask")
        return None
    if scheduler is not None and workers is not None:
        raise click.UsageError("--workers starts a local cluster; it cannot be combined with --scheduler")
    from .dask_engine import DEFAULT_PIECE_BYTES, DaskEngine

    size = DEFAULT_PIECE_BYTES if partition_size is None else _bytes(partition_size)
    return DaskEngine(scheduler=scheduler, workers=workers, piece_bytes=size)


def _bytes(text: str) -> int:
    """``32MB``, ``512kB``, ``1GiB`` or a number of bytes."""
    import re

    units = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
    found = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    if not found or found.group(2) not in units or float(found.group(1)) * units[found.group(2)] < 1:
        raise click.BadParameter(f"{text!r} is not a size such as 32MB", param_hint="--partition-size")
    return int(float(found.group(1)) * units[found.group(2)])


def _stakeholder_sheet(inputs, people, sheet: str | None) -> str | None:
    """The stakeholder sheet: as given, else the second sheet when the people are in an input workbook."""
    if sheet is not None:
        return sheet
    same = {p.resolve() for p in inputs} & {p.resolve() for p in people}
    return "2" if any(p.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods") for p in same) else None


@cli.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("kam.toml"), show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(output, force):
    """Write a commented kam.toml with every default, ready to edit."""
    from .config import default_config_text
    from .errors import ConfigError
    from .plugins import get_kam

    if output.exists() and not force:
        raise ConfigError(f"{output} already exists", hint="use --force to overwrite it")
    output.write_text(default_config_text(get_kam().config_defaults()), encoding="utf-8")
    click.echo(f"kam: wrote {output}", err=True)


@cli.command()
@click.option("--all", "include_all", is_flag=True, help="Include the built-in plugins.")
@click.option("--hook", default=None, help="Only plugins implementing this hook.")
def plugins(include_all, hook):
    """List installed plugins as JSON: name, version, hooks."""
    from .plugins import get_kam

    click.echo(json.dumps(get_kam().describe(include_all=include_all, hook=hook), indent=2, ensure_ascii=False))


@cli.command("exit-codes")
def exit_codes():
    """List the exit codes kam uses."""
    from .errors import EXIT_CODES

    for code, meaning in sorted(EXIT_CODES.items()):
        click.echo(f"{code:>3}  {meaning}")


def main():
    # the streaming engine runs one batch per core already: a BLAS thread pool per process only spins
    # (numpy starts one on import, for the CSV check; a model's predictions do not need it). A user's
    # own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    cli.owns_process = True
    try:
        cli(prog_name="kam")
    finally:  # the command is over, its files written or not: a Ctrl-C while Python shuts down (its exit
        # handlers, a library's threads) has nothing left to stop and would only print a traceback
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
