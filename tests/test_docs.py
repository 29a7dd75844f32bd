"""Meta-tests: every hook in kamcore.hookspecs is tested and documented with its exact arguments.

- tested: some function named like the hook and decorated with ``@hookimpl`` (or ``@hookimpl(...)``,
  ``@kamcore.hookimpl``) exists in a Python file under tests/ (test plugins included);
- documented: docs/plugins.md has the heading line ``### `hook_name(arg1, arg2)` `` with the spec's
  argument names in order.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from kamcore import hookspecs

TESTS = Path(__file__).parent
ROOT = TESTS.parent
PLUGINS_MD = ROOT / "docs" / "plugins.md"


def hook_specs() -> dict[str, list[str]]:
    """hook name -> argument names, in order, of every spec in kamcore.hookspecs."""
    specs = {}
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if getattr(function, "kamcore_spec", None) is not None:
            specs[name] = list(inspect.signature(function).parameters)
    return specs


HOOKS = hook_specs()


def _is_hookimpl(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "hookimpl") or \
        (isinstance(target, ast.Attribute) and target.attr == "hookimpl")


def implemented_in_tests() -> set[str]:
    """Names of the @hookimpl-decorated functions and methods in the test tree."""
    names = set()
    for path in TESTS.rglob("*.py"):
        if {"build", "__pycache__"} & set(path.relative_to(TESTS).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(map(_is_hookimpl, node.decorator_list)):
                names.add(node.name)
    return names


def test_the_hookspecs_are_found():
    assert len(HOOKS) >= 11
    assert HOOKS["register_criteria"] == ["register", "config"]
    assert HOOKS["score"] == ["batch", "config"]


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_has_a_test(hook):
    assert hook in implemented_in_tests(), f"no @hookimpl named {hook} in tests/: write a test for it"


def heading(hook: str) -> str:
    return f"### `{hook}({', '.join(HOOKS[hook])})`"


def missing_heading(hook: str, text: str) -> str | None:
    """Why ``text`` does not document ``hook`` properly, or None when it does."""
    lines = [line.rstrip() for line in text.splitlines()]
    if heading(hook) in lines:
        return None
    near = [line for line in lines if re.match(rf"#+\s*`?{hook}\b", line)]
    return f"docs/plugins.md needs the heading line {heading(hook)!r}" + (f"; found {near}" if near else "")


def test_the_checkers_catch_what_they_should():
    assert "not_a_hook" not in implemented_in_tests()
    good = "\n\n".join(heading(hook) + "\n\nWhat it does." for hook in HOOKS)
    assert all(missing_heading(hook, good) is None for hook in HOOKS)
    reordered = good.replace(heading("register_criteria"), "### `register_criteria(config, register)`")
    assert "found ['### `register_criteria(config, register)`']" in missing_heading("register_criteria", reordered)
    assert missing_heading("score", good.replace(heading("score"), "## `score(batch, config)`")) is not None


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_is_documented_with_its_arguments(hook):
    assert PLUGINS_MD.is_file(), f"{PLUGINS_MD.relative_to(ROOT)} is missing: every hook must be documented there"
    problem = missing_heading(hook, PLUGINS_MD.read_text(encoding="utf-8"))
    assert problem is None, problem
