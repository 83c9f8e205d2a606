"""The Python API's arguments checked before any work, in the API's own terms (issue 33 item 7).

:func:`cosmic.compress` and :func:`cosmic.decompress` take Python values where the command line
takes option strings; a value of the wrong type or range is an :class:`~cosmic.errors.InputError`
that names the parameter (``quality='high': expected a number``), never a ``TypeError``,
``ValueError``, ``AttributeError`` or ``IndexError`` from deep inside a pipeline after seconds of
work. The encode options become the CLI's :class:`~cosmic.pipelines.encode_job.EncodeRequest`,
so both code a file the same way (:func:`~cosmic.pipelines.encode_job.encode_file`). Plain Python + numpy.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import warnings

import numpy as np

from cosmic.errors import InputError

__all__ = ["check_image", "check_source", "check_decode_args", "encode_request", "sensor_metadata", "raster_array",
           "array_terms"]


def check_image(image) -> None:
    """``image``: a path (str / PathLike) or a numpy array."""
    if not isinstance(image, (str, os.PathLike, np.ndarray)):
        raise InputError(f"image: expected a file path or a numpy array, got {type(image).__name__}")


def check_source(source) -> None:
    """``source``: the bytes of a ``.cosmic`` file, its path or a binary file object."""
    if isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike)) or hasattr(source, "read"):
        return
    raise InputError(f"source: expected the bytes of a .cosmic file, its path or a binary file object, "
                     f"got {type(source).__name__}")


def _number(name: str, value, integer: bool = False, minimum: float | None = None):
    """``value`` as a float (an int with ``integer``), None kept; InputError naming ``name``."""
    if value is None:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InputError(f"{name}={value!r}: expected {'an integer' if integer else 'a number'}")
    value = int(value) if integer else float(value)
    if minimum is not None and not value >= minimum:
        raise InputError(f"{name}={value!r}: must be {minimum:g} or more")
    return value


def _flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}={value!r}: expected True or False")
    return bool(value)


def check_decode_args(steps, seed, dtype) -> tuple[int, int, str | None]:
    """``steps`` (DDIM steps, 0 or more), ``seed`` (an integer) and ``dtype`` (a sample type name
    or numpy dtype, None: the source's) of :func:`cosmic.decompress`."""
    if dtype is not None:
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            raise InputError(f"dtype={dtype!r}: not a numpy sample type") from None
    return _number("steps", steps, integer=True, minimum=0), _number("seed", seed, integer=True), dtype


def sensor_metadata(metadata):
    """``metadata``: None, a :class:`~cosmic.metadata.SensorMetadata` or a dict of its fMoW fields."""
    from cosmic.metadata import SensorMetadata

    if metadata is None or isinstance(metadata, SensorMetadata):
        return metadata
    if isinstance(metadata, dict):
        return SensorMetadata.from_dict(metadata, source="metadata")
    raise InputError(f"metadata: expected a dict of sensor fields or a SensorMetadata, got {type(metadata).__name__}")


def _bands(bands) -> tuple[int, ...] | None:
    if bands is None:
        return None
    if isinstance(bands, numbers.Integral) and not isinstance(bands, bool):
        bands = [bands]
    try:
        picked = tuple(_number("bands", b, integer=True, minimum=1) for b in bands)
    except TypeError:
        raise InputError(f"bands={bands!r}: expected band numbers such as [4, 3, 2]") from None
    if not picked or len(set(picked)) != len(picked) or len(picked) > 255:
        raise InputError(f"bands={list(picked)}: give distinct band numbers, numbered from 1")
    return picked


def _band_groups(groups) -> tuple[tuple[int, ...], ...] | None:
    if groups is None:
        return None
    try:
        parsed = tuple(tuple(_number("band_groups", b, integer=True, minimum=1) for b in g) for g in groups)
    except TypeError:
        raise InputError(f"band_groups={groups!r}: expected lists of band numbers such as [[1, 2, 3], [4]]") from None
    if not parsed or any(len(g) not in (1, 3) for g in parsed):
        raise InputError(f"band_groups={groups!r}: each group is one band or three, numbered from 1")
    return parsed


def _scale(scale):
    if scale is None or (isinstance(scale, str) and scale.strip().lower() == "auto"):
        return None if scale is None else "auto"
    try:
        low, high = (_number("scale", v) for v in scale)
    except (TypeError, ValueError):
        raise InputError(f"scale={scale!r}: expected 'auto' or (low, high) such as (0, 4000)") from None
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise InputError(f"scale={scale!r}: need finite low < high")
    return (low, high)


def encode_request(model, quality, bpp, max_bytes, tile, bands, band_groups, scale, mask, derive):
    """:func:`cosmic.compress`'s arguments as the CLI's
    :class:`~cosmic.pipelines.encode_job.EncodeRequest` (the rate target checked here too; the
    source and output are set by the caller)."""
    from cosmic.pipelines.encode_job import EncodeRequest
    from cosmic.pipelines.encode import check_rate_target

    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise InputError(f"model: expected a shipped model name or a model directory, got {type(model).__name__}")
    from cosmic.io.limits import check_tile

    quality, bpp = _number("quality", quality), _number("bpp", bpp)
    max_bytes, tile = _number("max_bytes", max_bytes, integer=True), _number("tile", tile, integer=True)
    check_tile(tile, "tile")  # the size policy, in the API's terms (the CLI's check says --tile)
    check_rate_target(quality, bpp, max_bytes)
    return EncodeRequest(None, None, None if model is None else str(model), quality, bpp, max_bytes, tile,
                         _bands(bands), _scale(scale), _band_groups(band_groups), _flag("mask", mask),
                         _flag("derive", derive))


def raster_array(image, options, nodata, folder: str):
    """``(source, options)`` to code: an array the 8-bit picture path does not take (another sample
    type, other than 1 or 3 bands, band or scale options, a ``nodata`` value) written as a GeoTIFF
    in ``folder`` and read like any TIFF (the CLI's raster path: scale, fill mask, band groups),
    its bands named so that it is never taken for a picture; anything else as it is."""
    import dataclasses

    if not isinstance(image, np.ndarray):
        if nodata is not None:
            raise InputError("nodata: applies to arrays; a file's own nodata value is used")
        return image, options
    picture = image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3))
    if picture and nodata is None and not (options.bands or options.band_groups or options.scale):
        return image, options
    if image.ndim not in (2, 3) or image.dtype.kind not in "uif" or 0 in image.shape:
        raise InputError(f"image: expected an (H, W) or (H, W, bands) array of numbers, got {image.shape} {image.dtype}")
    path = _write_array(image[:, :, None] if image.ndim == 2 else image, _number("nodata", nodata), folder)
    if options.bands is None and options.band_groups is None:
        options = dataclasses.replace(options, bands=tuple(range(1, (image.shape[2] if image.ndim == 3 else 1) + 1)))
    return path, options


