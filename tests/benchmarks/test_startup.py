"""benchmarks/startup.py: the table of medians and ratios, and one real timed run of `cosmic --help`."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO, load_script

SCRIPT = REPO / "benchmarks" / "startup.py"


@pytest.fixture(scope="module")
def startup():
    return load_script(SCRIPT)


def test_table_medians_and_ratio(startup):
    a, b = Path("before"), Path("after")
    results = {}
    for name in startup.COMMANDS:
        results[name, a] = [(4.0, 2.0), (6.0, 3.0), (5.0, 9.0)]
        results[name, b] = [(1.0, 1.0), (2.0, 0.5), (9.0, 0.75)]
    lines = startup.table(results, [a, b]).splitlines()
    assert len(lines) == 2 + len(startup.COMMANDS)
    assert lines[2] == "| `cosmic --help` | 5.00 / 3.00 | 2.00 / 0.75 | 0.40 / 0.25 |"


def test_help_runs_and_is_timed(startup):
    wall, cpu = startup.run_once(REPO / "src", ["--help"])
    assert wall > 0 and cpu > 0
