"""``kam score --engine dask``: the local engine's query, run piece by piece on a dask.distributed cluster.

This process (the client) opens and checks every input with the importers and builds the query once,
so a bad file, a bad kam.toml or a column clash fails before any cluster is touched. It then cuts each
input into pieces on record boundaries (the importer's ``Source.split``; other inputs are read here
and their rows handed over) and sends them to the workers. A worker loads its own plugins through the
``kamcore`` entry points, under this process's ``KAM_*`` plugin switches, and refuses to work when
they differ from the ones loaded here. It numbers the piece's records from the piece's first record,
runs the same normalise/qualify/score query as the local engine and returns the scored rows, the
rejected rows, the counts and the warnings kamcore's loggers gave meanwhile (which the client logs once
each, as the local engine would have). With a writer whose pieces join (CSV, JSON Lines: ``Writer.joinable``)
the worker writes its scored rows with that writer and returns the file's bytes, which the client only
appends in input order; with any other writer it returns the rows as an Arrow-backed polars frame and
the client writes them. The rejects, counts and summary go through the same code as the local engine,
so every file is the one the local engine writes.

dask and distributed are imported only here, and only when the engine runs.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from pathlib import Path
from typing import Any

import polars as pl
from attrs import frozen

from . import __version__
from .config import Config
from .errors import EngineError, InputError, KamError, PluginError
from .pipeline import Prepared, number_records, run_query
from .repeats import IdSpill

DEFAULT_PIECE_BYTES = 32 << 20  # about 130,000 rows of a typical export: batches big enough for polars
_BORN = uuid.uuid4().hex  # with the pid (a forked worker shares this), tells this process from any other
log = logging.getLogger("kamcore.dask")


def this_process() -> str:
    return f"{_BORN}-{os.getpid()}"


@frozen
class Run:
    """What a worker needs to score any piece of one run; sent to each worker once."""

    token: str
    client: str  # the client's this_process(): a worker in it (a threaded cluster) sends no warnings back
    config: Config
    switches: dict[str, str]  # the client's KAM_* plugin switches
    plugins: dict[str, str | None]  # plugin name -> version, as loaded by the client
    labels: list[str]
    mappings: list[dict[str, str]]
    schema: dict[str, Any]  # every input's numbered columns, in the order the local engine has them
    units: dict[str, float]
    currencies: dict[str, str]
    made_up: frozenset[str]
    people: Any  # kamcore.pipeline.People | None
    personal: frozenset[str] = frozenset()  # personal columns left out of the scored rows
    quarantined: tuple = ()  # per input: record index -> (column, reason, preview) (Source.quarantined)
    scores_only: bool = False  # kam score --scores-only: the id and the score columns
    writer: str | None = None  # a joinable writer: the workers write their scored rows with it (bytes)
    trusted: frozenset[str] = frozenset()  # the writer's trusted text columns (Plan.trusted)
    guide: tuple = ()  # the column guide, for a writer that takes one (Prepared.guide)
    columns: dict[str, Any] | None = None  # the scored rows' schema on the client, which a worker's must match


@frozen
class Rows:
    """A piece of an input whose importer cannot split it: its rows, read by the client."""

    frame: pl.DataFrame
    shared: bool = True

    @property
    def records(self) -> int:
        return self.frame.height

    def read(self) -> pl.DataFrame:
        return self.frame

    def inline(self) -> Rows:
        return self


def pieces(source, size: int) -> list:
    """The source's pieces of about ``size`` bytes, in order."""
    if source.split is not None:
        return source.split(size)
    frame = source.frame.collect()
    step = max(1, int(frame.height * size / max(frame.estimated_size(), 1)))
    return [Rows(frame.slice(start, step)) for start in range(0, frame.height, step)] or [Rows(frame)]


# -- on a worker --------------------------------------------------------------------------------

_runs: dict[str, tuple] = {}  # run token -> (kam, plan, scoring): built once per run and worker process
_lock = threading.Lock()


def _prepared_for(run: Run):
    """This worker's plugins and plans for ``run``, checked against the client's plugins."""
    from .plugins import Kam

    with _lock:
        if run.token not in _runs:
            kam = Kam(env=run.switches)
            mine = {"kamcore": __version__, **kam.versions}
            if mine != run.plugins:
                raise PluginError(f"the plugins on Dask worker {_worker_name()} differ from this machine's: "
                                  f"{_difference(run.plugins, mine)}",
                                  hint="install the same kamcore and plugin packages on the workers "
                                       "(docs/dask.md), or disable the plugin with KAM_DISABLE_PLUGINS")
            empty = pl.LazyFrame(schema=run.schema)
            first = Prepared([empty], run.labels, run.config, kam, run.units, run.made_up, run.people, run.personal,
                             scores_only=run.scores_only, header_currencies=run.currencies)
            while len(_runs) >= 2:  # a worker outlives runs: keep the latest only
                _runs.pop(next(iter(_runs)))
            _runs[run.token] = (kam, first.plan, first.scoring)
        return _runs[run.token]


