"""Where the shipped JPEG2000 enhancer helps: PSNR of JPEG2000 decodes before and after it, by rate.

    .venv/bin/python benchmarks/enhance_rate_range.py N RATES     # e.g. 20 0.4,0.6,0.7,0.8

N UC Merced val images (evenly spaced over the 420), each coded by JPEG2000 at each target bpp
and enhanced (steps 0, the enhancer's own range check bypassed through ``enhance_array`` of a
pipeline whose recorded range is cleared). The mean gain decides the shipped enhancer's
``rate_range`` (issue 33 item 5; docs/RESULTS.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from cosmic.enhance.pipeline import EnhancePipeline
from cosmic.evaluation.classical import jpeg2000_at_bpp
from cosmic.evaluation.metrics import psnr
from cosmic.io.images import load_rgb

UCM = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ucmerced"


def main(count: int, rates: list[float]) -> None:
    torch.set_num_threads(1)
    val = json.loads((UCM / "SPLITS.json").read_text())["val"]
    names = val[:: len(val) // count][:count]
    pipe = EnhancePipeline.from_pretrained()
    pipe.enhancer.extra = {k: v for k, v in pipe.enhancer.extra.items() if k not in ("rate_range", "training")}
    for rate in rates:
        base, gains = [], []
        for name in names:
            x = load_rgb(UCM / name).pixels
            coded = jpeg2000_at_bpp(x, rate)
            y = pipe.enhance_array(coded.decoded, coded.bpp)
            base.append(psnr(x, coded.decoded))
            gains.append(psnr(x, y) - base[-1])
        print(f"target {rate:g} bpp: decode {np.mean(base):.2f} dB, enhanced {np.mean(gains):+.3f} dB "
              f"(min {min(gains):+.3f}, max {max(gains):+.3f}) over {len(names)} images", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), [float(r) for r in sys.argv[2].split(",")])
