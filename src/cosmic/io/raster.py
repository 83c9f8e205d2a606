"""GeoTIFF in and out with rasterio, one tile window at a time (docs/DESIGN.md §4).

Reading and writing go through windows, so a 20000 x 20000 scene never sits in memory: peak
memory is a few tile rows, whatever the scene size. The georeferencing (CRS, affine transform,
nodata) and the band / scaling choice travel in the ``.cosmic`` header's ``georef`` block.

The model takes 8-bit RGB. For anything else the choice is explicit and recorded:

- ``bands``: which bands (1-based, GDAL order) are coded, in the order the decoded file has them.
  Default: every band but an alpha band. One band is coded as grey, three as R, G, B; any other
  count (or ``groups``, e.g. ``--band-groups 1,2,3:4``) is coded as band groups of 1 or 3, each a
  plane of tiles of its own in the same ``.cosmic`` file (default grouping: the first three bands
  as R, G, B, every further band alone), and decoded back to the same order and count.
- the validity mask (fill): GDAL's mask of the file (its nodata value, alpha band or internal
  mask) when it declares one; for a non-8-bit file that declares none, pixels that are 0 in every
  coded band (the usual fill of satellite products, e.g. Landsat L1 DN 0), recorded as nodata 0.
  It is coded losslessly per tile (:mod:`cosmic.io.mask`) and restored exactly on decode.
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
    "parse_band_groups", "Product", "nodata_for", "parse_creation_options", "check_creation_options",
    "GDAL_CACHE_MB",
]

GEOTIFF_SUFFIXES = (".tif", ".tiff")
#: GDAL's block cache (its default is 5% of RAM): small, so memory stays bounded
GDAL_CACHE_MB = 32
#: the block cache of the COG copy (its overview pass fills any cache it is given)
COG_CACHE_MB = 8


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
    """``"4,3,2"`` -> ``[4, 3, 2]``: 1-based band numbers, each at most once (one: grey, three:
    R, G, B, any other count: band groups)."""
    if text is None:
        return None
    try:
        bands = [int(b) for b in text.replace(" ", "").split(",") if b]
    except ValueError:
        raise InputError(f"--bands {text!r}: expected band numbers such as 3,2,1") from None
    if not bands or min(bands) < 1 or len(set(bands)) != len(bands) or len(bands) > 255:
        raise InputError(f"--bands {text!r}: give distinct band numbers, numbered from 1")
    return bands


def parse_band_groups(text: str | None) -> list[list[int]] | None:
    """``"1,2,3:4"`` -> ``[[1, 2, 3], [4]]``: groups of one band (grey) or three (R, G, B)."""
    if text is None:
        return None
    try:
        groups = [[int(b) for b in g.split(",")] for g in text.replace(" ", "").split(":")]
    except ValueError:
        raise InputError(f"--band-groups {text!r}: expected groups such as 1,2,3:4") from None
    if any(len(g) not in (1, 3) or min(g) < 1 for g in groups):
        raise InputError(f"--band-groups {text!r}: each group is one band or three, numbered from 1")
    return groups


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
    channels: int  # bands coded (1: gray, replicated to RGB; 3: RGB; more: band groups)
    bands: list[int]
    source_dtype: str
    scale: list[tuple[float, float]] | None  # per chosen band, None for 8-bit passthrough
    georef: dict[str, Any] | None
    tags: dict[str, str]
    notes: list[str] = field(default_factory=list)
    groups: list[list[int]] = field(default_factory=list)  # 1-based positions in ``bands``
    mask: str | None = None  # "gdal" (nodata / alpha / internal mask), "zero" (0 in every band) or None
    descriptions: list[str | None] = field(default_factory=list)
    colorinterp: list[str] = field(default_factory=list)
    carried_tags: dict[str, str] = field(default_factory=dict)  # dataset tags the file carries (AREA_OR_POINT, ...)
    band_tags: list[dict[str, str]] = field(default_factory=list)  # per coded band
    _ds: Any = None

    @classmethod
    def open(cls, path: str | os.PathLike, bands: list[int] | None = None,
             scale: str | tuple[float, float] | None = None, groups: list[list[int]] | None = None,
             mask: bool = True) -> "RasterSource":
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
            src = cls._describe(path, ds, bands, scale, groups, mask)
        except Exception:
            ds.close()
            env.__exit__(None, None, None)
            raise
        src._ds = ds
        src._env = env
        return src

    @classmethod
    def _describe(cls, path, ds, bands, scale, groups=None, mask=True) -> "RasterSource":
        notes = []
        if ds.count == 0:
            raise InputError(f"{path}: no bands")
        bands, positions = _choose_bands(path, ds, bands, groups)
        for b in bands:
            if b > ds.count:
                raise InputError(f"{path}: bands= asks for band {b} but the file has {ds.count}")
        dtypes = {ds.dtypes[b - 1] for b in bands}
        if len(dtypes) > 1:
            raise InputError(f"{path}: the chosen bands have different types {sorted(dtypes)}")
        dtype = dtypes.pop()
        if dtype == "uint8" and scale is None:
            per_band = None
        elif scale is None:
            raise InputError(
                f"{path}: {dtype} samples; the model takes 8-bit - choose a mapping with "
                "scale=(low, high) or scale='auto'"
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
        (carried, left_out), of_bands = _carried_tags(tags), [_carried_tags(ds.tags(b)) for b in bands]
        band_tags = [kept for kept, _ in of_bands]
        if left_out or any(n for _, n in of_bands):
            notes.append(f"GDAL tags beyond {MAX_TAG_BYTES} bytes, or not printable, are not carried")
        kind = _mask_kind(ds, dtype) if mask else None
        if kind == "zero":
            notes.append("no nodata declared: pixels 0 in every coded band are fill, kept as nodata 0 "
                         "(mask=False codes no mask)")
            georef = dict(georef or {"crs": None, "transform": None}, nodata=0)
        elif kind == "gdal" and georef is None and ds.nodata is not None:  # a plain TIFF's nodata: kept too
            georef = {"crs": None, "transform": None,
                      "nodata": ds.nodata if np.isfinite(ds.nodata) else str(ds.nodata)}
        if len(positions) > 1:
            notes.append("coded as band groups " + " : ".join(",".join(str(bands[i - 1]) for i in g)
                                                              for g in positions))
        return cls(path, ds.width, ds.height, len(bands), list(bands), dtype, per_band, georef, tags,
                   notes, positions, kind, [ds.descriptions[b - 1] for b in bands],
                   [ds.colorinterp[b - 1].name for b in bands], carried, band_tags)

    @property
    def coding(self) -> dict[str, Any]:
        """The band / scaling choice, recorded in the container beside the georeferencing."""
        coding = {"bands": self.bands, "source_dtype": self.source_dtype,
                  "scale": [list(s) for s in self.scale] if self.scale else None, "colorinterp": self.colorinterp}
        if any(self.descriptions):
            coding["descriptions"] = self.descriptions
        if self.carried_tags:
            coding["tags"] = self.carried_tags
        if any(self.band_tags):
            coding["band_tags"] = self.band_tags
        return coding

    @property
    def layout(self) -> dict[str, Any] | None:
        """The container's ``layout`` (band groups, mask); None for one group and no mask."""
        if len(self.groups) == 1 and self.mask is None:
            return None
        return {"groups": self.groups, "mask": self.mask is not None}

    def read_mask(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """The validity (True: valid) of the window clipped to the image, as (h, w) bool."""
        from rasterio.windows import Window

        window = Window(left, top, min(width, self.width - left), min(height, self.height - top))
        if self.mask == "gdal":
            return self._ds.dataset_mask(window=window) > 0
        data = self._ds.read(self.bands, window=window)
        return ((data != 0) & np.isfinite(data)).any(axis=0)

    def read(self, top: int, left: int, height: int, width: int, group: int = 0) -> np.ndarray:
        """Pixels of band group ``group`` in the window clipped to the image, as (h, w, 3) uint8."""
        from rasterio.windows import Window

        h = min(height, self.height - top)
        w = min(width, self.width - left)
        picks = self.groups[group]
        try:
            data = self._ds.read([self.bands[i - 1] for i in picks], window=Window(left, top, w, h))
        except Exception as exc:  # a broken strip of an otherwise readable file
            raise InputError(f"{self.path}: cannot read window at ({top}, {left}): {first_line(exc)}") from None
        if self.scale is not None:
            out = np.empty(data.shape, dtype=np.uint8)
            for i, (lo, hi) in enumerate(self.scale[j - 1] for j in picks):
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


def _choose_bands(path, ds, bands, groups) -> tuple[list[int], list[list[int]]]:
    """The coded bands (source numbers, in output order) and their groups (1-based positions in
    that list). ``groups`` (source band numbers) fixes both: the bands in ascending order."""
    if groups is not None:
        if bands is not None:
            raise InputError("bands= and band_groups= exclude each other (the groups name the bands)")
        bands = sorted(b for g in groups for b in g)
        if len(set(bands)) != len(bands):
            raise InputError("band_groups=: a band appears twice")
        return bands, [[bands.index(b) + 1 for b in g] for g in groups]
    if bands is None:
        from rasterio.enums import ColorInterp

        bands = [b for b in range(1, ds.count + 1) if ds.colorinterp[b - 1] != ColorInterp.alpha]
        if not bands:
            raise InputError(f"{path}: only an alpha band")
    if len(bands) in (1, 3):
        return list(bands), [list(range(1, len(bands) + 1))]
    head = [[1, 2, 3]] if len(bands) > 3 else []
    return list(bands), head + [[i] for i in range(len(head) * 3 + 1, len(bands) + 1)]


#: the GDAL tags (dataset, and each band's) a coded file carries: at most this many bytes of JSON
MAX_TAG_BYTES = 8192


def _carried_tags(tags: dict[str, Any]) -> tuple[dict[str, str], int]:
    """The GDAL tags of the source that travel in the header and come back in the product, and how
    many are left out: those the header's schema takes (:func:`cosmic.io.extension.is_tag`: short
    printable keys, text values), in order while they fit in :data:`MAX_TAG_BYTES`.
    ``AREA_OR_POINT=Area``, GDAL's default, is not stored (``Point`` is)."""
    import json

    from cosmic.io.extension import is_tag

    kept: dict[str, str] = {}
    size = 2
    for key, value in tags.items():
        value = str(value)
        if key == "AREA_OR_POINT" and value == "Area":
            continue
        entry = len(json.dumps({key: value})) - 1
        if is_tag(key, value) and size + entry <= MAX_TAG_BYTES:
            kept[key], size = value, size + entry
    return kept, len(tags) - len(kept) - (tags.get("AREA_OR_POINT") == "Area")


def _mask_kind(ds, dtype: str) -> str | None:
    """"gdal" when the file declares fill (nodata, alpha, internal mask), "zero" for a non-8-bit
    file that declares none, else None."""
    from rasterio.enums import MaskFlags

    flags = {f for band in ds.mask_flag_enums for f in band}
    if flags & {MaskFlags.nodata, MaskFlags.alpha, MaskFlags.per_dataset}:
        return "gdal"
    return "zero" if dtype != "uint8" else None


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
    """rasterio profile entries (crs, transform) for a bitstream's georef block; a CRS or
    transform that GDAL cannot use is a :class:`BitstreamError` naming the field."""
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    profile: dict[str, Any] = {}
    for key, build in (("crs", CRS.from_user_input), ("transform", lambda t: Affine(*t))):
        if georef.get(key):
            try:
                profile[key] = build(georef[key])
            except Exception as exc:
                raise BitstreamError(f"header field 'georef.{key}': not usable ({first_line(exc, 120)})") from None
    return profile


def nodata_for(georef: dict[str, Any] | None, dtype: str) -> float | None:
    """The header's nodata value if a ``dtype`` output can hold it (else None: the fill is then
    written as a mask band); a 16-bit source's nodata 65535 does not exist in an 8-bit output,
    nor 1e39 in a float32 one (GDAL refuses to create the file)."""
    value = (georef or {}).get("nodata")
    try:
        nodata = None if value is None else float(value)
    except (TypeError, ValueError, OverflowError):
        raise BitstreamError("header field 'georef.nodata': not a number") from None
    if nodata is None:
        return None
    if np.dtype(dtype).kind == "f":
        return nodata if not np.isfinite(nodata) or abs(nodata) <= np.finfo(dtype).max else None
    info = np.iinfo(dtype)
    return nodata if np.isfinite(nodata) and nodata == int(nodata) and info.min <= nodata <= info.max else None


@dataclass
class Product:
    """What makes a decoded GeoTIFF a product: its sample type, fill, band names and tags, and
    the layout (a Cloud-Optimized GeoTIFF with internal overviews by default)."""

    dtype: str = "uint8"
    nodata: float | None = None
    mask: bool = False  # write an internal mask band (fill the nodata value cannot say)
    descriptions: list[str | None] | None = None
    colorinterp: list[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    band_tags: list[dict[str, str]] | None = None
    cog: bool = True
    creation_options: dict[str, str] = field(default_factory=dict)

    def cog_options(self, block: int) -> dict[str, str]:
        """COG driver creation options: ours, then the user's ``--co`` over them."""
        opts = {"BLOCKSIZE": str(block), "COMPRESS": "DEFLATE", "OVERVIEW_RESAMPLING": "AVERAGE",
                "BIGTIFF": "IF_SAFER", "NUM_THREADS": "1"}
        if np.dtype(self.dtype).kind in "ui":
            opts["PREDICTOR"] = "YES"
        opts.update({k.upper(): v for k, v in self.creation_options.items()})
        return opts


def parse_creation_options(items: list[str] | None) -> dict[str, str]:
    """``["COMPRESS=ZSTD", ...]`` -> ``{"COMPRESS": "ZSTD"}`` (``--co`` passthrough to GDAL)."""
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not key.replace("_", "").isalnum():
            raise InputError(f"--co {item!r}: expected KEY=VALUE, e.g. COMPRESS=ZSTD")
        out[key.strip().upper()] = value
    return out


#: COG creation options that take an integer (GDAL aborts the process on BLOCKSIZE=x)
_INTEGER_OPTIONS = ("BLOCKSIZE", "LEVEL", "QUALITY", "OVERVIEW_QUALITY", "OVERVIEW_COUNT", "ZOOM_LEVEL", "NBITS")


#: what GDAL says of a creation option it ignores or fails on (its other warnings are advice)
_IGNORED_OPTION_WORDS = ("does not support creation option", "not recognised", "ignoring", "only supported",
                         "failed", "error", "invalid")


def check_creation_options(product: Product, block: int) -> None:
    """Refuse ``--co`` options GDAL's COG driver would ignore or fail on (an unknown option, a
    value it does not recognise such as ``COMPRESS=FOO``, one that does not fit the sample type),
    before anything is decoded: integers are checked here, the rest by writing a 16 x 16 COG of
    the product's sample type in memory and listening to GDAL's warnings. GDAL's advisory range
    warnings (``BLOCKSIZE=64`` "should be >= 128", which it applies all the same) are not refusals."""
    import logging

    import rasterio.shutil
    from rasterio.io import MemoryFile

    user = product.creation_options
    for key in _INTEGER_OPTIONS:
        value = user.get(key)
        if value is not None and not (value.isdigit() and (key != "BLOCKSIZE" or 16 <= int(value) <= 4096)):
            raise InputError(f"--co {key}={value}: expected an integer{' 16..4096' if key == 'BLOCKSIZE' else ''}")
    heard: list[str] = []
    listener = logging.Handler(logging.WARNING)
    listener.emit = lambda record: heard.append(record.getMessage().split(" in ", 1)[-1])
    logger = logging.getLogger("rasterio._env")
    logger.addHandler(listener)
    try:
        with _env(), warnings.catch_warnings(), MemoryFile() as mem:
            warnings.simplefilter("ignore")
            with mem.open(driver="GTiff", width=16, height=16, count=1, dtype=product.dtype) as ds:
                ds.write(np.zeros((1, 16, 16), product.dtype))
            rasterio.shutil.copy(mem.name, "/vsimem/cosmic-co-probe.tif", driver="COG", **product.cog_options(block))
            rasterio.shutil.delete("/vsimem/cosmic-co-probe.tif")
    except Exception as exc:
        heard.append(f"failed: {first_line(exc)}")
    finally:
        logger.removeHandler(listener)
    refused = [m for m in heard if any(w in m for w in _IGNORED_OPTION_WORDS)]
    if refused:
        given = " ".join(f"{k}={v}" for k, v in user.items())
        raise InputError(f"--co {given}: GDAL's COG driver refuses it ({refused[0]})")


class GeoTiffWriter:
    """A GeoTIFF written window by window (tiled, deflate), then, for a :class:`Product` with
    ``cog`` (the default), copied by GDAL's COG driver into a Cloud-Optimized GeoTIFF with internal
    overviews (both steps in bounded memory: GDAL's block cache). Atomic: the file appears under
    its name only after ``close()``; on error the partial files are removed."""

    def __init__(self, path: str | os.PathLike, width: int, height: int, channels: int = 3,
                 georef: dict[str, Any] | None = None, block: int = 256, product: Product | None = None):
        import rasterio

        self.path = Path(path)
        self.product = product or Product(nodata=nodata_for(georef, "uint8"))
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self.stage = self.path.with_name(f".{self.path.name}.partial.gtiff") if self.product.cog else self.tmp
        self.channels, self.block = channels, block
        profile = {
            "driver": "GTiff", "width": width, "height": height, "count": channels, "dtype": self.product.dtype,
            "tiled": True, "blockxsize": block, "blockysize": block, "compress": "deflate",
            "interleave": "pixel" if channels > 1 else "band", "BIGTIFF": "IF_SAFER",
            "nodata": self.product.nodata,
        }
        interp = self.product.colorinterp
        if (interp is None and channels == 3) or (interp and interp[:3] == ["red", "green", "blue"]):
            profile["photometric"] = "RGB"  # else GDAL reads a 4th uint8 band as alpha
        elif channels > 1:
            profile["photometric"] = "MINISBLACK"
        profile.update(_georef_profile(georef or {}))
        self._env = _env()
        self._env.__enter__()
        try:
            with warnings.catch_warnings():
                from rasterio.errors import NotGeoreferencedWarning

                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(self.stage, "w", **profile)
        except Exception as exc:
            self._cleanup()  # GDAL may have created the staging file before it failed
            raise InputError(f"{self.path}: cannot write GeoTIFF ({first_line(exc)})") from None

    def write(self, top: int, left: int, pixels: np.ndarray, bands: list[int] | None = None) -> None:
        """Write (h, w, c) pixels at (top, left) into ``bands`` (1-based; default the first c)."""
        from rasterio.windows import Window

        h, w = pixels.shape[:2]
        bands = bands or list(range(1, min(pixels.shape[2], self.channels) + 1))
        data = pixels.transpose(2, 0, 1)[: len(bands)]
        self._ds.write(np.ascontiguousarray(data), indexes=bands, window=Window(left, top, w, h))

    def write_mask(self, top: int, left: int, valid: np.ndarray) -> None:
        """Write the (h, w) validity of a window into the internal mask band."""
        from rasterio.windows import Window

        h, w = valid.shape
        self._ds.write_mask(np.where(valid, 255, 0).astype(np.uint8), window=Window(left, top, w, h))

    def _describe(self) -> None:
        from rasterio.enums import ColorInterp

        p = self.product
        if p.tags:
            self._ds.update_tags(**p.tags)
        for i, tags in enumerate(p.band_tags or [], start=1):
            if tags:
                self._ds.update_tags(i, **tags)
        for i, text in enumerate(p.descriptions or [], start=1):
            if text:
                self._ds.set_band_description(i, text)
        if p.colorinterp and len(p.colorinterp) == self.channels:
            self._ds.colorinterp = [getattr(ColorInterp, n, ColorInterp.undefined) for n in p.colorinterp]

    def close(self) -> None:
        try:
            self._describe()
            self._ds.close()
            if self.product.cog:
                self._to_cog()
        except Exception as exc:
            self._cleanup()
            raise InputError(f"{self.path}: cannot write GeoTIFF ({first_line(exc)})") from None
        self._env.__exit__(None, None, None)
        os.replace(self.tmp, self.path)

    def _to_cog(self) -> None:
        import rasterio.shutil

        # a smaller block cache for the copy: its overview pass fills whatever cache it is given
        with rasterio.Env(GDAL_CACHEMAX=COG_CACHE_MB * 1024 * 1024):
            rasterio.shutil.copy(self.stage, self.tmp, driver="COG", **self.product.cog_options(self.block))
        self.stage.unlink()

    def _cleanup(self) -> None:
        self._env.__exit__(None, None, None)
        for f in {self.tmp, self.stage}:
            if f.exists():
                f.unlink()

    def abort(self) -> None:
        try:
            self._ds.close()
        finally:
            self._cleanup()

    def __enter__(self) -> "GeoTiffWriter":
        return self

    def __exit__(self, exc_type, *rest) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def to_source_units(pixels: np.ndarray, scale: list[list[float]] | None, dtype: str) -> np.ndarray:
    """Coded 8-bit samples (h, w, c) back in the source's units: the inverse of the coding
    stretch ``u = clip(rint((v - low) * 255 / (high - low)), 0, 255)`` per band, ``v = low + u *
    (high - low) / 255``, rounded and clipped to ``dtype``. Source values below ``low`` or above
    ``high`` were clipped when coded and come back as ``low`` / ``high``; inside the range the
    quantisation error is at most (high - low) / 510 on top of the codec's error."""
    if scale is None or np.dtype(dtype) == np.uint8:
        return pixels.astype(dtype, copy=False)
    lo = np.array([p[0] for p in scale], dtype=np.float64)
    hi = np.array([p[1] for p in scale], dtype=np.float64)
    out = lo + pixels.astype(np.float64) * ((hi - lo) / 255.0)
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(dtype)


def apply_fill(pixels: np.ndarray, valid: np.ndarray | None, nodata: float | None) -> np.ndarray:
    """Fill pixels get ``nodata``; valid pixels that decoded to ``nodata`` are nudged one step
    (+1, or -1 at the top of the type; the next float for floats) so no real pixel reads as fill."""
    if nodata is None or np.isnan(nodata):
        if valid is not None and nodata is not None:
            pixels[~valid] = np.nan
        return pixels
    hit = pixels == pixels.dtype.type(nodata)
    if pixels.dtype.kind == "f":
        pixels[hit] = np.nextafter(pixels.dtype.type(nodata), np.inf, dtype=pixels.dtype)
    else:
        pixels[hit] = nodata + 1 if nodata < np.iinfo(pixels.dtype).max else nodata - 1
    if valid is not None:
        pixels[~valid] = nodata
    return pixels
