"""A third-party plugin, installed as its own package, reaches `kam` through its entry point alone.

One temporary venv per session sees the environment running the tests (kamcore, polars, pluggy, pip)
through a .pth file, and gets two real packages pip-installed into it: tests/plugins/kam_example_plugin
(entry point ``example``) and tests/plugins/kam_broken_plugin (entry point ``broken``, whose import
fails). Everything is then run as ``<venv>/bin/kam`` in a subprocess.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

HERE = Path(__file__).parent
PACKAGES = [HERE / "plugins" / "kam_example_plugin", HERE / "plugins" / "kam_broken_plugin"]
EXAMPLE_HOOKS = ["qualify", "qualify_columns", "register_column_labels", "register_commands",
                 "register_config_defaults", "register_criteria", "score", "score_columns"]
NEW_COLUMNS = ["p11_references", "example_qualified", "example_referenced", "reference_count", "references_share"]


def _can_build_without_isolation() -> bool:
    """setuptools builds wheels by itself from 70.1; before that it needs the `wheel` package."""
    if importlib.util.find_spec("wheel") is not None:
        return True
    try:
        major, minor = (int(p) for p in importlib.metadata.version("setuptools").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (70, 1)


def clean_environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAM_")}
    env.update(extra)
    return env


class Venv:
    def __init__(self, root: Path):
        self.root = root
        self.python = root / "bin" / "python"
        self.kam = root / "bin" / "kam"

    def run(self, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.kam), *args], cwd=cwd, env=clean_environ(**env), capture_output=True,
                              text=True, timeout=120)


@pytest.fixture(scope="session")
def plugin_venv(tmp_path_factory) -> Venv:
    venv = Venv(tmp_path_factory.mktemp("plugin-venv") / "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv.root)], check=True, timeout=120)
    purelib = Path(subprocess.run([str(venv.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    # A venv made from a venv does not see its parent's packages, even with --system-site-packages
    # (its base is the interpreter the parent was made from), so point it at them explicitly;
    # addsitedir also runs the parent's .pth files, which is how an editable kamcore is found.
    (purelib / "_kamcore_tests_parent.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in site.getsitepackages()), encoding="utf-8")
    flags = ["--no-build-isolation"] if _can_build_without_isolation() else []
    # build from copies: setuptools leaves build/ and *.egg-info beside the sources it builds
    sources = [shutil.copytree(p, venv.root.parent / "src" / p.name,
                               ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")) for p in PACKAGES]
    installed = subprocess.run(
        [str(venv.python), "-m", "pip", "install", "--no-deps", "--no-input", "--disable-pip-version-check", "-q",
         *flags, *map(str, sources)],
        capture_output=True, text=True, timeout=300, env=clean_environ())
    assert installed.returncode == 0, f"pip install failed:\n{installed.stdout}\n{installed.stderr}"
    # the console script pip writes for kamcore's [project.scripts] kam = "kamcore.cli:main"
    venv.kam.write_text(f"#!{venv.python}\nimport sys\nfrom kamcore.cli import main\nsys.exit(main())\n",
                        encoding="utf-8")
    venv.kam.chmod(0o755)
    return venv


@pytest.fixture
def work(tmp_path, export_csv) -> Path:
    return tmp_path


def test_the_plugins_are_not_installed_in_the_test_environment():
    names = {ep.name for ep in importlib.metadata.entry_points(group="kamcore")}
    assert not names & {"example", "broken"}, "the test plugins must only exist inside the temporary venv"


def test_kam_plugins_lists_the_third_party_plugin_and_the_broken_one(plugin_venv, work):
    result = plugin_venv.run("plugins", cwd=work)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"example", "broken"}  # built-ins are left out without --all
    assert rows["example"] == {"name": "example", "version": "0.3.0", "builtin": False, "hooks": EXAMPLE_HOOKS}
    assert rows["broken"]["hooks"] == []
    assert "kam_dependency_that_is_not_installed" in rows["broken"]["error"]
    assert "ModuleNotFoundError" in rows["broken"]["error"]
    assert "broken" in result.stderr and "failed to import" in result.stderr


def test_kam_plugins_all_includes_builtins_and_the_error(plugin_venv, work):
    result = plugin_venv.run("plugins", "--all", cwd=work)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert {"csv_importer", "scorecard", "writers", "stakeholders", "example", "broken"} <= set(by_name)
    assert by_name["scorecard"]["builtin"] is True and by_name["example"]["builtin"] is False
    assert "error" not in by_name["example"] and "error" not in by_name["scorecard"]
    assert by_name["broken"]["error"].startswith("ModuleNotFoundError")


def test_kam_plugins_hook_filter_through_a_subprocess(plugin_venv, work):
    result = plugin_venv.run("plugins", "--all", "--hook", "register_criteria", cwd=work, KAM_DISABLE_PLUGINS="broken")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["example", "scorecard", "win_block"]
    assert all("register_criteria" in r["hooks"] for r in rows)
    assert result.stderr == ""  # broken is disabled, so not even tried


def _builtin_criteria():
    """The built-in criteria, read in this process (the test environment has only the built-ins)."""
    from kamcore.config import load_config
    from kamcore.plugins import Kam

    kam = Kam()
    return list(kam.criteria(load_config(None, kam.config_defaults())))


def _percent(frame: pl.DataFrame, criteria: list[tuple[str, float, float]]) -> list[float]:
    """100 × Σ weight × points / Σ weight × max, unknown criteria counting 0: the documented block score."""
    top = sum(w * m for _, w, m in criteria)
    got = frame.select(pl.sum_horizontal([pl.col(col).fill_null(0) * w for col, w, _ in criteria])).to_series()
    return [100 * g / top for g in got.to_list()]


def test_example_plugin_adds_a_criterion_and_score_columns(plugin_venv, work):
    with_plugin = plugin_venv.run("score", "export.csv", "-o", "with.csv", cwd=work, KAM_DISABLE_PLUGINS="broken")
    assert with_plugin.returncode == 0, with_plugin.stderr
    without = plugin_venv.run("score", "export.csv", "-o", "without.csv", cwd=work,
                              KAM_DISABLE_PLUGINS="broken,example")
    assert without.returncode == 0, without.stderr
    a, b = pl.read_csv(work / "with.csv"), pl.read_csv(work / "without.csv")

    assert set(NEW_COLUMNS) <= set(a.columns)
    assert not set(NEW_COLUMNS) & set(b.columns)
    assert a["opportunity_id"].to_list() == b["opportunity_id"].to_list() == [f"OPP-{i}" for i in range(1, 6)]
    # notes: two refs; empty (unknown); four refs (capped at 3); none; one
    assert a["p11_references"].to_list() == [2.0, None, 3.0, 0.0, 1.0]
    assert a["reference_count"].to_list() == [2, 0, 4, 0, 1]
    assert a["references_share"].to_list() == [0.667, None, 1.0, 0.0, 0.333]
    assert a["example_qualified"].to_list() == [True, True, True, False, True]  # 80,000 < min_deal 100000
    assert a["example_referenced"].to_list() == [True, False, True, False, True]
    assert a["unknown_criteria"].to_list() == [u + (i == 1) for i, u in enumerate(b["unknown_criteria"].to_list())]

    # the built-in criteria are untouched; the Worth block and the total now include criterion 11
    builtin = _builtin_criteria()
    for k in builtin:
        assert a[k.column].to_list() == b[k.column].to_list(), k.column
    worth = [(k.column, k.weight, k.max_points) for k in builtin if k.block == "worth"]
    every = [(k.column, k.weight, k.max_points) for k in builtin]
    ours = [("p11_references", 1.0, 3.0)]
    assert b["worth_score"].to_list() == pytest.approx(_percent(b, worth), abs=0.051)
    assert a["worth_score"].to_list() == pytest.approx(_percent(a, worth + ours), abs=0.051)
    assert a["total_score"].to_list() == pytest.approx(_percent(a, every + ours), abs=0.051)
    assert a["real_score"].to_list() == b["real_score"].to_list()
    assert a["worth_score"].to_list() != b["worth_score"].to_list()
    assert a["total_score"].to_list() != b["total_score"].to_list()

    summary = json.loads((work / "with.csv.summary.json").read_text(encoding="utf-8"))
    assert "p11_references" in summary["columns"]["criteria"]
    assert "references_share" in summary["columns"]["scores"]
    assert {"name": "example", "version": "0.3.0"} in summary["plugins"]
    assert summary["plugins_failed"] == {}


def test_example_plugin_labels_its_columns_in_the_workbook_guide_and_kam_columns(plugin_venv, work):
    import openpyxl

    scored = plugin_venv.run("score", "export.csv", "-o", "out.xlsx", cwd=work, KAM_DISABLE_PLUGINS="broken")
    assert scored.returncode == 0, scored.stderr
    workbook = openpyxl.load_workbook(work / "out.xlsx", read_only=True)
    assert workbook.sheetnames == ["scored", "列说明 Columns"]
    header = next(workbook["scored"].iter_rows(values_only=True))
    guide = list(workbook["列说明 Columns"].iter_rows(values_only=True))[1:]
    assert [row[0] for row in guide] == list(header)
    rows = {row[0]: row[1:] for row in guide}
    assert rows["reference_count"] == ("推荐人数", "References named", "备注中 ref: 的次数 / times notes write ref:")
    assert rows["references_share"][:2] == ("推荐得分率", "References share")
    assert rows["example_referenced"][:2] == ("有推荐", "Referenced")
    assert rows["p11_references"][:2] == ("11. 客户推荐", "11. references")  # the core labels a criterion
    assert rows["example_qualified"] == (None, None, None)  # not labelled by its plugin: the name alone

    listed = plugin_venv.run("columns", "--format", "csv", cwd=work, KAM_DISABLE_PLUGINS="broken")
    assert listed.returncode == 0, listed.stderr
    table = pl.read_csv(listed.stdout.encode("utf-8"))
    by_name = {row["column"]: row for row in table.iter_rows(named=True)}
    assert set(NEW_COLUMNS) <= set(by_name)
    assert by_name["reference_count"]["label_zh"] == "推荐人数"
    without = plugin_venv.run("columns", "--format", "csv", cwd=work, KAM_DISABLE_PLUGINS="broken,example")
    assert not set(NEW_COLUMNS) & set(pl.read_csv(without.stdout.encode("utf-8"))["column"].to_list())


def test_example_plugin_command_and_config_defaults(plugin_venv, work):
    result = plugin_venv.run("example-refs", cwd=work, KAM_DISABLE_PLUGINS="broken")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "marker=ref:"

    init = plugin_venv.run("init", "-o", "kam.toml", cwd=work, KAM_DISABLE_PLUGINS="broken")
    assert init.returncode == 0, init.stderr
    text = (work / "kam.toml").read_text(encoding="utf-8")
    assert "[example]" in text and 'marker = "ref:"' in text and "[scorecard]" in text

    # the user's kam.toml overrides the plugin's default, and the criterion follows it
    (work / "kam.toml").write_text(text.replace('marker = "ref:"', 'marker = "推荐:"'), encoding="utf-8")
    assert plugin_venv.run("example-refs", cwd=work, KAM_DISABLE_PLUGINS="broken").stdout.strip() == "marker=推荐:"
    (work / "export.csv").write_text((work / "export.csv").read_text(encoding="utf-8").replace("ref:", "推荐:"),
                                     encoding="utf-8")
    scored = plugin_venv.run("score", "export.csv", "-o", "out.csv", cwd=work, KAM_DISABLE_PLUGINS="broken")
    assert scored.returncode == 0, scored.stderr
    assert pl.read_csv(work / "out.csv")["p11_references"].to_list() == [2.0, None, 3.0, 0.0, 1.0]


def test_a_plugin_that_fails_to_import_is_named_and_skipped(plugin_venv, work):
    result = plugin_venv.run("score", "export.csv", "-o", "out.csv", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "'broken'" in result.stderr and "failed to import" in result.stderr
    assert "kam_dependency_that_is_not_installed" in result.stderr
    assert "5 rows: 5 scored, 0 rejected" in result.stderr
    scored = pl.read_csv(work / "out.csv")
    assert scored.height == 5 and "p11_references" in scored.columns  # the other plugins still ran
    summary = json.loads((work / "out.csv.summary.json").read_text(encoding="utf-8"))
    assert list(summary["plugins_failed"]) == ["broken"]
    assert "ModuleNotFoundError" in summary["plugins_failed"]["broken"]


def test_strict_mode_makes_an_import_failure_fatal(plugin_venv, work):
    result = plugin_venv.run("score", "export.csv", "-o", "out.csv", cwd=work, KAM_STRICT_PLUGINS="1")
    assert result.returncode == 7, (result.returncode, result.stderr)
    assert "plugin error" in result.stderr and "'broken'" in result.stderr
    assert not (work / "out.csv").exists()

    plugins = plugin_venv.run("plugins", "--all", cwd=work, KAM_STRICT_PLUGINS="1")
    assert plugins.returncode == 7 and "'broken'" in plugins.stderr

    disabled = plugin_venv.run("score", "export.csv", "-o", "out.csv", cwd=work, KAM_STRICT_PLUGINS="1",
                               KAM_DISABLE_PLUGINS="broken")
    assert disabled.returncode == 0, disabled.stderr
    assert (work / "out.csv").exists()


def test_load_switch_selects_entry_points_in_a_subprocess(plugin_venv, work):
    only = plugin_venv.run("plugins", "--all", cwd=work, KAM_LOAD_PLUGINS="example,scorecard")
    assert [r["name"] for r in json.loads(only.stdout)] == ["example", "scorecard"]
    assert only.stderr == ""
    none = plugin_venv.run("plugins", "--all", cwd=work, KAM_LOAD_PLUGINS="")
    assert json.loads(none.stdout) == []


@pytest.mark.parametrize("name", ["opportunities_zh.csv", "opportunities_en.csv"])
def test_example_plugin_on_the_example_exports(plugin_venv, work, name):
    source = HERE.parent / "examples" / name
    assert source.is_file(), f"{source} is missing"
    runs = {}
    for label, disabled in (("with", "broken"), ("without", "broken,example")):
        result = plugin_venv.run("score", str(source), "-o", f"{label}.csv", cwd=work, KAM_DISABLE_PLUGINS=disabled)
        assert result.returncode == 0, result.stderr
        summary = json.loads((work / f"{label}.csv.summary.json").read_text(encoding="utf-8"))
        runs[label] = (pl.read_csv(work / f"{label}.csv", infer_schema_length=None), summary)
    (a, sa), (b, sb) = runs["with"], runs["without"]
    assert sa["rows"] == sb["rows"] and sa["rows"]["in"] == sa["rows"]["scored"] + sa["rows"]["rejected"]
    assert a["opportunity_id"].to_list() == b["opportunity_id"].to_list()
    assert (a["p11_references"].is_null() == a["notes"].is_null()).all()
    for k in _builtin_criteria():
        assert a[k.column].to_list() == b[k.column].to_list(), k.column
    assert a["real_score"].to_list() == b["real_score"].to_list()
    assert set(NEW_COLUMNS) <= set(a.columns) and not set(NEW_COLUMNS) & set(b.columns)
