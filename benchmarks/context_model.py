"""Two models on real files: rate (file bytes), PSNR and MS-SSIM at each quality, and the
BD-rate of the second against the first (issue 30: the checkerboard context, a widened ground).

    .venv/bin/python benchmarks/context_model.py --base cosmic-small-vr --test runs/ctx/final \\
        --data ../shared/data/ucmerced --limit 42 [--qualities 1,2,3,4,5,6] [--json out.json]

Images: the ``val`` split (SPLITS.json), ``--limit`` of them spread evenly (42: the stage-1
trainer's validation subset). Each image is coded by each model's encode pipeline (PyTorch
encoder, one thread) into a real file and decoded by its decode pipeline (steps 0, the default
border filter); bpp = file bytes x 8 / pixels. Printed: a markdown table per quality (mean bpp,
PSNR, MS-SSIM of each model), then the BD-rates (PSNR and MS-SSIM) of ``--test`` against
``--base`` over the mean points.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from cosmic.evaluation.bjontegaard import bd_rate
from cosmic.evaluation.metrics import ms_ssim, psnr
from cosmic.io.images import load_rgb, split_files
from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene


def _images(data: str, limit: int) -> list[Path]:
    files = split_files(data, "val")
    if limit and len(files) > limit:
        stride = len(files) / limit
        files = [files[int(i * stride)] for i in range(limit)]
    return files


def _points(model: str, files: list[Path], qualities: list[float]) -> dict[float, list[float]]:
    """{quality: [mean bpp, mean PSNR, mean MS-SSIM]} of ``model`` over ``files``."""
    encoder = EncodePipeline.from_pretrained(model, runtime="torch")
    decoder = DecodePipeline.from_pretrained(model)
    points = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.cosmic"
        for q in qualities:
            rows = []
            for f in files:
                pixels = load_rgb(f).pixels
                encoder.to_file(open_scene(pixels), path, quality=q)
                decoded = decoder(path).pixels
                rows.append((path.stat().st_size * 8 / (pixels.shape[0] * pixels.shape[1]),
                             psnr(pixels, decoded), ms_ssim(pixels, decoded)))
            points[q] = [float(v) for v in np.mean(rows, axis=0)]
            print(f"{model} q{q:g}: {points[q][0]:.4f} bpp {points[q][1]:.3f} dB {points[q][2]:.4f}", flush=True)
    return points


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="cosmic-small-vr")
    ap.add_argument("--test", required=True)
    ap.add_argument("--data", default="../shared/data/ucmerced")
    ap.add_argument("--limit", type=int, default=42)
    ap.add_argument("--qualities", default="1,2,3,4,5,6")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    files, qualities = _images(args.data, args.limit), [float(q) for q in args.qualities.split(",")]
    base, test = _points(args.base, files, qualities), _points(args.test, files, qualities)
    print(f"\n{len(files)} val images\n\n| quality | base bpp | base PSNR | base MS-SSIM | test bpp | test PSNR | test MS-SSIM |")
    print("|---|---|---|---|---|---|---|")
    for q in qualities:
        print(f"| {q:g} | {base[q][0]:.4f} | {base[q][1]:.3f} | {base[q][2]:.4f} | {test[q][0]:.4f} | "
              f"{test[q][1]:.3f} | {test[q][2]:.4f} |")
    column = lambda pts, i: [pts[q][i] for q in qualities]  # noqa: E731
    bd = {name: bd_rate(column(base, 0), column(base, i), column(test, 0), column(test, i))
          for name, i in (("psnr", 1), ("ms_ssim", 2))}
    print(f"\nBD-rate of {args.test} against {args.base}: PSNR {bd['psnr']:+.2f} %, MS-SSIM {bd['ms_ssim']:+.2f} %")
    if args.json:
        args.json.write_text(json.dumps({"images": len(files), "base": base, "test": test, "bd_rate": bd}, indent=1))


if __name__ == "__main__":
    main()
