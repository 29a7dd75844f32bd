"""``kam score --engine dask`` writes exactly what the local engine writes, on a real cluster of worker processes.

One LocalCluster (2 worker processes, 1 thread each) serves the whole module. Inputs are cut into small
pieces so that every run spreads over both workers and over many pieces; each test scores the same
inputs with the local engine and the Dask engine and compares the files byte for byte, and the run
summaries key by key (all but paths, timings and the engine's own description).

The plugin tests "install" a small plugin package (a module and its ``*.dist-info`` with a ``kamcore``
entry point) by putting its folder on ``sys.path`` of the workers and/or of this process: workers find it
through the entry points exactly as an installed package.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import kam_env, run_kam, one_error_line  # noqa: E402,F401

distributed = pytest.importorskip("distributed")

from kamcore.config import load_config  # noqa: E402
from kamcore.dask_engine import DaskEngine, _join, _quiet_logs, pieces  # noqa: E402
from kamcore.errors import DataError, EngineError, PluginError  # noqa: E402
from kamcore.pipeline import open_sources, run_score  # noqa: E402
from kamcore.plugins import Kam  # noqa: E402
from kamcore.registry import ReadOptions  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
ROOT = Path(__file__).parent.parent
EXAMPLES, CORPUS = ROOT / "examples", Path(__file__).parent / "corpus"
MODEL = ROOT / "models" / "bohanec.joblib"
VOLATILE = {"started_at", "output", "rejects_file", "summary_file", "timings_s", "engine"}


@pytest.fixture(scope="module")
def cluster():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def score_both(tmp_path: Path, inputs: list[Path], client, piece_bytes: int = 64, differ: tuple[str, ...] = (),
               output: str = "scored.csv", config: Path | None = None, overrides: dict | None = None,
               **options) -> tuple[dict, dict]:
    """Score ``inputs`` with both engines; assert identical files and summaries; (local, dask) summaries.

    ``differ``: output columns expected to differ (then the rest of the scored file is compared as a table).
    ``output``: the scored file's name (its suffix chooses the writer). ``config``, ``overrides``: a kam.toml
    and settings over it."""
    kam = Kam()
    config = load_config(config, kam.config_defaults(), overrides=overrides)
    outputs = {}
    for name in ("local", "dask"):
        folder = tmp_path / name
        folder.mkdir()
        engine = DaskEngine(client=client, piece_bytes=piece_bytes) if name == "dask" else None
        outputs[name] = folder / output
        run_score(inputs, outputs[name], kam=kam, config=config, engine=engine, **options)
    local, dask = outputs["local"], outputs["dask"]
    if output.endswith((".xlsx", ".parquet")):  # containers with their own metadata: compared as tables
        read = pl.read_parquet if output.endswith(".parquet") else sheet_values
        assert read(dask).equals(read(local)) and read(local).height > 0
    elif differ:
        assert helpers.read_csv(dask).drop(differ).equals(helpers.read_csv(local).drop(differ))
    else:
        assert dask.read_bytes() == local.read_bytes()
    for side in (".rejects.csv",):
        assert dask.with_name(dask.name + side).read_bytes() == local.with_name(local.name + side).read_bytes()
    summaries = [helpers.read_summary(out) for out in (local, dask)]
    assert {k: v for k, v in summaries[1].items() if k not in VOLATILE} == \
           {k: v for k, v in summaries[0].items() if k not in VOLATILE}
    assert summaries[0]["engine"] == {"name": "local"}
    assert summaries[1]["engine"]["name"] == "dask" and summaries[1]["engine"]["workers"] == 2
    return summaries[0], summaries[1]


def sheet_values(path: Path) -> pl.DataFrame:
    """Every cell of every sheet of the workbook (the scored rows, the column guide), as openpyxl reads it."""
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True)
    assert workbook.sheetnames == ["scored", "列说明 Columns"]
    rows = [[sheet.title, *row] for sheet in workbook.worksheets for row in sheet.values]
    width = max(len(row) for row in rows)
    return pl.DataFrame([[repr(v) for v in row] + [""] * (width - len(row)) for row in rows], orient="row")


# -- identical output -------------------------------------------------------------------------------


def test_scores_only_is_the_same_on_both_engines(tmp_path, cluster):
    local, _ = score_both(tmp_path, [EXAMPLES / "opportunities_en.csv"], cluster, scores_only=True)
    header = (tmp_path / "dask" / "scored.csv").read_text("utf-8-sig").splitlines()[0].split(",")
    assert header[0] == "opportunity_id" and "reasons" not in header and "total_score" in header
    assert local["rows"]["rejected"] == 2


def test_personal_columns_are_left_out_on_the_workers_too(tmp_path, cluster):
    export = tmp_path / "export.csv"
    export.write_text("编号,标的,联系人电话,项目的预算\r\nP-1,120万,13912345678,有\r\nP-2,一百万,13912345678,无\r\n"
                      "P-3,30万,13800000000,部分\r\n", encoding="utf-8")
    local, _ = score_both(tmp_path, [export], cluster)
    assert "联系人电话" not in (tmp_path / "dask" / "scored.csv").read_text("utf-8-sig")
    assert local["rows"] == {"in": 3, "scored": 2, "rejected": 1}


@pytest.mark.parametrize("name", [
    "examples/opportunities_en.csv", "examples/opportunities_zh.csv",  # zh: GB18030, transcoded: pieces sent inline
    "corpus/blank_lines.csv", "corpus/embedded_newlines.csv", "corpus/preamble.csv", "corpus/salesforce_report.csv",
    "corpus/totals_row.csv", "corpus/utf16_tab.txt", "corpus/trailing_delimiter.csv", "corpus/all_quoted_crlf.csv",
    "corpus/mixed_values.csv", "corpus/utf8_bom_semicolon.csv", "corpus/header_only.csv",
    "corpus/api_export.jsonl", "corpus/xlsx_values.xlsx",  # no Source.split: rows read here, handed over
    "corpus/hubspot_deals.csv", "corpus/flagged_values.csv",  # a detected CRM profile; flagged values
    "corpus/excel_text.csv",  # Excel's ="000101", unwrapped on the workers too
    "corpus/unit_in_header.csv",  # 标的（万元）: the header's unit and currency, on the workers too
    "corpus/ragged_short.csv", "corpus/ragged_long.csv",  # quarantined records
])
def test_same_output_as_the_local_engine(tmp_path, cluster, name):
    path = (EXAMPLES if name.startswith("examples/") else CORPUS) / name.split("/", 1)[1]
    local, dask = score_both(tmp_path, [path], cluster)
    if local["rows"]["in"] > 1:  # one record per piece: the run really was spread out
        assert dask["engine"]["partitions"] > 1


@pytest.mark.parametrize("output", ["scored.jsonl", "scored.parquet", "scored.xlsx", "scored.csv.gz", "scored.csv.zip"])
def test_every_output_format_is_the_same_on_both_engines(tmp_path, cluster, output):
    """JSON Lines pieces are written on the workers and joined (as CSV's are); Parquet and XLSX rows
    come back to this process, which writes them; a packed output is compressed here once it is whole."""
    local, dask = score_both(tmp_path, [EXAMPLES / "opportunities_en.csv"], cluster, output=output)
    assert local["rows"]["rejected"] == 2 and dask["engine"]["partitions"] > 1


def test_a_piece_that_does_not_start_as_the_file_of_no_rows_is_refused(tmp_path):
    """Pieces are joined by dropping the header each worker wrote: a piece without it (another polars on the
    worker writing another header, say) stops the run instead of writing a file with a header in the middle."""
    writer = Kam().writers()["csv"]
    schema = pl.Schema({"opportunity_id": pl.String, "total_score": pl.Float64})
    good = "\ufeffopportunity_id,total_score\nP-1,50.0\n".encode()
    with pytest.raises(EngineError, match="does not start as"):
        _join(iter([good, b"opportunity_id;total_score\nP-2;60.0\n"]), writer, schema, tmp_path / "out.csv",
              frozenset(), None)
    _join(iter([good, good.replace(b"P-1", b"P-2")]), writer, schema, tmp_path / "out.csv", frozenset(), None)
    assert (tmp_path / "out.csv").read_bytes() == "\ufeffopportunity_id,total_score\nP-1,50.0\nP-2,50.0\n".encode()


def test_examples_with_rejects_and_stakeholders_and_two_inputs(tmp_path, cluster):
    """Two inputs in one run (their columns united as the local engine unites them), people joined on."""
    local, _ = score_both(tmp_path, [EXAMPLES / "opportunities_en.csv", EXAMPLES / "opportunities_zh.csv"], cluster,
                          piece_bytes=700, stakeholders=[EXAMPLES / "stakeholders_en.csv"])
    assert local["rows"]["rejected"] > 0 and local["stakeholders"]["people"] > 0
    assert len(local["inputs"]) == 2


def test_repeated_ids_are_found_across_pieces_and_inputs(tmp_path, cluster):
    """The workers send the scored rows' ids back with each piece: the same repeats as the local engine."""
    copy = tmp_path / "copy.csv"
    copy.write_bytes((EXAMPLES / "opportunities_en.csv").read_bytes())
    local, dask = score_both(tmp_path, [EXAMPLES / "opportunities_en.csv", copy], cluster, piece_bytes=700)
    assert local["repeated_ids"]["ids"] == local["rows"]["scored"] // 2 == 23 and dask["engine"]["partitions"] > 4


def test_a_win_model_is_loaded_and_used_on_the_workers(tmp_path, cluster):
    """The shipped model on the data it was trained from: each worker verifies and loads it from the path."""
    local, _ = score_both(tmp_path, [EXAMPLES / "bohanec" / "Salvirt_B2B_ML_dataset.csv"], cluster, piece_bytes=8000,
                          config=EXAMPLES / "bohanec" / "kam.toml", overrides={"model": {"path": str(MODEL)}})
    assert local["win_probability_from"] == "win_model" and local["rows"]["scored"] == 448
    scored = helpers.read_csv(tmp_path / "dask" / "scored.csv")
    assert scored["model_probability"].null_count() == 0 and scored["model_probability"].n_unique() > 10


def test_a_compressed_input_is_inflated_on_the_client_and_sent_in_pieces(tmp_path, cluster):
    """The workers cannot read a gzip file by byte ranges: they get the pieces' bytes of the inflated copy."""
    import gzip

    source = tmp_path / "export.csv.gz"
    source.write_bytes(gzip.compress((EXAMPLES / "opportunities_zh.csv").read_bytes()))
    local, dask = score_both(tmp_path, [source], cluster, piece_bytes=700)
    assert local["rows"]["rejected"] > 0 and dask["engine"]["partitions"] > 2


def generated_export(path: Path, n: int = 3000) -> tuple[Path, int]:
    """A few thousand rows with rejects, blank lines and multi-line quoted notes; (path, byte offset of a
    line break inside a quoted note, a tenth into the file)."""
    rows = helpers.sample_rows(n, seed=11)
    for i in range(0, n, 97):
        rows[i]["deal_size"] = "about a million"  # rejected: not an amount
    for i in range(5, n, 211):
        rows[i]["purchase_date"] = "next spring"  # rejected: not a date
    lines = helpers.csv_text(helpers.table(rows, helpers.ZH)).split("\r\n")
    for i in range(40, len(lines), 500):
        lines[i] = lines[i] + "\r\n"  # a blank line after the record: skipped and counted, never rejected
    data = "\r\n".join(lines).encode("utf-8")
    path.write_bytes(data)
    inside = data.index("第二次".encode(), len(data) // 10) - 1  # the line break before 第二次, inside quotes
    assert data[inside:inside + 1] == b"\n" and data[inside - 1:inside] != b"\r"
    return path, inside


def test_progress_counts_the_rows_of_the_pieces_scored(tmp_path, cluster):
    """The progress callback gets the rows of the pieces joined so far: rising to every row read."""
    source, _ = generated_export(tmp_path / "export.csv", n=2000)
    kam = Kam()
    calls = []
    summary = run_score([source], tmp_path / "out.csv", kam=kam, config=load_config(None, kam.config_defaults()),
                        engine=DaskEngine(client=cluster, piece_bytes=20_000),
                        on_progress=lambda elapsed, rows, doing: calls.append(rows) if doing == "scoring" else None)
    assert len(calls) == summary["engine"]["partitions"] > 5  # one call per piece joined
    assert calls == sorted(calls) and calls[0] > 0
    assert calls[-1] == summary["rows"]["in"] + summary["blank_lines_skipped"] == 2000 + summary["blank_lines_skipped"]


def test_generated_export_cut_inside_a_quoted_value(tmp_path, cluster):
    """The pieces' nominal boundary falls inside a multi-line quoted note: the cut moves to the record's end,
    and rows, scores, rejects (physical lines), blank lines and counts are unchanged."""
    path, inside = generated_export(tmp_path / "export.csv")
    source = open_sources([path], Kam(), ReadOptions())[0][0]
    data_start = len(path.read_bytes().split(b"\r\n", 1)[0]) + 2
    size = inside - data_start  # the first piece would end inside the quoted note
    cuts = [p.end for p in pieces(source, size)]
    assert inside < cuts[0] < inside + 400  # it ends after that record instead
    assert sum(p.records for p in pieces(source, size)) == source.frame.collect().height
    local, dask = score_both(tmp_path, [path], cluster, piece_bytes=size)
    assert dask["engine"]["partitions"] >= 4
    assert local["rows"]["rejected"] > 40 and local["blank_lines_skipped"] >= 6
    rejects = helpers.read_rejects(tmp_path / "dask" / "scored.csv")
    assert rejects.filter(pl.col("reason").str.contains("amount")).height >= 30
    physical = path.read_bytes().split(b"\n")  # each reject's line holds its record's first values
    for line, oid in rejects.select("line", "opportunity_id").rows()[:50]:
        assert physical[line - 1].startswith(oid.encode())


def test_made_up_ids_continue_across_pieces(tmp_path, cluster):
    """An export without ids gets <file>-<record number>: a piece numbers from its first record."""
    rows = helpers.sample_rows(300, seed=3)
    for row in rows:
        del row["opportunity_id"]
    path = helpers.write_export(tmp_path / "noids.csv", helpers.table(rows))
    score_both(tmp_path, [path], cluster, piece_bytes=2000)
    ids = helpers.read_csv(tmp_path / "dask" / "scored.csv")["opportunity_id"].to_list()
    assert ids == [f"noids-{i}" for i in range(1, 301)]


def test_max_rejects_fails_the_same_way(tmp_path, cluster):
    path, _ = generated_export(tmp_path / "export.csv", n=400)
    kam = Kam()
    config = load_config(None, kam.config_defaults())
    errors = []
    for name, engine in (("local", None), ("dask", DaskEngine(client=cluster, piece_bytes=4096))):
        out = tmp_path / f"{name}.csv"
        with pytest.raises(DataError) as caught:
            run_score([path], out, kam=kam, config=config, max_rejects=1, engine=engine)
        assert not out.exists() and not list(tmp_path.glob(f".{name}.csv*"))
        errors.append(str(caught.value))
    assert errors[0] == errors[1]


# -- plugins on the workers -------------------------------------------------------------------------

PROBE = '''
import os
import polars as pl
from kamcore import hookimpl


@hookimpl
def score(batch, config):
    """The process that scored each row, and a column value the plugin computes."""
    if batch.height and os.environ.get("PROBE_FAIL"):
        raise RuntimeError("probe failed on purpose")
    return pl.DataFrame({"probe_pid": [os.getpid()] * batch.height,
                         "probe_len": batch.get_column("opportunity_id").str.len_chars().cast(pl.Int64)},
                        schema={"probe_pid": pl.Int64, "probe_len": pl.Int64})
'''


@pytest.fixture(scope="module")
def probe_package(tmp_path_factory) -> Path:
    """A plugin package as pip lays it out: the module and its dist-info with the ``kamcore`` entry point."""
    root = tmp_path_factory.mktemp("probe-site")
    (root / "kam_probe").mkdir()
    (root / "kam_probe" / "__init__.py").write_text(PROBE, encoding="utf-8")
    info = root / "kam_probe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kam-probe\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[kamcore]\nprobe = kam_probe\n", encoding="utf-8")
    return root


@pytest.fixture
def installed(cluster, probe_package, monkeypatch):
    """Install the probe plugin on the workers, here, or both; allow it with KAM_LOAD_PLUGINS."""
    monkeypatch.setenv("KAM_LOAD_PLUGINS", helpers.builtin_plugins() + ",probe")
    where = set()

    def install(*places: str):
        if "workers" in places:  # exec: a builtin, so the statement runs there (sys.path.insert would pickle a copy)
            cluster.run(exec, f"import sys; sys.path.insert(0, {str(probe_package)!r})")
        if "client" in places:
            monkeypatch.syspath_prepend(str(probe_package))
        where.update(places)

    yield install
    if "workers" in where:
        cluster.run(exec, f"import sys; sys.path.remove({str(probe_package)!r})")


def test_a_plugin_installed_on_the_workers_runs_there(tmp_path, cluster, installed):
    installed("workers", "client")
    score_both(tmp_path, [EXAMPLES / "opportunities_en.csv"], cluster, piece_bytes=512, differ=("probe_pid",))
    local = helpers.read_csv(tmp_path / "local" / "scored.csv")
    dask = helpers.read_csv(tmp_path / "dask" / "scored.csv")
    # score_both compared the files without probe_pid, which must differ: the worker processes scored the rows
    workers = set(cluster.run(os.getpid).values())
    assert set(local["probe_pid"].cast(pl.Int64)) == {os.getpid()}
    assert set(dask["probe_pid"].cast(pl.Int64)) == workers  # both workers scored, with their own copy


def test_client_switches_apply_on_the_workers(tmp_path, cluster, installed, monkeypatch):
    """KAM_DISABLE_PLUGINS here disables the plugin on the workers too (they would load it otherwise)."""
    installed("workers", "client")
    monkeypatch.setenv("KAM_DISABLE_PLUGINS", "probe")
    score_both(tmp_path, [EXAMPLES / "opportunities_en.csv"], cluster, piece_bytes=512)
    assert "probe_pid" not in helpers.read_csv(tmp_path / "dask" / "scored.csv").columns


@pytest.mark.parametrize("place, says", [("client", "probe is not loaded on the worker"),
                                         ("workers", "probe is loaded on the worker only")])
def test_plugins_that_differ_between_client_and_workers_are_refused(tmp_path, cluster, installed, place, says):
    installed(place)
    kam = Kam()
    out = tmp_path / "scored.csv"
    with pytest.raises(PluginError, match=says) as caught:
        run_score([EXAMPLES / "opportunities_en.csv"], out, kam=kam, config=load_config(None, kam.config_defaults()),
                  engine=DaskEngine(client=cluster, piece_bytes=512))
    assert "docs/dask.md" in str(caught.value) and not out.exists()


# -- the command line -----------------------------------------------------------------------------


def test_cli_on_an_existing_cluster_writes_the_local_engines_files(tmp_path, cluster):
    source = tmp_path / "export.csv"
    generated_export(source, n=500)
    local = run_kam("score", source, "-o", "local.csv", "-q", cwd=tmp_path)
    dask = run_kam("score", source, "-o", "dask.csv", "-q", "--engine", "dask", "--scheduler",
                   cluster.scheduler.address, "--partition-size", "20kB", cwd=tmp_path)
    assert local.returncode == 0 and dask.returncode == 0, dask.stderr.decode()
    assert dask.stderr == b""
    for suffix in ("", ".rejects.csv"):
        assert (tmp_path / f"dask.csv{suffix}").read_bytes() == (tmp_path / f"local.csv{suffix}").read_bytes()
    summary = json.loads((tmp_path / "dask.csv.summary.json").read_text(encoding="utf-8"))
    assert summary["engine"]["cluster"] == cluster.scheduler.address and summary["engine"]["partitions"] > 2


def test_cli_warnings_from_the_workers_are_shown_once_as_the_local_engine_shows_them(tmp_path, cluster):
    """A batch hook's warning is logged on a worker (here: the model misses columns of this export, said on
    each worker's first batch); kam shows it once, on its own stderr, and nothing else."""
    common = ("--model", MODEL, "-q")
    local = run_kam("score", EXAMPLES / "opportunities_en.csv", "-o", "local.csv", *common, cwd=tmp_path)
    dask = run_kam("score", EXAMPLES / "opportunities_en.csv", "-o", "dask.csv", *common, "--engine", "dask",
                   "--scheduler", cluster.scheduler.address, "--partition-size", "1kB", cwd=tmp_path)
    assert local.returncode == 0 and dask.returncode == 0, dask.stderr.decode()
    lines = dask.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kam: WARNING: the model bohanec.joblib uses columns this export "
                                                   "lacks (treated as missing): Product, ")
    assert dask.stderr == local.stderr
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    summary = json.loads((tmp_path / "dask.csv.summary.json").read_text(encoding="utf-8"))
    assert summary["engine"]["partitions"] > 2  # pieces on both workers: each warned once
    local_summary = json.loads((tmp_path / "local.csv.summary.json").read_text(encoding="utf-8"))
    assert summary["reports"] == local_summary["reports"] and summary["notes"] == local_summary["notes"]
    assert "Product" in summary["reports"]["win_model"]["features_missing"]  # the client says it too


