"""The encode pipeline's source stage: an image, a GeoTIFF or an array, read one tile at a time.

:func:`open_scene` turns what a user gives (a path or an (H, W, 3) uint8 array) into a
:class:`Scene`: its size, channels, georeferencing, sensor metadata and a window reader. GeoTIFFs
are read window by window (memory does not grow with the scene); other images are loaded whole.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from cosmic.errors import InputError
from cosmic.metadata import SensorMetadata

__all__ = ["Scene", "open_scene", "read_metadata"]


@dataclass
class Scene:
    """A scene to encode. ``read(top, left, height, width)`` returns a window clipped to the
    scene as (h, w, 3) uint8; ``notes`` say what conversions were made (for the user);
    ``derived`` names the metadata fields taken from a GeoTIFF."""

    name: str
    width: int
    height: int
    channels: int
    read: Callable[[int, int, int, int], np.ndarray]
    georef: dict[str, Any] | None = None
    metadata: SensorMetadata = field(default_factory=SensorMetadata)
    notes: list[str] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)
    close: Callable[[], None] = lambda: None
    layout: dict[str, Any] | None = None  # band groups and mask (see cosmic.io.container)
    read_group: Callable[..., np.ndarray] | None = None  # read(top, left, h, w, group)
    read_mask: Callable[[int, int, int, int], np.ndarray] | None = None  # (h, w) bool, True: valid

    @property
    def group_sizes(self) -> list[int]:
        """The number of bands of each band group (one group of ``channels`` without a layout)."""
        return [len(g) for g in (self.layout or {}).get("groups") or [range(self.channels)]]

    def tiles(self, tile: int, group: int = 0, stride: int = 0) -> Iterator[np.ndarray]:
        """Row-major ``tile`` x ``tile`` tiles of band group ``group``, edge tiles padded (to a
        multiple of ``stride`` when given: format version 4)."""
        from cosmic.onboard.scene import iter_windows

        read = self.read if group == 0 else (lambda t, l, h, w: self.read_group(t, l, h, w, group))
        return iter_windows(read, self.width, self.height, tile, stride)

    def mask_tiles(self, tile: int) -> Iterator[np.ndarray]:
        """Row-major validity masks of the tiles, cut to the image (not padded)."""
        for top in range(0, self.height, tile):
            for left in range(0, self.width, tile):
                yield self.read_mask(top, left, tile, tile)

    def __enter__(self) -> "Scene":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_metadata(image: Path | None, meta: Path | None = None) -> tuple[SensorMetadata, list[str]]:
    """Sensor metadata from ``meta`` or the fMoW-style sidecar beside ``image``; the warnings
    about unknown or bad keys come back as notes."""
    from cosmic.metadata import MetadataWarning, load_sidecar, sidecar_for

    path = meta or (sidecar_for(image) if image is not None else None)
    if path is None:
        return SensorMetadata(), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetadataWarning)
        metadata = load_sidecar(path)
    return metadata, [str(w.message) for w in caught if issubclass(w.category, MetadataWarning)]


def _array_scene(pixels: np.ndarray, name: str, metadata: SensorMetadata) -> Scene:
    if pixels.ndim == 2:
        pixels, channels = np.repeat(pixels[:, :, None], 3, axis=2), 1
    else:
        channels = 3
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise InputError(f"{name}: expected (H, W, 3) or (H, W) uint8 pixels, got {pixels.shape} {pixels.dtype}")
    h, w = pixels.shape[:2]
    return Scene(name, w, h, channels, lambda t, l, th, tw: pixels[t : t + th, l : l + tw], metadata=metadata)


def _image_scene(path: Path, metadata: SensorMetadata) -> Scene:
    from cosmic.io.images import load_rgb

    image = load_rgb(path)
    scene = _array_scene(image.pixels, path.name, metadata)
    scene.channels = image.channels
    scene.notes += [f"{path.name}: {image.note}"] if image.note else []
    return scene


def _raster_scene(source, metadata: SensorMetadata, derive: bool) -> Scene:
    """A windowed GeoTIFF scene; with ``derive`` the GeoTIFF fills metadata the sidecar lacks."""
    derived: list[str] = []
    if derive and source.georef:
        from cosmic.io.product_metadata import derive_metadata

        metadata, derived = derive_metadata(metadata, source.georef, source.width, source.height, source.tags)
    georef = dict(source.georef or {}, source=source.coding)
    return Scene(source.path.name, source.width, source.height, source.channels, source.read, georef,
                 metadata, [f"{source.path.name}: {n}" for n in source.notes], list(derived), source.close,
                 source.layout, source.read, source.read_mask if source.mask else None)


def _open_raster(path: Path, bands, scale, groups=None, mask: bool = True):
    """A GeoTIFF (or any TIFF given bands / scale) as a windowed source; None sends a plain,
    non-georeferenced TIFF to the ordinary image loader (palette, 16-bit refusal, notes)."""
    from cosmic.io.raster import RasterSource, is_geotiff, is_georeferenced

    if not is_geotiff(path):
        if bands or scale or groups:
            raise InputError(f"{path}: bands=, band_groups= and scale= apply to TIFF inputs only")
        return None
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if not (bands or scale or groups) and not is_georeferenced(path):
        return None
    return RasterSource.open(path, bands, scale, groups, mask)


def open_scene(source: str | os.PathLike | np.ndarray, metadata: SensorMetadata | None = None,
               meta: Path | None = None, bands: list[int] | None = None, scale=None,
               derive: bool = True, groups: list[list[int]] | None = None, mask: bool = True) -> Scene:
    """The scene to encode from a path (PNG / JPEG / TIFF / GeoTIFF) or a uint8 array.

    ``metadata`` (else ``meta``, a sidecar JSON, else the sidecar beside the image) is the
    sensor metadata; ``bands`` / ``groups`` / ``scale`` choose, group and map a TIFF's bands, and
    ``mask`` keeps its fill as a coded validity mask (see :mod:`cosmic.io.raster`); ``derive``
    fills missing metadata from a GeoTIFF's georeferencing."""
    from cosmic.io.limits import check_scene

    if isinstance(source, np.ndarray):
        scene = _array_scene(source, "array", metadata or SensorMetadata())
    else:
        path = Path(source)
        notes: list[str] = []
        if metadata is None:
            metadata, notes = read_metadata(path, meta)
        raster = _open_raster(path, bands, scale, groups, mask)
        scene = _image_scene(path, metadata) if raster is None else _raster_scene(raster, metadata, derive)
        scene.notes[:0] = notes
    check_scene(scene.width, scene.height, scene.name)  # sides a .cosmic file can hold
    return scene
