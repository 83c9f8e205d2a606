"""The xarray backend (issue 33 item 13): xr.open_dataset(path, engine="cosmic") reads the header
only, gives rioxarray-style bands, CRS, transform and fill as NaN, and decodes lazily: a selection
decodes only its tiles and equals the eager decode; with chunks={} the dask chunks are the tiles."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import golden_image, write_tif

import cosmic

xr = pytest.importorskip("xarray")
pytest.importorskip("dask.array")
pytestmark = pytest.mark.filterwarnings("ignore::cosmic.CosmicWarning")
#: the shipped default (None: the models the file names, cosmic-small-vr-gray for the one-band
#: group); the tiny test model codes every tile of this image to the same strings
MODEL = None


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory):
    """A georeferenced 16-bit four-band GeoTIFF with named bands and a corner of fill (nodata 0),
    coded as two band groups with a mask in 64-px tiles (a 4 x 5 grid)."""
    d = tmp_path_factory.mktemp("xarray")
    img = golden_image().astype(np.uint16) * 40 + 100
    bands = np.concatenate([img.transpose(2, 0, 1), img[None, :, :, 0] // 2])
    bands[:, :70, :90] = 0
    write_tif(d / "stack.tif", bands, "uint16", nodata=0, descriptions=["red", "green", "blue", "nir"])
    (d / "stack.cosmic").write_bytes(cosmic.compress(d / "stack.tif", model=MODEL, tile=64, scale="auto"))
    return d / "stack.cosmic"


def _eager(path, window=None, deblock=True) -> np.ndarray:
    """cosmic.decompress as (band, y, x) float32, the fill as NaN."""
    pixels, georef = cosmic.decompress(path, model=MODEL, return_georef=True, window=window, deblock=deblock)
    values = pixels.transpose(2, 0, 1).astype(np.float32)
    values[:, ~georef["mask"]] = np.nan
    return values


@pytest.fixture()
def tiles_read(monkeypatch) -> list[int]:
    """The tile payloads read from any container (indices into its tile table)."""
    from cosmic.io.container import Container

    read: list[int] = []
    payload = Container.tile_payload
    monkeypatch.setattr(Container, "tile_payload", lambda self, i: read.append(i) or payload(self, i))
    return read


def test_opening_reads_only_the_header_and_gives_rioxarray_conventions(stack_file, tiles_read):
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    ds = xr.open_dataset(stack_file, engine="cosmic", model=MODEL)
    assert tiles_read == []  # lazy: nothing decoded
    da = ds["band_data"]
    assert da.dims == ("band", "y", "x") and da.shape == (4, 200, 300) and da.dtype == np.float32
    assert list(ds["band"].values) == [1, 2, 3, 4] and list(ds["band_name"].values) == ["red", "green", "blue", "nir"]
    assert da.attrs["long_name"] == ("red", "green", "blue", "nir") and da.attrs["grid_mapping"] == "spatial_ref"
    header = cosmic.open(stack_file)
    t = Affine(*header.georef["transform"])
    assert CRS.from_wkt(ds["spatial_ref"].attrs["crs_wkt"]) == CRS.from_epsg(32610)
    assert [float(v) for v in ds["spatial_ref"].attrs["GeoTransform"].split()] == [t.c, t.a, t.b, t.f, t.d, t.e]
    assert np.allclose(ds["x"].values, t.c + t.a * (np.arange(300) + 0.5))
    assert np.allclose(ds["y"].values, t.f + t.e * (np.arange(200) + 0.5))
    assert da.encoding["_FillValue"] == 0 and da.encoding["preferred_chunks"] == {"band": 4, "y": 64, "x": 64}


def test_a_selection_decodes_its_tiles_and_equals_the_eager_window(stack_file, tiles_read):
    ds = xr.open_dataset(stack_file, engine="cosmic", model=MODEL, deblock=False)
    part = ds["band_data"][:, 60:80, 70:95].values  # in tile (row 0, col 1) and (row 1, col 1)
    assert np.array_equal(part, _eager(stack_file, (70, 60, 25, 20), deblock=False), equal_nan=True)
    assert sorted(set(tiles_read)) == [1, 6, 21, 26]  # those two tiles of each band group's grid
    assert np.isnan(part[:, :10, :20]).all() and not np.isnan(part[:, 10:, 20:]).any()  # fill (rows < 70, cols < 90)
    full = _eager(stack_file, deblock=False)
    picked = ds["band_data"].isel(band=[3, 0], y=slice(199, 0, -37), x=7).values
    assert np.array_equal(picked, full[[3, 0], 199:0:-37, 7], equal_nan=True)


def test_dask_chunks_are_the_tiles_and_compute_to_the_eager_decode(stack_file, tiles_read, monkeypatch):
    """Deblocked (the default, as the API), each chunk reads the ring of tiles around it, but the
    backend keeps decoded tiles: each of the 2 x 20 tiles (the second group's by the one-band
    model) goes through the networks once."""
    from cosmic.models.cosmic import Cosmic

    expected = _eager(stack_file)
    tiles_read.clear()
    decoded = []
    decompress = Cosmic.decompress
    monkeypatch.setattr(Cosmic, "decompress", lambda self, s, *a, **k: decoded.append(len(s[0])) or decompress(
        self, s, *a, **k))
    ds = xr.open_dataset(stack_file, engine="cosmic", model=MODEL, chunks={})
    da = ds["band_data"]
    assert da.chunks == ((4,), (64, 64, 64, 8), (64, 64, 64, 64, 44)) and tiles_read == []
    assert np.array_equal(da.values, expected, equal_nan=True)
    assert sum(decoded) == 40


def test_kept_tiles_are_dropped_beyond_the_limit():
    import torch

    from cosmic.pipelines.xarray_backend import DecodedTiles

    class Model:
        calls = 0

        def decompress(self, strings, shape, **kwargs):
            Model.calls += len(strings[0])
            return {"x_hat": torch.stack([torch.full((3, 2, 2), float(y[0])) for y in strings[0]])}

    tiles = DecodedTiles(Model(), limit=2 * 48)  # room for two 3x2x2 float32 tiles
    first = tiles.decompress([[b"\x01", b"\x02"], [b"z", b"z"]], (1, 1), quality=1.0)["x_hat"]
    again = tiles.decompress([[b"\x02", b"\x03", b"\x01"], [b"z", b"z", b"z"]], (1, 1), quality=1.0)["x_hat"]
    assert torch.equal(again[[0, 2]], first[[1, 0]]) and float(again[1, 0, 0, 0]) == 3
    assert Model.calls == 3  # 1 and 2 kept; then kept in use order 2, 3, 1: 2 is dropped
    assert float(tiles.decompress([[b"\x02"], [b"z"]], (1, 1), quality=1.0)["x_hat"][0, 0, 0, 0]) == 2
    assert Model.calls == 4 and len(tiles._tiles) == 2


def test_unmasked_keeps_the_product_dtype_and_nodata(stack_file):
    ds = xr.open_dataset(stack_file, engine="cosmic", model=MODEL, masked=False)
    da = ds["band_data"]
    pixels = cosmic.decompress(stack_file, model=MODEL, window=(80, 60, 20, 20))
    assert da.dtype == np.uint16 and da.attrs["_FillValue"] == 0
    assert np.array_equal(da[:, 60:80, 80:100].values, pixels.transpose(2, 0, 1))


def test_the_engine_is_found_by_suffix_and_by_magic(stack_file, tmp_path):
    from cosmic.pipelines.xarray_backend import CosmicBackendEntrypoint

    renamed = tmp_path / "scene.bin"
    renamed.write_bytes(stack_file.read_bytes())
    entry = CosmicBackendEntrypoint()
    assert entry.guess_can_open(stack_file) and entry.guess_can_open(renamed)
    assert not entry.guess_can_open(tmp_path / "missing.nc")
    assert xr.open_dataset(renamed, model=MODEL)["band_data"].shape == (4, 200, 300)  # engine guessed
