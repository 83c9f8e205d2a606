"""Write the compact training pack (issue 31): the UC Merced training split, the 42-image validation
subset (lossless) and the three training scenes, as one checksummed file that travels to a GPU
machine without the data (see cosmic.training.datapack).

    .venv/bin/python scripts/make_data_pack.py [--data ../shared/data/ucmerced] [--out .device-kit/ucm-pack.zip]
        [--quality 95 | --lossless] [--val-images 42]

Prints the pack's size, its bpp and the PSNR of the lossy members (min / mean).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cosmic.training.datapack import write_pack

SCENES = ("landsat8_LC81070352015122LGN00_rgb.png", "landsat8_LC81210442015044LGN00_rgb.png",
          "landsat7_RGB.byte.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/ucmerced")
    ap.add_argument("--scenes", default="../shared/data/scenes", help="folder of the --extra-data scenes")
    ap.add_argument("--out", default=".device-kit/ucm-pack.zip")
    ap.add_argument("--quality", type=int, default=95, help="WebP quality of the training images")
    ap.add_argument("--lossless", action="store_true", help="store the training images lossless too")
    ap.add_argument("--val-images", type=int, default=42)
    args = ap.parse_args()
    extra = [Path(args.scenes) / s for s in SCENES if (Path(args.scenes) / s).is_file()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    index = write_pack(args.data, args.out, val_images=args.val_images, extra=extra,
                       quality=None if args.lossless else args.quality,
                       progress=lambda jobs: tqdm(jobs, desc="pack", disable=None))
    psnrs = [m["psnr"] for m in index["members"].values() if m["psnr"] is not None]
    size = os.path.getsize(args.out)
    print(f"{args.out}: {size / 2**20:.1f} MiB, {len(index['members'])} members, splits {index['splits']}")
    if psnrs:
        print(f"lossy members: {len(psnrs)}, PSNR min {min(psnrs):.2f} dB, mean {np.mean(psnrs):.2f} dB")


if __name__ == "__main__":
    main()
