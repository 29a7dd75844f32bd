"""Packed exports (gzip, bzip2, xz, a zip of one file) read as the files they hold: same scores, rejects
and lines.

The files are packed here with Python's own gzip, bz2, lzma and zipfile modules (the formats the `gzip`,
`bzip2`, `xz` and `zip` tools write); damaged, cut-off and bomb files, and zips of several files, get
one clear line and exit 4, and leave no inflated copy in the temporary folder.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import kam_env, one_error_line, run_kam  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("kam_env")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PACKERS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


@pytest.fixture
def tmpdir_env(tmp_path) -> tuple[Path, dict]:
    """A TMPDIR of its own, so a test can see that no inflated copy is left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder, {"TMPDIR": str(folder)}


def packed(source: Path, folder: Path, suffix: str) -> Path:
    target = folder / (source.name + suffix)
    target.write_bytes(PACKERS[suffix](source.read_bytes()))
    return target


@pytest.mark.parametrize("suffix", list(PACKERS))
@pytest.mark.parametrize("example", ["opportunities_en.csv", "opportunities_zh.csv"])  # UTF-8, GB18030
def test_a_compressed_csv_scores_as_the_file_it_holds(tmp_path, tmpdir_env, suffix, example):
    folder, env = tmpdir_env
    source = packed(EXAMPLES / example, tmp_path, suffix)
    plain = run_kam("score", EXAMPLES / example, "-o", "plain.csv", "-q", cwd=tmp_path, env=env)
    done = run_kam("score", source, "-o", "packed.csv", "-q", cwd=tmp_path, env=env)
    assert plain.returncode == 0 and done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "packed.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    rejects, expected = (helpers.read_rejects(tmp_path / name) for name in ("packed.csv", "plain.csv"))
    assert rejects.height > 0 and set(rejects["file"]) == {str(source)}
    assert rejects.drop("file").equals(expected.drop("file"))  # the same physical lines of the same text
    summary = helpers.read_summary(tmp_path / "packed.csv")
    name = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}[suffix]
    assert f"{source}: {name}-compressed, read inflated" in summary["notes"]
    assert summary["inputs"][0]["encoding"] == helpers.read_summary(tmp_path / "plain.csv")["inputs"][0]["encoding"]
    assert list(folder.iterdir()) == []


def test_compressed_json_lines_are_read_line_by_line(tmp_path):
    import polars as pl

    lines = tmp_path / "export.jsonl"
    pl.read_csv(EXAMPLES / "opportunities_en.csv", infer_schema=False).write_ndjson(lines)
    source = packed(lines, tmp_path, ".gz")
    for name, path in (("plain.csv", lines), ("packed.csv", source)):
        done = run_kam("score", path, "-o", name, "-q", cwd=tmp_path)
        assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "packed.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    summary = helpers.read_summary(tmp_path / "packed.csv")
    assert summary["inputs"][0]["importer"] == "jsonl"
    assert summary["notes"][:2] == [f"{source}: 25 record(s) read", f"{source}: gzip-compressed, read inflated"]


def zipped(folder: Path, name: str, members: dict[str, bytes]) -> Path:
    target = folder / name
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return target


