"""The main job, end to end: compress a real scene "on the satellite", decode it "on the ground",
and compare with JPEG2000 (the codec flying today) at the same measured bpp. Both halves are the
pipelines behind ``cosmic compress`` / ``cosmic decompress`` (:mod:`cosmic.pipelines`).

A variable-rate model is coded at the byte budget of the JPEG2000 file it is compared with
(JPEG2000 first, at :data:`DEMO_BPP`; then COSMIC under rate control, ``--max-bytes`` of that
file), as a downlink with a fixed budget would; a fixed-rate model codes at its one rate and
JPEG2000 is searched to match it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cosmic.evaluation.classical import jpeg2000_at_bpp
from cosmic.evaluation.metrics import ms_ssim, psnr
from cosmic.io.container import read_container
from cosmic.io.images import save_image
from cosmic.pipelines import DecodePipeline, EncodedScene, EncodePipeline, open_scene
from cosmic.zoo import DEFAULT_MODEL

__all__ = ["DemoRow", "run_demo", "side_by_side", "DEMO_BPP"]

#: the JPEG2000 rate a variable-rate model is compared at (its bytes become COSMIC's budget)
DEMO_BPP = 0.15


@dataclass
class DemoRow:
    codec: str
    bytes: int
    bpp: float
    ratio: float
    psnr: float
    ms_ssim: float
    seconds: float | None = None


def side_by_side(panels: list[tuple[str, np.ndarray]], path: Path) -> None:
    """Write labelled panels left to right as one PNG."""
    h = max(p.shape[0] for _, p in panels)
    gap, band = 8, 22
    w = sum(p.shape[1] for _, p in panels) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (w, h + band), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for label, pix in panels:
        canvas.paste(Image.fromarray(pix), (x, band))
        draw.text((x + 4, 4), label, fill="black")
        x += pix.shape[1] + gap
    canvas.save(path)


def _encode(scene, image_path: Path, out: Path, pipe: EncodePipeline, echo,
            max_bytes: int | None = None) -> tuple[Path, EncodedScene]:
    """The satellite's half: the same encode pipeline as ``cosmic compress IMAGE -m MODEL``
    (``--max-bytes`` when a budget is given)."""
    echo(f"[satellite] {image_path.name}: {scene.width}x{scene.height} px, sensor metadata: "
         f"{', '.join(scene.metadata.known()) or 'none'}")
    quality = None if max_bytes is not None else pipe.default_quality
    bitstream = out / (image_path.stem + ".cosmic")
    coded = pipe.to_file(scene, bitstream, quality=quality, max_bytes=max_bytes)
    if max_bytes is not None:
        echo(f"[satellite] rate control: quality {coded.header.quality:g} fits the JPEG2000 budget of {max_bytes} bytes")
    echo(f"[satellite] encoded {coded.header.num_tiles} tiles in {coded.seconds:.2f} s -> {bitstream} ({coded.size} bytes)")
    return bitstream, coded


def _decode(pipe: DecodePipeline, bitstream: Path, x: np.ndarray, label: str, steps: int, seed: int,
            png: Path) -> tuple[DemoRow, np.ndarray]:
    """The ground's half at ``steps`` DDIM steps (0: no compensation), scored against ``x``."""
    container = read_container(bitstream)
    t0 = time.perf_counter()
    decoded = pipe(container, steps=steps, seed=seed, progress=steps > 0).pixels
    seconds = time.perf_counter() - t0
    save_image(decoded, png)
    size = container.file_size
    return DemoRow(label, size, container.bpp, x.size / size, psnr(x, decoded), ms_ssim(x, decoded), seconds), decoded


def _print_table(rows: list[DemoRow], echo) -> None:
    echo("")
    echo(f"{'codec':32s} {'bytes':>8s} {'bpp':>7s} {'ratio':>8s} {'PSNR dB':>8s} {'MS-SSIM':>8s}")
    for r in rows:
        echo(f"{r.codec:32s} {r.bytes:8d} {r.bpp:7.4f} {r.ratio:6.1f}:1 {r.psnr:8.2f} {r.ms_ssim:8.4f}")
    echo("")


def run_demo(image_path: Path, out: Path, model: str = DEFAULT_MODEL, echo=print, steps: int = 0,
             seed: int = 0) -> list[DemoRow]:
    """Encode ``image_path`` on the "satellite", decode it on the "ground" without compensation
    (and with ``steps`` DDIM steps when asked and the model has stage 2), compare with JPEG2000
    at the same measured bpp; writes the bitstream, decoded PNGs and ``side_by_side.png``."""
    out.mkdir(parents=True, exist_ok=True)
    encoder, scene = EncodePipeline.from_pretrained(model), open_scene(image_path)
    x = scene.read(0, 0, scene.height, scene.width)
    j2k, t_j2k = None, 0.0
    if encoder.quality_range is not None:  # a variable-rate model codes at JPEG2000's budget
        t0 = time.perf_counter()
        j2k = jpeg2000_at_bpp(x, DEMO_BPP)
        t_j2k = time.perf_counter() - t0
    bitstream, coded = _encode(scene, image_path, out, encoder, echo, None if j2k is None else len(j2k.data))
    echo("[ground] decoding without diffusion compensation (--steps 0), tile borders smoothed (--deblock, the default)")
    pipe = DecodePipeline.from_pretrained(model)
    stem = out / image_path.stem
    row, decoded = _decode(pipe, bitstream, x, "COSMIC (no compensation)", 0, seed, Path(f"{stem}.cosmic.png"))
    rows, bpp = [row], row.bpp
    panels = [("original", x), None, (f"COSMIC w/o DC {bpp:.3f} bpp", decoded)]
    if steps > 0 and pipe.compensator is not None:
        echo(f"[ground] decoding with diffusion compensation ({steps} DDIM steps, seed {seed})")
        row_dc, decoded_dc = _decode(pipe, bitstream, x, f"COSMIC (compensated, {steps} steps)", steps, seed,
                                     Path(f"{stem}.cosmic-dc.png"))
        rows.append(row_dc)
        panels.append((f"COSMIC {bpp:.3f} bpp", decoded_dc))
    if j2k is None:
        t0 = time.perf_counter()
        j2k = jpeg2000_at_bpp(x, bpp)
        t_j2k = time.perf_counter() - t0
    Path(f"{stem}.j2k").write_bytes(j2k.data)
    rows.insert(0, DemoRow("JPEG2000 (OpenJPEG, 9/7, mct)", len(j2k.data), j2k.bpp, x.size / len(j2k.data),
                           psnr(x, j2k.decoded), ms_ssim(x, j2k.decoded), None))
    panels[1] = (f"JPEG2000 {j2k.bpp:.3f} bpp", j2k.decoded)
    side_by_side(panels, out / "side_by_side.png")
    _print_table(rows, echo)
    h, w = x.shape[:2]
    echo(f"time: satellite encode {coded.seconds:.2f} s, ground decode {row.seconds:.2f} s without compensation"
         + (f", {rows[-1].seconds:.2f} s with" if len(panels) > 3 else "")
         + f" ({h * w / 1e6:.2f} Mpx; JPEG2000 rate search {t_j2k:.2f} s)")
    if steps > 0 and len(panels) == 3:
        echo(f"diffusion compensation: model '{model}' has no stage-2 network; shown: steps 0 only")
    echo(f"side-by-side: {out / 'side_by_side.png'}")
    return rows
