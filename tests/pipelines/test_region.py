"""Region and reduced-resolution decode (issue 33 item 12): a window is the same crop of the full
decode, exactly, georeferenced at its place, decoded from only the tiles it needs; --reduce K is
the 2^K block mean of the decode; bad windows are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import HERE, golden_image, load_script, write_tif

import cosmic
from cosmic.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::cosmic.CosmicWarning")

WINDOWS = [(0, 0, 300, 200), (70, 30, 100, 90), (299, 199, 1, 1), (64, 64, 64, 64), (5, 150, 290, 3)]
#: the shipped default (None: the model the file names); the tiny test model codes every tile of
#: these images to the same strings, which would let a window taken from the wrong tiles pass
MODEL = None


def _cli(*args) -> int:
    from cosmic.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code
    return 0


@pytest.fixture(scope="module")
def rgb_file(tmp_path_factory):
    """An RGB scene without georeferencing, 64-px tiles: a 4 x 5 grid."""
    path = tmp_path_factory.mktemp("region") / "rgb.cosmic"
    path.write_bytes(cosmic.compress(golden_image(), model=MODEL, tile=64))
    return path


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory):
    """A georeferenced 16-bit four-band GeoTIFF with a corner of fill (nodata), coded as two band
    groups with a mask, 64-px tiles."""
    d = tmp_path_factory.mktemp("region")
    img = golden_image().astype(np.uint16) * 40 + 100
    bands = np.concatenate([img.transpose(2, 0, 1), img[None, :, :, 0] // 2])
    bands[:, :70, :90] = 0
    write_tif(d / "stack.tif", bands, "uint16", nodata=0)
    assert _cli("compress", d / "stack.tif", "-o", d / "stack.cosmic", "--tile", "64",
                "--scale", "auto", "-q") == 0
    return d / "stack.cosmic"


@pytest.mark.parametrize("kind", ["rgb", "stack"])
def test_window_is_the_crop_of_the_full_decode(kind, request):
    from rasterio.transform import Affine

    path = request.getfixturevalue(f"{kind}_file")
    full, georef = cosmic.decompress(path, model=MODEL, return_georef=True)
    assert not np.array_equal(full[:64, :64], full[64:128, 64:128])  # the tiles differ
    for window in WINDOWS:
        part, part_georef = cosmic.decompress(path, model=MODEL, return_georef=True, window=window)
        col, row, w, h = window
        assert part.dtype == full.dtype and np.array_equal(part, full[row : row + h, col : col + w]), window
        if kind == "rgb":
            assert georef is None and part_georef is None
            continue
        assert np.array_equal(part_georef["mask"], georef["mask"][row : row + h, col : col + w])
        moved = Affine(*georef["transform"]) * Affine.translation(col, row)
        assert part_georef["transform"] == list(moved)[:6]
        assert (part_georef["crs"], part_georef["nodata"], part_georef["scale"]) == (
            georef["crs"], georef["nodata"], georef["scale"])


@pytest.mark.parametrize("kind, expected", [("rgb", {6}), ("stack", {6, 26})])
def test_a_window_reads_only_the_tiles_it_needs(kind, expected, request, monkeypatch):
    """(76, 76, 20, 20) lies in tile (row 1, col 1) = index 6 of a 4 x 5 grid (and 26 of the
    second band group's grid), beyond the default border filter's 8-px reach of its borders."""
    from cosmic.io.container import Container

    read = []
    payload = Container.tile_payload
    monkeypatch.setattr(Container, "tile_payload", lambda self, i: read.append(i) or payload(self, i))
    part = cosmic.decompress(request.getfixturevalue(f"{kind}_file"), model=MODEL, window=(76, 76, 20, 20))
    assert part.shape[:2] == (20, 20) and set(read) == expected


def _block_mean(pixels: np.ndarray, f: int) -> np.ndarray:
    h, w, c = pixels.shape
    return np.rint(pixels.reshape(h // f, f, w // f, f, c).astype(np.float64).mean(axis=(1, 3))).astype(np.uint8)


def test_reduce_is_the_block_mean_of_the_full_decode(rgb_file):
    full = cosmic.decompress(rgb_file, model=MODEL)
    reduced = cosmic.decompress(rgb_file, model=MODEL, reduce=2)
    assert reduced.shape == (50, 75, 3) and np.array_equal(reduced, _block_mean(full, 4))
    # a window at reduce 1: the 2 x 2 blocks it touches, on the file's block grid
    part = cosmic.decompress(rgb_file, model=MODEL, window=(11, 6, 50, 31), reduce=1)
    assert np.array_equal(part, _block_mean(full, 2)[3:19, 5:31])
    # the block (64..95, 64..95) starts on a tile border the window (75..94) is 11 px from: the
    # deblocked border is in the block mean, so the tiles before it are decoded too
    corner = cosmic.decompress(rgb_file, model=MODEL, window=(75, 75, 20, 20), reduce=5)
    assert np.array_equal(corner, _block_mean(full[64:96, 64:96], 32))


def test_reduce_keeps_the_fill_and_scales_the_transform(stack_file):
    from rasterio.transform import Affine

    full, georef = cosmic.decompress(stack_file, model=MODEL, return_georef=True, dtype="uint8")
    reduced, small = cosmic.decompress(stack_file, model=MODEL, return_georef=True, dtype="uint8", reduce=1)
    blocks = georef["mask"].reshape(100, 2, 150, 2)
    assert np.array_equal(small["mask"], blocks.any(axis=(1, 3)))
    # blocks without fill are the plain block mean (but for a decoded 0, which the full decode
    # nudges to 1 so that it does not read as nodata 0, before the mean is taken)
    nudged = (full <= 1).reshape(100, 2, 150, 2, 4).any(axis=(1, 3))
    plain = blocks.all(axis=(1, 3))[..., None] & ~nudged
    assert plain.sum() > 1000 and np.array_equal(reduced[plain], _block_mean(full, 2)[plain])
    assert small["transform"] == list(Affine(*georef["transform"]) * Affine.scale(2))[:6]


def test_compensated_window_keeps_each_tiles_seed(tiny_model):
    from cosmic.ground.diffusion.sampler import DiffusionCompensator
    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene
    from cosmic.pipelines.decode import open_container
    from cosmic.pipelines.region import open_region

    tiny_net = load_script(HERE / "ground" / "test_diffusion.py").tiny_net
    data = EncodePipeline(tiny_model.onboard, tiny_model.name).encode(open_scene(golden_image()), 64).to_bytes()
    pipe = DecodePipeline(tiny_model, compensator=DiffusionCompensator(tiny_net().eval(), 1.0, residual=True))
    container = open_container(data)
    full = pipe.product(container, steps=2, seed=3).pixels
    part = pipe.product(open_region(container, (100, 70, 90, 60)), steps=2, seed=3).pixels
    assert np.array_equal(part, full[70:130, 100:190])


def _read(path):
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(), ds.dataset_mask(), ds.transform, ds.crs


@pytest.mark.parametrize("deblock", [[], ["--deblock"]])
def test_cli_window_and_bbox_write_the_crop_with_its_georeferencing(stack_file, tmp_path, deblock):
    code = _cli("decompress", stack_file, "-o", tmp_path / "full.tif", "-q", *deblock)
    assert code == 0
    full, full_mask, transform, crs = _read(tmp_path / "full.tif")
    assert _cli("decompress", stack_file, "-o", tmp_path / "w.tif", "-q", "--window",
                "60,58,70,12", *deblock) == 0
    part, mask, part_transform, part_crs = _read(tmp_path / "w.tif")
    assert np.array_equal(part, full[:, 58:70, 60:130]) and np.array_equal(mask, full_mask[58:70, 60:130])
    assert part_transform == transform * transform.translation(60, 58) and part_crs == crs
    x0, y1 = transform * (60, 58)
    x1, y0 = transform * (130, 70)
    assert _cli("decompress", stack_file, "-o", tmp_path / "b.tif", "-q", "--bbox",
                f"{x0},{y0},{x1},{y1}", *deblock) == 0
    by_box = _read(tmp_path / "b.tif")
    assert np.array_equal(by_box[0], part) and by_box[2] == part_transform


@pytest.mark.parametrize("args, needle", [
    (["--window", "290,0,20,20"], "outside the 300x200 image"),
    (["--window", "0,0,0,10"], "at least 1"),
    (["--window", "-1,0,5,5"], "outside"),
    (["--window", "1,2,3"], "col,row,width,height"),
    (["--window", "1,2,3,4.5"], "whole numbers"),
    (["--bbox", "0,0,1,1"], "no georeferencing"),
    (["--bbox", "3,0,1,1"], "minx < maxx"),
    (["--window", "0,0,5,5", "--bbox", "0,0,1,1"], "give one"),
    (["--reduce", "7"], "0..6"),
    (["--reduce", "-1"], "0..6"),
])
def test_bad_regions_are_one_line_errors(rgb_file, tmp_path, cli, one_line_error, args, needle):
    out = tmp_path / "out.png"
    code, _, err = cli("decompress", rgb_file, "-o", out, *args)
    one_line_error(code, err, needle)
    assert code == 2 and not list(tmp_path.iterdir())


def test_a_bbox_outside_the_image_is_a_one_line_error(stack_file, tmp_path, cli, one_line_error):
    code, _, err = cli("decompress", stack_file, "-o", tmp_path / "o.tif", "--bbox", "0,0,10,10")
    one_line_error(code, err, "not inside the image's bounds")
    assert code == 2


@pytest.mark.parametrize("kwargs", [{"window": (0, 0, 301, 10)}, {"window": (0, 0, 10, -1)}, {"window": "0,0,5,5"},
                                    {"window": (1, 2, 3)}, {"reduce": 1.5}, {"reduce": 9}])
def test_api_bad_regions_raise_input_error(rgb_file, kwargs):
    with pytest.raises(InputError):
        cosmic.decompress(rgb_file, model=MODEL, **kwargs)
