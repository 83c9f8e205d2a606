"""GeoTIFF products on the shared scenes (issue #18): what the radiometry, the fill mask and the
band groups cost and give, against JPEG 2000 (GDAL's JP2OpenJPEG, multi-component, 9/7
irreversible, raw J2K codestream) at the same size or smaller.

- Landsat 8 (B4, B3, B2, 16-bit DN, fill 0, 1558 x 1582): stacked into one GeoTIFF with band
  names, coded with ``--scale auto``, decoded to uint16 by default. RMSE in DN and PSNR (peak
  65535, the type's range) over the valid pixels; the mask's bytes; fill exactness.
- NAIP (4 bands, uint8, 934 x 723): coded as groups 1,2,3 : 4, decoded to 4 bands; PSNR per band;
  ``naip_4band`` with ``--model`` for every group, ``naip_4band_default`` with the default models
  (the single-band one codes the NIR group).
- Landsat 8 B4 alone (one uint16 band, ``--scale auto``): the single-band model
  (``cosmic-small-vr-gray``) against the RGB model coding the band as grey (before it), at the
  same quality and at the RGB model's file size, and JPEG 2000 at each size; PSNR over the valid
  pixels in DN (peak 65535).

    python benchmarks/geotiff_products.py [--model cosmic-small-vr] [--single-band-model cosmic-small-vr-gray]
                                          [--quality 3] [--scenes landsat8_B432,naip_4band,naip_4band_default,landsat8_B4]

Run niced; it codes each scene once with cosmic and about 12 times with JPEG 2000 (bisection).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LANDSAT = DATA / "metadata" / "landsat8_LC80460282016177LGN00"
NAIP = DATA / "scenes" / "naip_m_4709963_se_14_1_20100629.tif"


def stack_landsat(out: Path) -> Path:
    """B4, B3, B2 as one 3-band uint16 GeoTIFF with band descriptions (as a user would build)."""
    srcs = [rasterio.open(LANDSAT / f"landsat8_LC80460282016177LGN00_B{b}.tif") for b in (4, 3, 2)]
    profile = dict(srcs[0].profile, count=3, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(out, "w", **profile) as ds:
        for i, (src, name) in enumerate(zip(srcs, ("B4", "B3", "B2")), start=1):
            ds.write(src.read(1), i)
            ds.set_band_description(i, name)
    for s in srcs:
        s.close()
    return out


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def jpeg2000_within(src: Path, budget: int, work: Path) -> tuple[int, np.ndarray]:
    """The largest JPEG 2000 codestream of ``src`` (all bands) that fits in ``budget`` bytes."""
    lo, hi, best = 0.01, 50.0, None
    for _ in range(14):
        q = (lo * hi) ** 0.5
        out = work / "j.j2k"
        rasterio.shutil.copy(src, out, driver="JP2OpenJPEG", CODEC="J2K", QUALITY=f"{q:.4f}",
                             REVERSIBLE="NO", YCC="YES" if rasterio.open(src).count >= 3 else "NO")
        size = out.stat().st_size
        if size <= budget:
            with rasterio.open(out) as ds:
                best, lo = (size, ds.read()), q
        else:
            hi = q
        if best and best[0] > 0.97 * budget:
            break
    return best


def cosmic_round_trip(src: Path, work: Path, model: str, quality: float, *extra: str):
    from cosmic.cli import main

    coded, out = work / "c.cosmic", work / "c.tif"
    q = ["--quality", str(quality)] if quality else []
    m = ["-m", model] if model else []  # None: the default models (single-band for one-band groups)
    main(["compress", str(src), "-o", str(coded), *m, "-q", *q, *extra])
    main(["decompress", str(coded), "-o", str(out), "-q"])
    with rasterio.open(out) as ds:
        return coded.stat().st_size, ds.read(), ds


def mask_bytes(coded: Path) -> int:
    from cosmic.io.container import read_container
    from cosmic.io.mask import split_mask

    c = read_container(coded)
    return sum(len(split_mask(c.tile_payload(i))[0]) for i in range(c.header.grid_tiles))


def stretch_only_rmse(x: np.ndarray, valid: np.ndarray, coded: Path) -> float:
    """RMSE in DN of the coding stretch alone (8-bit quantisation and clipping, no codec)."""
    from cosmic.io.container import read_container
    from cosmic.io.raster import to_source_units

    scale = read_container(coded).header.georef["source"]["scale"]
    lo, hi = np.array(scale).T[:, :, None, None]
    u = np.clip(np.rint((x - lo) * 255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    back = to_source_units(u.transpose(1, 2, 0), scale, "uint16").transpose(2, 0, 1)
    return float(np.sqrt(np.mean((back[:, valid].astype(float) - x[:, valid]) ** 2)))


def landsat(work: Path, model: str, quality: float) -> dict:
    src = stack_landsat(work / "landsat_B432.tif")
    with rasterio.open(src) as ds:
        x = ds.read()
    fill = (x == 0).all(axis=0)
    size, y, _ = cosmic_round_trip(src, work, model, quality, "--scale", "auto")
    px = x.shape[1] * x.shape[2]
    valid = ~fill
    j_size, j = jpeg2000_within(src, size, work)
    return {
        "cosmic_bytes": size, "cosmic_bpp": size * 8 / px,
        "ratio_vs_16bit": x.nbytes / size,
        "rmse_dn_valid": float(np.sqrt(np.mean((y[:, valid].astype(float) - x[:, valid]) ** 2))),
        "psnr_valid_peak65535": psnr(y[:, valid], x[:, valid], 65535),
        "stretch_only_rmse_dn_valid": stretch_only_rmse(x, valid, work / "c.cosmic"),
        "fill_pixels": int(fill.sum()), "fill_exact": bool(np.array_equal((y == 0).all(0), fill)),
        "valid_decoded_as_0": int((y[:, valid] == 0).any(axis=0).sum()),
        "mask_bytes": mask_bytes(work / "c.cosmic"), "mask_bpp": mask_bytes(work / "c.cosmic") * 8 / px,
        "jpeg2000_bytes": j_size, "jpeg2000_bpp": j_size * 8 / px,
        "jpeg2000_rmse_dn_valid": float(np.sqrt(np.mean((j[:, valid].astype(float) - x[:, valid]) ** 2))),
        "jpeg2000_psnr_valid_peak65535": psnr(j[:, valid], x[:, valid], 65535),
        "jpeg2000_valid_decoded_as_0": int((j[:, valid] == 0).any(axis=0).sum()),
    }


def naip(work: Path, model: str, quality: float) -> dict:
    with rasterio.open(NAIP) as ds:
        x = ds.read()
    size, y, _ = cosmic_round_trip(NAIP, work, model, quality)
    px = x.shape[1] * x.shape[2]
    j_size, j = jpeg2000_within(NAIP, size, work)
    return {
        "bands_out": int(y.shape[0]), "cosmic_bytes": size, "cosmic_bpp": size * 8 / px,
        "cosmic_psnr_per_band": [psnr(y[b], x[b], 255) for b in range(4)],
        "jpeg2000_bytes": j_size, "jpeg2000_bpp": j_size * 8 / px,
        "jpeg2000_psnr_per_band": [psnr(j[b], x[b], 255) for b in range(4)],
    }


def _band_figures(x: np.ndarray, y: np.ndarray, valid: np.ndarray, size: int) -> dict:
    """Bytes, bpp, RMSE (DN) and PSNR (peak 65535) over the valid pixels of a one-band decode."""
    err = y[:, valid].astype(float) - x[:, valid]
    return {"bytes": size, "bpp": size * 8 / x[0].size, "rmse_dn_valid": float(np.sqrt(np.mean(err**2))),
            "psnr_valid_peak65535": psnr(y[:, valid], x[:, valid], 65535)}


def landsat_b4(work: Path, model: str, single: str, quality: float) -> dict:
    """B4 alone: the RGB model (the band as grey), the single-band model at the same quality and
    at the RGB model's size (rate control), each against JPEG 2000 at its size."""
    src = LANDSAT / "landsat8_LC80460282016177LGN00_B4.tif"
    with rasterio.open(src) as ds:
        x = ds.read()
    valid, report = x[0] != 0, {}
    runs = {f"{model}_q{quality:g}": (model, ["--quality", str(quality)]),
            f"{single}_q{quality:g}": (single, ["--quality", str(quality)])}
    for key, (name, rate) in runs.items():
        size, y, _ = cosmic_round_trip(src, work, name, 0, "--scale", "auto", *rate)
        j_size, j = jpeg2000_within(src, size, work)
        report[key] = {**_band_figures(x, y, valid, size), "jpeg2000": _band_figures(x, j, valid, j_size)}
    budget = report[f"{model}_q{quality:g}"]["bytes"]
    size, y, _ = cosmic_round_trip(src, work, single, 0, "--scale", "auto", "--max-bytes", str(budget))
    report[f"{single}_max_bytes_{budget}"] = _band_figures(x, y, valid, size)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--single-band-model", default="cosmic-small-vr-gray")
    ap.add_argument("--quality", type=float, default=3.0)
    ap.add_argument("--scenes", default="landsat8_B432,naip_4band,naip_4band_default,landsat8_B4")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    scenes = {"landsat8_B432": lambda w: landsat(w, args.model, args.quality),
              "naip_4band": lambda w: naip(w, args.model, args.quality),
              "naip_4band_default": lambda w: naip(w, None, args.quality),
              "landsat8_B4": lambda w: landsat_b4(w, args.model, args.single_band_model, args.quality)}
    with tempfile.TemporaryDirectory() as tmp:
        report = {name: scenes[name](Path(tmp)) for name in args.scenes.split(",")}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
