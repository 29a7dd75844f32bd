"""Packed outputs: `-o scored.csv.gz` (.bz2, .xz, .zip) holds exactly what `-o scored.csv` writes.

Checked by inflating the real files with Python's gzip, bz2, lzma and zipfile modules (the first three
read the consecutive members a packed output is made of, as `gzip -d`, `bzip2 -d` and `xz -d` do; a zip
holds the output as its one member).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import kam_env, run_kam  # noqa: E402,F401

from kamcore.packing import pack  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "opportunities_zh.csv"


def unzip(data: bytes) -> bytes:
    """The one member of a zip, checked to be the only one."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (member,) = archive.infolist()
        assert member.compress_type == zipfile.ZIP_DEFLATED
        return archive.read(member)


INFLATE = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress, ".zip": unzip}
NAMES = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zip": "zip"}


@pytest.mark.parametrize("suffix", list(INFLATE))
@pytest.mark.parametrize("plain", ["scored.csv", "scored.jsonl"])
def test_a_packed_output_holds_what_the_plain_one_does(tmp_path, suffix, plain):
    for name in (plain, plain + suffix):
        done = run_kam("score", EXAMPLE, "-o", name, "-q", cwd=tmp_path)
        assert done.returncode == 0, done.stderr.decode()
    packed = tmp_path / (plain + suffix)
    assert INFLATE[suffix](packed.read_bytes()) == (tmp_path / plain).read_bytes()
    summary = helpers.read_summary(packed)
    assert summary["compression"] == NAMES[suffix] and summary["format"] == plain.rsplit(".", 1)[1]
    assert helpers.read_summary(tmp_path / plain)["compression"] is None
    assert (tmp_path / (plain + suffix + ".rejects.csv")).read_bytes() == \
           (tmp_path / (plain + ".rejects.csv")).read_bytes()  # the rejects stay plain CSV
    assert not [p.name for p in tmp_path.iterdir() if ".kam-tmp-" in p.name]


@pytest.mark.parametrize("suffix", [".gz", ".zip"])
def test_the_same_run_packs_to_the_same_bytes(tmp_path, suffix):
    """No time stamp in the gzip header, a fixed one in the zip's: a rerun gives an identical file (checksums
    and caches hold)."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        assert run_kam("score", EXAMPLE, "-o", "scored.csv" + suffix, "-q", cwd=tmp_path / folder).returncode == 0
    assert (tmp_path / "a" / ("scored.csv" + suffix)).read_bytes() == (tmp_path / "b" / ("scored.csv" + suffix)).read_bytes()


def test_a_zip_output_holds_one_member_named_as_the_plain_output(tmp_path):
    assert run_kam("score", EXAMPLE, "-o", "q3.scored.xlsx.zip", "-q", cwd=tmp_path).returncode == 0
    with zipfile.ZipFile(tmp_path / "q3.scored.xlsx.zip") as archive:
        assert archive.namelist() == ["q3.scored.xlsx"]
        assert archive.read("q3.scored.xlsx")[:2] == b"PK"  # the workbook itself, a zip of its own


@pytest.mark.parametrize(("output", "member", "start"), [
    ("report.zip", "report.csv", b"\xef\xbb\xbfopportunity_id,"),  # the default format, its suffix added
    ("report.v2.zip", "report.v2.csv", b"\xef\xbb\xbfopportunity_id,"),
    ("Q3.CSV.zip", "Q3.CSV", b"\xef\xbb\xbfopportunity_id,"),  # a suffix of the format, in capitals: kept
])
def test_a_zip_member_always_has_its_formats_suffix(tmp_path, output, member, start):
    """A member without a suffix would not open with a double click in the zip's folder."""
    assert run_kam("score", EXAMPLE, "-o", output, "-q", cwd=tmp_path).returncode == 0
    with zipfile.ZipFile(tmp_path / output) as archive:
        assert archive.namelist() == [member]
        assert archive.read(member).startswith(start)


def test_a_zip_member_follows_the_format_given(tmp_path):
    assert run_kam("score", EXAMPLE, "-o", "report.zip", "--format", "jsonl", "-q", cwd=tmp_path).returncode == 0
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        assert archive.namelist() == ["report.jsonl"]
        assert archive.read("report.jsonl").startswith(b'{"opportunity_id":')


@pytest.mark.parametrize("suffix", list(INFLATE))
def test_blocks_packed_on_every_core_inflate_to_the_whole_file_in_order(tmp_path, suffix):
    source = tmp_path / "plain.csv"
    source.write_bytes(b"".join(f"OPP-{i:06d},{i * 7919 % 1000}\n".encode() for i in range(20_000)))
    target = tmp_path / ("packed.csv" + suffix)
    progress = []
    pack(source, target, NAMES[suffix], block=4096,  # about 70 blocks: many members, written in order
         on_block=lambda done, total: progress.append((done, total)))
    assert INFLATE[suffix](target.read_bytes()) == source.read_bytes()
    size = source.stat().st_size
    assert [done for done, _ in progress] == [min(4096 * (i + 1), size) for i in range(len(progress))]
    assert progress[-1] == (size, size)
    if suffix == ".gz":
        assert target.read_bytes().count(b"\x1f\x8b\x08") >= source.stat().st_size // 4096 > 50


@pytest.mark.parametrize("suffix", list(INFLATE))
def test_an_empty_file_packs_to_a_valid_empty_one(tmp_path, suffix):
    source = tmp_path / "empty"
    source.write_bytes(b"")
    pack(source, tmp_path / ("out" + suffix), NAMES[suffix])
    assert INFLATE[suffix]((tmp_path / ("out" + suffix)).read_bytes()) == b""


def test_kam_reads_its_own_packed_output_back(tmp_path):
    """A packed output is a packed export like any other (the ' that neutralised formulas comes off too)."""
    assert run_kam("score", EXAMPLE, "-o", "first.csv.gz", "-q", cwd=tmp_path).returncode == 0
    done = run_kam("inspect", tmp_path / "first.csv.gz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert "gzip-compressed, read inflated" in done.stdout.decode()


def test_the_progress_callback_hears_how_far_the_compression_is(tmp_path):
    """After the rows, a packed output reports its compression (kam's terminal line says `compressing 100 %`)."""
    from kamcore.config import load_config
    from kamcore.pipeline import run_score
    from kamcore.plugins import Kam

    kam = Kam()
    calls = []
    summary = run_score([EXAMPLE], tmp_path / "out.csv.gz", kam=kam, config=load_config(None, kam.config_defaults()),
                        on_progress=lambda elapsed, rows, doing: calls.append((rows, doing)))
    assert calls and calls[-1] == (summary["rows"]["in"] + summary["blank_lines_skipped"], "compressing 100 %")
