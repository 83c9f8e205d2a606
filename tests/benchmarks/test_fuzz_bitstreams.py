"""A fixed-seed 30-case run of benchmarks/fuzz_bitstreams.py: every mutation kind, each case
decoded twice in a watchdog worker; no crash, hang, internal error or non-deterministic outcome."""

from __future__ import annotations


import pytest
from helpers import REPO, TINY_MODEL, load_script

SCRIPT = REPO / "benchmarks" / "fuzz_bitstreams.py"


@pytest.fixture(scope="module")
def fuzz():
    return load_script(SCRIPT)


def test_fixed_seed_fuzz_run_is_clean(fuzz):
    """Two cases of every kind (one with --conceal), issue 34's included."""
    n = 2 * len(fuzz.KINDS)
    stats = {}
    table = fuzz.run(n, seed=0, model=str(TINY_MODEL), timeout=120, stats=stats)
    assert sum(sum(c.values()) for c in table.values()) == n
    for kind, counts in table.items():
        assert counts["ok"] + counts["clean"] == 2, (kind, counts, fuzz.format_table(table))
    assert stats["peak_mb"] > 0 and 0 < stats["slowest_s"] <= stats["seconds"]


@pytest.mark.slow
def test_few_hundred_case_fuzz_run_is_clean(fuzz):
    """Issue 15's fixed-seed run of a few hundred cases (about 0.25 s of CPU a case); the 10,000
    case run is in benchmarks/results/fuzz_bitstreams-n10000-seed0.md."""
    table = fuzz.run(300, seed=1, model=str(TINY_MODEL), timeout=120)
    bad = {k: {o: c[o] for o in fuzz.BAD if c[o]} for k, c in table.items()}
    assert not any(bad.values()), fuzz.format_table(table)
    assert all(c["ok"] + c["clean"] == 20 for c in table.values())


def test_classify(fuzz):
    one = [3, "", "cosmic: error: x.cosmic: bad\n"]
    assert fuzz.classify([one, one]) == "clean"
    assert fuzz.classify([one, [3, "", "cosmic: error: other\n"]]) == "nondet"
    assert fuzz.classify([[70, "", "cosmic: internal error: X\n"]] * 2) == "internal"
    assert fuzz.classify([[0, "ab", ""]] * 2) == "ok"
    assert fuzz.classify("hang") == "hang"
    assert fuzz.classify([[3, "partial:", "cosmic: error: x\n"]] * 2) == "partial"
    assert fuzz.classify([one, one, [0, "ab", ""]]) == "api"  # the API decoded what the CLI refused
    assert fuzz.classify([one, one, [3, "", "BitstreamError: bad"]]) == "clean"
    assert fuzz.classify([one, one, [70, "", "OverflowError: x"]]) == "internal"
