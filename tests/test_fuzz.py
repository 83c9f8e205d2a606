"""A fixed-seed 30-case run of benchmarks/fuzz_bitstreams.py: every mutation kind, each case
decoded twice in a watchdog worker; no crash, hang, internal error or non-deterministic outcome."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers import TINY_MODEL

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_bitstreams.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_bitstreams", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fixed_seed_fuzz_run_is_clean(fuzz):
    table = fuzz.run(30, seed=0, model=str(TINY_MODEL), timeout=120)
    assert sum(sum(c.values()) for c in table.values()) == 30
    for kind, counts in table.items():
        assert counts["ok"] + counts["clean"] == 3, (kind, counts, fuzz.format_table(table))


def test_classify(fuzz):
    one = [3, "", "cosmic: error: x.cosmic: bad\n"]
    assert fuzz.classify([one, one]) == "clean"
    assert fuzz.classify([one, [3, "", "cosmic: error: other\n"]]) == "nondet"
    assert fuzz.classify([[70, "", "cosmic: internal error: X\n"]] * 2) == "internal"
    assert fuzz.classify([[0, "ab", ""]] * 2) == "ok"
    assert fuzz.classify("hang") == "hang"
