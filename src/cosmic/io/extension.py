"""The schema of the ``.cosmic`` header's extension block (sensor metadata and georeferencing).

The block is JSON that comes from the bitstream, so it is untrusted: :func:`parse_extension`
bounds its size and nesting depth *before* parsing it, then checks the type and range of every
field. Any fault is a :class:`~cosmic.errors.BitstreamError` that names the field, e.g.
``header field 'georef.transform': expected 6 finite numbers``. Layout::

    {"metadata": {fMoW key: value, ...},            # see cosmic.metadata.BITSTREAM_KEYS
     "georef": {"crs": str | null, "transform": [6 numbers] | null,
                "nodata": number | "nan" | "inf" | "-inf" | null,
                "source": {"bands": [n ints], "source_dtype": str,
                           "scale": [[low, high], ...] | null,
                           "descriptions": [str | null] * n, "colorinterp": [GDAL name] * n,
                           "tags": {key: str}, "band_tags": [{key: str}] * n}},   # optional
     "layout": {"groups": [[output bands], ...], "mask": bool,       # format version 3 only
                "models": [null | {"model": str, "sha256": 32 hex digits}, ...]}}   # optional

``layout.groups`` must split the output bands 1..channels into groups of 1 or 3 (each coded as
one plane of tiles; see :mod:`cosmic.io.container`). ``layout.models``, one entry per group,
names the model of a group coded by another model than the header's (null: the header's), e.g.
the single-band model for the one-band groups of a multispectral file.

The CRS string is checked for size and printable characters here; whether it names a real CRS
is checked where it is used (:class:`cosmic.io.raster.GeoTiffWriter`), again as a bitstream
error. Plain Python: this module is used on both sides.
"""

from __future__ import annotations

import json
import math
from typing import Any

from cosmic.errors import BitstreamError, InputError

__all__ = ["MAX_EXTENSION_BYTES", "MAX_JSON_DEPTH", "MAX_BANDS", "SOURCE_DTYPES", "parse_extension", "json_depth",
           "is_tag"]

#: the largest extension block accepted (a long CRS WKT is a few KB)
MAX_EXTENSION_BYTES = 64 * 1024
#: the deepest JSON nesting accepted (the schema needs 4)
MAX_JSON_DEPTH = 8
_NODATA_WORDS = ("nan", "inf", "-inf")
#: the most bands a file codes (the header's channel count is one byte)
MAX_BANDS = 255
#: the sample types a coded source may have had (GDAL's real-valued band types)
SOURCE_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
                 "float16", "float32", "float64")


def _fault(field: str, why: str) -> BitstreamError:
    """The error for a bad header field (named as ``georef.crs``, ``metadata.gsd``, ...)."""
    return BitstreamError(f"malformed header: header field '{field}': {why}")


