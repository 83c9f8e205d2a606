"""How often a widened E (``--onboard-channels``) writes the narrow model's bitstreams, tile by tile.

    PYTHONPATH=src .venv/bin/python benchmarks/onboard_width_bitstreams.py [--model cosmic-small-vr]
        [--widths 192,256] [--tiles 42] [--qualities 1,3,6]

``widen_onboard_state`` preserves E's function exactly in real arithmetic; in float32 a wider 1x1
conv may sum the same products in another order, so y can move by a few ulps and a value that sits
that close to a rounding boundary rounds the other way (see :mod:`cosmic.training.widen`). This
counts, on UC Merced val images (a spread-out subset, 256-px tiles), the tiles whose y and z
strings are equal between the model and its widened copy, with y computed by PyTorch (1 thread) and
by the exported graph in ONNX Runtime (what the encode pipeline uses).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cosmic.models.cosmic import Cosmic
from cosmic.onboard.export import OnnxEncoder, export_bytes
from cosmic.training.widen import widen_onboard_state
from cosmic.zoo import model_path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ucmerced"


def tiles(count: int) -> torch.Tensor:
    """``count`` val images spread over the split, as (count, 3, 256, 256) in [0, 1]."""
    names = json.loads((DATA / "SPLITS.json").read_text())["val"]
    names = [names[int(i * len(names) / count)] for i in range(count)]
    arrays = [np.asarray(Image.open(DATA / n).convert("RGB").resize((256, 256))) for n in names]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def equal_strings(a, b, x: torch.Tensor, quality: float) -> tuple[int, int]:
    """(tiles whose y strings are equal, tiles whose z strings are equal) between encoders a, b."""
    same_y = same_z = 0
    for i in range(0, len(x), 8):
        sa, sb = a.compress(x[i:i + 8], quality)["strings"], b.compress(x[i:i + 8], quality)["strings"]
        same_y += sum(p == r for p, r in zip(sa[0], sb[0]))
        same_z += sum(p == r for p, r in zip(sa[1], sb[1]))
    return same_y, same_z


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--widths", default="192,256")
    ap.add_argument("--tiles", type=int, default=42)
    ap.add_argument("--qualities", default="1,3,6")
    args = ap.parse_args()
    torch.set_num_threads(1)
    narrow = Cosmic.from_pretrained(model_path(args.model)).eval()
    x = tiles(args.tiles)
    for width in (int(w) for w in args.widths.split(",")):
        torch.manual_seed(0)
        wide = Cosmic(**{**narrow.config, "onboard_channels": width}).eval()
        wide.load_state_dict(widen_onboard_state(wide, narrow.state_dict(), narrow.onboard.onboard_channels, width))
        encoders = {"torch": (narrow.onboard, wide.onboard),
                    "onnx": tuple(OnnxEncoder(m.onboard, export_bytes(m.onboard, 256)) for m in (narrow, wide))}
        for q in (float(v) for v in args.qualities.split(",")):
            for runtime, (a, b) in encoders.items():
                same_y, same_z = equal_strings(a, b, x, q)
                print(f"E {narrow.onboard.onboard_channels}->{width} q{q:g} {runtime}: y strings equal in "
                      f"{same_y}/{len(x)} tiles, z in {same_z}/{len(x)}", flush=True)


if __name__ == "__main__":
    main()