@pytest.mark.parametrize("members", [
    ["opportunities_zh.csv"],
    ["export/", "export/opportunities_zh.csv", "__MACOSX/export/._opportunities_zh.csv", "export/.DS_Store"],
])
def test_a_zip_of_one_export_scores_as_the_export(tmp_path, tmpdir_env, members):
    """Also as macOS's Finder zips a folder: the folder, its resource forks and .DS_Store beside the file."""
    folder, env = tmpdir_env
    data = (EXAMPLES / "opportunities_zh.csv").read_bytes()
    source = zipped(tmp_path, "export.zip", {m: (data if m.endswith("zh.csv") and "MACOSX" not in m else b"\0\5junk")
                                             for m in members if not m.endswith("/")})
    plain = run_kam("score", EXAMPLES / "opportunities_zh.csv", "-o", "plain.csv", "-q", cwd=tmp_path, env=env)
    done = run_kam("score", source, "-o", "zipped.csv", "-q", cwd=tmp_path, env=env)
    assert plain.returncode == 0 and done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "zipped.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    rejects, expected = (helpers.read_rejects(tmp_path / name) for name in ("zipped.csv", "plain.csv"))
    assert set(rejects["file"]) == {str(source)} and rejects.drop("file").equals(expected.drop("file"))
    member = [m for m in members if m.endswith("zh.csv") and "MACOSX" not in m][0]
    assert f"{source}: a zip archive; its file {member} was read" in helpers.read_summary(tmp_path / "zipped.csv")["notes"]
    assert list(folder.iterdir()) == []


