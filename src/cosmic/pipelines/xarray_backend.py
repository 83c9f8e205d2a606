"""An xarray backend for ``.cosmic`` files (issue 33 item 13): ``xr.open_dataset(path, engine="cosmic")``.

Opening reads the header only. The dataset holds one variable, ``band_data`` (``band``, ``y``,
``x``), as rioxarray's ``engine="rasterio"`` does: every coded band in order, in the source's
units (the GeoTIFF product's values, :meth:`~cosmic.pipelines.decode.DecodePipeline.product`),
the fill as NaN (``masked=True``, the default, in a float type) or, with ``masked=False``, as the
product's nodata value (``_FillValue``). Coordinates: ``band`` (1-based), ``band_name`` (the
source's band descriptions), ``x`` / ``y`` (pixel centres in the file's CRS, for a transform
without rotation) and ``spatial_ref`` (CF / rioxarray grid mapping: ``crs_wkt``, ``spatial_ref``,
``GeoTransform``), so ``ds.rio`` understands it when rioxarray is installed.

Reading is lazy: indexing decodes only the tiles the selection needs (a
:class:`~cosmic.pipelines.region.Region`, the same crop of the full decode, exactly), and with
``chunks={}`` the variable is a dask array whose chunks are the file's tiles
(``preferred_chunks``), each decoded when computed. The decode pipeline (model) is loaded on the
first read and decodes one selection at a time (a lock), with the pipeline's own threads.

Needs the ``xarray`` extra (``pip install 'cosmic[xarray]'``: xarray and dask).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from xarray import Dataset, Variable
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from cosmic.ground.deblock import DEFAULT_DEBLOCK
from cosmic.io.container import MAGIC

__all__ = ["CosmicBackendEntrypoint", "CosmicBackendArray"]


class CosmicBackendArray(BackendArray):
    """The bands of a ``.cosmic`` file as a (band, y, x) array, decoded window by window."""

    def __init__(self, path: Path, model=None, masked: bool = True, **decode):
        from cosmic.io.container import read_container
        from cosmic.pipelines.decode import geotiff_product

        self.path, self.model, self.masked, self.decode = Path(path), model, masked, decode
        container = read_container(self.path)
        h = container.header
        self.tile, self.has_mask = h.tile, h.has_mask
        self.product_dtype = np.dtype(geotiff_product(container).dtype)
        self.shape = (h.channels, h.height, h.width)
        fill_as_nan = masked and self.has_mask
        self.dtype = np.promote_types(self.product_dtype, np.float32) if fill_as_nan else self.product_dtype
        self._pipe, self._lock = None, threading.Lock()

    def __getstate__(self) -> dict:  # dask may pickle the array: the models are loaded again there
        return {**self.__dict__, "_pipe": None, "_lock": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER,
                                                  self._read)

    def _read(self, key: tuple) -> np.ndarray:
        """The outer selection ``key`` (an int, slice or integer array per dimension): the
        bounding window of its rows and columns is decoded, then indexed."""
        picks = [np.arange(n)[k] for n, k in zip(self.shape, key)]
        bands, rows, cols = (np.atleast_1d(p) for p in picks)
        if min(bands.size, rows.size, cols.size) == 0:
            return np.empty([np.size(p) for p in picks if np.ndim(p)], self.dtype)
        top, left = int(rows.min()), int(cols.min())
        window = (left, top, int(cols.max()) - left + 1, int(rows.max()) - top + 1)
        values = self.decode_window(window)[bands][:, rows - top][:, :, cols - left]
        return values[tuple(0 if np.ndim(p) == 0 else slice(None) for p in picks)]

    def decode_window(self, window: tuple[int, int, int, int]) -> np.ndarray:
        """The (bands, h, w) values of the pixel window (col, row, width, height)."""
        from cosmic.pipelines.decode import DecodePipeline, open_container
        from cosmic.pipelines.region import open_region

        with self._lock:
            container = open_container(self.path)
            if self._pipe is None:
                self._pipe = DecodePipeline.for_container(container, self.model)
                for group in range(container.header.planes):  # its own pipeline, or a group model's
                    pipe = self._pipe.for_group(container, group)
                    pipe.model = pipe.model if isinstance(pipe.model, DecodedTiles) else DecodedTiles(pipe.model)
            region = open_region(container, window, deblock=self.decode["deblock"])
            decoded = self._pipe.product(region, **self.decode)
        pixels = decoded.pixels[..., None] if decoded.pixels.ndim == 2 else decoded.pixels
        pixels = pixels.transpose(2, 0, 1).astype(self.dtype, copy=False)
        if self.masked and decoded.valid is not None:
            pixels[:, ~decoded.valid] = np.nan
        return pixels




class DecodedTiles:
    """A decode pipeline's model that keeps the tiles it decoded (the least recently used dropped
    beyond ``limit`` bytes, 256 MiB: over 300 tiles of 256 px), so that chunks of one tile, which
    with the border filter each read the ring of 8 tiles around them, decode every tile once.
    Only uncompensated decodes (``steps=0``) are kept: a tile's pixels are then a function of
    its strings and the quality alone, whatever the batch (docs/DESIGN.md §3)."""

    def __init__(self, model, limit: int = 256 << 20):
        self.__dict__.update(_model=model, _tiles=OrderedDict(), _limit=limit, _bytes=0)

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def without_context(self) -> "DecodedTiles":
        """The model's view without its context, keeping its own tiles (made once)."""
        if "_plain" not in self.__dict__:
            self.__dict__["_plain"] = DecodedTiles(self._model.without_context(), self._limit)
        return self.__dict__["_plain"]

    def decompress(self, strings, shape, **kwargs) -> dict:
        import torch

        if kwargs.get("compensate") is not None:
            return self._model.decompress(strings, shape, **kwargs)
        keys = [(y, z, kwargs.get("quality")) for y, z in zip(*strings)]
        missing = [i for i, key in enumerate(keys) if key not in self._tiles]
        tiles = {}
        if missing:
            some = [[strings[0][i] for i in missing], [strings[1][i] for i in missing]]
            tiles = dict(zip(missing, self._model.decompress(some, shape, **kwargs)["x_hat"]))
        x_hat = [tiles[i] if i in tiles else self._tiles[key] for i, key in enumerate(keys)]
        for i, key in enumerate(keys):
            self._keep(key, x_hat[i])
        return {"x_hat": torch.stack(x_hat)}

    def _keep(self, key, tile) -> None:
        if key not in self._tiles:
            self._bytes += tile.numel() * tile.element_size()
        self._tiles[key] = tile
        self._tiles.move_to_end(key)
        while self._bytes > self._limit and len(self._tiles) > 1:
            _, old = self._tiles.popitem(last=False)
            self._bytes -= old.numel() * old.element_size()


