"""ONNX Runtime vs PyTorch on-board encode: identical bitstreams? and the time per tile, beside
OpenJPEG (JPEG2000, imagecodecs) on the same tiles.

    .venv/bin/python benchmarks/onnx_encode.py [--model cosmic-small-q3] [--tiles 500] [--threads 1]

Tiles (256 px): every image of UC Merced's val split (``../shared/data/ucmerced``, 420 images,
padded to 256 like any edge tile), then tiles cut row-major from the scenes in
``../shared/data/scenes`` until ``--tiles`` are reached. Each tile is coded one at a time
(batch 1, the satellite's case) by ``codec.compress`` (PyTorch) and by
:class:`cosmic.onboard.export.OnnxEncoder` (the exported graph in ONNX Runtime, then the same
rANS coder); the two bitstreams are compared byte for byte, and a tile that differs is named
with the string (y or z) that does. OpenJPEG codes the same tile at
ratio 160:1 (about 0.15 bpp). Times are medians per tile on this (shared) CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def tiles(n: int, size: int = 256):
    """Up to ``n`` (size, size, 3) uint8 tiles: UC Merced val, then scene tiles."""
    from cosmic.io.images import list_images, load_rgb
    from cosmic.onboard.scene import iter_tiles
    from cosmic.training.data import split_files

    sources = split_files(SHARED / "ucmerced", "val") + list_images(SHARED / "scenes")
    count = 0
    for path in sources:
        if path.suffix.lower() not in (".png", ".tif", ".jpg"):
            continue
        for tile in iter_tiles(load_rgb(path).pixels, size):
            if count == n:
                return
            count += 1
            yield path.name, tile


def timed(fn):
    """(fn(), seconds it took)."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cosmic-small-q3")
    ap.add_argument("--tiles", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from cosmic.evaluation.classical import CLASSICAL
    from cosmic.onboard.export import OnnxEncoder, export_onnx
    from cosmic.onboard.scene import _to_tensor
    from cosmic.zoo import load_onboard

    codec, name = load_onboard(args.model)
    onnx_path = export_onnx(codec, Path(tempfile.mkdtemp()) / "encoder.onnx")
    encoder = OnnxEncoder(codec, onnx_path, threads=args.threads)
    j2k = CLASSICAL["jpeg2000"].encode_bytes
    times: dict[str, list[float]] = {"PyTorch": [], "ONNX Runtime": [], "OpenJPEG": []}
    differ, total = [], 0
    for source, tile in tiles(args.tiles):
        x = _to_tensor([tile])
        a, dt = timed(lambda: codec.compress(x)["strings"])
        times["PyTorch"].append(dt)
        b, dt = timed(lambda: encoder.compress(x)["strings"])
        times["ONNX Runtime"].append(dt)
        times["OpenJPEG"].append(timed(lambda: j2k(np.ascontiguousarray(tile), 160.0))[1])
        if a != b:  # which string: y (a latent value rounded the other way) or z (the hyperprior)
            differ.append(f"tile {total} ({source}): {'z' if a[1] != b[1] else 'y'} string differs")
        total += 1
    print(f"{name}: {total} tiles of 256 px, {len(differ)} bitstreams differ between ONNX Runtime and PyTorch")
    for line in differ:
        print(line)
    print("| encoder | median ms/tile | mean ms/tile |")
    print("|---|---:|---:|")
    for key, ts in times.items():
        print(f"| {key} | {1000 * float(np.median(ts)):.1f} | {1000 * float(np.mean(ts)):.1f} |")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
