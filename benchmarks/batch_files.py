"""Many files: files per minute of one ``cosmic compress`` / ``decompress`` per file (the shell
loop) against one batch command (``cosmic compress DIR -o OUT``, ``cosmic decompress DIR -o OUT``)
with 1 and 2 worker processes.

    .venv/bin/python benchmarks/batch_files.py --command decompress [--files 8] [--side 256] [--model cosmic-small-vr]
    .venv/bin/python benchmarks/batch_files.py --command compress --data ../shared/data/ucmerced [--files 8]

``decompress``: the files are crops of the bundled NAIP scene coded with the shipped model,
decoded at ``--steps 0``. ``compress``: the first ``--side`` px square of ``--files`` UC Merced
val images, one per class in turn (``SPLITS.json``), at the default quality 3. Every variant
runs the real command line in a fresh process (start-up and model loading included: that is what
the batch form saves) and reports its wall seconds and the CPU seconds of it and its workers
(user + system). Timings on a shared CPU are noisy: only the ratios within one run mean much, and
the CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COSMIC = [sys.executable, "-c", "from cosmic.cli import main; main()"]


def coded_crops(folder: Path, n: int, side: int, model: str) -> list[Path]:
    """``n`` .cosmic files: random crops of the bundled NAIP scene."""
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


def val_crops(folder: Path, n: int, side: int, data: Path) -> list[Path]:
    """``n`` PNGs: the top-left ``side`` px of UC Merced val images, one class after another."""
    from PIL import Image

    splits = json.loads((data / "SPLITS.json").read_text())
    by_class: dict[str, list[str]] = {}
    for name in splits["val"]:
        by_class.setdefault(name.split("/")[0], []).append(name)
    classes = sorted(by_class)
    names = [by_class[classes[i % len(classes)]][i // len(classes)] for i in range(n)]
    paths = []
    for name in names:
        path = folder / Path(name).name
        with Image.open(data / name) as im:
            im.convert("RGB").crop((0, 0, side, side)).save(path)
        paths.append(path)
    return paths


def timed(cmds: list[list[str]]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the commands and their workers) of running ``cmds`` in turn."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def variants(command: str, files: list[Path], tmp: Path, threads: int) -> list[tuple[str, float, float]]:
    """(name, wall s, CPU s) of the shell loop and of the batch command with --jobs 1 and 2."""
    suffix = ".cosmic" if command == "compress" else ".png"
    extra = ["-q"] + (["--threads", str(threads)] if threads else [])
    (tmp / "loop").mkdir()
    loop = [COSMIC + [command, str(f), "-o", str(tmp / "loop" / (f.stem + suffix))] + extra for f in files]
    rows = [("one command per file (shell loop)", *timed(loop))]
    for jobs in (1, 2):
        shutil.rmtree(tmp / "out", ignore_errors=True)
        cmd = COSMIC + [command, str(files[0].parent), "-o", str(tmp / "out"), "--jobs", str(jobs)] + extra
        rows.append((f"one batch command, --jobs {jobs}", *timed([cmd])))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--command", choices=("compress", "decompress"), default="decompress")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--model", default="cosmic-small-vr", help="decompress: the model that codes the files")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/ucmerced"), help="compress: UC Merced")
    ap.add_argument("--threads", type=int, default=0, help="--threads of every command (0: not given)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        if args.command == "compress":
            files = val_crops(tmp / "in", args.files, args.side, args.data)
        else:
            files = coded_crops(tmp / "in", args.files, args.side, args.model)
        rows = variants(args.command, files, tmp, args.threads)
    base = rows[0][1]
    what = "UC Merced val crops, quality 3" if args.command == "compress" else f"--steps 0, model {args.model}"
    print(f"cosmic {args.command}: {args.files} files of {args.side}x{args.side} px, {what}")
    print(f"{'variant':40s} {'wall s':>8s} {'files/min':>10s} {'speed-up':>9s} {'CPU s':>8s} {'CPU s/file':>10s}")
    for name, wall, cpu in rows:
        print(f"{name:40s} {wall:8.1f} {args.files / wall * 60:10.1f} {base / wall:8.2f}x {cpu:8.1f} "
              f"{cpu / args.files:10.2f}")


if __name__ == "__main__":
    main()
