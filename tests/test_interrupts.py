"""Interrupted and blocked runs: the previous output survives, no partial file is left behind.

``kam score`` runs as a real process on an export large enough to be stopped mid-stream; the test
waits until the hidden temporary output exists (the run is writing), then kills it.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import invoke, kam_env, read_summary  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("kam_env")
PREVIOUS = "opportunity_id,total_score\r\nOLD-1,50\r\n"


@pytest.fixture(scope="module")
def big_export(tmp_path_factory) -> Path:
    """About 400,000 rows (60 MB): several seconds of work, so a signal lands mid-run."""
    rows = helpers.table(helpers.sample_rows(200, seed=3))
    header, body = rows[0], rows[1:]
    block = helpers.csv_text(body)
    path = tmp_path_factory.mktemp("big") / "big.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(helpers.csv_text([header]))
        for _ in range(2000):
            handle.write(block)
    return path


def start_kam(export: Path, out: Path, *options: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAM_")}
    env["KAM_LOAD_PLUGINS"] = helpers.builtin_plugins()
    return subprocess.Popen(helpers.kam_command() + ["score", str(export), "-o", str(out), "-q", *options],
                            cwd=out.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # its own process group, as a job a terminal runs


def wait_until_writing(proc: subprocess.Popen, out: Path, timeout: float = 60) -> Path:
    """The hidden work folder of ``proc`` once the output streams into it (the run is streaming rows)."""
    temp = out.with_name(f".{out.name}.kam-tmp-{proc.pid}")
    deadline = time.monotonic() + timeout
    while not (temp / out.name).exists():
        assert proc.poll() is None, f"kam ended before it was stopped: {proc.communicate()}"
        assert time.monotonic() < deadline, "kam never started writing"
        time.sleep(0.005)
    return temp


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".kam-tmp-" in p.name)


def test_sigkill_mid_run_leaves_the_previous_output_intact(big_export, tmp_path):
    out = tmp_path / "scored.csv"
    out.write_text(PREVIOUS, encoding="utf-8", newline="")
    proc = start_kam(big_export, out)
    temp = wait_until_writing(proc, out)
    proc.kill()
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == PREVIOUS.encode()  # not replaced, not truncated
    assert not out.with_name(out.name + ".rejects.csv").exists()
    assert temp.name in leftovers(tmp_path)  # nothing can clean up after SIGKILL ...

    small = tmp_path / "small.csv"
    helpers.write_export(small, helpers.table(helpers.sample_rows(5)))
    result = invoke("score", small, "-o", out)  # ... so the next run into the same place does
    assert result.exit_code == 0, result.output
    assert leftovers(tmp_path) == []
    assert any("left beside the output by a run that was killed" in n for n in read_summary(out)["notes"])
    assert out.read_text(encoding="utf-8-sig").splitlines()[0].startswith("opportunity_id,")


def group_members(proc: subprocess.Popen, timeout: float = 30) -> list[str]:
    """The processes still in ``proc``'s process group once they have had ``timeout`` seconds to end."""
    deadline = time.monotonic() + timeout
    while True:
        left = subprocess.run(["ps", "-o", "pid=,args=", "-g", str(proc.pid)], capture_output=True, text=True)
        members = left.stdout.strip().splitlines()
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.1)


@pytest.mark.parametrize("engine", [pytest.param((), id="local"),
                                    pytest.param(("--engine", "dask", "--workers", "1"), id="dask")])
