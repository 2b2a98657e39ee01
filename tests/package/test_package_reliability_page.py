"""docs/reliability.md and the reliability tests agree: every case of the table names tests that exist, every
test of the case files is named on the page, and every test file the page names exists.

The case files test the command line and the engine (``tests/cli/``, ``tests/engine/``); this check reads the
page and those files and tests no single module, so it sits with the other whole-package checks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reliability.md"
TESTS = ROOT / "tests"
# the files whose tests the case table names, relative to tests/
CASE_FILES = ("cli/test_cli_user_errors.py", "engine/test_engine_run_safety.py", "cli/test_cli_entry_points.py")


def table_rows() -> list[tuple[int, list[str]]]:
    """``(case number, test names of its last column)`` of every numbered row of the case table."""
    rows = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| (\d+) \|", line)
        if m:
            last = line.rstrip().removesuffix("|").rsplit(" | ", 1)[1]
            rows.append((int(m.group(1)), re.findall(r"`(test_\w+)`", last)))
    return rows


def defined_tests() -> dict[str, str]:
    """``{test function name: file}`` of the module-level tests of the case files (``CASE_FILES``)."""
    out = {}
    for name in CASE_FILES:
        for node in ast.parse((TESTS / name).read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out[node.name] = name
    return out


def test_every_case_names_existing_tests():
    rows = table_rows()
    assert [n for n, _ in rows] == list(range(1, len(rows) + 1)), "cases are numbered 1, 2, 3, ..."
    assert len(rows) >= 45
    tests = defined_tests()
    for number, names in rows:
        assert names, f"case {number} of docs/reliability.md names no test"
        missing = [name for name in names if name not in tests]
        assert not missing, f"case {number} names tests that do not exist: {missing}"
    paths = re.findall(r"`(tests/[\w/]+\.py)`", PAGE.read_text(encoding="utf-8"))
    assert set(paths) >= {f"tests/{name}" for name in CASE_FILES}, "the page names every case file by its path"
    gone = [p for p in paths if not (ROOT / p).is_file()]
    assert not gone, f"docs/reliability.md names test files that do not exist: {gone}"


def test_every_case_test_is_on_the_page():
    text = PAGE.read_text(encoding="utf-8")
    unnamed = sorted(name for name in defined_tests() if f"`{name}`" not in text)
    assert not unnamed, f"tests not named in docs/reliability.md: {unnamed}"
