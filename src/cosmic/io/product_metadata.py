"""Sensor metadata derived from a georeferenced product, for the fields its sidecar lacks.

- UTM zone: from the CRS when it is a UTM projection (pyproj), else from the scene centre.
- GSD: pixel size from the affine transform, in metres (geographic CRSs: at the centre latitude).
- timestamp: an acquisition-time tag of the GeoTIFF (``ACQUISITIONDATETIME``, Landsat's
  ``DATE_ACQUIRED`` + ``SCENE_CENTER_TIME``, ...). ``TIFFTAG_DATETIME`` is *not* used: it is the
  file's creation time, usually the processing date.
- sun azimuth and elevation: from the timestamp and the scene centre with pvlib's solar position
  (NREL SPA), geometric elevation (no refraction), as Landsat's MTL gives it.

A field that cannot be derived stays unknown; a field the sidecar gives is never overwritten.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from cosmic.metadata import SensorMetadata

__all__ = ["scene_centre_lonlat", "derive_metadata", "sidecar_metadata", "sun_position", "utm_zone_of", "ground_sample_distance"]

_TIME_TAGS = ("ACQUISITIONDATETIME", "ACQUISITION_DATETIME", "ACQUISITION_TIME", "IMAGE_DATETIME",
              "DATETIME_ACQUIRED")


def _crs(georef: dict[str, Any]):
    from pyproj import CRS

    text = (georef or {}).get("crs")
    return CRS.from_user_input(text) if text else None


def scene_centre_lonlat(georef: dict[str, Any], width: int, height: int) -> tuple[float, float] | None:
    """Longitude and latitude (degrees) of the scene centre, or None without a CRS."""
    from pyproj import Transformer

    crs = _crs(georef)
    if crs is None or not georef.get("transform"):
        return None
    a, b, c, d, e, f = georef["transform"]
    x = a * width / 2 + b * height / 2 + c
    y = d * width / 2 + e * height / 2 + f
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    return float(lon), float(lat)


def utm_zone_of(georef: dict[str, Any], lonlat: tuple[float, float] | None) -> tuple[int, bool] | None:
    """(zone, north) from a UTM CRS, or from the centre longitude/latitude."""
    crs = _crs(georef)
    if crs is not None and crs.utm_zone:
        return int(crs.utm_zone[:-1]), crs.utm_zone[-1].upper() == "N"
    if lonlat is None:
        return None
    lon, lat = lonlat
    return int((lon + 180.0) // 6.0) % 60 + 1, lat >= 0.0


def ground_sample_distance(georef: dict[str, Any], lonlat: tuple[float, float] | None) -> float | None:
    """Pixel size in metres (geometric mean of the two axes)."""
    crs = _crs(georef)
    if crs is None or not georef.get("transform"):
        return None
    a, b, _, d, e, _ = georef["transform"]
    sx, sy = math.hypot(a, d), math.hypot(b, e)
    if crs.is_geographic:
        if lonlat is None:
            return None
        lat = math.radians(lonlat[1])
        sx *= 111_320.0 * math.cos(lat)
        sy *= 110_540.0
    else:
        factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        kx, ky = _scale_factors(crs, lonlat)
        sx, sy = sx * factor / kx, sy * factor / ky
    gsd = math.sqrt(sx * sy)
    return gsd if math.isfinite(gsd) and gsd > 0 else None


def _scale_factors(crs, lonlat: tuple[float, float] | None) -> tuple[float, float]:
    """The projection's scale (x, y) at the scene centre when it distorts distances by more than
    1 % there (Web Mercator: 1 / cos(latitude), so an EPSG:3857 pixel of 0.597 m is 0.47 m on the
    ground at 38 degrees); else (1, 1): a UTM pixel keeps its nominal size (30 m for Landsat)."""
    if lonlat is None:
        return 1.0, 1.0
    from pyproj import Proj

    try:
        f = Proj(crs).get_factors(*lonlat)
        kx, ky = float(f.parallel_scale), float(f.meridional_scale)
    except Exception:  # a CRS pyproj cannot evaluate there: the projected size, as before
        return 1.0, 1.0
    if not (math.isfinite(kx) and math.isfinite(ky) and kx > 0 and ky > 0):
        return 1.0, 1.0
    return (kx, ky) if max(abs(kx - 1.0), abs(ky - 1.0)) > 0.01 else (1.0, 1.0)


def acquisition_time(tags: dict[str, str]) -> datetime | None:
    """Acquisition time from GeoTIFF metadata tags, if one carries a time of day."""
    upper = {k.upper(): v for k, v in (tags or {}).items()}
    for key in _TIME_TAGS:
        if key in upper:
            ts = _parse_time(upper[key])
            if ts is not None:
                return ts
    if "DATE_ACQUIRED" in upper and "SCENE_CENTER_TIME" in upper:
        return _parse_time(f"{upper['DATE_ACQUIRED']}T{upper['SCENE_CENTER_TIME']}")
    return None


def _parse_time(text: str) -> datetime | None:
    text = text.strip().strip('"').replace("Z", "")
    if len(text) > 10 and text[4] == ":" and text[7] == ":":  # EXIF style 2016:06:25 18:55:50
        text = text[:4] + "-" + text[5:7] + "-" + text[8:]
    if "." in text:  # fractions beyond microseconds (Landsat gives 7 digits)
        head, frac = text.split(".", 1)
        text = head + "." + frac[:6]
    try:
        ts = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None
    if len(text) <= 10:  # a date alone has no time of day
        return None
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def sun_position(when: datetime, lon: float, lat: float) -> tuple[float, float]:
    """(azimuth clockwise from north, geometric elevation), degrees, by pvlib's NREL SPA."""
    import pandas as pd
    from pvlib import solarposition

    pos = solarposition.get_solarposition(pd.DatetimeIndex([when]), lat, lon, method="nrel_numpy")
    return float(pos["azimuth"].iloc[0]), float(pos["elevation"].iloc[0])


