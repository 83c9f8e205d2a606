"""On-board encode speed: COSMIC's on-board part against CompressAI's bmshj2018-hyperprior and
JPEG2000, timed in one run on the same machine and reported as ratios (timings on shared CPUs are
noisy; only the ratios are meaningful).

    .venv/bin/python benchmarks/onboard_speed.py [--preset paper] [--tiles 8] [--repeats 3] [--threads 1]

Times per 256x256 tile: the analysis + hyper-analysis + hyper-synthesis forward pass (what the
satellite's GPU would run), and the complete encode to bytes (adds rANS).
"""

from __future__ import annotations

import argparse
import io
import warnings

import numpy as np
import torch
from PIL import Image

warnings.filterwarnings("ignore")

from _timing import best_of  # noqa: E402  (benchmarks/ is on sys.path when run as a script)




def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--tiles", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    import compressai.models as cm

    from cosmic.models.registry import PRESETS
    from cosmic.onboard.codec import OnboardCodec

    p = PRESETS[args.preset]
    cosmic = OnboardCodec(p["N"], p["M"]).eval()
    cosmic.update(force=True)
    bmshj = cm.ScaleHyperprior(N=192, M=320).eval()
    bmshj.update(force=True)
    x = torch.rand(args.tiles, 3, 256, 256)
    pixels = (x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)

    def cosmic_forward():
        with torch.no_grad():
            y = cosmic.g_a(x)
            z = cosmic.h_a(y)
            cosmic.h_s(torch.round(z))

    def bmshj_forward():
        with torch.no_grad():
            y = bmshj.g_a(x)
            z = bmshj.h_a(torch.abs(y))
            bmshj.h_s(torch.round(z))

    def jpeg2000():
        for _ in range(args.tiles):
            Image.fromarray(pixels).save(io.BytesIO(), format="JPEG2000", quality_mode="rates",
                                         quality_layers=[40.0], irreversible=True, mct=1, no_jp2=True)

    rows = {
        "COSMIC on-board forward": best_of(cosmic_forward, args.repeats),
        "bmshj2018-hyperprior forward": best_of(bmshj_forward, args.repeats),
        "COSMIC encode to bytes": best_of(lambda: cosmic.compress(x), args.repeats),
        "bmshj2018-hyperprior encode to bytes": best_of(lambda: bmshj.compress(x), args.repeats),
        "JPEG2000 (OpenJPEG) encode": best_of(jpeg2000, args.repeats),
    }
    ref = rows["COSMIC encode to bytes"]
    print(f"preset={args.preset} tiles={args.tiles} threads={args.threads} (best of {args.repeats})")
    print(f"{'what':40s} {'ms/tile':>9s} {'x COSMIC encode':>16s}")
    for name, t in rows.items():
        print(f"{name:40s} {1000 * t / args.tiles:9.1f} {t / ref:16.2f}")


if __name__ == "__main__":
    main()
