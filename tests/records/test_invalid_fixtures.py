"""Each file of fixtures/invalid/ gives exactly the one problem fixtures/invalid/EXPECTED.md lists for it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapter.records.chart import assemble
from adapter.records.loader import load_paths
from tests.conftest import FIXTURES

INVALID = FIXTURES / "invalid"
DIRECTORY = INVALID / "directory.json"
_ROW = re.compile(r"^\| `(?P<file>[^`]+)` \| [^|]+ \| `(?P<problem>[^`]+)` \| (?P<check>[^|]+) \|$")


@dataclass(frozen=True)
class Expected:
    file: str
    problem: str  # after "<file>: "; "…" stands for any text
    check: str

    def pattern(self, source: Path) -> re.Pattern[str]:
        parts = f"{source}: {self.problem}".split("…")
        return re.compile(".*".join(re.escape(p) for p in parts), re.DOTALL)


def expectations() -> list[Expected]:
    rows = [_ROW.match(line) for line in (INVALID / "EXPECTED.md").read_text(encoding="utf-8").splitlines()]
    return [Expected(m["file"], m["problem"], m["check"].strip()) for m in rows if m]


EXPECTED = expectations()


def problems_of(*paths: Path) -> list[str]:
    loaded = load_paths(list(paths))
    clinic = assemble(loaded.records)
    return [p.line() for p in loaded.problems + clinic.problems]


def test_every_fixture_has_one_row_and_every_row_a_fixture() -> None:
    files = sorted(p.name for p in INVALID.iterdir() if p.name not in {"directory.json", "EXPECTED.md"})
    listed = [e.file for e in EXPECTED]
    assert len(listed) == len(set(listed)), "a file listed twice"
    assert sorted(listed) == files


def test_the_directory_alone_is_valid() -> None:
    assert problems_of(DIRECTORY) == []


@pytest.mark.parametrize("expected", EXPECTED, ids=[e.file for e in EXPECTED])
def test_a_fixture_gives_exactly_its_problem(expected: Expected) -> None:
    source = INVALID / expected.file
    lines = problems_of(DIRECTORY, source)
    assert len(lines) == 1, lines
    assert expected.pattern(source).fullmatch(lines[0]), lines[0]
