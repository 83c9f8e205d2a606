"""Is a decode a pure function of the file? Decodes the same files every way a user can and counts
the 8-bit samples that differ from the reference (issue 34 §1), and times a 256-px tile's decode.

    .venv/bin/python benchmarks/decode_determinism.py [--files 100] [--height 256] [--width 512]
    .venv/bin/python benchmarks/decode_determinism.py --timing [--files 4] [--repeats 3] [--before SRC]

Determinism (default): ``--files`` random crops of the bundled NAIP scene, each at a random quality
of the shipped model, are decoded with ``cosmic decompress DIR -o OUT`` at ``--threads 1`` (the
reference), ``--threads 2`` and ``4``, ``--jobs 2``, through the Python API (``cosmic.decompress``,
torch's default threads) and, with every other tile's payload corrupted (CRC fails), with
``--conceal`` at ``--threads 3`` (where a float32 synthesis gave a tile other pixels in a smaller
batch): there only the intact tiles are compared, less the 8 px next to a lost tile that the
default border filter blends with the concealed fill. Every variant is a fresh process.

Timing (``--timing``): seconds per 256-px tile of the in-process decode (``decode_scene``, model
loaded beforehand, best of ``--repeats``) at 1 and 2 torch threads; with ``--before SRC`` (the
``src`` folder of another checkout, e.g. ``git archive HEAD~1 src | tar -x -C /tmp/before``) the
same files are timed with that code too, in turn in the same run, and the ratio is printed.

``--src`` runs every variant on another checkout's code (the "before" counts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COSMIC = [sys.executable, "-c", "from cosmic.cli import main; main()"]

API_SCRIPT = """
import sys
from pathlib import Path
import cosmic
from PIL import Image
for f in sorted(Path(sys.argv[1]).glob("*.cosmic")):
    Image.fromarray(cosmic.decompress(f)).save(Path(sys.argv[2]) / (f.stem + ".png"))
"""

TIMING_SCRIPT = """
import json, sys, time
import torch
from cosmic.ground.scene import decode_scene
from cosmic.io.container import read_container
from cosmic.zoo import load_model
torch.set_num_threads(int(sys.argv[1]))
model = load_model(sys.argv[2])
containers = [read_container(p) for p in sys.argv[3:]]
decode_scene(model, containers[0])  # warm-up (caches, the float64 copy)
t0 = time.perf_counter()
for c in containers:
    decode_scene(model, c)
