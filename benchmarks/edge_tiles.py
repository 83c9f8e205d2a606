"""Edge tiles padded to the codec's stride (format version 4) against padded to the tile (the
old layout): real files and their decodes (issue 33 item 10).

    .venv/bin/python benchmarks/edge_tiles.py [--quality 3] SCENE.png[:WxH] ...

Each scene (``:WxH``: its top-left W x H crop) is coded twice by the encode pipeline with the
shipped model, ``EncodePipeline(pad_edges=True)`` (the default: an edge tile is coded at its own
size rounded up to 64 px) and ``pad_edges=False`` (every tile 256x256, as before version 4), and
both files are decoded by the decode pipeline (steps 0, the default border filter). Printed: file
bytes (bpp = file bytes x 8 / pixels), PSNR of each decode against the source, and the bytes saved.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from cosmic.evaluation.metrics import psnr
from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene


def _source(spec: str) -> tuple[str, np.ndarray]:
    """(name, pixels) of ``PATH`` or ``PATH:WxH`` (the top-left crop)."""
    path, _, crop = spec.partition(":")
    with open_scene(Path(path)) as scene:
        pixels = scene.read(0, 0, scene.height, scene.width)
    if crop:
        w, h = (int(v) for v in crop.split("x"))
        pixels = pixels[:h, :w]
    return Path(path).stem + (f" ({crop} crop)" if crop else ""), np.ascontiguousarray(pixels)


def _code(encoder: EncodePipeline, decoder: DecodePipeline, pixels: np.ndarray, quality: float,
          path: Path) -> tuple[int, int, float]:
    """(format version, file bytes, PSNR) of ``pixels`` coded by ``encoder`` and decoded."""
    from cosmic.io.container import read_container

    encoder.to_file(open_scene(pixels), path, quality=quality)
    decoded = decoder(path).pixels
    return read_container(path).version, path.stat().st_size, psnr(pixels, decoded)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenes", nargs="+")
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--quality", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    stride = EncodePipeline.from_pretrained(args.model)
    padded = EncodePipeline(stride.codec, stride.name, pad_edges=False)
    decoder = DecodePipeline.from_pretrained(args.model)
    print("| scene | size | tile-padded: bytes, bpp, PSNR | stride-padded: version, bytes, bpp, PSNR | saved |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.scenes:
            name, pixels = _source(spec)
            px = pixels.shape[0] * pixels.shape[1]
            _, old, old_db = _code(padded, decoder, pixels, args.quality, Path(tmp) / "old.cosmic")
            version, new, new_db = _code(stride, decoder, pixels, args.quality, Path(tmp) / "new.cosmic")
            print(f"| {name} | {pixels.shape[1]}x{pixels.shape[0]} | {old}, {old * 8 / px:.4f}, {old_db:.2f} dB | "
                  f"v{version}, {new}, {new * 8 / px:.4f}, {new_db:.2f} dB | {old - new} ({(old - new) / old:.1%}) |",
                  flush=True)


if __name__ == "__main__":
    main()
