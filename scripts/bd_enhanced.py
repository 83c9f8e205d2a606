"""BD-rate of each enhanced codec (``X+enhance``) against its plain source codec ``X``, from the
``per_image.json`` of ``cosmic eval`` folders (``cosmic eval`` itself reports BD-rates against
JPEG2000 only), over all rate points or only those at or under ``--max-bpp``.

    .venv/bin/python scripts/bd_enhanced.py docs/results/enhance-cosmic-ucm21 [--max-bpp 0.3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cosmic.evaluation.bjontegaard import bd_psnr
from cosmic.evaluation.statistics import bd_against, summarize


def report(folder: Path, max_bpp: float) -> None:
    rows = json.loads((folder / "per_image.json").read_text())
    s = {c: [p for p in pts if p["bpp"] <= max_bpp] for c, pts in summarize(rows).items()}
    for codec in [c for c in s if "+enhance" in c]:
        base = codec.split("+")[0]
        a, t = s[base], s[codec]
        gain = bd_psnr([p["bpp"] for p in a], [p["psnr"] for p in a], [p["bpp"] for p in t], [p["psnr"] for p in t])
        print(f"{folder} ({len({r['image'] for r in rows})} images, points <= {max_bpp:g} bpp): {codec} vs {base}: "
              f"BD-rate PSNR {bd_against(s, codec, 'psnr', base):+.1f} %, MS-SSIM {bd_against(s, codec, 'ms_ssim', base):+.1f} %, "
              f"BD-PSNR {gain:+.3f} dB")
        for p, q in zip(a, t):
            print(f"   {p['point']}: {p['bpp']:.4f} bpp, PSNR {p['psnr']:.2f} -> {q['psnr']:.2f} dB "
                  f"({q['psnr'] - p['psnr']:+.3f}), MS-SSIM {p['ms_ssim']:.4f} -> {q['ms_ssim']:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--max-bpp", type=float, default=float("inf"))
    args = ap.parse_args()
    for folder in args.folders:
        report(folder, args.max_bpp)


if __name__ == "__main__":
    main()
