"""GeoTIFF in and out with rasterio, one tile window at a time (docs/DESIGN.md §4).

Reading and writing go through windows, so a 20000 x 20000 scene never sits in memory: peak
memory is a few tile rows, whatever the scene size. The georeferencing (CRS, affine transform,
nodata) and the band / scaling choice travel in the ``.cosmic`` header's ``georef`` block.

The model takes 8-bit RGB. For anything else the choice is explicit and recorded:

- ``bands``: which bands (1-based, GDAL order) become R, G, B; one band is coded as grayscale.
  Default: bands 1-3 of a file with 3 or more bands (a 4th band is dropped with a note), band 1
  of a single-band file.
- ``scale``: how non-8-bit samples map to 0..255 - ``(low, high)`` linearly, or ``"auto"``, a
  per-band 2nd-98th percentile stretch measured on a decimated read (the recipe used for the
  shared Landsat PNGs). Pixels equal to nodata in every band (0 when the file declares no
  nodata: the usual fill of satellite products) are left out of the percentiles, and so are NaN
  and infinite samples of a float file (said in one note); those are coded as 0. Refused when
  missing for a non-8-bit input rather than guessed.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosmic.errors import BitstreamError, InputError, first_line

__all__ = [
    "GEOTIFF_SUFFIXES", "RasterSource", "is_georeferenced", "GeoTiffWriter", "parse_bands", "parse_scale", "is_geotiff",
    "GDAL_CACHE_MB",
]

GEOTIFF_SUFFIXES = (".tif", ".tiff")
#: GDAL's block cache (its default is 5% of RAM): small, so memory stays bounded
GDAL_CACHE_MB = 32


def is_geotiff(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in GEOTIFF_SUFFIXES


def is_georeferenced(path: str | os.PathLike) -> bool:
    """True when rasterio sees a CRS or a non-identity transform (False if it cannot read it)."""
    import rasterio

    try:
        with _env(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(path) as ds:
                return ds.crs is not None or not ds.transform.is_identity
    except Exception:
        return False


def _env():
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 1024 * 1024, GDAL_NUM_THREADS=1)


def parse_bands(text: str | None) -> list[int] | None:
    """``"4,3,2"`` -> ``[4, 3, 2]``; one or three 1-based band numbers."""
    if text is None:
        return None
    try:
        bands = [int(b) for b in text.replace(" ", "").split(",") if b]
    except ValueError:
        raise InputError(f"--bands {text!r}: expected band numbers such as 3,2,1") from None
    if len(bands) not in (1, 3) or min(bands) < 1:
        raise InputError(f"--bands {text!r}: give one band (grayscale) or three (R,G,B), numbered from 1")
    return bands


def parse_scale(text: str | None) -> str | tuple[float, float] | None:
    """``"auto"`` or ``"LOW,HIGH"`` (the source values mapped to 0 and 255)."""
    if text is None:
        return None
    if text.strip().lower() == "auto":
        return "auto"
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--scale {text!r}: expected 'auto' or LOW,HIGH such as 0,4000") from None
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise InputError(f"--scale {text!r}: need finite LOW < HIGH")
    return (low, high)


@dataclass
class RasterSource:
    """An opened GeoTIFF whose windows are read as 8-bit (H, W, 3) RGB."""

    path: Path
    width: int
    height: int
    channels: int  # 1: coded as gray (replicated to RGB), 3: RGB
    bands: list[int]
    source_dtype: str
    scale: list[tuple[float, float]] | None  # per chosen band, None for 8-bit passthrough
    georef: dict[str, Any] | None
    tags: dict[str, str]
    notes: list[str] = field(default_factory=list)
    _ds: Any = None

    @classmethod
    def open(cls, path: str | os.PathLike, bands: list[int] | None = None,
             scale: str | tuple[float, float] | None = None) -> "RasterSource":
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        env = _env()
        env.__enter__()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                ds = rasterio.open(path)
        except RasterioIOError as exc:
            env.__exit__(None, None, None)
            raise InputError(f"{path}: not a readable GeoTIFF ({first_line(exc)})") from None
        try:
            src = cls._describe(path, ds, bands, scale)
        except Exception:
            ds.close()
            env.__exit__(None, None, None)
            raise
        src._ds = ds
        src._env = env
        return src

    @classmethod
    def _describe(cls, path, ds, bands, scale) -> "RasterSource":
        notes = []
        if ds.count == 0:
            raise InputError(f"{path}: no bands")
        if bands is None:
            bands = [1, 2, 3] if ds.count >= 3 else [1]
            if ds.count == 2 or ds.count > 3:
                dropped = ", ".join(str(b) for b in range(len(bands) + 1, ds.count + 1))
                interp = [ds.colorinterp[b - 1].name for b in range(len(bands) + 1, ds.count + 1)]
                notes.append(f"band(s) {dropped} ({', '.join(interp)}) not coded; choose bands with --bands")
        for b in bands:
            if b > ds.count:
                raise InputError(f"{path}: --bands asks for band {b} but the file has {ds.count}")
        dtypes = {ds.dtypes[b - 1] for b in bands}
        if len(dtypes) > 1:
            raise InputError(f"{path}: the chosen bands have different types {sorted(dtypes)}")
        dtype = dtypes.pop()
        if dtype == "uint8" and scale is None:
            per_band = None
        elif scale is None:
            raise InputError(
                f"{path}: {dtype} samples; the model takes 8-bit - choose a mapping with "
                "--scale LOW,HIGH or --scale auto"
            )
        elif scale == "auto":
            per_band, nonfinite = _auto_stretch(ds, bands)
            if nonfinite:
                notes.append(f"{nonfinite:.2%} of the sampled values are NaN or infinite: treated as "
                             "nodata (left out of the stretch, coded as 0)")
            notes.append("scaled to 8 bits by a 2-98% stretch per band: " + ", ".join(
                f"band {b} {lo:g}..{hi:g}" for b, (lo, hi) in zip(bands, per_band)))
        else:
            per_band = [tuple(scale)] * len(bands)
        georef = None
        if ds.crs is not None or not ds.transform.is_identity:
            georef = {
                "crs": _crs_text(ds.crs),
                "transform": list(ds.transform)[:6],
                "nodata": ds.nodata if ds.nodata is None or np.isfinite(ds.nodata) else str(ds.nodata),
            }
        tags = {k: str(v) for k, v in ds.tags().items()}
        return cls(path, ds.width, ds.height, 1 if len(bands) == 1 else 3, list(bands), dtype,
                   per_band, georef, tags, notes)

    @property
    def coding(self) -> dict[str, Any]:
        """The band / scaling choice, recorded in the container beside the georeferencing."""
        return {"bands": self.bands, "source_dtype": self.source_dtype,
                "scale": [list(s) for s in self.scale] if self.scale else None}

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Pixels of the window clipped to the image, as (h, w, 3) uint8."""
        from rasterio.windows import Window

        h = min(height, self.height - top)
        w = min(width, self.width - left)
        try:
            data = self._ds.read(self.bands, window=Window(left, top, w, h))
        except Exception as exc:  # a broken strip of an otherwise readable file
            raise InputError(f"{self.path}: cannot read window at ({top}, {left}): {first_line(exc)}") from None
        if self.scale is not None:
            out = np.empty(data.shape, dtype=np.uint8)
            for i, (lo, hi) in enumerate(self.scale):
                band = (data[i].astype(np.float32) - lo) * (255.0 / (hi - lo))
                band[~np.isfinite(band)] = 0.0  # NaN / inf: nodata, coded as 0
                out[i] = np.clip(np.rint(band), 0, 255).astype(np.uint8)
            data = out
        if data.shape[0] == 1:
            data = np.repeat(data, 3, axis=0)
        return np.ascontiguousarray(data.transpose(1, 2, 0))

    def close(self) -> None:
        if self._ds is not None:
            self._ds.close()
            self._ds = None
            self._env.__exit__(None, None, None)

    def __enter__(self) -> "RasterSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _crs_text(crs) -> str | None:
    """"EPSG:n" when the CRS is exactly an EPSG code (a few bytes in the header), else its WKT."""
    if crs is None:
        return None
    epsg = crs.to_epsg(confidence_threshold=100)
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def _auto_stretch(ds, bands: list[int], side: int = 1024) -> tuple[list[tuple[float, float]], float]:
    """2nd and 98th percentile of each band on a read decimated to at most ``side`` px, and the
    fraction of the samples read that are NaN or infinite (left out, like nodata)."""
    f = max(1, int(np.ceil(max(ds.width, ds.height) / side)))
    shape = (len(bands), max(1, ds.height // f), max(1, ds.width // f))
    from rasterio.enums import Resampling

    data = ds.read(bands, out_shape=shape, resampling=Resampling.nearest).astype(np.float64)
    fill = ds.nodata if ds.nodata is not None else 0.0
    valid = ~(data == fill).all(axis=0)
    finite = np.isfinite(data)
    out = []
    for b in range(len(bands)):
        v = data[b][valid & finite[b]]
        if v.size == 0:
            raise InputError(f"{ds.name}: band {bands[b]} has no valid samples to scale")
        lo, hi = np.percentile(v, [2, 98])
        out.append((float(lo), float(hi) if hi > lo else float(lo) + 1.0))
    return out, float(1.0 - finite.mean())


def _georef_profile(georef: dict[str, Any]) -> dict[str, Any]:
    """rasterio profile entries (crs, transform, nodata) for a bitstream's georef block; a CRS
    or transform that GDAL cannot use is a :class:`BitstreamError` naming the field."""
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    profile: dict[str, Any] = {}
    for key, build in (("crs", CRS.from_user_input), ("transform", lambda t: Affine(*t))):
        if georef.get(key):
            try:
                profile[key] = build(georef[key])
            except Exception as exc:
                raise BitstreamError(f"header field 'georef.{key}': not usable ({first_line(exc, 120)})") from None
    try:
        nodata = None if georef.get("nodata") is None else float(georef["nodata"])
    except (TypeError, ValueError):
        raise BitstreamError("header field 'georef.nodata': not a number") from None
    if nodata is not None and 0 <= nodata <= 255:  # a 16-bit source's nodata does not exist in 8-bit
        profile["nodata"] = nodata
    return profile


class GeoTiffWriter:
    """A tiled, deflate-compressed 8-bit GeoTIFF written window by window, atomically: the file
    appears under its name only after ``close()``; on error the partial file is removed."""

    def __init__(self, path: str | os.PathLike, width: int, height: int, channels: int = 3,
                 georef: dict[str, Any] | None = None, block: int = 256):
        import rasterio

        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self.channels = channels
        profile = {
            "driver": "GTiff", "width": width, "height": height, "count": channels, "dtype": "uint8",
            "tiled": True, "blockxsize": block, "blockysize": block, "compress": "deflate",
            "interleave": "pixel" if channels > 1 else "band", "BIGTIFF": "IF_SAFER",
        }
        if channels == 3:
            profile["photometric"] = "RGB"
        profile.update(_georef_profile(georef or {}))
        self._env = _env()
        self._env.__enter__()
        try:
            with warnings.catch_warnings():
                from rasterio.errors import NotGeoreferencedWarning

                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(self.tmp, "w", **profile)
        except Exception as exc:
            self._env.__exit__(None, None, None)
            raise InputError(f"{self.path}: cannot write GeoTIFF ({first_line(exc)})") from None

    def write(self, top: int, left: int, pixels: np.ndarray) -> None:
        """Write (h, w, 3) uint8 pixels at (top, left)."""
        from rasterio.windows import Window

        h, w = pixels.shape[:2]
        data = pixels.transpose(2, 0, 1)[: self.channels]
        self._ds.write(np.ascontiguousarray(data), window=Window(left, top, w, h))

    def close(self) -> None:
        self._ds.close()
        self._env.__exit__(None, None, None)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._ds.close()
        finally:
            self._env.__exit__(None, None, None)
            if self.tmp.exists():
                self.tmp.unlink()

    def __enter__(self) -> "GeoTiffWriter":
        return self

    def __exit__(self, exc_type, *rest) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