print(json.dumps((time.perf_counter() - t0) / sum(c.header.num_tiles for c in containers)))
"""


def coded_crops(folder: Path, n: int, height: int, width: int, model: str) -> list[Path]:
    """``n`` .cosmic files: random crops of the bundled NAIP scene at random qualities."""
    import cosmic
    from cosmic.data import sample_path
    from cosmic.io.images import load_rgb
    from cosmic.zoo import load_onboard

    scene = load_rgb(sample_path()).pixels
    low, high = load_onboard(model)[0].quality_range
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        top = int(rng.integers(0, scene.shape[0] - height + 1))
        left = int(rng.integers(0, scene.shape[1] - width + 1))
        quality = round(float(rng.uniform(low, high)), 2)
        path = folder / f"f{i:03d}.cosmic"
        path.write_bytes(cosmic.compress(scene[top: top + height, left: left + width], quality=quality, model=model))
        paths.append(path)
    return paths


def lose_every_other_tile(path: Path, out: Path) -> list[int]:
    """Write ``path`` to ``out`` with one byte of every other tile's payload flipped (tiles 1, 3, ...
    of a row-major chequerboard); returns the lost tiles' indices."""
    from cosmic.io.container import read_container

    data = bytearray(path.read_bytes())
    c = read_container(path)
    h = c.header
    lost = [i for i in range(h.num_tiles) if (i // h.cols + i % h.cols) % 2 == 1]
    for i in lost:
        data[c.offsets[i] + c.entries[i][0] // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    return lost


def run(cmd: list[str], env: dict) -> float:
    """Wall seconds of ``cmd`` (which must succeed)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - t0


def decode_variants(files: Path, lossy: Path, tmp: Path, env: dict) -> dict[str, tuple[Path, float]]:
    """Each variant's output folder and wall seconds."""
    cli = {"--threads 1 (reference)": ["--threads", "1"], "--threads 2": ["--threads", "2"],
           "--threads 4": ["--threads", "4"], "--jobs 2": ["--jobs", "2", "--threads", "1"]}
    out = {}
    for k, (name, extra) in enumerate(cli.items()):
        folder = tmp / f"v{k}"
        out[name] = folder, run(COSMIC + ["decompress", str(files), "-o", str(folder), "-q"] + extra, env)
    folder = tmp / "api"
    folder.mkdir()
    out["API (cosmic.decompress)"] = folder, run([sys.executable, "-c", API_SCRIPT, str(files), str(folder)], env)
    folder = tmp / "lost"
    out["every other tile lost, --threads 3"] = folder, run(
        COSMIC + ["decompress", str(lossy), "-o", str(folder), "-q", "--conceal", "--threads", "3"], env)
    return out


def tile_mask(shape: tuple[int, int], tile: int, cols: int, lost: list[int], margin: int = 0) -> np.ndarray:
    """True on the pixels of the tiles not in ``lost`` farther than ``margin`` from a lost tile
    (the border filter's reach: it blends each border's two sides, a concealed tile's too)."""
    keep = np.ones(shape, bool)
    for i in lost:
        r, c = divmod(i, cols)
        keep[max(0, r * tile - margin):(r + 1) * tile + margin, max(0, c * tile - margin):(c + 1) * tile + margin] = False
    return keep


def count_differences(reference: Path, other: Path, lost: dict[str, tuple[list[int], int, int]] | None = None):
    """(differing samples, samples compared, files with a difference) of ``other``'s PNGs against
    ``reference``'s; with ``lost`` only the intact tiles of each file are compared, outside the
    border filter's reach of a lost tile (the default decode filters tile borders)."""
    from PIL import Image

    from cosmic.ground.deblock import DEFAULT_WIDTH

    differing = compared = files = 0
    for ref in sorted(reference.glob("*.png")):
        a, b = (np.asarray(Image.open(p).convert("RGB")) for p in (ref, other / ref.name))
        keep = np.ones(a.shape[:2], bool)
        if lost is not None:
            indices, tile, cols = lost[ref.stem]
            keep = tile_mask(a.shape[:2], tile, cols, indices, DEFAULT_WIDTH)
        n = int((a != b)[keep].sum())
        differing, compared, files = differing + n, compared + int(keep.sum()) * 3, files + (n > 0)
    return differing, compared, files


def determinism(args, env: dict) -> None:
    from cosmic.io.container import read_container

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        (tmp / "lossy").mkdir()
        paths = coded_crops(tmp / "in", args.files, args.height, args.width, args.model)
        lost = {}
        for p in paths:
            h = read_container(p).header
            lost[p.stem] = lose_every_other_tile(p, tmp / "lossy" / p.name), h.tile, h.cols
        outputs = decode_variants(tmp / "in", tmp / "lossy", tmp, env)
        reference = outputs["--threads 1 (reference)"][0]
        tiles = sum(read_container(p).header.num_tiles for p in paths)
        print(f"{args.files} files of {args.width}x{args.height} px ({tiles} tiles), model {args.model}, "
              f"random quality; code: {args.src or 'this checkout'}")
        print(f"{'variant':36s} {'differing samples':>22s} {'files':>7s} {'wall s':>8s}")
        for name, (folder, wall) in outputs.items():
            d, n, f = count_differences(reference, folder, lost if "lost" in name else None)
            print(f"{name:36s} {d:>10d} of {n:<10d} {f:>3d}/{args.files:<3d} {wall:8.1f}")


def timing(args, env: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in").mkdir()
        paths = [str(p) for p in coded_crops(Path(tmp) / "in", args.files, 256, 256, args.model)]
        trees = {"after": env} if not args.before else {"before": {**env, "PYTHONPATH": str(args.before)}, "after": env}
        best: dict[tuple[str, int], float] = {}
        for _ in range(args.repeats):
            for threads in (1, 2):
                for label, tree_env in trees.items():
                    out = subprocess.run([sys.executable, "-c", TIMING_SCRIPT, str(threads), args.model] + paths,
                                         check=True, capture_output=True, text=True, env=tree_env).stdout
                    seconds = json.loads(out.strip().splitlines()[-1])
                    best[label, threads] = min(best.get((label, threads), seconds), seconds)
        print(f"seconds per 256-px tile, {args.files} tiles, model {args.model}, best of {args.repeats}")
        for threads in (1, 2):
            row = "  ".join(f"{label} {best[label, threads]:.3f}" for label in trees)
            ratio = f"  after/before {best['after', threads] / best['before', threads]:.2f}x" if args.before else ""
            print(f"threads {threads}: {row}{ratio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--src", type=Path, help="run the decodes with this src folder (PYTHONPATH)")
    ap.add_argument("--timing", action="store_true", help="time a 256-px tile's decode instead")
    ap.add_argument("--before", type=Path, help="--timing: also time this src folder, in turn")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = str(args.src)
    (timing if args.timing else determinism)(args, env)


if __name__ == "__main__":
    main()
