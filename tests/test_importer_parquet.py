"""The Parquet importer: typed values become the text a CSV export would hold, so a Parquet file scores as
its CSV export does; rejects name the row; a cut-short or binary-holding file is refused in one line;
the content decides the format; and the Dask engine reads it too."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import invoke, kam_env, read_summary  # noqa: E402,F401

from kamcore.errors import InputError  # noqa: E402
from kamcore.registry import ReadOptions  # noqa: E402
from kamcore_plugins.importers.parquet_importer import batches, read, sniff  # noqa: E402

EXAMPLE = Path(__file__).parent.parent / "examples" / "opportunities_en.csv"


def load(path: Path) -> tuple[pl.DataFrame, object]:
    source = read(path, ReadOptions())
    return source.frame.collect(), source


def typed_example() -> pl.DataFrame:
    """The bundled English export as a data team would store it: margins as numbers, competitors as a list
    of names (the amounts and dates stay text: the example holds 'about 1.2M' and 'next spring')."""
    text = pl.read_csv(EXAMPLE, infer_schema=False)
    return text.with_columns(pl.col("margin").str.strip_chars_end("%").cast(pl.Float64),
                             pl.col("competitors").str.split(";").list.eval(pl.element().str.strip_chars()))


def test_values_become_the_text_a_csv_would_hold(tmp_path):
    frame = pl.DataFrame({
        "编号": ["00123", None],
        "标的": [1200000.0, 35.5],
        "count": pl.Series([3, None], dtype=pl.Int64),
        "price": pl.Series([Decimal("1200000.50"), Decimal("0.10")], dtype=pl.Decimal(12, 2)),
        "won": [True, False],
        "day": [dt.date(2024, 7, 16), None],
        "at": [dt.datetime(2024, 7, 16, 10, 30, 5, 123456), None],
        "at_shanghai": pl.Series([dt.datetime(2024, 7, 16, 2, 30)], dtype=pl.Datetime("us", "UTC")).dt
        .convert_time_zone("Asia/Shanghai").append(pl.Series([None], dtype=pl.Datetime("us", "Asia/Shanghai"))),
        "stage": pl.Series(["方案", "谈判"], dtype=pl.Categorical),
        "tags": [["a", "b"], None],
        "sizes": [[1, 2], []],
        "owner": [{"name": "张伟", "level": 2}, None],
        "*": ["x", "y"],
    })
    path = tmp_path / "deals.parquet"
    frame.write_parquet(path)
    read_back, source = load(path)
    assert read_back.columns == ["编号", "标的", "count", "price", "won", "day", "at", "at_shanghai", "stage", "tags",
                                 "sizes", "owner", "column_13"]
    assert all(dtype == pl.String for dtype in read_back.dtypes)
    assert read_back.row(0) == ("00123", "1200000.0", "3", "1200000.50", "true", "2024-07-16", "2024-07-16 10:30:05",
                                "2024-07-16 10:30:00", "方案", "a; b", "[1,2]", '{"name":"张伟","level":2}', "x")
    assert read_back.row(1) == (None, "35.5", None, "0.10", "false", None, None, None, "谈判", None, "[]", None, "y")
    assert source.record_lines([0, 1, 5]) == {0: 1, 1: 2}
    assert any("2 row(s)" in note for note in source.notes)


def test_slices_cover_every_row_once_in_order_and_honour_what_the_query_pushes_down(tmp_path):
    path = tmp_path / "rows.parquet"
    frame = pl.DataFrame({"n": list(range(10)), "text": [f"r{i}" for i in range(10)]})
    frame.write_parquet(path, row_group_size=4)
    sliced = batches(path, [pl.col("n"), pl.col("text")], 10, size=3)
    assert sliced.collect().equals(frame)
    assert sliced.head(4).collect().equals(frame.head(4))
    assert sliced.filter(pl.col("n") % 3 == 0).select("text").collect()["text"].to_list() == ["r0", "r3", "r6", "r9"]
    assert sliced.collect(engine="streaming").equals(frame)



def test_a_frame_stream_reads_a_slice_only_when_the_query_asks_for_it():
    """The shared reader behind Parquet slices and the Dask engine's pieces: what lets a slow writer hold
    the reader back. A query wanting 4 rows reads two slices of 3, not all four."""
    from kamcore.importing import frame_stream

    frame = pl.DataFrame({"n": list(range(10)), "text": [f"r{i}" for i in range(10)]})
    read: list[int] = []

    def slices():
        for start in range(0, 10, 3):
            read.append(start)
            yield frame.slice(start, 3)

    stream = frame_stream(slices, frame.schema)
    assert stream.head(4).collect().equals(frame.head(4))
    assert read == [0, 3]
    read.clear()
    assert stream.filter(pl.col("n") > 4).select("text").head(2).collect()["text"].to_list() == ["r5", "r6"]
    assert stream.collect(engine="streaming").equals(frame)

def test_a_parquet_file_scores_as_its_csv_export(tmp_path, kam_env):
    path = tmp_path / "deals.parquet"
    typed_example().write_parquet(path, row_group_size=7)  # several row groups
    outputs = {}
    for name, source in (("csv", EXAMPLE), ("parquet", path)):
        outputs[name] = tmp_path / f"{name}.csv"
        result = invoke("score", source, "-o", outputs[name])
        assert result.exit_code == 0, result.output
    assert read_summary(outputs["parquet"])["inputs"][0]["importer"] == "parquet"
    csv, parquet = (helpers.read_csv(outputs[name]) for name in ("csv", "parquet"))
    scores = [c for c in csv.columns if c.endswith("_score") or c[:1] == "p" and c[1:2].isdigit()]
    assert len(scores) == 13 and parquet.height == csv.height == 23
    assert parquet.select("opportunity_id", *scores, "band", "win_probability").equals(
        csv.select("opportunity_id", *scores, "band", "win_probability"))
    assert parquet["competitor_count"].equals(csv["competitor_count"])
    # the rejected rows: the same rows and reasons, each named by its row number (the CSV names its line)
    rejects = {name: helpers.read_rejects(outputs[name]) for name in outputs}
    assert rejects["parquet"].drop("file", "line").equals(rejects["csv"].drop("file", "line"))
    assert rejects["parquet"]["line"].to_list() == [line - 1 for line in rejects["csv"]["line"].cast(int)]


def test_names_that_clean_to_the_same_name_are_kept_or_refused_as_in_a_csv(tmp_path):
    path = tmp_path / "names.parquet"
    pl.DataFrame({"id": ["A-1"], "Created By": ["x"], "Created By ": ["y"]}).write_parquet(path)
    frame, source = load(path)
    assert frame.columns == ["id", "Created By", "Created By_3"] and frame.row(0) == ("A-1", "x", "y")
    assert any("kept as 'Created By_3'" in n for n in source.notes)
    pl.DataFrame({"id": ["A-1"], "Deal Size": ["1"], "Deal Size ": ["2"]}).write_parquet(path)
    with pytest.raises(InputError, match="columns 2 and 3 are both named"):
        load(path)


def test_a_cut_short_file_is_refused_in_one_line(tmp_path, kam_env):
    whole = tmp_path / "whole.parquet"
    typed_example().write_parquet(whole)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[:-100])
    out = tmp_path / "out.csv"
    result = invoke("score", cut, "-o", out)
    assert result.exit_code == 4
    assert "cut.parquet: the Parquet file is cut short" in helpers.one_error_line(result.stderr)
    assert not out.exists()


def test_a_file_with_parquets_magic_but_not_its_body_is_refused_in_one_line(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read(path, ReadOptions())


@pytest.mark.parametrize("values, kind", [([b"\x89PNG"], "Binary"), ([dt.timedelta(days=2)], "Duration")])
def test_a_column_that_cannot_be_text_is_refused_naming_it(tmp_path, values, kind):
    path = tmp_path / "odd.parquet"
    pl.DataFrame({"编号": ["P-1"], "attachment": values}).write_parquet(path)
    with pytest.raises(InputError, match=f"column 'attachment' holds {kind}"):
        read(path, ReadOptions())


def test_other_types_are_text_too(tmp_path):
    path = tmp_path / "types.parquet"
    pl.DataFrame({"small": pl.Series([120.5, None], dtype=pl.Float32), "at": [dt.time(10, 30), None],
                  "nothing": pl.Series([None, None], dtype=pl.Null), "tiny": pl.Series([-3, 7], dtype=pl.Int8)}
                 ).write_parquet(path)
    frame, _ = load(path)
    assert frame.rows() == [("120.5", "10:30:00", None, "-3"), (None, None, None, "7")]


def test_the_content_decides_not_the_name(tmp_path, kam_env):
    assert sniff(b"PAR1\x15\x04", ".csv") == 95 and sniff(b"opportunity_id,deal_size", ".parquet") == 0
    path = tmp_path / "export.dat"
    typed_example().write_parquet(path)
    out = tmp_path / "out.csv"
    result = invoke("score", path, "-o", out)
    assert result.exit_code == 0, result.output
    assert read_summary(out)["inputs"][0]["importer"] == "parquet"
    shown = invoke("inspect", path)
    assert shown.exit_code == 0 and "importer    parquet" in shown.stdout
    assert "header      the file's column names" in shown.stdout


def test_the_dask_engine_reads_parquet_as_the_local_engine_does(tmp_path, kam_env):
    distributed = pytest.importorskip("distributed")
    from kamcore.config import load_config
    from kamcore.dask_engine import DaskEngine
    from kamcore.pipeline import run_score
    from kamcore.plugins import Kam

    path = tmp_path / "deals.parquet"
    typed_example().write_parquet(path)
    # two columns named notes, which [columns] keeps as they are: the workers name them as this machine does
    repeated = tmp_path / "repeated.parquet"
    typed_example().with_columns(pl.col("notes").alias("notes ")).write_parquet(repeated)
    kam = Kam()
    plain = load_config(None, kam.config_defaults())
    kept = load_config(None, kam.config_defaults(), overrides={"columns": {"notes": ""}})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        for case, config in ((path, plain), (repeated, kept)):
            for name in ("local", "dask"):
                (tmp_path / case.stem / name).mkdir(parents=True)
                engine = DaskEngine(client=client, piece_bytes=512) if name == "dask" else None
                run_score([case], tmp_path / case.stem / name / "out.csv", kam=kam, config=config, engine=engine)
    for case in ("deals", "repeated"):
        for suffix in ("", ".rejects.csv"):
            local, dask = (tmp_path / case / name / f"out.csv{suffix}" for name in ("local", "dask"))
            assert dask.read_bytes() == local.read_bytes()
        assert read_summary(tmp_path / case / "dask" / "out.csv")["engine"]["partitions"] > 1
    assert "notes_" in (tmp_path / "repeated" / "dask" / "out.csv").read_text(encoding="utf-8-sig").splitlines()[0]


def test_dask_pieces_are_rows_of_the_shared_file_that_each_worker_reads(tmp_path):
    path = tmp_path / "deals.parquet"
    typed_example().write_parquet(path, row_group_size=5)
    source = read(path, ReadOptions())
    pieces = source.split(600)
    assert len(pieces) > 3 and all(piece.shared for piece in pieces)
    assert sum(piece.records for piece in pieces) == 25
    assert pl.concat([piece.read() for piece in pieces]).equals(source.frame.collect())
    path.unlink()
    with pytest.raises(InputError, match="no such file") as error:
        pieces[0].read()
    assert "same path (a shared folder)" in error.value.hint
