"""The corpus of broken and unusual exports (tests/corpus/, made by make_corpus.py): every file gives its
documented outcome through `kam score`. No traceback, no silent mis-parse, no lost row; a refused file
writes nothing. The table in docs/inputs.md lists every file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import invoke, kam_env, read_summary  # noqa: E402,F401

CORPUS = Path(__file__).parent / "corpus"
CASES = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
DOCS = Path(__file__).parent.parent / "docs" / "inputs.md"

pytestmark = pytest.mark.usefixtures("kam_env")


def test_the_corpus_is_large_and_current():
    assert len(CASES) >= 30
    assert {c["exit"] for c in CASES} == {0, 4}
    proc = subprocess.run([sys.executable, str(CORPUS / "make_corpus.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_docs_inputs_lists_every_corpus_file():
    text = DOCS.read_text(encoding="utf-8")
    missing = [c["file"] for c in CASES if f"`{c['file']}`" not in text]
    assert not missing, f"docs/inputs.md does not list {missing}: paste `python tests/corpus/make_corpus.py --table`"


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_corpus_file_gives_its_documented_outcome(case, tmp_path, monkeypatch):
    for name, value in case["env"].items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "scored.csv"
    result = invoke("score", CORPUS / case["file"], "-o", out, *case["args"])
    everything = result.output + result.stderr + repr(result.exception or "")
    assert "Traceback" not in everything
    assert result.exit_code == case["exit"], everything
    if case["exit"]:
        line = helpers.one_error_line(result.stderr)
        assert case["file"] in line
        for words in case["error"]:
            assert words in line, line
        assert not out.exists() and not out.with_name(out.name + ".rejects.csv").exists()
        return
    summary = read_summary(out)
    rows = summary["rows"]
    assert rows["in"] == rows["scored"] + rows["rejected"]
    expected_in, expected_scored, expected_rejected = case["rows"]
    assert rows["in"] == expected_in
    if expected_scored is not None:
        assert (rows["scored"], rows["rejected"]) == (expected_scored, expected_rejected)
    source = summary["inputs"][0]
    if case["importer"]:
        assert source["importer"] == case["importer"]
    if case["header_line"] is not None:
        assert source["header_line"] == case["header_line"]
    notes = " | ".join(summary["notes"])
    for words in case["notes"]:
        assert words in notes, notes
    if case["rejects"]:
        rejects = helpers.read_rejects(out)
        assert [list(r) for r in rejects.select("line", "column").rows()] == case["rejects"]
    header = out.read_text(encoding="utf-8-sig").splitlines()[0].split(",") if rows["scored"] else []
    for column in case["columns"]:
        assert column in header


@pytest.mark.parametrize("name", ["ragged_many.csv", "zip_bomb.xlsx", "html_table.xls", "jsonl_nan.jsonl"])
def test_refused_corpus_files_through_a_real_process(name, tmp_path):
    """The CLI's real stderr: one line, no traceback, exit 4, and an existing output left untouched."""
    out = tmp_path / "scored.csv"
    out.write_text("previous run\n", encoding="utf-8")
    proc = helpers.run_kam("score", CORPUS / name, "-o", out, cwd=tmp_path)
    assert proc.returncode == 4
    assert name in helpers.one_error_line(proc.stderr.decode())
    assert out.read_text(encoding="utf-8") == "previous run\n"