class _Warnings(logging.Handler):
    """The warnings logged under ``kamcore`` (the core, the built-in plugins, plugins that log there) on a
    worker while it scores a piece: a batch hook's warning would otherwise stay in the worker's log, or
    reach the terminal as a bare line from a local cluster's worker. Records of another piece scored at
    the same time on the same worker may land here too; the client shows each message once."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.name, record.levelno, record.getMessage()))


def score_piece(piece, src: int, first: int, run: Run) -> tuple[pl.DataFrame | bytes, pl.DataFrame, dict,
                                                                pl.DataFrame, list]:
    """Score one piece: (scored rows, rejected rows, counts, scored ids, warnings), numbered as in the whole
    input (the ids as :func:`kamcore.repeats.id_columns` gives them); the
    scored rows as the bytes ``run.writer`` writes for them when the run names a writer. A worker in the
    client's own process (a threaded cluster) logs where the client does: nothing to send back."""
    if run.client == this_process():
        return (*_score_piece(piece, src, first, run), [])
    logger, handler = logging.getLogger("kamcore"), _Warnings()
    logger.addHandler(handler)
    try:
        return (*_score_piece(piece, src, first, run), handler.messages)
    finally:
        logger.removeHandler(handler)


def _score_piece(piece, src: int, first: int, run: Run) -> tuple[pl.DataFrame | bytes, pl.DataFrame, dict,
                                                                 pl.DataFrame]:
    kam, plan, scoring = _prepared_for(run)
    try:
        raw = piece.read()
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{run.labels[src]}: cannot read the input: {str(exc).strip().splitlines()[0]}") from None
    if raw.height != piece.records:
        raise KamError(f"{run.labels[src]}: a piece from record {first} has {raw.height} records, "
                       f"expected {piece.records}")
    frame = number_records(raw.lazy(), src, run.labels[src], run.mappings[src], first,
                           run.quarantined[src] if run.quarantined else None)
    have = set(frame.collect_schema().names())
    frame = frame.select(pl.col(n) if n in have else pl.lit(None, dtype).alias(n) for n, dtype in run.schema.items())
    prepared = Prepared([frame], run.labels, run.config, kam, run.units, run.made_up, run.people, run.personal,
                        plan=plan, scoring=scoring, scores_only=run.scores_only, header_currencies=run.currencies)
    rows = prepared.scored()
    if run.columns is not None and list(rows.collect_schema().items()) != list(run.columns.items()):
        raise _other_columns()
    if run.writer is None:
        scored, rejected, counts, ids = run_query([rows, prepared.rejected(), prepared.counts(),
                                                   prepared.scored_ids()], None, scoring.errors)
        return scored, rejected, counts.row(0, named=True), ids
    writer = kam.writers()[run.writer]
    with tempfile.TemporaryDirectory(prefix="kam-piece-") as folder:
        path = Path(folder) / ("piece" + (writer.extensions[0] if writer.extensions else ""))
        _, rejected, counts, ids = run_query([writer.write(rows, path, run.trusted, run.guide), prepared.rejected(),
                                              prepared.counts(), prepared.scored_ids()], None, scoring.errors)
        return path.read_bytes(), rejected, counts.row(0, named=True), ids


def _other_columns() -> PluginError:
    return PluginError("the workers' plugins give other score columns than this machine's",
                       hint="install the same plugin versions on the workers (docs/dask.md)")


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "(unknown)"


def _difference(client: dict, worker: dict) -> str:
    parts = [f"{n} is not loaded on the worker" for n in sorted(set(client) - set(worker))]
    parts += [f"{n} is loaded on the worker only" for n in sorted(set(worker) - set(client))]
    parts += [f"{n} is {worker[n]} on the worker, {client[n]} here" for n in sorted(set(client) & set(worker))
              if client[n] != worker[n]]
    return "; ".join(parts)


# -- on the client ------------------------------------------------------------------------------