def test_a_threaded_cluster_in_this_process_does_not_send_its_warnings_back_twice(tmp_path, caplog):
    """Workers in the client's own process log where the client logs: the warning is there once."""
    kam = Kam()
    config = load_config(None, kam.config_defaults(), overrides={"model": {"path": str(MODEL)}})
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as threaded, \
            distributed.Client(threaded, set_as_default=False) as client, caplog.at_level(logging.WARNING):
        run_score([EXAMPLES / "opportunities_en.csv"], tmp_path / "out.csv", kam=kam, config=config,
                  engine=DaskEngine(client=client, piece_bytes=1000))
    said = [r for r in caplog.records if r.name == "kamcore.models"]
    assert len(said) == 1 and "uses columns this export lacks" in said[0].getMessage()


def test_cli_standard_input_on_an_existing_cluster(tmp_path, cluster):
    """`kam score -` on a cluster: the pieces of the spooled input travel with their bytes."""
    export = EXAMPLES / "opportunities_zh.csv"
    local = run_kam("score", export, "-o", "local.csv", "-q", cwd=tmp_path)
    dask = run_kam("score", "-", "-o", "dask.csv", "-q", "--engine", "dask", "--scheduler", cluster.scheduler.address,
                   "--partition-size", "1kB", cwd=tmp_path, stdin=export.read_bytes())
    assert local.returncode == 0 and dask.returncode == 0, dask.stderr.decode()
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert helpers.read_summary(tmp_path / "dask.csv")["engine"]["partitions"] > 2


