"""Encode and decode speed per megapixel, every codec timed in one run and reported as ratios.

    .venv/bin/python benchmarks/codec_speed.py [--model cosmic-small-vr] [--steps 25] [--threads 1]

On a 1024 x 1024 crop of the bundled NAIP scene (16 tiles of 256 px):
- COSMIC on-board part alone (tiles -> bytes, the satellite's work) and the whole
  ``cosmic compress`` command (process start, model load, PNG read, container write);
- COSMIC ground decode without compensation (``--steps 0``) and with diffusion compensation
  (``--steps N``) when the model has a stage-2 network;
- JPEG2000 (Pillow/OpenJPEG) encode and decode at about the same bpp;
- CompressAI's bmshj2018-hyperprior (N=192, M=320; untrained weights: the speed of its
  architecture, not of a model worth using) encode and decode.
Timings on shared CPUs are noisy: only the ratios within one run mean anything.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")

from _timing import best_of  # noqa: E402  (benchmarks/ is on sys.path when run as a script)




def _sample_crop() -> np.ndarray:
    """The bundled NAIP sample as a 1024 x 1024 crop (edge-padded where it is shorter)."""
    from cosmic.data import sample_path
    from cosmic.io.images import load_rgb

    full = load_rgb(sample_path()).pixels
    return np.ascontiguousarray(np.pad(full, ((0, 1024 - full.shape[0]), (0, 0), (0, 0)), mode="edge")[:1024, :1024]
                                if full.shape[0] < 1024 else full[:1024, :1024])


def cosmic_rows(args, x: np.ndarray) -> tuple[dict[str, float], float]:
    """Seconds of COSMIC's encode, the whole `cosmic compress` command and its decodes; the bpp."""
    from PIL import Image

    from cosmic.io.container import read_container
    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene

    encoder, quality = EncodePipeline.select(args.model)
    decoder = DecodePipeline.from_pretrained(args.model)
    tmp = Path(tempfile.mkdtemp())
    Image.fromarray(x).save(tmp / "x.png")
    coded = encoder.encode(open_scene(x), quality=quality)
    container = read_container(coded.to_bytes())
    rows = {"COSMIC on-board encode (tiles -> bytes)": best_of(
        lambda: encoder.encode(open_scene(x), quality=quality), args.repeats)}
    cmd = [str(Path(sys.executable).parent / "cosmic"), "compress", str(tmp / "x.png"), "-o", str(tmp / "y.cosmic"),
           "-m", args.model, "-q", "--threads", str(args.threads)]
    rows["`cosmic compress` whole command"] = best_of(lambda: subprocess.run(cmd, check=True), args.repeats)
    rows["COSMIC decode, --steps 0"] = best_of(lambda: decoder(container), args.repeats)
    if decoder.compensator is not None and args.steps:
        rows[f"COSMIC decode, --steps {args.steps} (diffusion)"] = best_of(
            lambda: decoder(container, steps=args.steps), 1)
    return rows, coded.bpp


def baseline_rows(args, x: np.ndarray, bpp: float) -> dict[str, float]:
    """Seconds of OpenJPEG's JPEG2000 at ``bpp`` and of an untrained bmshj2018-hyperprior."""
    import compressai.models as cm

    from cosmic.evaluation.classical import CLASSICAL, encode_at_bpp

    j2k = encode_at_bpp("jpeg2000", x, bpp)
    rows = {"JPEG2000 encode (OpenJPEG)": best_of(lambda: encode_at_bpp("jpeg2000", x, bpp, iterations=1), args.repeats),
            "JPEG2000 decode (OpenJPEG)": best_of(lambda: CLASSICAL["jpeg2000"].decode_bytes(j2k.data), args.repeats)}
    bmshj = cm.ScaleHyperprior(N=192, M=320).eval()
    bmshj.update(force=True)
    t = torch.from_numpy(x).permute(2, 0, 1).float().div(255).unsqueeze(0)
    tiles = t.unfold(2, 256, 256).unfold(3, 256, 256).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, 256, 256)

    def bmshj_encode():
        with torch.no_grad():
            return [bmshj.compress(tiles[i : i + 4]) for i in range(0, len(tiles), 4)]

    def bmshj_decode():
        with torch.no_grad():
            for e in enc:
                bmshj.decompress(e["strings"], e["shape"])

    enc = bmshj_encode()
    rows["bmshj2018-hyperprior encode (untrained)"] = best_of(bmshj_encode, args.repeats)
    rows["bmshj2018-hyperprior decode (untrained)"] = best_of(bmshj_decode, args.repeats)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = _sample_crop()
    mpx = x.shape[0] * x.shape[1] / 1e6
    rows, bpp = cosmic_rows(args, x)
    rows.update(baseline_rows(args, x, bpp))
    ref = rows["JPEG2000 encode (OpenJPEG)"]
    print(f"{args.model} on a {x.shape[1]}x{x.shape[0]} crop ({bpp:.3f} bpp), threads={args.threads}, best of {args.repeats}")
    print(f"{'what':48s} {'s/Mpx':>8s} {'x JPEG2000 encode':>18s}")
    for name, sec in rows.items():
        print(f"{name:48s} {sec / mpx:8.3f} {sec / ref:18.1f}")


if __name__ == "__main__":
    main()