def _coords(header) -> dict:
    """``band``, ``band_name``, and for a georeferenced file ``x`` / ``y`` (pixel centres, a
    transform without rotation) and ``spatial_ref`` (the CF grid mapping rioxarray writes)."""
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    georef = header.georef or {}
    names = (georef.get("source") or {}).get("descriptions") or [None] * header.channels
    coords = {"band": ("band", np.arange(1, header.channels + 1)),
              "band_name": ("band", [n or f"band {i}" for i, n in enumerate(names, 1)])}
    t = Affine(*georef["transform"]) if georef.get("transform") else None
    if t is not None and t.b == 0 and t.d == 0:
        coords["x"] = ("x", t.c + t.a * (np.arange(header.width) + 0.5), {"axis": "X"})
        coords["y"] = ("y", t.f + t.e * (np.arange(header.height) + 0.5), {"axis": "Y"})
    if georef.get("crs") or t is not None:
        attrs = {}
        if georef.get("crs"):
            wkt = CRS.from_user_input(georef["crs"]).to_wkt()
            attrs.update(crs_wkt=wkt, spatial_ref=wkt)
        if t is not None:
            attrs["GeoTransform"] = " ".join(f"{v!r}" for v in (t.c, t.a, t.b, t.f, t.d, t.e))
        coords["spatial_ref"] = Variable((), np.int64(0), attrs)
    return coords


