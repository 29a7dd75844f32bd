"""Write a generated docs page, or with --check fail when the page on disk is out of date."""

import sys
from pathlib import Path


def write_or_check(out: Path, text: str, script: str, argv: list[str]) -> int:
    if "--check" in argv:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            print(f"{out} is out of date: run python docs/{script}", file=sys.stderr)
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0
