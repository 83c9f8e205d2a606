"""Score a model directory (a run's ``last/``, ``last/ema/``, ``final/`` or a snapshot) the way
the stage-1 trainer validates: real bitstreams of a fixed, spread-out subset of UC Merced val at a
few qualities, steps-0 decode. Used for the training log and the recipe ablations.

    python scripts/validate_checkpoint.py runs/vr-campaign/snap-1000 --qualities 1,3.5,6
    python scripts/validate_checkpoint.py jpeg2000      # the anchor curve on the same images
"""

from __future__ import annotations

import argparse
import json

import torch

from cosmic.models.cosmic import Cosmic
from cosmic.training.stage1 import Stage1Config, _val_images, crop_to_stride
from cosmic.training.validation import jpeg2000_reference, validate_bitstreams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a model directory, or 'jpeg2000'")
    ap.add_argument("--data", default="../shared/data/ucmerced")
    ap.add_argument("--val-images", type=int, default=42)
    ap.add_argument("--qualities", default="1,3.5,6", help="comma-separated; 'none' for a fixed-rate model")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = Stage1Config(data=args.data, out="-", val_images=args.val_images)
    images = [crop_to_stride(img) for img in _val_images(cfg).images]
    if args.model == "jpeg2000":
        print(json.dumps({"model": "jpeg2000", "rates": jpeg2000_reference(images)}))
        return
    model = Cosmic.from_pretrained(args.model)
    qualities = [None] if args.qualities == "none" else [float(q) for q in args.qualities.split(",")]
    print(json.dumps({"model": args.model, "rates": validate_bitstreams(model, images, qualities)}))


if __name__ == "__main__":
    main()
