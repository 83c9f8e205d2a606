"""Per-point table of a codec against an anchor from a ``cosmic eval`` output folder.

    python scripts/rd_table.py RESULTS_DIR CODEC [--anchor jpeg2000]

Reads ``RESULTS_DIR/CODEC.json`` and ``RESULTS_DIR/ANCHOR.json`` (the CompressAI-style curves
``cosmic eval`` writes: mean bpp, PSNR and MS-SSIM per point) and prints one markdown row per point
of CODEC: bpp, PSNR, MS-SSIM, and the difference to the anchor's curve at the same bpp (the
anchor's PSNR and MS-SSIM interpolated linearly in log bpp between its two neighbouring points).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def curve(folder: Path, codec: str) -> dict[str, list[float]]:
    return json.loads((folder / f"{codec}.json").read_text())["results"]


def at_rate(anchor: dict[str, list[float]], key: str, bpp: float) -> float:
    """The anchor's ``key`` at ``bpp``, interpolated in log bpp (NaN outside its range)."""
    pts = sorted(zip(anchor["bpp"], anchor[key]))
    for (b0, v0), (b1, v1) in zip(pts, pts[1:]):
        if b0 <= bpp <= b1:
            t = (math.log(bpp) - math.log(b0)) / (math.log(b1) - math.log(b0))
            return v0 + t * (v1 - v0)
    return float("nan")


def rows(folder: Path, codec: str, anchor_name: str) -> list[str]:
    mine, anchor = curve(folder, codec), curve(folder, anchor_name)
    out = ["| point | bpp | PSNR | MS-SSIM | Δ PSNR / Δ MS-SSIM vs " + anchor_name + " |", "|---|---|---|---|---|"]
    for i, bpp in enumerate(mine["bpp"]):
        p, s = mine["psnr-rgb"][i], mine["ms-ssim-rgb"][i]
        dp, ds = p - at_rate(anchor, "psnr-rgb", bpp), s - at_rate(anchor, "ms-ssim-rgb", bpp)
        out.append(f"| {mine['point'][i]} | {bpp:.4f} | {p:.2f} | {s:.4f} | {dp:+.2f} / {ds:+.3f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("codec")
    ap.add_argument("--anchor", default="jpeg2000")
    a = ap.parse_args()
    print("\n".join(rows(a.folder, a.codec, a.anchor)))


if __name__ == "__main__":
    main()
