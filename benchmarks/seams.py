"""Seams between independently coded tiles, and what the border filter buys, per scene.

    .venv/bin/python benchmarks/seams.py [--model cosmic-small-vr] [--quality Q] [SCENE.png ...]

For each scene (default: the bundled NAIP sample and the held-out shared scenes that exist):
code it once, decode it with and without ``--deblock``, and report bpp (the filter is ground-only,
so the same file serves both), PSNR, MS-SSIM, the seam score (0: no visible tile borders), and
decode time, in one run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cosmic.data import sample_path
from cosmic.evaluation.metrics import ms_ssim, psnr
from cosmic.evaluation.seams import seam_score
from cosmic.io.container import read_container
from cosmic.metadata import SensorMetadata
from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scenes"
HELD_OUT = ["landsat8_LC80460282016177LGN00_rgb.png", "naip_m_4709963_se_14_1_20100629.png",
            "fmow_airport_0_0_msrgb.png"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenes", nargs="*", type=Path)
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--quality", type=float, default=None, help="default: the model's default quality")
    args = ap.parse_args()
    scenes = args.scenes or [sample_path(), *[SHARED / n for n in HELD_OUT if (SHARED / n).is_file()]]
    encoder, quality = EncodePipeline.select(args.model, args.quality)
    decoder = DecodePipeline.from_pretrained(args.model)
    print("| scene | bpp | decode | PSNR | MS-SSIM | seam | decode s |\n|---|---|---|---|---|---|---|")
    for path in scenes:
        scene = open_scene(path, metadata=SensorMetadata())  # coded without its metadata
        x = scene.read(0, 0, scene.height, scene.width)
        coded = encoder.encode(scene, quality=quality)
        size, c = coded.size, read_container(coded.to_bytes())
        for deblock in (False, True):
            t0 = time.perf_counter()
            y = decoder(c, deblock=deblock).pixels
            sec = time.perf_counter() - t0
            print(f"| {path.stem} | {size * 8 / (x.shape[0] * x.shape[1]):.4f} | "
                  f"{'deblock' if deblock else 'plain'} | {psnr(x, y):.3f} | {ms_ssim(x, y):.4f} | "
                  f"{seam_score(y, x, c.header.tile):+.3f} | {sec:.2f} |")


if __name__ == "__main__":
    main()