@pytest.mark.parametrize("how", ["sigterm", "sigint", "ctrl-c"])
def test_sigterm_or_ctrl_c_mid_run_exits_130_and_cleans_up(big_export, tmp_path, how, engine):
    """One line on stderr, the previous output untouched, no temporary file, no process left. ``ctrl-c`` is
    what a terminal does: SIGINT to every process of the foreground group, the structure check's child and
    the Dask workers included, which leave the signal to kam (a worker interrupted mid-task would print
    its traceback). With the Dask engine the cluster kam started is torn down with tasks still running
    (and its scheduler's logs about the tasks it drops are not shown)."""
    if engine:
        pytest.importorskip("distributed")
    out = tmp_path / "scored.csv"
    out.write_text(PREVIOUS, encoding="utf-8", newline="")
    proc = start_kam(big_export, out, *engine)
    try:
        wait_until_writing(proc, out)
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 130, stderr
        assert helpers.one_error_line(stderr.decode()) == "kam: interrupted; no output was replaced"
        assert out.read_bytes() == PREVIOUS.encode()
        assert leftovers(tmp_path) == []
        assert not out.with_name(out.name + ".rejects.csv").exists()
        assert group_members(proc) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_running_kams_temporary_file_is_not_removed(tmp_path):
    """Two runs into one folder: a temp file whose process is alive belongs to that run."""
    from kamcore.pipeline import remove_stale_temps

    target = tmp_path / "scored.csv"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = tmp_path / f".scored.csv.kam-tmp-{sleeper.pid}"
        alive.write_text("partial", encoding="utf-8")
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        gone = tmp_path / f".scored.csv.kam-tmp-{dead.stdout.strip()}"
        gone.write_text("partial", encoding="utf-8")
        other = tmp_path / f".other.csv.kam-tmp-{dead.stdout.strip()}"
        other.write_text("not ours", encoding="utf-8")
        assert remove_stale_temps([target]) == 1
        assert alive.exists() and not gone.exists() and other.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_killed_runs_work_folder_is_removed_by_the_next_run(tmp_path):
    """The scored rows stream into a hidden folder: a run killed mid-write leaves it with a file inside."""
    from kamcore.pipeline import remove_stale_temps

    target = tmp_path / "scored.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = tmp_path / f".scored.csv.kam-tmp-{dead.stdout.strip()}"
    folder.mkdir()
    (folder / "scored.csv").write_text("partial", encoding="utf-8")
    assert remove_stale_temps([target]) == 1
    assert leftovers(tmp_path) == []


def test_a_file_the_query_creates_again_does_not_outlive_the_cleanup(tmp_path):
    """polars opens its output twice: a file removed between the two opens (Ctrl-C) comes back. The cleanup
    removes the work folder itself, after which nothing can be created in it."""
    import threading

    from kamcore.pipeline import cleanup_on_signal

    folder = tmp_path / ".scored.csv.kam-tmp-1"
    folder.mkdir()
    writes, stop = [], threading.Event()

    def query():  # what an abandoned query does: (re)create its output, again and again
        while not stop.is_set():
            try:
                (folder / "scored.csv").write_bytes(b"rows")
                writes.append(1)
            except FileNotFoundError:  # the folder is gone
                return

    writer = threading.Thread(target=query, daemon=True)
    writer.start()
    while not writes:
        time.sleep(0.001)
    with cleanup_on_signal([folder]):
        pass
    writer.join(timeout=10)
    stop.set()
    assert not writer.is_alive() and not folder.exists()
    assert leftovers(tmp_path) == []


