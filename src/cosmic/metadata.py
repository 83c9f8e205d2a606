"""Sensor metadata that comes with every satellite image (paper §4.4, §5.1; docs/DESIGN.md §3).

The fields are the paper's (fMoW key names): UTM zone, timestamp, GSD, cloud cover, off-nadir
angle, target azimuth, sun azimuth, sun elevation. Any field may be absent: an absent field stays
``None`` and is never replaced by a made-up value. Values are validated against their physical
ranges; unknown keys are reported as warnings and dropped.

The metadata travels in the ``.cosmic`` header. The paper leaves it out of bpp; we count it
(every bpp here is file bytes x 8 / pixels), so a file with metadata reports a slightly higher
rate than the same scene coded without. This module
is plain Python, used on both sides.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cosmic.errors import InputError

__all__ = ["SensorMetadata", "MetadataWarning", "BITSTREAM_KEYS", "load_sidecar", "sidecar_for"]


class MetadataWarning(UserWarning):
    """A metadata key or value was ignored."""


# fMoW key -> (attribute, (low, high)) for the numeric fields
_NUMERIC = {
    "gsd": ("gsd", (0.0, 10000.0)),
    "cloud_cover": ("cloud_cover", (0.0, 100.0)),
    "off_nadir_angle_dbl": ("off_nadir_angle", (0.0, 90.0)),
    "target_azimuth_dbl": ("target_azimuth", (0.0, 360.0)),
    "sun_azimuth_dbl": ("sun_azimuth", (0.0, 360.0)),
    "sun_elevation_dbl": ("sun_elevation", (-90.0, 90.0)),
}
# keys fMoW and our sidecars carry that are not model inputs: accepted silently
_IGNORED = {
    "img_filename", "img_width", "img_height", "bounding_boxes", "country_code", "scan_direction",
    "pan_resolution_dbl", "multi_resolution_dbl", "pan_resolution_start_dbl", "pan_resolution_end_dbl",
    "multi_resolution_start_dbl", "multi_resolution_end_dbl", "approximate_wavelengths",
    "raw_location", "spatial_reference", "abs_cal_factors", "satellite", "sensor", "source",
    "wrs_path", "wrs_row", "processing_level", "toa_reflectance", "notes", "scene_id", "kind",
    "file", "repo", "commit", "src_paths", "georef", "acquisition_date", "conversion", "license",
    "originals_kept", "originals_left_out", "stretch_dn_ranges", "size", "image",
    "band_geotiffs_uint16", "sensor_platform_name", "product_level", "scene_center_time_full",
    "cloud_cover_land", "earth_sun_distance_au", "roll_angle_deg", "crs_epsg", "native_gsd",
    "transform", "reflectance_mult", "reflectance_add", "rgb_png_conversion", "original_mtl",
    "width", "height", "pixel_size", "bounds", "crs_wkt", "gsd_dbl", "category", "id",
}
_UTM = re.compile(r"^\s*(\d{1,2})\s*(?:([C-HJ-NP-X])|(north|south))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SensorMetadata:
    """Validated sensor metadata; every field optional. Angles in degrees, GSD in metres."""

    utm_zone: int | None = None  # 1..60
    utm_north: bool | None = None  # hemisphere (from the latitude band letter); None if unknown
    timestamp: datetime | None = None  # UTC
    gsd: float | None = None
    cloud_cover: float | None = None  # percent
    off_nadir_angle: float | None = None
    target_azimuth: float | None = None
    sun_azimuth: float | None = None
    sun_elevation: float | None = None

    # -- parsing ------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "metadata", strict: bool = False) -> "SensorMetadata":
        """Parse an fMoW-style dict; raises :class:`InputError` on an invalid value (its
        ``field`` attribute names the key). ``strict`` (a bitstream's metadata): only the keys
        in :data:`BITSTREAM_KEYS`, anything else is an error rather than a warning."""
        if not isinstance(d, dict):
            raise InputError(f"{source}: expected a JSON object, got {type(d).__name__}")
        values: dict[str, Any] = {}
        for key, raw in d.items():
            try:
                values.update(_parse_field(key, raw, source, strict))
            except InputError as exc:
                exc.field = key
                raise
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """fMoW-style dict of the known fields only (absent fields are left out)."""
        out: dict[str, Any] = {}
        if self.utm_zone is not None:
            out["utm"] = utm_text(self.utm_zone, self.utm_north)
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        for key, (attr, _) in _NUMERIC.items():
            v = getattr(self, attr)
            if v is not None:
                out[key] = v
        return out

    def known(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def replace(self, **changes: Any) -> "SensorMetadata":
        return SensorMetadata(**{**asdict(self), **changes})


#: the keys :meth:`SensorMetadata.to_dict` writes, the only ones a bitstream may carry
BITSTREAM_KEYS = frozenset({"utm", "timestamp", *_NUMERIC})


def _parse_field(key: str, raw: Any, source: str, strict: bool) -> dict[str, Any]:
    """``{attribute: value}`` for one metadata key (empty for an ignored key)."""
    if key in _NUMERIC:
        attr, (lo, hi) = _NUMERIC[key]
        return {attr: _number(raw, key, lo, hi, source)}
    if key == "utm":
        return _utm(raw, source)
    if key == "timestamp":
        return {"timestamp": _timestamp(raw, source)}
    if strict:
        raise InputError(f"{source}: unknown metadata key")
    if not (key in _IGNORED or key.startswith("_") or key.endswith("_note")):
        warnings.warn(f"{source}: unknown metadata key '{key}' ignored", MetadataWarning, stacklevel=4)
    return {}


def _number(raw: Any, key: str, lo: float, hi: float, source: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise InputError(f"{source}: '{key}' must be a number, got {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{source}: '{key}' must be a number, got {raw!r:.40}") from None
    except OverflowError:  # a JSON integer beyond float's range (> 1.8e308)
        value = math.inf
    if not math.isfinite(value) or not lo <= value <= hi:
        raise InputError(f"{source}: '{key}' = {raw!r:.40} is outside [{lo:g}, {hi:g}]")
    return value


def _utm(raw: Any, source: str) -> dict[str, Any]:
    if raw is None:
        return {}
    m = _UTM.match(str(raw))
    if not m or not 1 <= int(m.group(1)) <= 60:
        raise InputError(f"{source}: 'utm' = {raw!r} is not a UTM zone like '10N', '33U' or '50 south'")
    band, hemisphere = (m.group(2) or "").upper(), (m.group(3) or "").lower()
    # MGRS latitude bands C..M are south, N..X north (fMoW writes bands: its '50S' is Beijing);
    # a hemisphere is written as a word, since 'S' is a northern band
    north = (hemisphere == "north") if hemisphere else (band >= "N" if band else None)
    return {"utm_zone": int(m.group(1)), "utm_north": north}


def utm_text(zone: int, north: bool | None) -> str:
    """The ``utm`` value of a zone and hemisphere that reads back as itself: ``10N`` (MGRS band N
    is north of the equator), ``50 south`` (``50S`` would be MGRS band S, in the north), ``33``."""
    return f"{zone}" if north is None else (f"{zone}N" if north else f"{zone} south")


def _timestamp(raw: Any, source: str) -> datetime | None:
    if raw is None:
        return None
    try:
        ts = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{source}: 'timestamp' = {raw!r} is not an ISO 8601 time") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    outside = InputError(f"{source}: 'timestamp' = {raw!r:.40} is outside the years 1960..2200")
    if not 1960 <= ts.year <= 2200:  # checked before the shift to UTC, which overflows at year 1 / 9999
        raise outside
    ts = ts.astimezone(timezone.utc)
    if not 1960 <= ts.year <= 2200:
        raise outside
    return ts


def load_sidecar(path: str | os.PathLike) -> SensorMetadata:
    """Read an fMoW-style JSON file, or a Landsat MTL (its JSON edition or the standard
    ``MTL.txt``); a clear one-line error for unreadable or bad input."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such metadata file")
    try:
        text = path.read_text(encoding="utf-8")
        d = _parse_landsat_mtl_text(text, path.name) if text.lstrip().startswith("GROUP") else json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSON, or an integer of over 4300 digits
        raise InputError(f"{path}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if isinstance(d, dict) and ("L1_METADATA_FILE" in d or "LANDSAT_METADATA_FILE" in d):
        d = _from_landsat_mtl(d, path.name)
    return SensorMetadata.from_dict(d, source=path.name)


def _parse_landsat_mtl_text(text: str, source: str) -> dict[str, Any]:
    """The standard Landsat ``MTL.txt`` (ODL: ``GROUP = NAME`` ... ``END_GROUP = NAME``, ``KEY =
    VALUE`` lines, ``END``) as the nested dict of its JSON edition: quoted values as strings,
    numbers as numbers. A line that is none of these, or an unbalanced group, is an InputError."""
    root: dict[str, Any] = {}
    stack = [root]
    for n, line in enumerate(text.splitlines(), 1):
        key, eq, value = (part.strip() for part in line.partition("="))
        if not line.strip() or (key == "END" and not eq):
            continue
        if not eq or not key:
            raise InputError(f"{source}: line {n} of the Landsat MTL is not KEY = VALUE")
        if key == "GROUP":
            stack[-1][value] = group = {}
            stack.append(group)
        elif key == "END_GROUP":
            if len(stack) == 1:
                raise InputError(f"{source}: line {n} of the Landsat MTL closes a group never opened")
            stack.pop()
        else:
            stack[-1][key] = _mtl_value(value)
    if len(stack) != 1:
        raise InputError(f"{source}: the Landsat MTL ends inside a group")
    return root


def _mtl_value(text: str) -> Any:
    """An MTL value: a quoted string without its quotes, else a number if it is one, else the text."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _from_landsat_mtl(d: dict, source: str) -> dict[str, Any]:
    """fMoW-style fields from a Landsat MTL JSON (collection 1 ``L1_METADATA_FILE`` or collection 2
    ``LANDSAT_METADATA_FILE``): acquisition time, cloud cover, sun angles, UTM zone. The GSD is
    left to the raster's own transform (products are often resampled from the MTL's grid)."""
    root = d.get("L1_METADATA_FILE") or d.get("LANDSAT_METADATA_FILE") or {}
    groups = [g for g in root.values() if isinstance(g, dict)]

    def find(key):
        return next((g[key] for g in groups if key in g), None)

    out: dict[str, Any] = {}
    date, time_ = find("DATE_ACQUIRED"), find("SCENE_CENTER_TIME")
    if date and time_:
        hms = str(time_).strip('"').rstrip("Z").split(".")[0]
        out["timestamp"] = f"{date}T{hms}Z"
    for mtl_key, key in (("CLOUD_COVER", "cloud_cover"), ("SUN_AZIMUTH", "sun_azimuth_dbl"),
                         ("SUN_ELEVATION", "sun_elevation_dbl")):
        v = find(mtl_key)
        if v is not None and not (mtl_key == "CLOUD_COVER" and float(v) < 0):  # -1: not computed
            out[key] = float(v) % 360.0 if mtl_key == "SUN_AZIMUTH" else v
    zone, lat = find("UTM_ZONE"), find("CORNER_UL_LAT_PRODUCT")
    if zone is not None:
        out["utm"] = utm_text(int(zone), None if lat is None else float(lat) >= 0)
    if not out:
        warnings.warn(f"{source}: Landsat MTL without usable metadata", MetadataWarning, stacklevel=3)
    return out


def sidecar_for(image: str | os.PathLike) -> Path | None:
    """``scene.json`` beside ``scene.png`` (fMoW layout), if present."""
    p = Path(image).with_suffix(".json")
    return p if p.is_file() else None