def _attrs(header, array: CosmicBackendArray) -> tuple[dict, dict]:
    """The variable's attributes and encoding: nodata (``_FillValue`` when it is not NaN'd),
    band names, grid mapping, the coding stretch; dask's preferred chunks = the tiles."""
    from cosmic.io.raster import nodata_for

    src = (header.georef or {}).get("source") or {}
    attrs = {"grid_mapping": "spatial_ref"} if header.georef else {}
    if src.get("descriptions"):
        attrs["long_name"] = tuple(d or "" for d in src["descriptions"])
    if src.get("scale"):
        attrs["cosmic_scale"] = [list(s) for s in src["scale"]]
    nodata = nodata_for(header.georef, str(array.product_dtype)) if header.georef else None
    encoding = {"preferred_chunks": {"band": header.channels, "y": header.tile, "x": header.tile},
                "dtype": array.product_dtype}
    if nodata is not None and not (array.masked and array.has_mask):
        attrs["_FillValue"] = nodata
    elif nodata is not None:
        encoding["_FillValue"] = nodata
    return attrs, encoding


class CosmicBackendEntrypoint(BackendEntrypoint):
    """``xr.open_dataset(path, engine="cosmic", model=None, steps=0, seed=0, deblock=True,
    masked=True)``: see the module docstring. ``model``: the model directory of a file not coded
    by a shipped model; ``steps`` / ``seed`` / ``deblock`` as for ``cosmic decompress`` (the
    border filter needs a tile's neighbours: a chunk of one tile reads the ring of tiles around
    it, which :class:`DecodedTiles` keeps, so a whole-scene compute decodes each tile once)."""

    description = "Decode COSMIC .cosmic satellite image files lazily, tile by tile"
    url = "https://github.com/cosmic/cosmic"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "model", "steps", "seed", "deblock", "masked")

    def guess_can_open(self, filename_or_obj) -> bool:
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            return False
        path = Path(filename_or_obj)
        if path.suffix.lower() == ".cosmic":
            return True
        try:
            with open(path, "rb") as fh:
                return fh.read(len(MAGIC)) == MAGIC
        except OSError:
            return False

    def open_dataset(self, filename_or_obj, *, drop_variables=None, model=None, steps: int = 0, seed: int = 0,
                     deblock: bool = DEFAULT_DEBLOCK, masked: bool = True) -> Dataset:
        from cosmic.errors import InputError
        from cosmic.io.container import read_container

        if not isinstance(filename_or_obj, (str, os.PathLike)):
            raise InputError("engine='cosmic' reads a .cosmic file from its path")
        array = CosmicBackendArray(filename_or_obj, model, masked, steps=steps, seed=seed, deblock=deblock)
        header = read_container(filename_or_obj).header
        attrs, encoding = _attrs(header, array)
        data = indexing.LazilyIndexedArray(array)
        variable = Variable(("band", "y", "x"), data, attrs, encoding)
        variables = {} if "band_data" in (drop_variables or ()) else {"band_data": variable}
        dataset = Dataset(variables, coords=_coords(header), attrs=_dataset_attrs(header))
        dataset.set_close(None)
        return dataset


def _dataset_attrs(header) -> dict:
    """The file's model, quality, bpp-free facts and its sensor metadata (as GDAL tags are)."""
    attrs = {"cosmic_model": header.model, "cosmic_tile": header.tile}
    if header.quality is not None:
        attrs["cosmic_quality"] = header.quality
    attrs.update({str(k): v for k, v in (header.metadata or {}).items() if isinstance(v, (int, float, str))})
    return attrs