def test_a_zip_of_several_files_says_to_unzip_it(tmp_path):
    data = (EXAMPLES / "opportunities_en.csv").read_bytes()
    source = zipped(tmp_path, "export.zip", {"Opportunity.csv": data, "Account.csv": data})
    done = run_kam("score", source, "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 4
    line = one_error_line(done.stderr.decode())
    assert line == (f"kam: unreadable input: {source}: a zip archive of 2 files: Opportunity.csv, Account.csv; kam "
                    "reads an archive that holds one export (hint: unzip it and score the export(s) inside: "
                    "kam score FILE [FILE …])")
    assert not (tmp_path / "out.csv").exists()


def test_the_default_output_name_drops_the_compression_suffix(tmp_path):
    source = packed(EXAMPLES / "opportunities_en.csv", tmp_path, ".gz")
    done = run_kam("score", source.name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "opportunities_en.scored.csv").is_file()


@pytest.mark.parametrize("damage, says", [
    (lambda data: data[: len(data) // 2], "the gzip data ends early (the file was cut off)"),
    (lambda data: data[:10] + bytes(b ^ 0x5A for b in data[10:40]) + data[40:], "the gzip data is damaged: "),
])
def test_a_damaged_or_cut_off_file_is_one_line_and_exit_4(tmp_path, tmpdir_env, damage, says):
    folder, env = tmpdir_env
    source = tmp_path / "export.csv.gz"
    source.write_bytes(damage(gzip.compress((EXAMPLES / "opportunities_en.csv").read_bytes())))
    done = run_kam("score", source, "-o", "out.csv", cwd=tmp_path, env=env)
    assert done.returncode == 4
    line = one_error_line(done.stderr.decode())
    assert line.startswith(f"kam: unreadable input: {source}: {says}")
    assert not (tmp_path / "out.csv").exists() and list(folder.iterdir()) == []


def test_a_decompression_bomb_is_refused_before_it_fills_the_disk(tmp_path, tmpdir_env):
    """20 MB of rows from 20 KB: refused once the inflated text passes 200 times the file's size."""
    folder, env = tmpdir_env
    source = tmp_path / "bomb.csv.gz"
    source.write_bytes(gzip.compress(b"opportunity_id,stage\n" + b"OPP-1,won\n" * 2_000_000, 9))
    assert source.stat().st_size * 200 < 20_000_000
    done = run_kam("score", source, "-o", "out.csv", cwd=tmp_path, env=env)
    assert done.returncode == 4
    line = one_error_line(done.stderr.decode())
    assert f"{source}: inflates to more than 200 times its size: refused as a decompression bomb" in line
    assert "KAM_MAX_INFLATE_RATIO" in line
    assert not (tmp_path / "out.csv").exists() and list(folder.iterdir()) == []


def test_the_inflate_ratio_limit_can_be_set(tmp_path):
    """An export that inflates about 5 times: read by default, refused under a limit of 2."""
    rows = helpers.table(helpers.sample_rows(6000, seed=11))
    source = tmp_path / "export.csv.gz"
    source.write_bytes(gzip.compress(helpers.csv_text(rows).encode("utf-8")))
    text_size = len(helpers.csv_text(rows).encode("utf-8"))
    assert text_size > 1 << 20 and 2 < text_size / source.stat().st_size < 200
    assert run_kam("score", source, "-o", "out.csv", "-q", cwd=tmp_path).returncode == 0
    summary = json.loads((tmp_path / "out.csv.summary.json").read_text(encoding="utf-8"))
    assert summary["rows"]["in"] == 6000
    limited = run_kam("score", source, "-o", "limited.csv", cwd=tmp_path, env={"KAM_MAX_INFLATE_RATIO": "2"})
    assert limited.returncode == 4
    assert "inflates to more than 2 times its size" in one_error_line(limited.stderr.decode())


def test_inspect_shows_what_a_compressed_file_holds(tmp_path):
    source = packed(EXAMPLES / "opportunities_zh.csv", tmp_path, ".xz")
    done = run_kam("inspect", source, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "importer    csv" in out and "encoding    gb18030" in out and f"{source}: xz-compressed, read inflated" in out


@pytest.mark.parametrize("name, magic, what", [
    ("export.csv.zst", b"\x28\xb5\x2f\xfd", "Zstandard-compressed data"),
    ("export.7z", b"7z\xbc\xaf\x27\x1c\x00\x04", "a 7-Zip archive"),
    ("export.rar", b"Rar!\x1a\x07\x01\x00", "a RAR archive"),
])
def test_packings_kam_does_not_read_are_named_with_what_to_do(tmp_path, name, magic, what):
    source = tmp_path / name
    source.write_bytes(magic + bytes(range(256)) * 4)
    done = run_kam("score", source, "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 4
    line = one_error_line(done.stderr.decode())
    assert line.startswith(f"kam: unreadable input: {source}: this file is {what} (its name says {source.suffix}), ")
    assert line.endswith("(hint: unpack it first; kam reads CSV and JSON Lines packed with gzip, bzip2, xz or zip "
                         "itself)")


def test_an_input_refused_after_a_packed_one_was_inflated_leaves_no_copy_behind(tmp_path, tmpdir_env):
    folder, env = tmpdir_env
    source = packed(EXAMPLES / "opportunities_zh.csv", tmp_path, ".gz")
    done = run_kam("score", source, tmp_path / "missing.csv", "-o", "out.csv", cwd=tmp_path, env=env)
    assert done.returncode == 4
    assert one_error_line(done.stderr.decode()) == f"kam: unreadable input: {tmp_path / 'missing.csv'}: no such file"
    assert list(folder.iterdir()) == []


def test_a_zip_of_a_workbook_says_what_it_holds(tmp_path):
    """A workbook zipped again (to mail it) is a zip of a workbook, not one: kam names what it holds."""
    import openpyxl

    book = tmp_path / "export.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["opportunity_id", "stage"])
    workbook.active.append(["OPP-1", "won"])
    workbook.save(book)
    source = zipped(tmp_path, "export.zip", {"export.xlsx": book.read_bytes()})
    done = run_kam("score", source, "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 4
    assert one_error_line(done.stderr.decode()) == (
        f"kam: unreadable input: {source}: a zip archive of export.xlsx, not an Excel workbook (no xl/workbook.xml) "
        "(hint: unzip it and score what it holds (kam reads a zip of one CSV or JSON Lines file as it is))")


def test_a_csv_whose_first_header_starts_like_bzip2s_magic_is_text(tmp_path):
    """bzip2 files start with the letters BZh: a header such as BZh_id is not taken for one."""
    source = tmp_path / "export.csv"
    source.write_text("BZh9_ref,opportunity_id,stage\nA,OPP-1,won\n", encoding="utf-8")
    done = run_kam("score", source, "-o", "out.csv", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert helpers.read_csv(tmp_path / "out.csv")["BZh9_ref"].to_list() == ["A"]
