"""docs/reliability.md and the reliability tests agree: every case of the table names tests that exist, and
every test of the case files is named on the page."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reliability.md"
CASE_FILES = ("test_user_errors.py", "test_run_safety.py", "test_entry_points.py")


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
    """``{test function name: file}`` of the module-level tests in ``tests/reliability/``."""
    out = {}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out[node.name] = path.name
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


def test_every_case_test_is_on_the_page():
    text = PAGE.read_text(encoding="utf-8")
    unnamed = sorted(name for name, file in defined_tests().items() if file in CASE_FILES and f"`{name}`" not in text)
    assert not unnamed, f"tests not named in docs/reliability.md: {unnamed}"
