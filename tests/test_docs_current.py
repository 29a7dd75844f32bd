"""The generated docs match the code, and every Python example in docs/ runs."""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("script", ["gen_schema.py", "gen_cli.py", "gen_columns.py"])
def test_generated_docs_are_current(script):
    proc = subprocess.run([sys.executable, str(DOCS / script), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_python_example_in_the_docs_runs():
    proc = subprocess.run([sys.executable, str(DOCS / "run_examples.py")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " examples ran" in proc.stdout
