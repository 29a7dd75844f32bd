"""Run every ```python example in the docs against the installed kamcore.

    python docs/run_examples.py            # all docs/*.md
    python docs/run_examples.py -v docs/plugins.md

Each block is written to its own temporary file and run with this Python in a fresh temporary
folder; a block that exits non-zero (or prints a traceback) fails the run. Blocks fenced as
```python are meant to run as they are; use ```text, ```toml or ```sh for anything else.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(path: Path):
    text = path.read_text(encoding="utf-8")
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        yield line, match.group(1)


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    paths = [Path(a) for a in argv if a != "-v"] or sorted(HERE.glob("*.md"))
    failed = 0
    total = 0
    for path in paths:
        for line, code in blocks(path):
            total += 1
            with tempfile.TemporaryDirectory() as folder:
                script = Path(folder) / "example.py"
                script.write_text(code, encoding="utf-8")
                run = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True,
                                     timeout=300)
            ok = run.returncode == 0 and "Traceback" not in run.stderr
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {path.name}:{line}")
            if verbose or not ok:
                for stream in (run.stdout, run.stderr):
                    if stream.strip():
                        print("    " + stream.rstrip().replace("\n", "\n    "))
    print(f"{total - failed} of {total} examples ran")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
