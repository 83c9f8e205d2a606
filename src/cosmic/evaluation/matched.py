"""COSMIC against JPEG2000 at the same measured bpp, image by image, from real files.

For each image: COSMIC writes a real ``.cosmic`` file (bpp = its bytes x 8 / pixels), decodes it
without compensation, and JPEG2000 is searched to the same bpp. Results are a per-image JSON
list and a markdown summary; an image where the JPEG2000 rate search missed COSMIC's bpp by more
than 5 % is flagged and left out of the means. (The rate-distortion harness with more codecs and
BD-rate is ``cosmic eval``.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from cosmic.utils.progress import progress_bar as tqdm

from cosmic.errors import InputError
from cosmic.evaluation.classical import jpeg2000_at_bpp
from cosmic.evaluation.metrics import ms_ssim_or, psnr
from cosmic.io.container import read_container
from cosmic.metadata import SensorMetadata, sidecar_for
from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene

__all__ = ["compare_with_jpeg2000", "summarize", "J2K_MISS"]

#: a JPEG2000 rate search that lands further than this from COSMIC's bpp is flagged, not averaged
J2K_MISS = 0.05


def _scores(x: np.ndarray, y: np.ndarray) -> dict:
    """PSNR and MS-SSIM (None for an image too small for MS-SSIM's five scales)."""
    return {"psnr": psnr(x, y), "ms_ssim": ms_ssim_or(x, y, None)}


def _timed_decode(decoder: DecodePipeline, path: Path, steps: int = 0, seed: int = 0) -> tuple[np.ndarray, float]:
    """The decoded pixels of the file at ``path`` and the decode's seconds."""
    t0 = time.perf_counter()
    pixels = decoder(read_container(path), steps=steps, seed=seed).pixels
    return pixels, time.perf_counter() - t0


def _compare_one(encoder: EncodePipeline, quality, decoder: DecodePipeline, path: Path, f: Path, steps: int,
                 seed: int, default_metadata) -> dict:
    """One image's row: COSMIC's real file ``f`` (and its compensated decode with ``steps``) and
    JPEG2000 searched to the file's bpp."""
    scene = open_scene(path, metadata=None if sidecar_for(path) else (default_metadata or SensorMetadata()))
    x = scene.read(0, 0, scene.height, scene.width)
    coded = encoder.to_file(scene, f, quality=quality)
    y, t_dec = _timed_decode(decoder, f)
    j = jpeg2000_at_bpp(x, coded.bpp)
    row = {
        "image": path.name, "width": scene.width, "height": scene.height,
        "cosmic": {"bytes": coded.size, "bpp": coded.bpp, **_scores(x, y),
                   "encode_s": coded.seconds, "decode_s": t_dec},
        "jpeg2000": {"bytes": len(j.data), "bpp": j.bpp, **_scores(x, j.decoded),
                     "missed": abs(j.bpp - coded.bpp) > J2K_MISS * coded.bpp},
    }
    if steps:
        ydc, t_dc = _timed_decode(decoder, f, steps, seed)
        row["cosmic_dc"] = {"steps": steps, **_scores(x, ydc), "decode_s": t_dc, "tiles": coded.header.num_tiles}
    return row


def compare_with_jpeg2000(model: str, files: list[Path], work: Path, progress: bool = True,
                          steps: int = 0, seed: int = 0,
                          default_metadata: SensorMetadata | None = None) -> list[dict]:
    """Per-image rows for the model ``model`` (a shipped name or directory), coded and decoded by
    the pipelines; with ``steps`` also the diffusion-compensated decode (``cosmic_dc``) of the
    same file. A JPEG2000 rate search that missed COSMIC's bpp by more than 5 % is flagged
    (``jpeg2000.missed``) and left out of the means."""
    work.mkdir(parents=True, exist_ok=True)
    encoder, quality = EncodePipeline.select(model)
    decoder = DecodePipeline.from_pretrained(model)
    if steps and decoder.compensator is None:
        raise InputError(f"model '{model}' has no diffusion compensation (stage 2); use --steps 0")
    return [_compare_one(encoder, quality, decoder, path, work / "current.cosmic", steps, seed, default_metadata)
            for path in tqdm(files, desc="images", disable=not progress)]


def r_tiles(row: dict) -> int:
    """The number of 256 px tiles the row's image is coded in."""
    return -(-row["width"] // 256) * -(-row["height"] // 256)


def _mean(rows: list[dict], codec: str, key: str) -> float:
    """Mean of ``row[codec][key]`` over the rows that have it (NaN if none has)."""
    vals = [r[codec][key] for r in rows if r[codec][key] is not None]
    return float(np.mean(vals)) if vals else float("nan")


def summarize(rows: list[dict]) -> dict:
    """Means over the images where JPEG2000 hit COSMIC's bpp (``missed`` images are listed in
    ``j2k_missed`` and left out, so that both codecs are averaged over the same images)."""
    missed = [r["image"] for r in rows if r["jpeg2000"].get("missed")]
    kept = [r for r in rows if not r["jpeg2000"].get("missed")]
    codecs = ["cosmic", "jpeg2000"] + (["cosmic_dc"] if rows and "cosmic_dc" in rows[0] else [])
    out = {codec: {k: _mean(kept, codec, k) for k in ("psnr", "ms_ssim")} for codec in codecs}
    for codec in ("cosmic", "jpeg2000"):
        out[codec]["bpp"] = _mean(kept, codec, "bpp")
    out["cosmic"]["decode_s_per_tile"] = float(np.mean([r["cosmic"]["decode_s"] / r_tiles(r) for r in rows])) if rows else float("nan")
    if "cosmic_dc" in out:
        out["cosmic_dc"]["bpp"] = out["cosmic"]["bpp"]
        out["cosmic_dc"]["decode_s_per_tile"] = float(np.mean([r["cosmic_dc"]["decode_s"] / r["cosmic_dc"]["tiles"] for r in rows]))
        out["cosmic_dc"]["steps"] = rows[0]["cosmic_dc"]["steps"]
    return out | {"images": len(kept), "j2k_missed": missed,
                  "cosmic_wins_psnr": int(sum(r["cosmic"]["psnr"] > r["jpeg2000"]["psnr"] for r in kept))}


def write_report(rows: list[dict], out: Path, title: str) -> dict:
    """Write ``per_image.json``, ``summary.json`` and ``summary.md`` of :func:`compare_with_jpeg2000`'s
    rows; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    s = summarize(rows)
    (out / "per_image.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
    lines = [
        f"# {title}", "",
        f"{s['images']} images; bpp from the real files; JPEG2000 searched to COSMIC's bpp per image.", "",
        "| codec | mean bpp | mean PSNR (dB) | mean MS-SSIM |", "|---|---|---|---|",
    ]
    labels = [("cosmic", "COSMIC, no compensation (steps 0)"), ("jpeg2000", "JPEG2000 (OpenJPEG 9/7, mct)")]
    if "cosmic_dc" in s:
        labels.insert(1, ("cosmic_dc", f"COSMIC, diffusion compensation ({s['cosmic_dc']['steps']} DDIM steps)"))
    for codec, label in labels:
        lines.append(f"| {label} | {s[codec]['bpp']:.4f} | {s[codec]['psnr']:.2f} | {s[codec]['ms_ssim']:.4f} |")
    lines.append("")
    lines.append(f"Decode time per 256x256 tile on this machine: {s['cosmic']['decode_s_per_tile']:.3f} s without compensation"
                 + (f", {s['cosmic_dc']['decode_s_per_tile']:.3f} s with {s['cosmic_dc']['steps']} DDIM steps." if "cosmic_dc" in s else "."))
    lines += ["", f"COSMIC has the higher PSNR on {s['cosmic_wins_psnr']} of {s['images']} images.", ""]
    if s["j2k_missed"]:
        lines += [f"Left out of the means: {len(s['j2k_missed'])} image(s) where the JPEG2000 rate search missed "
                  f"COSMIC's bpp by more than {J2K_MISS:.0%}: {', '.join(s['j2k_missed'])}.", ""]
    (out / "summary.md").write_text("\n".join(lines))
    return s