class DaskEngine:
    """Runs ``run_score``'s query on a Dask cluster: an existing one (``scheduler``), a ``LocalCluster``
    with ``workers`` processes, or one with Dask's defaults; ``client`` reuses a connected client."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 piece_bytes: int = DEFAULT_PIECE_BYTES, client=None):
        self.scheduler, self.workers, self.piece_bytes, self.client = scheduler, workers, piece_bytes, client
        self.info: dict[str, Any] = {"name": "dask"}

    def describe(self) -> dict:
        return dict(self.info)

    def stream(self, prepared: Prepared, sources, writer, tmp_out, on_progress,
               ids: IdSpill | None = None) -> tuple[dict, pl.DataFrame]:
        """Score every piece on the cluster and write the scored rows in order; (column sums, rejected rows).
        The pieces' scored ids go into ``ids``."""
        from .plugins import switches

        schema = prepared.scored().collect_schema()  # builds the plans here: clashes fail before the cluster
        kam = prepared.scoring.kam
        trusted = prepared.plan.trusted()
        guide = prepared.guide(schema.names()) if writer.takes("guide") else ()
        run = Run(token=uuid.uuid4().hex, client=this_process(), config=prepared.config, switches=switches(),
                  plugins={"kamcore": __version__, **kam.versions}, labels=prepared.labels,
                  mappings=prepared.mappings, schema=dict(prepared.schema), units=prepared.header_units,
                  currencies=prepared.header_currencies,
                  made_up=prepared.made_up, people=prepared.people, personal=prepared.personal,
                  quarantined=tuple(s.quarantined for s in sources), scores_only=prepared.scores_only,
                  writer=writer.name if writer.joinable else None, trusted=trusted,
                  guide=guide if writer.joinable else (),  # the workers write only a joinable writer's pieces
                  columns=dict(schema))
        work = [(src, piece) for src, source in enumerate(sources) for piece in pieces(source, self.piece_bytes)]
        sums: Counter = Counter()
        rejected: list[pl.DataFrame] = []
        shown: set = set()

        def scored():
            for frame, rejects, counts, scored_ids, warnings in results:
                rejected.append(rejects)
                sums.update(counts)
                if ids is not None:
                    ids.add(scored_ids)
                for warning in warnings:  # each once, as the local engine's one process logs them
                    if warning not in shown:
                        shown.add(warning)
                        name, level, message = warning
                        logging.getLogger(name).log(level, "%s", message)
                yield frame

        def progress(elapsed: float) -> None:  # with the rows of the pieces joined so far
            on_progress(elapsed, sum(v for k, v in sums.items() if k.startswith("rows_")), "scoring")

        with self._connect() as client:
            results = self._results(client, run, work)
            if writer.joinable:
                _join(scored(), writer, schema, tmp_out, trusted, progress if on_progress else None, guide)
            else:
                _write(scored(), writer, schema, tmp_out, trusted, progress if on_progress else None, guide)
        self.info["partitions"] = len(work)
        return dict(sums), pl.concat(rejected) if rejected else prepared.rejected().head(0).collect()

    def _results(self, client, run: Run, work: list):
        """The pieces' results in input order, with a few pieces in flight per worker thread."""
        from distributed import CancelledError, KilledWorker

        ahead = 2 * max(1, sum(client.nthreads().values())) + 1
        todo, flight = iter(work), deque()
        first = Counter()  # records before each piece, per input
        try:
            shared = client.scatter(run, broadcast=True, hash=False)

            def submit():
                item = next(todo, None)
                if item is not None:
                    src, piece = item
                    flight.append(client.submit(score_piece, piece if piece.shared else piece.inline(), src,
                                                first[src], shared, pure=False))
                    first[src] += piece.records

            for _ in range(ahead):
                submit()
            while flight:
                future = flight.popleft()
                result = future.result()
                future.release()
                submit()
                yield result
        except KamError:
            raise
        except KilledWorker as exc:
            raise EngineError(f"a Dask worker died while scoring: {exc}",
                              hint="check the workers' memory and logs; smaller pieces need less memory") from None
        except (CancelledError, OSError, TimeoutError) as exc:
            raise EngineError(f"lost the Dask cluster while scoring: {type(exc).__name__}: {exc}") from None

    @contextlib.contextmanager
    def _connect(self):
        """A client for the cluster to use; a cluster started here is closed on the way out."""
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise EngineError("--engine dask needs dask.distributed, which is not installed",
                              hint='pip install "kamcore[dask]"') from None
        if self.client is not None:
            self._note(self.client, self.client.scheduler.address)
            yield self.client
            return
        with contextlib.ExitStack() as stack:
            silence = stack.enter_context(_quiet_logs())
            try:
                if self.scheduler:
                    try:
                        client = stack.enter_context(Client(self.scheduler, set_as_default=False))
                    except (OSError, TimeoutError, ValueError, TypeError) as exc:
                        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        raise EngineError(f"cannot reach the Dask scheduler at {self.scheduler}: {reason}",
                                          hint="is `dask scheduler` running there? An address looks like "
                                               "tcp://host:8786") from None
                    self._note(client, self.scheduler)
                else:
                    with _signals_left_to_this_process():
                        cluster = stack.enter_context(LocalCluster(
                            n_workers=self.workers, threads_per_worker=1 if self.workers else None,
                            processes=True, dashboard_address=":0",  # any free port: no clash
                            silence_logs=_worker_log_level()))
                    client = stack.enter_context(Client(cluster, set_as_default=False))
                    self._note(client, "local")
                yield client
            except KeyboardInterrupt:  # the cluster is torn down mid-task
                silence()
                raise

    def _note(self, client, where: str) -> None:
        if not client.nthreads():
            raise EngineError(f"the Dask cluster at {where} has no workers", hint="start some with `dask worker`")
        self.info.update(cluster=where, workers=len(client.nthreads()),
                         threads=sum(client.nthreads().values()))


