"""An opportunity id that more than one scored row carries is reported: in the summary (``repeated_ids``)
and as one warning, with the file and physical line of the rows; every row is still scored."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import kam_env, run_kam  # noqa: E402,F401

from kamcore.repeats import IdSpill, id_columns  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
EXAMPLES = Path(__file__).parent.parent / "examples"

# a.csv: P-1 on lines 2 (a value over two lines) and 5 (padded with spaces, as the stakeholder join trims
# ids); P-2 on lines 4 and 9 and on a rejected line 7 (not counted: it is not scored); a blank line 8
A = ('opportunity_id,account,stage,notes\r\nP-1,Acme,intent,"two\r\nlines"\r\nP-2,Beta,solution,\r\n'
     ' P-1 ,Acme again,negotiation,\r\n,NoId,intent,\r\nP-2,Gamma,notastage,\r\n\r\nP-2,Delta,intent,\r\n')
OTHER = "opportunity_id,account,stage\nP-9,Zeta,intent\nP-2,Eta,intent\n"


def test_ids_on_several_rows_are_reported_with_their_files_and_lines(tmp_path):
    (tmp_path / "a.csv").write_text(A, encoding="utf-8", newline="")
    (tmp_path / "other.csv").write_text(OTHER, encoding="utf-8")
    done = run_kam("score", "a.csv", "other.csv", "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = helpers.read_summary(tmp_path / "out.csv")
    assert summary["rows"] == {"in": 8, "scored": 6, "rejected": 2}
    assert summary["repeated_ids"] == {"ids": 2, "rows": 5, "examples": [
        {"opportunity_id": "P-1", "rows": 2, "at": [{"file": "a.csv", "line": 2}, {"file": "a.csv", "line": 5}]},
        {"opportunity_id": "P-2", "rows": 3, "at": [{"file": "a.csv", "line": 4}, {"file": "a.csv", "line": 9},
                                                    {"file": "other.csv", "line": 3}]}]}
    warnings = [line for line in done.stderr.decode().splitlines() if "more than one scored row" in line]
    assert warnings == ["kam: WARNING: 2 opportunity id(s) on more than one scored row (5 rows): 'P-1' on 2 rows "
                        "(a.csv line 2, a.csv line 5); 1 more id(s) repeated; each row was scored "
                        "(summary: repeated_ids)"]
    assert warnings[0].removeprefix("kam: WARNING: ") in summary["notes"]
    scored = helpers.read_csv(tmp_path / "out.csv")
    assert scored["opportunity_id"].to_list() == ["P-1", "P-2", " P-1 ", "P-2", "P-9", "P-2"]  # all scored


def test_an_export_given_with_its_copy_repeats_every_scored_id(tmp_path):
    shutil.copy(EXAMPLES / "opportunities_en.csv", tmp_path / "copy.csv")
    done = run_kam("score", EXAMPLES / "opportunities_en.csv", "copy.csv", "-o", "out.csv", "--scores-only",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = helpers.read_summary(tmp_path / "out.csv")
    scored = summary["rows"]["scored"] // 2
    assert summary["rows"]["scored"] == 46 and summary["repeated_ids"]["ids"] == scored
    assert summary["repeated_ids"]["rows"] == 2 * scored
    examples = summary["repeated_ids"]["examples"]
    assert [e["opportunity_id"] for e in examples] == ["OPP-1001", "OPP-1002", "OPP-1003", "OPP-1004", "OPP-1005"]
    assert examples[0]["at"] == [{"file": str(EXAMPLES / "opportunities_en.csv"), "line": 2},
                                 {"file": "copy.csv", "line": 2}]


def test_the_bundled_examples_repeat_no_id(tmp_path):
    for name in ("opportunities_en.csv", "opportunities_zh.csv"):
        done = run_kam("score", EXAMPLES / name, "-o", f"{name}.out.csv", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        summary = helpers.read_summary(tmp_path / f"{name}.out.csv")
        assert summary["repeated_ids"] == {"ids": 0, "rows": 0, "examples": []}
        assert "more than one scored row" not in done.stderr.decode()


def test_made_up_ids_of_two_files_with_the_same_name_repeat(tmp_path):
    """Without an id column, ids come from the file name and record number: two q3.csv files give the same."""
    for folder in ("east", "west"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "q3.csv").write_text("account,stage\nAcme,intent\nBeta,solution\n", encoding="utf-8")
    done = run_kam("score", "east/q3.csv", "west/q3.csv", "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    repeated = helpers.read_summary(tmp_path / "out.csv")["repeated_ids"]
    assert (repeated["ids"], repeated["rows"]) == (2, 4)
    assert repeated["examples"][0] == {"opportunity_id": "q3-1", "rows": 2, "at": [
        {"file": "east/q3.csv", "line": 2}, {"file": "west/q3.csv", "line": 2}]}


def test_score_frame_names_the_repeated_ids_as_the_cli_does(tmp_path):
    """Embedding: ``ScoreResult.repeated`` has the ids the CLI's summary counts, with their rows' 1-based
    lines in the frame (the CLI's physical lines, less the header, on a file of one line per record)."""
    import kamcore

    export = pl.read_csv(EXAMPLES / "opportunities_en.csv", infer_schema=False)
    frame = pl.concat([export, export.head(3), export.slice(1, 1).with_columns(pl.lit("notastage").alias("stage"))])
    result = kamcore.score_frame(frame)
    lines = {row["opportunity_id"]: row["lines"] for row in result.repeated.to_dicts()}
    first = export["opportunity_id"].head(3).to_list()
    assert list(lines) == first  # in the order of their first row; the rejected copy of the second is not counted
    assert [lines[i] for i in first] == [[1, export.height + 1], [2, export.height + 2], [3, export.height + 3]]
    assert result.repeated["rows"].to_list() == [2, 2, 2]
    alone = kamcore.score_frame(export)  # the example has rejected rows of its own
    assert result.rejects["line"].unique().to_list() == [*alone.rejects["line"].unique().to_list(), frame.height]
    assert result.scored.height == alone.scored.height + 3

    frame.write_csv(tmp_path / "doubled.csv")
    done = run_kam("score", "doubled.csv", "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    cli = helpers.read_summary(tmp_path / "out.csv")["repeated_ids"]
    assert (cli["ids"], cli["rows"]) == (result.repeated.height, int(result.repeated["rows"].sum()))
    assert [[place["line"] - 1 for place in example["at"]] for example in cli["examples"]] == [
        lines[example["opportunity_id"]] for example in cli["examples"]]


def test_score_frame_finds_no_repeats_in_the_bundled_examples():
    import pandas as pd

    import kamcore

    for name, encoding in (("opportunities_en.csv", "utf8"), ("opportunities_zh.csv", "gb18030")):
        export = pl.read_csv(EXAMPLES / name, infer_schema=False, encoding=encoding)
        assert export.height > 20 and kamcore.score_frame(export).repeated.height == 0
        result = kamcore.score_frame(export.to_pandas())  # pandas in, pandas out
        assert isinstance(result.repeated, pd.DataFrame) and list(result.repeated.columns) == [
            "opportunity_id", "rows", "lines"] and len(result.repeated) == 0


@pytest.mark.parametrize("part_rows", [1, 7, 1000, 1 << 20])
def test_the_ids_compared_a_part_at_a_time_give_the_same_answer(tmp_path, part_rows):
    """However many parts the ids are cut into (by their hash, to hold few at once), the same repeats, in
    the order of their first row; the spill is written in several files, batches arriving out of order."""
    ids = [f"D-{i % 37}" if i % 5 == 0 else f"U-{i}" for i in range(400)]  # D-0 … D-36 repeat, U-… do not
    frame = pl.DataFrame({"__src": pl.Series([i // 200 for i in range(400)], dtype=pl.UInt32),  # two inputs
                          "__row": pl.Series([i % 200 for i in range(400)], dtype=pl.UInt32), "opportunity_id": ids})
    spill = IdSpill(tmp_path)
    for start in (300, 0, 100, 200):
        spill.add(frame.slice(start, 100).select(id_columns()))
        spill._flush()
    assert len(spill.files) == 4
    found = spill.repeated(part_rows=part_rows)
    expected = (frame.filter(pl.col("opportunity_id").is_duplicated())
                .group_by("opportunity_id", maintain_order=True)
                .agg(pl.len().cast(pl.UInt32).alias("rows"), pl.col("__src"), pl.col("__row")))
    assert found.rename({"__id": "opportunity_id"}).equals(expected)
    assert found.height == 37 and found["rows"].sum() == 80


def test_a_summary_names_no_repeats_when_every_id_differs(tmp_path):
    """Many rows, one id each: the check finds nothing (and its hash does not claim a repeat)."""
    rows = "opportunity_id,account,stage\n" + "".join(f"X-{i},Acme,intent\n" for i in range(20_000))
    (tmp_path / "big.csv").write_text(rows, encoding="utf-8")
    done = run_kam("score", "big.csv", "-o", "out.csv", "--scores-only", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out.csv.summary.json").read_text("utf-8"))
    assert summary["rows"]["scored"] == 20_000 and summary["repeated_ids"]["ids"] == 0


def test_on_a_terminal_the_warning_starts_on_a_line_of_its_own(tmp_path):
    """The progress line on a terminal is wiped before a warning is logged, not written over."""
    import os
    import pty
    import subprocess

    rows = "opportunity_id,account,stage\n" + "".join(f"R-{i % 1000},Acme,intent\n" for i in range(2_500_000))
    (tmp_path / "big.csv").write_text(rows, encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KAM_")}
    environment["KAM_LOAD_PLUGINS"] = helpers.builtin_plugins()
    master, terminal = pty.openpty()
    proc = subprocess.Popen(helpers.kam_command() + ["score", "big.csv", "-o", "out.csv", "--scores-only"],
                            cwd=tmp_path, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=terminal)
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: kam has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    text = b"".join(chunks).decode()
    assert "rows read" in text  # the progress line was shown
    at = text.index("kam: WARNING: 1000 opportunity id(s) on more than one scored row (2500000 rows)")
    assert text[:at].rsplit("\n", 1)[-1].rsplit("\r", 1)[-1] == ""  # nothing left of it before the warning
    assert text.rstrip().splitlines()[-1].startswith("kam: 2500000 rows: 2500000 scored, 0 rejected")
