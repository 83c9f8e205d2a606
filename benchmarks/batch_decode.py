"""Decoding many files: files per minute of one ``cosmic decompress`` per file (the shell loop a
ground station had) against one batch command (``cosmic decompress DIR -o OUT``) with 1 and 2
worker processes, all at ``--steps 0``.

    .venv/bin/python benchmarks/batch_decode.py [--files 8] [--side 256] [--model cosmic-small-vr]

The files are crops of the bundled NAIP scene coded with the shipped model. Every variant runs
the real command line in a fresh process (start-up and model loading included: that is what the
batch form saves). Timings on a shared CPU are noisy: only the ratios within one run mean anything.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COSMIC = [sys.executable, "-c", "from cosmic.cli import main; main()"]


def make_files(folder: Path, n: int, side: int, model: str) -> list[Path]:
    import cosmic
    from cosmic.data import sample_path
    from cosmic.io.images import load_rgb

    scene = load_rgb(sample_path()).pixels
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        top = int(rng.integers(0, scene.shape[0] - side + 1))
        left = int(rng.integers(0, scene.shape[1] - side + 1))
        path = folder / f"downlink{i:03d}.cosmic"
        path.write_bytes(cosmic.compress(scene[top: top + side, left: left + side], model=model))
        paths.append(path)
    return paths


def timed(cmds: list[list[str]]) -> float:
    t0 = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--model", default="cosmic-small-vr")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        files = make_files(tmp / "in", args.files, args.side, args.model)
        rows = []
        out = tmp / "loop"
        out.mkdir()
        loop = [COSMIC + ["decompress", str(f), "-o", str(out / f"{f.stem}.png"), "-q"] for f in files]
        rows.append(("one command per file (shell loop)", timed(loop)))
        for jobs in (1, 2):
            shutil.rmtree(tmp / "out", ignore_errors=True)
            cmd = COSMIC + ["decompress", str(tmp / "in"), "-o", str(tmp / "out"), "--jobs", str(jobs), "-q"]
            rows.append((f"one batch command, --jobs {jobs}", timed([cmd])))
    base = rows[0][1]
    print(f"{args.files} files of {args.side}x{args.side} px, --steps 0, model {args.model}")
    print(f"{'variant':40s} {'seconds':>8s} {'files/min':>10s} {'speed-up':>9s}")
    for name, seconds in rows:
        print(f"{name:40s} {seconds:8.1f} {args.files / seconds * 60:10.1f} {base / seconds:8.2f}x")


if __name__ == "__main__":
    main()
