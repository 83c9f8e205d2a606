"""The Python API (cosmic.compress / decompress / open): in memory, over the CLI's pipelines."""

from __future__ import annotations

import doctest
import io
import warnings

import numpy as np
import pytest
from helpers import REPO, TINY_MODEL, golden_image, write_tif
from PIL import Image

import cosmic
from cosmic.errors import BitstreamError, InputError


def test_module_docstring_examples():
    """The examples in cosmic.__doc__ (and the README's Python API section) run as written."""
    result = doctest.testmod(cosmic, verbose=False)
    assert result.attempted >= 5 and result.failed == 0
    readme = REPO / "README.md"
    result = doctest.testfile(str(readme), module_relative=False, verbose=False)
    assert result.attempted >= 5 and result.failed == 0


def test_bytes_path_and_file_object_agree_with_the_cli(cli, golden_png, tmp_path):
    data = cosmic.compress(golden_image(), model=TINY_MODEL)
    out = tmp_path / "g.cosmic"
    assert cli("compress", golden_png, "-o", out, "-m", TINY_MODEL, "-q")[0] == 0
    assert out.read_bytes() == data
    assert cosmic.compress(golden_png, model=TINY_MODEL) == data
    a = cosmic.decompress(data, model=TINY_MODEL)
    b = cosmic.decompress(out, model=TINY_MODEL)
    c = cosmic.decompress(io.BytesIO(data), model=TINY_MODEL)
    assert a.shape == (200, 300, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(a, c)
    png = tmp_path / "g.png"
    assert cli("decompress", out, "-o", png, "-m", TINY_MODEL, "-q")[0] == 0
    assert np.array_equal(np.asarray(Image.open(png)), a)
    header = cosmic.open(data)
    assert (header.width, header.height, header.model, header.quality) == (300, 200, "cosmic-tiny-test", None)
    assert cosmic.decompress(data, model=TINY_MODEL, return_georef=True)[1] is None


def test_metadata_and_rate_control(variable_rate_model):
    img = golden_image()
    data = cosmic.compress(img, model=variable_rate_model, quality=2.5, metadata={"gsd": 0.3})
    assert cosmic.open(data).metadata["gsd"] == 0.3 and cosmic.open(data).quality == 2.5
    budget = (len(cosmic.compress(img, model=variable_rate_model, quality=1))
              + len(cosmic.compress(img, model=variable_rate_model, quality=4))) // 2
    fitted = cosmic.compress(img, model=variable_rate_model, max_bytes=budget)
    assert 0.97 * budget <= len(fitted) <= budget
    assert cosmic.decompress(fitted, model=variable_rate_model).shape == (200, 300, 3)


def test_bad_input_raises_cosmic_errors():
    with pytest.raises(BitstreamError, match="bad magic"):
        cosmic.open(b"not a cosmic file at all")
    with pytest.raises(InputError, match=r"^image: float32 samples; the model takes 8-bit - choose a mapping with scale="):
        cosmic.compress(np.zeros((64, 64, 3), np.float32), model=TINY_MODEL)  # named as the caller knows it


# -- one product contract for the CLI and the API (issue 33) ----------------------------------------
def _rgba(h=100, w=140):
    img = golden_image(h, w)
    alpha = np.full((h, w), 255, np.uint8)
    alpha[:40, :50] = 0
    return img, alpha


def _input_class(kind: str, d):
    """One file of each input class the Python API guide lists (docs/guide/python-api.md), and the compress options it needs."""
    from rasterio.enums import ColorInterp as CI

    img = golden_image(130, 200)
    chw = img.transpose(2, 0, 1)
    yy, xx = np.mgrid[0:130, 0:200]
    if kind == "rgb8":
        Image.fromarray(img).save(d / "rgb8.png")
        return d / "rgb8.png", []
    if kind == "uint16_fill":
        dn = np.rint(6000 + chw * (24000 / 255)).astype(np.uint16)
        dn[:, xx + yy < 90] = 0  # a Landsat-like fill corner, no nodata declared
        return write_tif(d / "l8.tif", dn, "uint16", descriptions=["B4", "B3", "B2"]), ["--scale", "auto"]
    if kind == "four_band":
        nir = np.clip(255 - chw[0].astype(int) // 2, 1, 255).astype(np.uint8)
        bands = np.concatenate([chw, nir[None]])
        bands[:, :20, :30] = 0
        return write_tif(d / "naip.tif", bands, "uint8", nodata=0,
                         colorinterp=[CI.red, CI.green, CI.blue, CI.undefined]), []
    if kind == "single_band":
        return write_tif(d / "pan.tif", chw[:1], "uint8"), []
    if kind == "float_nan":
        refl = chw.astype(np.float32) / 255
        refl[:, xx > 170] = np.nan
        return write_tif(d / "refl.tif", refl, "float32"), ["--scale", "auto"]
    rgba, alpha = _rgba()
    if kind == "rgba_png":
        Image.fromarray(np.dstack([rgba, alpha])).save(d / "rgba.png")
        return d / "rgba.png", []
    return write_tif(d / "rgba.tif", np.concatenate([rgba.transpose(2, 0, 1), alpha[None]]), "uint8",
                     colorinterp=[CI.red, CI.green, CI.blue, CI.alpha]), []


_API_KEYWORDS = {"--scale": "scale", "--bands": "bands"}


@pytest.mark.parametrize("kind", ["rgb8", "uint16_fill", "four_band", "single_band", "float_nan", "rgba_png",
                                  "rgba_tif"])
def test_api_and_cli_give_the_same_product(kind, cli, tmp_path):
    """The same file through `cosmic compress` / `decompress -o .tif` and through cosmic.compress /
    decompress: the same bytes, and the same array, dtype, bands, mask and georeferencing."""
    import rasterio

    src, options = _input_class(kind, tmp_path)
    coded = tmp_path / "c.cosmic"
    code, _, err = cli("compress", src, "-o", coded, "-m", TINY_MODEL, "-q", *options)
    assert code == 0, err
    keywords = {_API_KEYWORDS[k]: v for k, v in zip(options[::2], options[1::2])}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cosmic.compress(src, model=TINY_MODEL, **keywords) == coded.read_bytes()
    notes = [str(w.message) for w in caught if issubclass(w.category, cosmic.CosmicWarning)]
    assert ("alpha channel dropped" in " ".join(notes)) == (kind == "rgba_png")  # the CLI's note, as a warning
    out = tmp_path / "c.tif"
    assert cli("decompress", coded, "-o", out, "-m", TINY_MODEL, "-q")[0] == 0
    pixels, georef = cosmic.decompress(coded, model=TINY_MODEL, return_georef=True)
    with rasterio.open(out) as ds:
        cli_pixels, cli_mask = ds.read(), ds.dataset_mask() > 0
        cli_georef = (ds.crs, ds.transform, ds.nodata)
    api = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    assert api.dtype == cli_pixels.dtype and api.shape == cli_pixels.shape
    assert np.array_equal(api, cli_pixels, equal_nan=True)
    mask = np.ones(api.shape[1:], bool) if georef is None or georef["mask"] is None else georef["mask"]
    assert np.array_equal(mask, cli_mask)
    expected = {"rgb8": (3, "uint8", False), "uint16_fill": (3, "uint16", True), "four_band": (4, "uint8", True),
                "single_band": (1, "uint8", False), "float_nan": (3, "float32", True), "rgba_png": (3, "uint8", False),
                "rgba_tif": (3, "uint8", True)}[kind]
    assert (api.shape[0], str(api.dtype), not mask.all()) == expected
    if georef is None:
        assert cli_georef[0] is None and cli_georef[2] is None
        return
    assert (georef["crs"] and rasterio.crs.CRS.from_user_input(georef["crs"])) == cli_georef[0]
    assert georef["transform"] == list(cli_georef[1])[:6] and georef["nodata"] == cli_georef[2]
    assert (georef["scale"] is not None) == ("--scale" in options)


@pytest.mark.parametrize("call, needle", [
    (lambda: cosmic.compress([[1, 2, 3]]), "image: expected a file path or a numpy array, got list"),
    (lambda: cosmic.compress(None), "image: expected a file path or a numpy array, got NoneType"),
    (lambda: cosmic.compress(golden_image(), quality="high"), "quality='high': expected a number"),
    (lambda: cosmic.compress(golden_image(), metadata="foo"), "metadata: expected a dict"),
    (lambda: cosmic.compress(golden_image(), quality=2, bpp=0.5), "quality= and a rate target (bpp= / max_bytes="),
    (lambda: cosmic.compress(golden_image(), max_bytes=0), "max_bytes=0: must be positive"),
    (lambda: cosmic.compress(golden_image(), tile=4096), "tile=4096: at most 1024 px"),
    (lambda: cosmic.compress(REPO / "README.md", nodata=0), "nodata: applies to arrays"),
    (lambda: cosmic.compress(np.zeros((4, 4), object)), "expected an (H, W) or (H, W, bands) array of numbers"),
    (lambda: cosmic.compress(golden_image(), bands=[0]), "bands=0: must be 1 or more"),
    (lambda: cosmic.compress(golden_image(), band_groups=[[1, 2]]), "each group is one band or three"),
    (lambda: cosmic.decompress(b"x", steps=1.5), "steps=1.5: expected an integer"),
    (lambda: cosmic.decompress(b"x", steps=-1), "steps=-1: must be 0 or more"),
    (lambda: cosmic.decompress(b"x", dtype="nope"), "dtype='nope': not a numpy sample type"),
    (lambda: cosmic.decompress(None), "source: expected the bytes of a .cosmic file"),
])
def test_api_errors_are_input_errors_naming_the_parameter(call, needle):
    """Issue 33 item 7: wrong types and values are InputErrors in API terms (they were TypeError,
    ValueError, AttributeError, IndexError after seconds of work), raised before any model loads."""
    import time

    t0 = time.perf_counter()
    with pytest.raises(InputError) as err:
        call()
    assert needle in str(err.value) and "--" not in str(err.value)
    assert time.perf_counter() - t0 < 1.0


def test_shared_messages_speak_parameters_in_the_api_and_flags_in_the_cli(cli, tmp_path, one_line_error):
    """Issue 33 item 7: a refusal raised by the shared pipeline says `scale=` to a Python caller
    and `--scale` on the command line (it told API users to "choose a mapping with --scale")."""
    from cosmic.errors import cli_terms

    src = write_tif(tmp_path / "l8.tif", golden_image(64, 64).transpose(2, 0, 1).astype(np.uint16) * 100, "uint16")
    with pytest.raises(InputError, match=r"scale=\(low, high\) or scale='auto'"):
        cosmic.compress(src, model=TINY_MODEL)
    code, _, err = cli("compress", src, "-o", tmp_path / "x.cosmic", "-m", TINY_MODEL)
    one_line_error(code, err, "choose a mapping with --scale low,high or --scale auto")
    with pytest.warns(cosmic.CosmicWarning, match=r"\(mask=False codes no mask\)"):
        cosmic.compress(src, model=TINY_MODEL, scale="auto")
    code, _, err = cli("compress", src, "-o", tmp_path / "x.cosmic", "-m", TINY_MODEL, "--scale", "auto", "-q")
    assert code == 0 and "(--no-mask codes no mask)" in err  # notes too are in the CLI's terms
    assert cli_terms("max_bytes=0: must be positive; bands= and band_groups= exclude each other") == (
        "--max-bytes 0: must be positive; --bands and --band-groups exclude each other")


# -- issue 34 item 7: every band group's tiles are checked ---------------------------------------
def test_api_refuses_a_corrupt_tile_of_the_second_band_group(tmp_path):
    """Two bytes of the NIR group's payload overwritten: cosmic.decompress returned the 3 bands of
    the first group and no error, where the CLI refused the file; the error names the group."""
    from cosmic.io.container import read_container

    src, _ = _input_class("four_band", tmp_path)
    data = bytearray(cosmic.compress(src, model=TINY_MODEL))
    c = read_container(bytes(data))
    assert c.header.groups == [[1, 2, 3], [4]] and c.header.grid_tiles == 1
    data[c.offsets[1] + 10 : c.offsets[1] + 12] = bytes(255 - b for b in data[c.offsets[1] + 10 : c.offsets[1] + 12])
    with pytest.raises(BitstreamError, match=r"band group 1 \(bands 4\), tile 0 \(row 0, col 0\): CRC mismatch"):
        cosmic.decompress(bytes(data), model=TINY_MODEL)


def test_api_error_messages_are_one_line(tmp_path):
    """Issue 34 item 9: an API error kept the raw newline and escape of a file name."""
    with pytest.raises(InputError) as err:
        cosmic.decompress(tmp_path / "a\nb\x1b[2J.cosmic")
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)
    assert str(err.value).endswith("a\\nb\\x1b[2J.cosmic: no such file")


def test_arrays_of_any_type_and_band_count_are_coded_like_their_tiff(tmp_path):
    """Issue 33 item 1: 16-bit, float and N-band data could not be coded from Python at all; an
    array is now coded as a TIFF of it would be (the same bytes), its fill given by nodata= or,
    for a non-8-bit array, 0 in every band."""
    import rasterio

    img = golden_image(70, 90)
    dn = np.rint(6000 + img * (24000 / 255)).astype(np.uint16)
    fill = np.add.outer(np.arange(70), np.arange(90)) < 40
    dn[fill] = 0
    data = cosmic.compress(dn, model=TINY_MODEL, scale="auto")
    with rasterio.open(tmp_path / "dn.tif", "w", driver="GTiff", width=90, height=70, count=3, dtype="uint16") as ds:
        ds.write(dn.transpose(2, 0, 1))
    assert cosmic.compress(tmp_path / "dn.tif", model=TINY_MODEL, scale="auto") == data
    pixels, georef = cosmic.decompress(data, model=TINY_MODEL, return_georef=True)
    assert pixels.dtype == np.uint16 and pixels.shape == (70, 90, 3) and np.array_equal(georef["mask"], ~fill)
    assert (pixels[fill] == 0).all() and (pixels[~fill] > 0).all() and len(georef["scale"]) == 3
    four = np.dstack([img, np.full((70, 90), 9, np.uint8)])
    four[:8, :8] = 0
    pixels, georef = cosmic.decompress(cosmic.compress(four, model=TINY_MODEL, nodata=0), model=TINY_MODEL,
                                       return_georef=True)
    assert pixels.shape == (70, 90, 4) and (~georef["mask"]).sum() == 64 and not georef["mask"][:8, :8].any()
    refl = (img / 255).astype(np.float32)
    refl[:, 60:] = np.nan
    pixels, georef = cosmic.decompress(cosmic.compress(refl, model=TINY_MODEL, scale="auto", nodata=float("nan")),
                                       model=TINY_MODEL, return_georef=True)
    assert pixels.dtype == np.float32 and np.isnan(pixels[:, 60:]).all() and not np.isnan(pixels[:, :60]).any()
    assert np.array_equal(georef["mask"][:, :60], np.ones((70, 60), bool)) and not georef["mask"][:, 60:].any()
