"""`kam score -`: an export piped in on standard input scores as the same export read from a file.

Standard input is spooled to a temporary file (importers sniff, check and re-read files), named
``<stdin>`` wherever a file is named, and removed when the run ends.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import kam_env, one_error_line, run_kam  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("kam_env")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "opportunities_zh.csv"
RAGGED = ROOT / "tests" / "corpus" / "ragged_short.csv"


@pytest.fixture
def env(tmp_path) -> dict:
    (tmp_path / "tmp").mkdir()
    return {"TMPDIR": str(tmp_path / "tmp")}


@pytest.mark.parametrize("source, piped", [(EXAMPLE, lambda data: data), (EXAMPLE, gzip.compress),
                                           (RAGGED, lambda data: data)])
def test_an_export_on_standard_input_scores_as_the_file(tmp_path, env, source, piped):
    """The example (GB18030), the same gzipped, and an export with a ragged record to set aside (which
    makes the run start over with the check done first: the input is read twice)."""
    plain = run_kam("score", source, "-o", "file.csv", "-q", cwd=tmp_path, env=env)
    done = run_kam("score", "-", "-o", "stdin.csv", "-q", cwd=tmp_path, env=env, stdin=piped(source.read_bytes()))
    assert plain.returncode == 0 and done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "stdin.csv").read_bytes() == (tmp_path / "file.csv").read_bytes()
    rejects, expected = (helpers.read_rejects(tmp_path / name) for name in ("stdin.csv", "file.csv"))
    assert rejects.height > 0 and set(rejects["file"]) == {"<stdin>"}
    assert rejects.drop("file").equals(expected.drop("file"))
    summary = helpers.read_summary(tmp_path / "stdin.csv")
    assert summary["inputs"][0]["path"] == "<stdin>"
    assert done.stderr.decode() == plain.stderr.decode().replace(str(source), "<stdin>")  # the warnings, if any
    assert list((tmp_path / "tmp").iterdir()) == []


def test_standard_input_to_standard_output_is_a_filter(tmp_path):
    done = run_kam("score", "-", "-o", "-", "-q", cwd=tmp_path, stdin=EXAMPLE.read_bytes())
    assert done.returncode == 0, done.stderr.decode()
    assert run_kam("score", EXAMPLE, "-o", "file.csv", "-q", cwd=tmp_path).returncode == 0
    assert done.stdout == (tmp_path / "file.csv").read_bytes()


@pytest.mark.parametrize("args, data, code, says", [
    (["-"], b"a,b\n1,2\n", 2, "reading standard input (-) needs -o: a file, or - for standard output"),
    (["-", "-", "-o", "out.csv"], b"a,b\n1,2\n", 2, "standard input (-) can be read once per run"),
    (["-", "-o", "out.csv"], b"", 4, "kam: unreadable input: <stdin>: the file is empty"),
])
def test_standard_input_mistakes_are_one_clear_line(tmp_path, env, args, data, code, says):
    done = run_kam("score", *args, cwd=tmp_path, env=env, stdin=data)
    assert done.returncode == code
    assert says in done.stderr.decode() and "Traceback" not in done.stderr.decode()
    assert not (tmp_path / "out.csv").exists() and list((tmp_path / "tmp").iterdir()) == []


def test_pieces_of_standard_input_carry_their_bytes_to_the_workers(tmp_path):
    """The spooled file is this machine's: a Dask worker elsewhere gets each piece's bytes, not its path."""
    import io

    from kamcore.pipeline import STDIN, open_sources, spool_stdin
    from kamcore.plugins import Kam
    from kamcore.registry import ReadOptions

    with spool_stdin([STDIN], io.BytesIO(EXAMPLE.read_bytes())) as spooled:
        (source, name), = open_sources([STDIN], Kam(), ReadOptions(), stdin=spooled)
        try:
            pieces = source.split(700)
            assert name == "csv" and str(source.path) == "<stdin>" and len(pieces) > 2
            assert not any(piece.shared for piece in pieces)
            assert sum(piece.read().height for piece in pieces) == 25
        finally:
            source.cleanup()
    assert not spooled.exists()


# -- the other commands that read exports: train, evaluate, classify, inspect, score --stakeholders ----

BOHANEC = ROOT / "examples" / "bohanec" / "Salvirt_B2B_ML_dataset.csv"
BOHANEC_TOML = ROOT / "examples" / "bohanec" / "kam.toml"
PEOPLE = ROOT / "examples" / "stakeholders_zh.csv"
HISTORY_ARGS = ("--config", BOHANEC_TOML, "--target", "Status", "--won", "Won", "--folds", "3", "--repeats", "1",
                "--classifier", "logistic")


def test_a_model_trained_on_standard_input_learns_from_the_same_rows(tmp_path, env):
    """Same training table (the card's data sha256) as from the file; the card names ``<stdin>`` and gives
    the sha256 of the bytes piped in (here gzipped), so the run can be traced to them."""
    import hashlib
    import json

    piped = gzip.compress(BOHANEC.read_bytes())
    plain = run_kam("train", BOHANEC, *HISTORY_ARGS, "-o", "file/model", cwd=tmp_path, env=env)
    done = run_kam("train", "-", *HISTORY_ARGS, "-o", "stdin/model", cwd=tmp_path, env=env, stdin=piped)
    assert plain.returncode == 0 and done.returncode == 0, done.stderr.decode()
    cards = [json.loads((tmp_path / name / "model.card.json").read_text(encoding="utf-8"))
             for name in ("file", "stdin")]
    assert cards[1]["data"]["sha256"] == cards[0]["data"]["sha256"]
    assert cards[1]["data"]["inputs"] == [{"file": "<stdin>", "sha256": hashlib.sha256(piped).hexdigest(),
                                           "bytes": len(piped), "rows": cards[0]["data"]["inputs"][0]["rows"]}]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_evaluate_reads_standard_input(tmp_path, env):
    args = ("evaluate", *HISTORY_ARGS, "--json")
    plain = run_kam(*args[:1], BOHANEC, *args[1:], cwd=tmp_path, env=env)
    done = run_kam(*args[:1], "-", *args[1:], "--report", "report.html", cwd=tmp_path, env=env,
                   stdin=BOHANEC.read_bytes())
    assert plain.returncode == 0 and done.returncode == 0, done.stderr.decode()
    assert done.stdout == plain.stdout  # the same evaluation, figure for figure
    assert "<title>Win model evaluation: &lt;stdin&gt;</title>" in (tmp_path / "report.html").read_text("utf-8")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_classify_and_score_take_the_people_on_standard_input(tmp_path, env):
    for people, name in ((PEOPLE, "file"), ("-", "stdin")):
        piped = PEOPLE.read_bytes() if people == "-" else None
        classified = run_kam("classify", people, "-o", f"people_{name}.csv", cwd=tmp_path, env=env, stdin=piped)
        scored = run_kam("score", EXAMPLE, "--stakeholders", people, "-o", f"scored_{name}.csv", "-q",
                         cwd=tmp_path, env=env, stdin=piped)
        assert classified.returncode == 0 and scored.returncode == 0, classified.stderr + scored.stderr
    for kind in ("people", "scored"):
        assert (tmp_path / f"{kind}_stdin.csv").read_bytes() == (tmp_path / f"{kind}_file.csv").read_bytes()
    assert "coverage" in (tmp_path / "scored_stdin.csv").read_text("utf-8-sig").splitlines()[0]
    twice = run_kam("score", "-", "--stakeholders", "-", "-o", "out.csv", cwd=tmp_path, env=env, stdin=b"")
    assert twice.returncode == 2 and "standard input (-) can be read once per run" in twice.stderr.decode()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_inspect_reads_standard_input(tmp_path, env):
    import json

    plain = run_kam("inspect", EXAMPLE, "--json", cwd=tmp_path, env=env)
    done = run_kam("inspect", "-", "--json", cwd=tmp_path, env=env, stdin=gzip.compress(EXAMPLE.read_bytes()))
    assert plain.returncode == 0 and done.returncode == 0, done.stderr.decode()
    report, expected = json.loads(done.stdout), json.loads(plain.stdout)
    assert report["file"] == "<stdin>" and report["encoding"] == expected["encoding"] == "gb18030"
    assert report["columns"] == expected["columns"] and report["sample_rows"] == expected["sample_rows"]
    empty = run_kam("inspect", "-", cwd=tmp_path, env=env, stdin=b"")
    assert empty.returncode == 4
    assert one_error_line(empty.stderr.decode()) == "kam: unreadable input: <stdin>: the file is empty"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_classify_writes_a_table_to_standard_output(tmp_path, env):
    """`-o -` (or `--coverage -`) is standard output, as for `kam score`: the same bytes as the file,
    never a file named -."""
    files = run_kam("classify", PEOPLE, "-o", "people.csv", "--coverage", "coverage.csv", cwd=tmp_path, env=env)
    people = run_kam("classify", PEOPLE, "-o", "-", cwd=tmp_path, env=env)
    coverage = run_kam("classify", PEOPLE, "-o", "again.csv", "--coverage", "-", cwd=tmp_path, env=env)
    assert files.returncode == people.returncode == coverage.returncode == 0, people.stderr + coverage.stderr
    assert people.stdout == (tmp_path / "people.csv").read_bytes()
    assert coverage.stdout == (tmp_path / "coverage.csv").read_bytes()
    assert "-> standard output" in people.stderr.decode()
    both = run_kam("classify", PEOPLE, "-o", "-", "--coverage", "-", cwd=tmp_path, env=env)
    assert both.returncode == 2 and "standard output (-) can take one table" in both.stderr.decode()
    assert not (tmp_path / "-").exists() and list((tmp_path / "tmp").iterdir()) == []


def test_a_library_caller_cannot_read_standard_input_twice_in_one_run(tmp_path):
    """`run_score` with ``-`` as the export and as the people: refused before standard input is read."""
    import io

    from kamcore.config import load_config
    from kamcore.errors import ConfigError
    from kamcore.pipeline import STDIN, run_score
    from kamcore.plugins import Kam

    kam = Kam()
    stream = io.BytesIO(EXAMPLE.read_bytes())
    with pytest.raises(ConfigError, match=r"standard input \(-\) can be read once per run"):
        run_score([STDIN], tmp_path / "out.csv", kam=kam, config=load_config(None, kam.config_defaults()),
                  stakeholders=[STDIN], stdin=stream)
    assert stream.tell() == 0 and not (tmp_path / "out.csv").exists()
