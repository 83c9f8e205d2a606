"""Validation on real bitstreams during training: what ``docs/TRAINING_LOG.md`` records.

Each validation image is coded with the on-board codec at a quality through the encode pipeline
(the size counted as the file would be written) and decoded through the decode pipeline without
compensation (the steps-0 path). So the curve in
the log is in the units of the results tables (real bpp, PSNR and MS-SSIM on uint8 pixels),
not the training loss's likelihood estimate.
"""

from __future__ import annotations

import numpy as np
import torch

from cosmic.evaluation.metrics import ms_ssim, psnr

__all__ = ["validate_bitstreams", "jpeg2000_reference", "JPEG2000_RATIOS", "code_with_model", "held_out_note",
           "say_held_out"]

#: compression ratios of the JPEG2000 anchor curve on the validation subset (1.0 to 0.06 bpp)
JPEG2000_RATIOS = (24, 32, 48, 64, 96, 128, 192, 256, 400)


def held_out_note(data) -> str | None:
    """The note a trainer gives when ``data`` is a folder without a SPLITS.json: every split is
    then every image, so validation scores the training images (None otherwise)."""
    from pathlib import Path

    root = Path(data)
    if not root.is_dir() or (root / "SPLITS.json").is_file():
        return None
    return (f"{root} has no SPLITS.json: validation uses the training images (its scores are not held "
            "out); add a SPLITS.json with 'train' and 'val' lists to hold images out")


def say_held_out(data) -> None:
    """Print :func:`held_out_note` as a note on stderr, once (rank 0 under torchrun), when it applies:
    what a trainer does once its options are checked, before it starts."""
    import os
    import sys

    note = held_out_note(data)
    if note is not None and os.environ.get("RANK", "0") == "0":
        print(f"note: {note}", file=sys.stderr)


@torch.no_grad()
def code_with_model(model, pixels: np.ndarray, quality: float | None) -> tuple[float, np.ndarray]:
    """(bpp of the real file, steps-0 decode) of one (H, W, 3) uint8 image, or one (H, W, 1) band,
    through the same pipelines as ``cosmic compress`` / ``cosmic decompress``."""
    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene

    bands = pixels.shape[2]
    scene = open_scene(pixels if bands == 3 else pixels[..., 0])
    coded = EncodePipeline(model.onboard, model.name).encode(scene, quality=quality)
    return coded.bpp, DecodePipeline(model)(coded.to_bytes()).pixels[..., :bands]


def validate_bitstreams(model, images: list[np.ndarray], qualities) -> list[dict]:
    """Mean real bpp, PSNR and MS-SSIM of the steps-0 decode per quality (``[None]`` for a
    fixed-rate model; MS-SSIM None when no image has sides over 160 px). Rebuilds the model's
    entropy tables first."""
    model.eval()
    model.update(force=True)
    rows = []
    for q in qualities:
        bpp, p, s = [], [], []
        for img in images:
            rate, decoded = code_with_model(model, img, q)
            bpp.append(rate)
            p.append(psnr(img, decoded))
            if min(img.shape[:2]) > 160:  # MS-SSIM's five scales need it
                s.append(ms_ssim(img, decoded))
        rows.append({"quality": q, "bpp": float(np.mean(bpp)), "psnr": float(np.mean(p)),
                     "ms_ssim": float(np.mean(s)) if s else None})
    return rows


def jpeg2000_reference(images: list[np.ndarray], ratios=JPEG2000_RATIOS) -> list[dict]:
    """The anchor on the same images: mean real bpp, PSNR and MS-SSIM of OpenJPEG JPEG2000 (with
    its colour transform, as ``cosmic eval`` codes it) at each compression ratio."""
    from cosmic.evaluation.classical import jpeg2000_encode

    rows = []
    for ratio in ratios:
        enc = [jpeg2000_encode(img, ratio) for img in images]
        rows.append({"ratio": ratio, "bpp": float(np.mean([e.bpp for e in enc])),
                     "psnr": float(np.mean([psnr(i, e.decoded) for i, e in zip(images, enc)])),
                     "ms_ssim": float(np.mean([ms_ssim(i, e.decoded) for i, e in zip(images, enc)]))})
    return rows
