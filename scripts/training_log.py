"""Print a run's validation curve as a markdown table (the rows of docs/TRAINING_LOG.md): step,
wall time, and real bpp / PSNR / MS-SSIM of the steps-0 decode at each validated quality, with
the PSNR difference to JPEG2000 at the same bpp on the same images when an anchor is given.

    python scripts/validate_checkpoint.py jpeg2000 > runs/j2k-val42.json
    python scripts/training_log.py runs/vr-campaign --anchor runs/j2k-val42.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from cosmic.evaluation.bjontegaard import quality_at_rate


def _cell(rate: dict, anchor: list[dict] | None) -> str:
    ssim = "-" if rate["ms_ssim"] is None else f"{rate['ms_ssim']:.4f}"
    text = f"{rate['bpp']:.3f} / {rate['psnr']:.2f} / {ssim}"
    if anchor:
        ref = quality_at_rate([a["bpp"] for a in anchor], [a["psnr"] for a in anchor], rate["bpp"])
        text += "" if math.isnan(ref) else f" ({rate['psnr'] - ref:+.2f} dB)"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--anchor", type=Path, help="validate_checkpoint.py jpeg2000 output")
    args = ap.parse_args()
    history = [h for h in json.loads((args.run / "last" / "trainer.json").read_text())["history"] if "rates" in h]
    anchor = json.loads(args.anchor.read_text())["rates"] if args.anchor else None
    qualities = [r["quality"] for r in history[-1]["rates"]]
    print("| step | wall (h) | " + " | ".join(f"q{q:g}: bpp / PSNR / MS-SSIM" for q in qualities) + " |")
    print("|---|---|" + "---|" * len(qualities))
    for h in history:
        cells = " | ".join(_cell(r, anchor) for r in h["rates"])
        print(f"| {h['step']} | {h['wall_s'] / 3600:.2f} | {cells} |")


if __name__ == "__main__":
    main()
