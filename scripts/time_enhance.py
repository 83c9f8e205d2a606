"""Enhancement time per megapixel on one thread (wall and CPU seconds; CPU is what to compare
on a shared machine): a 512 x 512 crop of the bundled NAIP sample, JPEG2000-coded at ratio 96.

    .venv/bin/python scripts/time_enhance.py ldm-rsic-jpeg2000-small:0 ldm-rsic-jpeg2000-small:4
"""

from __future__ import annotations

import sys
import time
from importlib import resources

import torch

from cosmic.enhance.pipeline import EnhancePipeline
from cosmic.evaluation.classical import jpeg2000_encode
from cosmic.io.images import load_rgb


def main() -> None:
    torch.set_num_threads(1)
    img = load_rgb(resources.files("cosmic.data") / "naip_sample.png").pixels[:512, :512]
    enc = jpeg2000_encode(img, 96.0)
    megapixels = img.shape[0] * img.shape[1] / 1e6
    for arg in sys.argv[1:]:
        name, _, steps = arg.partition(":")
        pipe = EnhancePipeline.from_pretrained(name)
        pipe.enhance_array(enc.decoded[:256, :256], enc.bpp, int(steps or 0))  # warm-up
        wall, cpu = time.perf_counter(), time.process_time()
        pipe.enhance_array(enc.decoded, enc.bpp, int(steps or 0), 1)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{name} steps {steps or 0}: {wall / megapixels:.1f} s/MP wall, {cpu / megapixels:.1f} s/MP CPU")


if __name__ == "__main__":
    main()
