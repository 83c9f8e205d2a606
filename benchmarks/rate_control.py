"""Rate control on a large scene: the sampled search against whole-scene bisection (issue 33 item 6).

    .venv/bin/python benchmarks/rate_control.py SCENE MAX_BYTES [--model cosmic-small-vr] [--tile 256]

Runs ``EncodePipeline.encode_to_size`` (a sample of tiles, then whole encodes) and the old
search (bisection on whole-scene encodes, ``rate._Search.exact``) for the same budget, one
thread, and prints for each the file size, quality, whole encodes, tiles coded in all and
seconds. Tiles coded is the machine-independent cost; seconds depend on the machine's load.
"""

from __future__ import annotations

import argparse
import time

import torch

from cosmic.pipelines import EncodePipeline, open_scene
from cosmic.pipelines import rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scene")
    ap.add_argument("max_bytes", type=int)
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--tile", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    pipe, scene = EncodePipeline.from_pretrained(args.model), open_scene(args.scene)
    tiles: list[int] = []
    encode = type(pipe).encode

    def counted(self, sc, tile=256, quality=None, progress=False):
        out = encode(self, sc, tile, quality, False)
        tiles.append(out.header.num_tiles)
        return out

    type(pipe).encode = counted
    print("| search | bytes | quality | whole encodes | tiles coded | seconds |\n|---|---|---|---|---|---|")
    for name in ("sampled (new)", "whole-scene bisection (old)"):
        tiles.clear()
        t0 = time.perf_counter()
        if name.startswith("sampled"):
            out = pipe.encode_to_size(scene, args.max_bytes, args.tile)
        else:
            out = rate._Search(pipe, scene, args.tile, args.max_bytes, 0.03, "old", False).exact()
        sec = time.perf_counter() - t0
        whole = sum(1 for n in tiles if n == out.header.num_tiles)
        print(f"| {name} | {out.size} | {out.header.quality:g} | {whole} | {sum(tiles)} | {sec:.1f} |", flush=True)


if __name__ == "__main__":
    main()
