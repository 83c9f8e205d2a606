"""Shared by the benchmark scripts: best-of-N wall time (the least disturbed run on a shared CPU)."""

from __future__ import annotations

import time


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
