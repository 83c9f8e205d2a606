"""The on-board encoder in ONNX Runtime vs the ground's encoder and PyTorch: identical bitstreams?
and the time per tile, beside OpenJPEG (JPEG2000, imagecodecs) on the same tiles.

    .venv/bin/python benchmarks/onnx_encode.py [--model cosmic-small-vr] [--quality Q] [--tiles 500]
        [--threads 1] [--out benchmarks/results/onnx_encode-vr-q3]

Tiles (256 px): every image of UC Merced's val split (``../shared/data/ucmerced``, 420 images,
padded to 256 like any edge tile), then tiles cut row-major from the scenes in
``../shared/data/scenes`` until ``--tiles`` are reached. Each tile is coded one at a time
(batch 1, the satellite's case) by

* **on board**: the ``.onnx`` file of ``cosmic export onnx`` run by ONNX Runtime
  (:class:`cosmic.onboard.export.OnnxEncoder`), then the rANS coder;
* **ground**: the encoder of :class:`cosmic.pipelines.EncodePipeline` (``cosmic compress``), which
  runs the same exported graph in ONNX Runtime when it is installed;
* **PyTorch**: ``codec.compress`` (the PyTorch analysis, the ground's fallback without
  ``onnxruntime``).

The on-board and ground bitstreams are compared byte for byte (the target: 0 differ); the
PyTorch ones are compared with the on-board ones too (a y value within ~3e-6 of a rounding
boundary can round the other way; :mod:`cosmic.onboard.export`), and a tile that differs is named
with the string (y or z) that does. OpenJPEG codes the same tile at ratio 160:1 (about 0.15 bpp).
Times are CPU ms per tile (``time.process_time``; one thread, so the cost of the work itself
on this shared CPU, whatever else runs), median and mean; with ``--out`` the figures are written to
``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
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
    """(fn(), CPU seconds it took): everything runs on one thread in this process, so CPU time is
    the cost of the work itself on a machine shared with other jobs (wall time is not)."""
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def differs(a, b) -> str | None:
    """None when two ``strings`` lists are equal, else which string (y or z) differs."""
    return None if a == b else ("z" if a[1] != b[1] else "y")


def measure(args) -> dict:
    """Code ``args.tiles`` tiles with the three encoders and OpenJPEG; the counts and times."""
    from cosmic.evaluation.classical import CLASSICAL
    from cosmic.onboard.export import OnnxEncoder, export_onnx
    from cosmic.onboard.scene import _to_tensor
    from cosmic.pipelines import EncodePipeline

    pipe = EncodePipeline.from_pretrained(args.model)
    codec, q = pipe.codec, pipe.check_quality(args.quality if pipe.quality_range else None)
    on_board = OnnxEncoder(codec, export_onnx(codec, Path(tempfile.mkdtemp()) / "encoder.onnx"), threads=args.threads)
    encoders = {"ONNX Runtime (on board)": on_board.compress, "ground (cosmic compress)": pipe.encoder(256).compress,
                "PyTorch": codec.compress}
    j2k = CLASSICAL["jpeg2000"].encode_bytes
    times: dict[str, list[float]] = {k: [] for k in [*encoders, "OpenJPEG"]}
    differ: dict[str, list[str]] = {"ground (cosmic compress)": [], "PyTorch": []}
    total = 0
    for source, tile in tiles(args.tiles):
        x, strings = _to_tensor([tile]), {}
        for key, fn in encoders.items():
            strings[key], dt = timed(lambda: fn(x, q)["strings"])
            times[key].append(dt)
        times["OpenJPEG"].append(timed(lambda: j2k(np.ascontiguousarray(tile), 160.0))[1])
        for key in differ:
            which = differs(strings[key], strings["ONNX Runtime (on board)"])
            if which:
                differ[key].append(f"tile {total} ({source}): {which} string differs")
        total += 1
        if total % 50 == 0:
            print(f"{total} tiles", file=sys.stderr, flush=True)
    return {"model": pipe.name, "quality": q, "tiles": total, "threads": args.threads,
            "differ_from_on_board": differ,
            "ms_per_tile": {k: {"median": 1000 * float(np.median(ts)), "mean": 1000 * float(np.mean(ts))}
                            for k, ts in times.items()}}


def report(res: dict) -> str:
    """The markdown summary of :func:`measure`'s result."""
    q = "" if res["quality"] is None else f" at quality {res['quality']:g}"
    lines = [f"{res['model']}{q}: {res['tiles']} tiles of 256 px, one at a time, {res['threads']} thread(s)", ""]
    for key, bad in res["differ_from_on_board"].items():
        lines.append(f"- {key} vs on board: {len(bad)} of {res['tiles']} bitstreams differ")
        lines += [f"  - {line}" for line in bad]
    lines += ["", "| encoder (256-px tile) | median CPU ms/tile | mean CPU ms/tile |", "|---|---:|---:|"]
    lines += [f"| {k} | {t['median']:.1f} | {t['mean']:.1f} |" for k, t in res["ms_per_tile"].items()]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--quality", type=float, default=3.0, help="a variable-rate model's quality")
    ap.add_argument("--tiles", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = measure(args)
    text = report(res)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(text + "\n")
    sys.exit(1 if res["differ_from_on_board"]["ground (cosmic compress)"] else 0)


if __name__ == "__main__":
    main()