@contextlib.contextmanager
def array_terms(image, folder: str):
    """While an array is coded through its TIFF in ``folder`` (:func:`raster_array`), messages and
    notes name it ``image``, not the temporary file: yields ``say(text)``, and an error raised
    inside is raised again in those terms."""
    from cosmic.errors import CosmicError

    def say(text: str) -> str:
        if not isinstance(image, np.ndarray):
            return text
        return text.replace(os.path.join(folder, "array.tif"), "image").replace("array.tif", "image")

    try:
        yield say
    except CosmicError as exc:
        if say(str(exc)) == str(exc):
            raise
        raise type(exc)(say(str(exc))) from None


def _write_array(pixels: np.ndarray, nodata: float | None, folder: str):
    """(H, W, bands) -> ``folder/array.tif`` (no georeferencing), an InputError if GDAL cannot hold it."""
    from pathlib import Path

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    from cosmic.errors import first_line
    from cosmic.io.limits import check_scene

    h, w, count = pixels.shape
    check_scene(w, h, "image")
    path = Path(folder) / "array.tif"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # an array has no georeferencing
            with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=count, dtype=pixels.dtype.name,
                               nodata=nodata, tiled=True) as ds:
                ds.write(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
    except Exception as exc:
        raise InputError(f"image: a {pixels.dtype} array with nodata={nodata!r} cannot be coded ({first_line(exc)})") from None
    return path