def json_depth(text: str) -> int:
    """The deepest nesting of ``[`` / ``{`` in JSON ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            in_string = escaped or ch != '"'
            escaped = not escaped and ch == "\\"
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_extension(raw: bytes, channels: int = 3) -> tuple[dict[str, Any], dict[str, Any] | None,
                                                          dict[str, Any] | None]:
    """``(metadata, georef, layout)`` from the raw extension block (empty: ``({}, None, None)``);
    ``channels``: the header's band count, which ``layout.groups`` must cover."""
    if not raw:
        return {}, None, None
    if len(raw) > MAX_EXTENSION_BYTES:
        raise _fault("extension", f"{len(raw)} bytes, more than {MAX_EXTENSION_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _fault("extension", "not UTF-8") from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise _fault("extension", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        ext = json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise _fault("extension", f"not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(ext, dict):
        raise _fault("extension", f"expected an object, got {type(ext).__name__}")
    unknown = sorted(set(ext) - {"metadata", "georef", "layout"})
    if unknown:
        raise _fault(unknown[0], "unknown field")
    metadata = _metadata(ext.get("metadata"))
    georef = _georef(ext["georef"], channels) if ext.get("georef") is not None else None
    layout = _layout(ext["layout"], channels) if ext.get("layout") is not None else None
    return metadata, georef, layout


def _layout(lay: Any, channels: int) -> dict[str, Any]:
    """Band groups (a partition of 1..channels into groups of 1 or 3) and the mask flag."""
    if not isinstance(lay, dict):
        raise _fault("layout", f"expected an object, got {type(lay).__name__}")
    unknown = sorted(set(lay) - {"groups", "mask", "models"})
    if unknown:
        raise _fault(f"layout.{unknown[0]}", "unknown field")
    groups = lay.get("groups")
    if not (isinstance(groups, list) and all(isinstance(g, list) and len(g) in (1, 3)
                                             and all(_int(b, 1, MAX_BANDS) for b in g) for g in groups)
            and sorted(b for g in groups for b in g) == list(range(1, channels + 1))):
        raise _fault("layout.groups", f"expected groups of 1 or 3 bands covering bands 1..{channels} once")
    if not isinstance(lay.get("mask", False), bool):
        raise _fault("layout.mask", "expected true or false")
    models = lay.get("models", [None] * len(groups))
    if not (isinstance(models, list) and len(models) == len(groups) and all(map(_group_model, models))):
        raise _fault("layout.models", f"expected {len(groups)} entries, each null or {{model, sha256}}")
    return dict(lay)


def _group_model(m: Any) -> bool:
    """A ``layout.models`` entry: null, or a model name and the 16-byte digest of its on-board part."""
    if m is None:
        return True
    if not (isinstance(m, dict) and set(m) == {"model", "sha256"} and isinstance(m["model"], str)
            and 0 < len(m["model"]) <= 255 and m["model"].isprintable() and isinstance(m["sha256"], str)):
        return False
    return len(m["sha256"]) == 32 and all(c in "0123456789abcdef" for c in m["sha256"])


def _no_constant(name: str):
    """Refuse NaN / Infinity, which Python's json accepts but JSON does not have."""
    raise ValueError(f"{name} is not JSON")


def _metadata(d: Any) -> dict[str, Any]:
    """The sensor metadata block, checked with :meth:`SensorMetadata.from_dict` (strict)."""
    from cosmic.metadata import SensorMetadata

    if d is None:
        return {}
    if not isinstance(d, dict):
        raise _fault("metadata", f"expected an object, got {type(d).__name__}")
    try:
        SensorMetadata.from_dict(d, source="", strict=True)
    except InputError as exc:
        raise _fault(f"metadata.{getattr(exc, 'field', '?')}", str(exc).lstrip(": ")) from None
    return dict(d)


def _georef(g: Any, channels: int) -> dict[str, Any]:
    """The georeferencing block: CRS string, affine transform, nodata, source coding (of
    ``channels`` bands)."""
    if not isinstance(g, dict):
        raise _fault("georef", f"expected an object, got {type(g).__name__}")
    unknown = sorted(set(g) - {"crs", "transform", "nodata", "source"})
    if unknown:
        raise _fault(f"georef.{unknown[0]}", "unknown field")
    crs = g.get("crs")
    if crs is not None and not (isinstance(crs, str) and 0 < len(crs) <= 16384 and crs.isprintable()):
        raise _fault("georef.crs", "expected a printable CRS string (EPSG code or WKT)")
    t = g.get("transform")
    if t is not None and not (isinstance(t, list) and len(t) == 6 and all(map(_finite, t))
                              and _finite(t[0] * t[4] - t[1] * t[3]) and t[0] * t[4] - t[1] * t[3] != 0):
        raise _fault("georef.transform", "expected 6 finite numbers of an invertible affine transform")
    nodata = g.get("nodata")
    if nodata is not None and not (_finite(nodata) or nodata in _NODATA_WORDS):
        raise _fault("georef.nodata", f"expected a finite number, 'nan', 'inf' or '-inf', got {nodata!r:.40}")
    if g.get("source") is not None:
        _source(g["source"], channels)
    return dict(g)


def _source(s: Any, channels: int) -> None:
    """The band / scaling choice recorded beside the georeferencing: per-band lists of exactly
    ``channels`` entries (the decoder indexes them by output band), a real sample type, and
    scale pairs ``low < high`` whose span is finite (the inverse stretch multiplies by it)."""
    if not isinstance(s, dict):
        raise _fault("georef.source", f"expected an object, got {type(s).__name__}")
    unknown = sorted(set(s) - {"bands", "source_dtype", "scale", "descriptions", "colorinterp", "tags", "band_tags"})
    if unknown:
        raise _fault(f"georef.source.{unknown[0]}", "unknown field")
    if not _per_band(s.get("bands"), channels, lambda b: _int(b, 1, 65535)):
        raise _fault("georef.source.bands", f"expected {channels} band numbers")
    dtype = s.get("source_dtype")
    if dtype is not None and dtype not in SOURCE_DTYPES:
        raise _fault("georef.source.source_dtype", f"expected a sample type ({', '.join(SOURCE_DTYPES)}), "
                                                   f"got {str(dtype)!r:.40}")
    if not _per_band(s.get("scale"), channels, _scale_pair):
        raise _fault("georef.source.scale", f"expected {channels} [low, high] pairs (one per band) of "
                                            "finite numbers, low < high")
    for key in ("descriptions", "colorinterp"):
        if not _per_band(s.get(key), channels, _band_name):
            raise _fault(f"georef.source.{key}", f"expected {channels} short printable names (or null)")
    if s.get("tags") is not None and not _tags(s["tags"]):
        raise _fault("georef.source.tags", "expected an object of GDAL tags (printable keys and short text values)")
    if not _per_band(s.get("band_tags"), channels, _tags):
        raise _fault("georef.source.band_tags", f"expected {channels} objects of GDAL tags")


def _tags(t: Any) -> bool:
    """GDAL tags of the source (the product gets them back): an object of at most 256 tags, each
    one :func:`is_tag` takes."""
    return isinstance(t, dict) and len(t) <= 256 and all(is_tag(k, v) for k, v in t.items())


#: the longest GDAL tag key and value a header carries
MAX_TAG_KEY, MAX_TAG_VALUE = 64, 1024


def is_tag(key: Any, value: Any) -> bool:
    """A GDAL tag a header may carry: a printable key of at most :data:`MAX_TAG_KEY` characters
    without ``=``, a text value of at most :data:`MAX_TAG_VALUE` (printable but for newlines and tabs)."""
    return (isinstance(key, str) and isinstance(value, str) and 0 < len(key) <= MAX_TAG_KEY
            and key.isprintable() and "=" not in key and len(value) <= MAX_TAG_VALUE
            and value.replace("\n", "").replace("\t", "").isprintable())


def _per_band(values: Any, channels: int, check) -> bool:
    """Absent (null), or a list of one entry per coded band, each passing ``check``."""
    return values is None or (isinstance(values, list) and len(values) == channels and all(map(check, values)))


def _scale_pair(p: Any) -> bool:
    """A ``[low, high]`` stretch of finite numbers with ``low < high`` and a finite span."""
    return isinstance(p, list) and len(p) == 2 and all(map(_finite, p)) and p[0] < p[1] and _finite(p[1] - p[0])


def _band_name(n: Any) -> bool:
    """A band description or colour interpretation: null or a short printable string."""
    return n is None or (isinstance(n, str) and len(n) <= 256 and n.isprintable())


def _finite(v: Any) -> bool:
    """A finite JSON number (not a bool); an integer beyond float's range (> 1.8e308) is not."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _int(v: Any, lo: int, hi: int) -> bool:
    """A JSON integer (not a bool) in ``lo..hi``."""
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
