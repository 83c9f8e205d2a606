"""What padding edge tiles to the codec's stride (64 px) instead of the tile size would save
(issue 33 item 10, not implemented: the measurement that motivates it).

    .venv/bin/python benchmarks/edge_tiles.py [--quality 3] SCENE.png ...

Each scene is cut into 256-px tiles; every edge tile (one whose window the image cuts) is coded
by the on-board codec in PyTorch twice: padded by replication to 256x256, as the container codes
it today, and to the next multiple of 64 of its own size. Printed: the scene's payload bytes
today, the edge tiles' share and the bytes the stride padding would save (payload = z + y
strings + their 4-byte length; the container's header and table are the same either way).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from cosmic.onboard.scene import pad_tile
from cosmic.pipelines import EncodePipeline, open_scene

TILE, STRIDE = 256, 64


def _payload(codec, block: np.ndarray, height: int, width: int, quality) -> int:
    padded = np.pad(block, ((0, height - block.shape[0]), (0, width - block.shape[1]), (0, 0)), mode="edge")
    x = torch.from_numpy(padded.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        y, z = codec.compress(x, quality)["strings"]
    return len(y[0]) + len(z[0]) + 4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenes", nargs="+", type=Path)
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--quality", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    codec = EncodePipeline.from_pretrained(args.model).codec.eval()
    print("| scene | size | tiles (edge) | payload bytes now | edge tiles' bytes | saved with 64-px padding |")
    print("|---|---|---|---|---|---|")
    for path in args.scenes:
        scene = open_scene(path)
        total = edge_now = edge_stride = count = 0
        for top in range(0, scene.height, TILE):
            for left in range(0, scene.width, TILE):
                block = scene.read(top, left, TILE, TILE)
                now = _payload(codec, pad_tile(block, TILE), TILE, TILE, args.quality)
                total += now
                if block.shape[:2] != (TILE, TILE):
                    h, w = (-(-s // STRIDE) * STRIDE for s in block.shape[:2])
                    edge_now, edge_stride, count = edge_now + now, edge_stride + _payload(
                        codec, block, h, w, args.quality), count + 1
        grid = (-(-scene.height // TILE)) * (-(-scene.width // TILE))
        print(f"| {path.stem} | {scene.width}x{scene.height} | {grid} ({count}) | {total} | {edge_now} | "
              f"{edge_now - edge_stride} ({(edge_now - edge_stride) / total:.1%}) |", flush=True)


if __name__ == "__main__":
    main()