def _join(parts, writer, schema, path: Path, trusted, on_progress, guide=()) -> None:
    """Write the file of no rows (CSV: the BOM and the header), then append each piece's bytes without it."""
    start = time.perf_counter()
    run_query([writer.write(pl.LazyFrame(schema=schema), path, trusted, guide)], None, [])
    head = path.read_bytes()
    with open(path, "ab") as out:
        for data in parts:
            if not data.startswith(head):
                raise EngineError(f"a Dask worker's {writer.name} piece does not start as this machine's "
                                  "file of no rows does", hint="install the same kamcore and polars versions "
                                  "on the workers (docs/dask.md)")
            out.write(memoryview(data)[len(head):])
            if on_progress is not None:
                on_progress(time.perf_counter() - start)


def _write(frames, writer, schema, path: Path, trusted, on_progress, guide=()) -> None:
    """Write the pieces' rows here, through the writer's own lazy sink, as one stream."""
    from .importing import frame_stream

    def checked():
        for frame in frames:
            if frame.schema != schema:
                raise _other_columns()
            yield frame

    run_query([writer.write(frame_stream(checked, schema), path, trusted, guide)], on_progress, [])


def _worker_log_level() -> int:
    """A local cluster's workers log to this terminal: only ``kam --debug`` shows their logs (a failed task's
    traceback among them); errors reach the user as kam's one line."""
    return logging.DEBUG if logging.getLogger().isEnabledFor(logging.DEBUG) else logging.CRITICAL


@contextlib.contextmanager
def _signals_left_to_this_process():
    """Worker processes started in here leave Ctrl-C and SIGTERM to kam, which closes the cluster: a
    terminal sends Ctrl-C to every process in its foreground group, and a worker interrupted mid-task
    prints its traceback. The signals are blocked in this thread while the cluster starts; the threads it
    starts, and the worker processes they spawn, inherit the block. One that arrives meanwhile reaches
    kam when the block ends. Workers still end with kam: they watch the process that started them."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()  # started later, it would unblock both signals in the thread starting it
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@contextlib.contextmanager
def _quiet_logs():
    """Dask's INFO chatter (cluster start and stop) off stderr, unless ``kam --debug`` asked for logs.

    Yields ``silence``, for a cluster torn down mid-task (Ctrl-C): its scheduler then logs the tasks it
    drops as errors, asyncio the scheduler's handlers that failed because the client left ("Task
    exception was never retrieved"), and tornado the callback distributed's ``sync()`` schedules to cancel
    a call that Ctrl-C interrupted, which fails when the signal came too early ("Exception in callback
    ... NameError"). Those are collected before the levels come back, so they are not printed later, when
    the garbage collector happens to find them."""
    chatter = logging.getLogger("distributed")
    old = {chatter: chatter.level}
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    silenced = []

    def silence():
        if not debug:
            silenced.append(True)
            for logger in _loggers_of("distributed", "asyncio", "tornado"):
                old.setdefault(logger, logger.level)
                logger.setLevel(logging.CRITICAL)

    if not debug:
        chatter.setLevel(logging.ERROR)
    try:
        yield silence
    finally:
        if silenced:
            gc.collect()  # the dead tasks' exceptions sit in reference cycles with their frames
        for logger, level in old.items():
            logger.setLevel(level)


def _loggers_of(*families: str) -> list[logging.Logger]:
    """These loggers and every descendant of theirs that exists: distributed's configuration gives some of
    them levels of their own (tornado.application: error), which a level on the parent does not override."""
    found = {name: logging.getLogger(name) for name in families}
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.split(".")[0] in families:
            found[name] = logger
    return list(found.values())
