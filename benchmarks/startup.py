"""Start-up of the ``cosmic`` command (issue 17 item 6): wall and CPU time of fresh processes.

    .venv/bin/python benchmarks/startup.py [--runs 5] [--src src] [--src OTHER/src] [--out FILE.md]

Runs ``cosmic --help``, ``cosmic info FILE`` and ``cosmic decompress FILE -o OUT.png --steps 0``
(FILE: a 128x128 image coded by the default model, made once) as ``python -m cosmic.cli`` in new
interpreters, each ``--src`` tree in turn (PYTHONPATH), runs interleaved so that both trees see the
same machine load. Reports the median wall time and the median CPU time (user + system of the
child: on a loaded machine the closer figure to an idle machine's wall time) and, with two trees,
the ratio second / first.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {"--help": ["--help"], "info": ["info", "{file}"],
            "decompress --steps 0": ["decompress", "{file}", "-o", "{out}", "--steps", "0", "-q", "--threads", "1"]}


def run_once(src: Path, args: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one ``python -m cosmic.cli ARGS`` with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "cosmic.cli", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit(f"cosmic {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def small_file(src: Path, work: Path) -> Path:
    """A 128x128 noise image coded by the default model (the decode cost does not depend on content)."""
    import numpy as np
    from PIL import Image

    png, coded = work / "small.png", work / "small.cosmic"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(png)
    run_once(src, ["compress", str(png), "-o", str(coded), "-q", "--threads", "1"])
    return coded


def measure(srcs: list[Path], runs: int, work: Path) -> dict:
    """{(command, src): [(wall, cpu), ...]}, trees interleaved run by run."""
    fields = {"file": str(small_file(srcs[-1], work)), "out": str(work / "out.png")}
    results: dict = {}
    for name, template in COMMANDS.items():
        args = [a.format(**fields) for a in template]
        for src in srcs:
            run_once(src, args)  # warm the file cache; not counted
        for _ in range(runs):
            for src in srcs:
                results.setdefault((name, src), []).append(run_once(src, args))
    return results


def table(results: dict, srcs: list[Path]) -> str:
    """Markdown: median wall and CPU per command and tree, and the ratio of the last tree to the first."""
    head = "| command | " + " | ".join(f"wall / CPU s: {s}" for s in srcs)
    lines = [head + (" | ratio wall / CPU |" if len(srcs) > 1 else " |"),
             "|" + " --- |" * (len(srcs) + 1 + (len(srcs) > 1))]
    for name in COMMANDS:
        med = [(statistics.median(w for w, _ in results[name, s]), statistics.median(c for _, c in results[name, s]))
               for s in srcs]
        cells = [f"{w:.2f} / {c:.2f}" for w, c in med]
        if len(srcs) > 1:
            cells.append(f"{med[-1][0] / med[0][0]:.2f} / {med[-1][1] / med[0][1]:.2f}")
        lines.append(f"| `cosmic {name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per command and tree (median reported)")
    p.add_argument("--src", type=Path, action="append", help="source tree(s) to time (default: this repo's src)")
    p.add_argument("--out", type=Path, help="also write the table to this file")
    a = p.parse_args(argv)
    srcs = [s.resolve() for s in (a.src or [REPO / "src"])]
    with tempfile.TemporaryDirectory() as work:
        results = measure(srcs, a.runs, Path(work))
    text = (f"{a.runs} runs each, median; load average at the end "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs\n\n{table(results, srcs)}\n")
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