def test_an_output_held_open_by_another_program_is_a_clear_error(tmp_path, monkeypatch):
    """Excel on Windows locks an open workbook: replacing it fails with a sharing violation, which
    Python raises as PermissionError. The run stops with exit 6 and a hint, and leaves no temp file."""
    export = tmp_path / "export.csv"
    helpers.write_export(export, helpers.table(helpers.sample_rows(5)))
    out = tmp_path / "scored.xlsx"
    out.write_bytes(b"the workbook the user has open")
    real_replace = os.replace

    def locked(src, dst, *args, **kwargs):
        if Path(dst) == out:
            raise PermissionError(13, "The process cannot access the file because it is being used by another "
                                      "process", str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", locked)
    result = invoke("score", export, "-o", out)
    assert result.exit_code == 6
    line = helpers.one_error_line(result.stderr)
    assert line.startswith(f"kam: output error: cannot replace {out}: permission denied")
    assert "is the file open in another program (Excel locks open files)? Close it and rerun" in line
    assert out.read_bytes() == b"the workbook the user has open"
    assert leftovers(tmp_path) == []


def test_a_rejects_file_that_cannot_be_replaced_leaves_no_temp_file(tmp_path):
    """The rejects are written to a temporary file and renamed, as the output is: when the rename fails (here a
    folder has the rejects file's name), the run stops with exit 6, replaces nothing and leaves nothing."""
    export = tmp_path / "export.csv"
    helpers.write_export(export, helpers.table(helpers.sample_rows(5)))
    out = tmp_path / "scored.csv"
    out.write_text(PREVIOUS, encoding="utf-8", newline="")
    (tmp_path / "scored.csv.rejects.csv").mkdir()
    result = invoke("score", export, "-o", out)
    assert result.exit_code == 6, result.output
    assert helpers.one_error_line(result.stderr).startswith("kam: output error: cannot write ")
    assert out.read_bytes() == PREVIOUS.encode()
    assert leftovers(tmp_path) == []


def test_an_interrupted_query_is_known_to_be_still_running():
    """Ctrl-C stops the wait, not polars: the query's thread keeps calling the batch hooks, so ``kam`` must
    end with ``os._exit`` rather than finalise the interpreter under it (which aborts with SIGABRT). The
    signal lands while the main thread waits; on Python 3.11 a signal inside ``Thread.join`` marks the
    running thread as stopped, which is why the wait is on an event the query sets when it ends. A program
    embedding kam interrupts many runs: the queries that have ended are forgotten."""
    from kamcore import pipeline

    pipeline.ABANDONED_QUERIES.clear()
    try:
        for _ in range(3):
            release = _interrupt_a_running_query(pipeline)
            try:
                assert pipeline.query_left_running()
                assert len(pipeline.ABANDONED_QUERIES) == 1  # the ones released before have ended
            finally:
                release.set()
            deadline = time.monotonic() + 30
            while pipeline.query_left_running():
                assert time.monotonic() < deadline, "the released query never ended"
                time.sleep(0.01)
    finally:
        pipeline.ABANDONED_QUERIES.clear()


class _CtrlCWhileReading(io.RawIOBase):
    """Standard input that is interrupted as it is read (Ctrl-C while an export is piped in)."""

    def readable(self):
        return True

    def readinto(self, buffer):
        return self.read(len(buffer))

    def read(self, size=-1):
        if size == 0:  # click asks for nothing first, to see that the stream gives bytes
            return b""
        raise KeyboardInterrupt


def test_an_interrupt_leaves_logging_on_for_a_program_running_kam_in_its_own_process(kam_env):
    """``kam`` silences the logs of libraries tearing down after Ctrl-C until its process ends; a program that
    runs kam's command group in its own process gets exit 130 and its logging back as it was."""
    import logging

    try:
        result = invoke("score", "-", "-o", "out.csv", input=_CtrlCWhileReading())
        assert result.exit_code == 130, result.output
        assert "kam: interrupted; no output was replaced" in result.stderr
        assert logging.root.manager.disable == logging.NOTSET
        assert logging.getLogger("kamcore").isEnabledFor(logging.WARNING)
        assert not (kam_env / "out.csv").exists()
    finally:
        logging.disable(logging.NOTSET)


def _interrupt_a_running_query(pipeline):
    """Start a query whose batch step waits, SIGINT this process while it runs; the event releases it."""
    import threading

    import polars as pl

    started, release = threading.Event(), threading.Event()

    def slow(frame: pl.DataFrame) -> pl.DataFrame:
        started.set()
        release.wait(30)
        return frame

    query = pl.LazyFrame({"a": [1, 2, 3]}).map_batches(slow, schema={"a": pl.Int64})
    threading.Thread(target=lambda: (started.wait(30), os.kill(os.getpid(), signal.SIGINT)), daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_query([query], None, [])
    return release



SIGINT_HANDLER_PROBE = """
import ctypes, signal, sys

class Action(ctypes.Structure):  # struct sigaction, as glibc lays it out
    _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16), ("flags", ctypes.c_int),
                ("restorer", ctypes.c_void_p)]

def handler():
    action = Action()
    assert ctypes.CDLL(None).sigaction(signal.SIGINT, None, ctypes.byref(action)) == 0
    return action.handler

pythons = handler()
import polars
polars_in_front = handler() != pythons
from kamcore.cli import cli
cli.main(["score", sys.argv[1], "-o", sys.argv[2], "-q"], standalone_mode=False)
print(polars_in_front, handler() == pythons)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the handler with glibc's sigaction")
def test_ctrl_c_after_the_run_while_python_shuts_down_prints_no_traceback(tmp_path):
    """The run has ended (summary line printed, files replaced); a Ctrl-C during Python's exit handlers, here
    one that takes a second, would print a KeyboardInterrupt traceback: kam ignores it by then."""
    out = tmp_path / "out.csv"
    code = ("import atexit, sys, time; atexit.register(time.sleep, 1.5); from kamcore.cli import main; "
            f"sys.argv = ['kam', 'score', {str(Path(__file__).resolve().parent.parent / 'examples' / 'opportunities_en.csv')!r}, '-o', {str(out)!r}]; "
            "main()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAM_")}
    env["KAM_LOAD_PLUGINS"] = helpers.builtin_plugins()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    summary = proc.stderr.readline().decode()
    assert summary.startswith("kam: 25 rows"), summary
    time.sleep(0.3)  # in the exit handler by now
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 0, rest
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest
    assert read_summary(out)["rows"]["scored"] == 23


def test_ctrl_c_reaches_kam_alone_not_polars_too(tmp_path):
    """Imported, polars chains its own SIGINT handler in front of Python's and on Ctrl-C aborts a running
    query from inside its threads, racing kam's clean-up: its CSV sink then printed a panic after kam's line
    (about one interrupted run in 70). ``kam score`` puts Python's handler back in front."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAM_")}
    env["KAM_LOAD_PLUGINS"] = helpers.builtin_plugins()
    done = subprocess.run([sys.executable, "-c", SIGINT_HANDLER_PROBE, str(Path(__file__).parent.parent / "examples" / "opportunities_en.csv"),
                           str(tmp_path / "scored.csv")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    polars_in_front, pythons_after = done.stdout.split()
    assert pythons_after == "True", f"polars' handler was in front after import: {polars_in_front}"


def test_a_run_stopped_while_it_compresses_its_output_replaces_nothing(big_export, tmp_path):
    """A packed output is compressed after the stream, for seconds on a big export; the rejects file is
    replaced only after that, so a run stopped meanwhile leaves the last run's files as they were."""
    out = tmp_path / "scored.csv.gz"
    out.write_bytes(b"the last run's output")
    rejects = out.with_name(out.name + ".rejects.csv")
    rejects.write_text("the last run's rejects\n", encoding="utf-8")
    proc = start_kam(big_export, out)
    folder = wait_until_writing(proc, out)  # the compressed file is started once the plain one is complete
    assert (folder / f"{out.name}.plain").exists()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr.decode()
    assert stderr.decode().strip() == "kam: interrupted; no output was replaced"
    assert out.read_bytes() == b"the last run's output"
    assert rejects.read_text(encoding="utf-8") == "the last run's rejects\n"
    assert leftovers(tmp_path) == []


def test_a_run_stopped_while_it_inflates_a_packed_input_leaves_no_copy_behind(big_export, tmp_path):
    """SIGTERM while a gzip export is inflated into TMPDIR (before any output is started): the copy goes."""
    import gzip

    packed = tmp_path / "big.csv.gz"
    with open(big_export, "rb") as src, gzip.open(packed, "wb", compresslevel=1) as dst:
        for _ in range(3):  # about 180 MB of text: long enough to be caught inflating
            src.seek(0)
            dst.write(src.read())
    folder = tmp_path / "tmp"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAM_")}
    env.update(KAM_LOAD_PLUGINS=helpers.builtin_plugins(), TMPDIR=str(folder))
    proc = subprocess.Popen(helpers.kam_command() + ["score", str(packed), "-o", "out.csv", "-q"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(folder.glob("kam-inflated-*")):
        assert proc.poll() is None, f"kam ended before it was stopped: {proc.communicate()}"
        assert time.monotonic() < deadline, "kam never started inflating"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr.decode()
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv.gz", "tmp"]


@pytest.mark.parametrize("kind", ["xlsx", "jsonl"])
def test_progress_reports_the_rows_of_a_file_read_whole_before_scoring(tmp_path, monkeypatch, kind):
    """A workbook or a JSON Lines file is read whole before it is scored: the progress line says how far
    ("reading"), then scores ("scoring"). (Both are read 8 MiB at a time: 1 MiB of XML and 256 KiB of
    lines here, so that these take a few.)"""
    import json

    import openpyxl

    from kamcore_plugins.importers import jsonl_columns, xlsx_columns

    monkeypatch.setattr(xlsx_columns, "CHUNK", 1 << 20)
    monkeypatch.setattr(jsonl_columns, "CHUNK", 256 << 10)

    from kamcore.config import load_config
    from kamcore.pipeline import run_score
    from kamcore.plugins import Kam

    rows = 30_000
    if kind == "xlsx":
        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet("deals")
        sheet.append(["opportunity_id", "account", "stage", "deal_size"])
        for i in range(rows):
            sheet.append([f"X-{i}", f"Account {i % 50}", "intent", 1000.5 + i])
        workbook.save(tmp_path / "in.xlsx")
    else:
        (tmp_path / "in.jsonl").write_text("".join(json.dumps({"opportunity_id": f"X-{i}", "stage": "intent"}) + "\n"
                                                   for i in range(rows)), encoding="utf-8")
    kam = Kam()
    calls = []
    summary = run_score([tmp_path / f"in.{kind}"], tmp_path / "out.csv", kam=kam,
                        config=load_config(None, kam.config_defaults()),
                        on_progress=lambda elapsed, rows, doing: calls.append((elapsed, rows, doing)))
    assert summary["rows"]["scored"] == rows
    reading = [n for _, n, doing in calls if doing == "reading"]
    assert len(reading) >= 2 and reading == sorted(reading) and reading[-1] <= rows and reading[0] > 0
    assert [doing for _, _, doing in calls] == sorted((doing for _, _, doing in calls), key=["reading", "scoring"].index)
    assert [e for e, _, _ in calls] == sorted(e for e, _, _ in calls)


def test_progress_reports_the_rows_read_as_they_stream(big_export, tmp_path):
    """Every 0.2 s or so of a run of a few seconds: the rows read so far, rising to every row."""
    from kamcore.config import load_config
    from kamcore.pipeline import run_score
    from kamcore.plugins import Kam

    kam = Kam()
    calls = []
    summary = run_score([big_export], tmp_path / "out.csv", kam=kam, config=load_config(None, kam.config_defaults()),
                        on_progress=lambda elapsed, rows, doing: calls.append((elapsed, rows, doing)))
    rows = [r for _, r, _ in calls]
    assert len(calls) >= 3 and rows == sorted(rows) and [e for e, _, _ in calls] == sorted(e for e, _, _ in calls)
    assert 0 < rows[-2] and rows[-1] <= summary["rows"]["in"] == 400_000
    assert {doing for _, _, doing in calls} == {"scoring"}  # a plain output: nothing to compress