def derive_metadata(known: SensorMetadata, georef: dict[str, Any] | None, width: int, height: int,
                    tags: dict[str, str] | None = None) -> tuple[SensorMetadata, list[str]]:
    """Fill the fields ``known`` lacks from the product; returns the metadata and what was derived."""
    if not georef:
        return known, []
    derived: dict[str, Any] = {}
    lonlat = scene_centre_lonlat(georef, width, height)
    if known.utm_zone is None:
        zone = utm_zone_of(georef, lonlat)
        if zone is not None:
            derived["utm_zone"], derived["utm_north"] = zone
    if known.gsd is None:
        gsd = ground_sample_distance(georef, lonlat)
        if gsd is not None and gsd <= 10000:
            derived["gsd"] = gsd
    when = known.timestamp
    if when is None:
        when = acquisition_time(tags or {})
        if when is not None:
            derived["timestamp"] = when
    if when is not None and lonlat is not None and (known.sun_azimuth is None or known.sun_elevation is None):
        has_time = (when.hour, when.minute, when.second) != (0, 0, 0)  # a date alone: sun unknown
        if has_time:
            az, el = sun_position(when, *lonlat)
            if known.sun_azimuth is None:
                derived["sun_azimuth"] = round(az, 4)
            if known.sun_elevation is None:
                derived["sun_elevation"] = round(el, 4)
    if not derived:
        return known, []
    names = [k for k in derived if k != "utm_north"]
    return known.replace(**derived), names


def sidecar_metadata(path) -> SensorMetadata:
    """An fMoW-style sidecar, completed (UTM zone, GSD) from the ``georef`` block that the shared
    scenes' provenance sidecars carry (``crs_wkt`` or ``crs``, ``transform``, ``width``, ``height``)."""
    import json
    from pathlib import Path

    from cosmic.metadata import load_sidecar

    meta = load_sidecar(path)
    try:
        georef = json.loads(Path(path).read_text()).get("georef")
    except (OSError, ValueError, AttributeError):
        return meta
    if not isinstance(georef, dict) or not georef.get("transform"):
        return meta
    crs = georef.get("crs") or georef.get("crs_wkt")
    if not crs or not georef.get("width") or not georef.get("height"):
        return meta
    meta, _ = derive_metadata(meta, {"crs": crs, "transform": georef["transform"]},
                              int(georef["width"]), int(georef["height"]))
    return meta