def test_cli_unreachable_scheduler_is_one_line_and_exit_8(tmp_path):
    done = run_kam("score", EXAMPLES / "opportunities_en.csv", "-o", "out.csv", "--engine", "dask", "--scheduler",
                   "tcp://127.0.0.1:9", cwd=tmp_path, env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    assert done.returncode == 8
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in one_error_line(done.stderr.decode())
    assert not (tmp_path / "out.csv").exists()


def test_cli_without_dask_installed_says_how_to_install_it(tmp_path):
    """Run kam in a process where importing distributed fails, as it does when the extra is not installed."""
    code = "import sys; sys.modules['distributed'] = None; from kamcore.cli import main; main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAM_")}
    env["KAM_LOAD_PLUGINS"] = helpers.builtin_plugins()
    done = subprocess.run([sys.executable, "-c", code, "score", str(EXAMPLES / "opportunities_en.csv"), "-o", "o.csv",
                           "--engine", "dask"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 8
    assert 'pip install "kamcore[dask]"' in one_error_line(done.stderr)


def test_cli_does_not_import_dask_for_help_or_the_local_engine(tmp_path):
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('IMPORTED' if {'dask', 'distributed'} & set(sys.modules) else 'NOT',"
            " file=sys.stderr))\n"
            "from kamcore.cli import main; main()\n")
    for args in (["--help"], ["score", str(EXAMPLES / "opportunities_en.csv"), "-o", "o.csv", "-q"]):
        done = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert done.stderr.strip().splitlines()[-1] == "NOT", done.stderr


def test_cli_local_cluster_plugin_failure_on_a_worker_is_one_line(tmp_path, probe_package):
    """A plugin raising on a worker of the cluster kam started: kam's one line and exit 7, no worker log or
    traceback on the terminal (the workers inherit the terminal's stderr)."""
    done = run_kam("score", EXAMPLES / "opportunities_en.csv", "-o", "out.csv", "--engine", "dask", "--workers", "2",
                   cwd=tmp_path, env={"PYTHONPATH": str(probe_package), "PROBE_FAIL": "1",
                                      "KAM_LOAD_PLUGINS": helpers.builtin_plugins() + ",probe"})
    assert done.returncode == 7, done.stderr.decode()
    line = one_error_line(done.stderr.decode())
    assert "probe" in line and "probe failed on purpose" in line
    assert not (tmp_path / "out.csv").exists()


def _abandoned_failed_task() -> None:
    """What a scheduler's handler leaves when its client vanishes mid-scatter: a failed task nobody awaits,
    held in a reference cycle (task, exception, frame), so only the garbage collector reports it."""
    async def handler():
        me = asyncio.current_task()  # noqa: F841  (the cycle)
        raise ValueError("Can not use replicate to delete data")

    loop = asyncio.new_event_loop()
    loop.create_task(handler())
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


def test_a_cluster_torn_down_mid_task_leaves_nothing_to_log_later(caplog):
    """After Ctrl-C the engine silences distributed and asyncio while the cluster goes, and collects the
    failed tasks before the log levels come back: a later collection finds nothing to print."""
    caplog.set_level(logging.WARNING)
    before = logging.getLogger("asyncio").level
    _abandoned_failed_task()
    gc.collect()
    assert "Task exception was never retrieved" in caplog.text  # what used to reach the terminal
    caplog.clear()

    with _quiet_logs() as silence:
        _abandoned_failed_task()
        silence()
    gc.collect()
    assert caplog.text == ""
    assert logging.getLogger("asyncio").level == before


def _loop_callback_failing_as_distributed_sync_does() -> None:
    """distributed's ``sync()`` answers Ctrl-C by scheduling a ``cancel`` callback that fails with NameError
    when the signal lands before its future exists; tornado logs the failure as an error."""
    from tornado.ioloop import IOLoop

    def cancel():
        raise NameError("cannot access free variable 'future' where it is not associated with a value")

    loop = IOLoop(make_current=False)
    loop.add_callback(cancel)
    loop.add_callback(loop.stop)
    loop.start()
    loop.close()


def test_a_loop_callback_failing_at_teardown_is_not_shown(caplog):
    """Found by interrupting `kam score --engine dask` in a loop (1 run in 25 printed it above kam's line)."""
    caplog.set_level(logging.WARNING)
    levels = {name: logging.getLogger(name).level for name in ("tornado", "tornado.application")}
    _loop_callback_failing_as_distributed_sync_does()
    assert "Exception in callback" in caplog.text  # what reached the terminal
    caplog.clear()
    with _quiet_logs() as silence:
        silence()
        _loop_callback_failing_as_distributed_sync_does()
    assert caplog.text == ""
    assert {name: logging.getLogger(name).level for name in levels} == levels


@pytest.mark.parametrize("args, says", [(["--workers", "2"], "--workers needs --engine dask"),
                                        (["--engine", "dask", "--workers", "2", "--scheduler", "tcp://x:1"],
                                         "cannot be combined with --scheduler"),
                                        (["--engine", "dask", "--partition-size", "lots"], "not a size")])
def test_cli_engine_options_are_checked(tmp_path, args, says):
    result = helpers.invoke("score", EXAMPLES / "opportunities_en.csv", "-o", tmp_path / "o.csv", *args)
    assert result.exit_code == 2 and says in result.output
