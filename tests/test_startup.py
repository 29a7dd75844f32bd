"""`kam --help` and `kam --version` must not import the data libraries: they cost most of the start-up time.

Checked in a fresh interpreter, by which modules are loaded, never by timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("polars", "numpy", "sklearn", "scipy", "pandas", "pyarrow", "joblib", "openpyxl")

PROBE = """
import json, sys
from kamcore.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="kam")
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.stdin.readline())))
print("\\n" + json.dumps({"heavy": heavy, "plugins_loaded": "kamcore_plugins.scoring.scorecard" in sys.modules}))
"""


def loaded(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], input=json.dumps(HEAVY) + "\n",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("score", "--help"), ("train", "--help")])
def test_help_and_version_import_no_data_library(args):
    assert loaded(*args)["heavy"] == []


def test_help_lists_plugin_commands_with_plugins_loaded():
    # the check above is only meaningful if --help really loads the plugins that register commands
    assert loaded("--help")["plugins_loaded"] is True


def test_version_loads_no_plugin():
    assert loaded("--version")["plugins_loaded"] is False


def test_the_probe_sees_a_heavy_import():
    # the probe must be able to fail: a command that reads data does import polars
    proc = subprocess.run([sys.executable, "-c", PROBE.replace("pass\n", "pass\nimport polars\n", 1), "--help"],
                          input=json.dumps(HEAVY) + "\n", capture_output=True, text=True, timeout=120)
    assert json.loads(proc.stdout.strip().splitlines()[-1])["heavy"] == ["polars"]
