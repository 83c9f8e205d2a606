"""GeoTIFF products (issue #18): radiometry back in the source's units, fill kept exactly as a
coded mask, COG with overviews, band names / colour interpretation / sensor tags, --co,
band groups (4-band, single band) - on small synthetic GeoTIFFs through the CLI and tiny model."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import rasterio
from helpers import TINY_MODEL, golden_image, write_tif
from rasterio.enums import ColorInterp

from cosmic.io.container import read_container
from cosmic.io.mask import pack_mask, split_mask, unpack_mask
from cosmic.io.raster import apply_fill, to_source_units


def landsat_like(h=200, w=300):
    """A uint16 3-band scene (DN 6000..30000) with a fill corner (0 in every band), no nodata."""
    img = golden_image(h, w).transpose(2, 0, 1).astype(np.float64)
    dn = np.rint(6000 + img * (24000 / 255)).astype(np.uint16)
    yy, xx = np.mgrid[0:h, 0:w]
    fill = xx + yy < 90  # the rotated black border of a Landsat scene
    dn[:, fill] = 0
    return dn, fill


@pytest.fixture(scope="module")
def coded16(tmp_path_factory):
    """The uint16 scene coded once (compress is the slow step), with its source and fill."""
    from cosmic.cli import main

    d = tmp_path_factory.mktemp("p16")
    dn, fill = landsat_like()
    src = write_tif(d / "ls.tif", dn, "uint16", descriptions=["B4", "B3", "B2"], tags={
        "DATE_ACQUIRED": "2016-06-25", "SCENE_CENTER_TIME": "18:55:50.34Z"})
    main(["compress", str(src), "-o", str(d / "ls.cosmic"), "-m", str(TINY_MODEL), "--scale", "auto", "-q"])
    assert (d / "ls.cosmic").exists()
    return d, dn, fill


def test_sixteen_bit_decodes_to_source_units_with_fill_exact(cli, coded16):
    d, dn, fill = coded16
    h = read_container(d / "ls.cosmic").header
    assert h.format_version == (4 if h.edge_stride else 3) and h.has_mask and h.georef["nodata"] == 0
    scale = h.georef["source"]["scale"]
    code, _, err = cli("decompress", d / "ls.cosmic", "-o", d / "o16.tif", "-m", TINY_MODEL, "-q")
    assert code == 0, err
    code, _, err = cli("decompress", d / "ls.cosmic", "-o", d / "o8.tif", "-m", TINY_MODEL, "--dtype", "uint8", "-q")
    assert code == 0, err
    with rasterio.open(d / "o16.tif") as a, rasterio.open(d / "o8.tif") as b:
        y16, y8 = a.read(), b.read()
        assert a.dtypes == ("uint16",) * 3 and b.dtypes == ("uint8",) * 3 and a.nodata == 0 == b.nodata
    assert np.array_equal((y16 == 0).all(0), fill) and not (y16[:, ~fill] == 0).any()  # fill exact, no valid 0
    assert not (y8[:, ~fill] == 0).any() and (y8[:, fill] == 0).all()
    # the 16-bit output is exactly the inverse stretch of the 8-bit picture (nudged pixels aside)
    back = to_source_units(y8.transpose(1, 2, 0), scale, "uint16").transpose(2, 0, 1)
    valid = ~fill & (y8 != 1).all(0)
    assert np.array_equal(back[:, valid], y16[:, valid])
    lo, hi = np.array(scale).T
    assert (y16[:, ~fill].min(axis=1) >= np.floor(lo)).all() and (y16[:, ~fill].max(axis=1) <= np.ceil(hi)).all()


def test_product_is_a_cog_with_names_tags_and_co(cli, coded16, one_line_error):
    d, _, _ = coded16
    out = d / "cog.tif"
    code, _, err = cli("decompress", d / "ls.cosmic", "-o", out, "-m", TINY_MODEL, "--co", "BLOCKSIZE=128", "-q")
    assert code == 0, err
    with rasterio.open(out) as ds:
        assert ds.overviews(1) == [2, 4] and ds.profile["blockxsize"] == 128 == ds.profile["blockysize"]
        assert ds.descriptions == ("B4", "B3", "B2") and ds.nodata == 0 and ds.crs.to_epsg() == 32610
        tags = ds.tags()
        assert tags["COSMIC_SOURCE_BITS"] == "16" and tags["ACQUISITIONDATETIME"].startswith("2016-06-25T18:55:50")
        assert float(tags["GSD"]) == pytest.approx(30.0) and tags["UTM"] == "10N"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.overviews(1) and ds.read(1, out_shape=(100, 150)).shape == (100, 150)
    one_line_error(*cli("decompress", d / "ls.cosmic", "-o", d / "x.tif", "-m", TINY_MODEL, "--co", "oops")[::2],
                   "--co")
    one_line_error(*cli("decompress", d / "ls.cosmic", "-o", d / "x.png", "-m", TINY_MODEL, "--dtype",
                        "uint16")[::2], "GeoTIFF")
    assert not (d / "x.tif").exists() and not (d / "x.png").exists()
    code, stdout, _ = cli("info", d / "ls.cosmic")
    assert code == 0 and "coded 8-bit from 16-bit" in stdout and "mask yes" in stdout and "(B4,B3,B2)" in stdout


def test_four_bands_come_back_as_four_in_order(cli, tmp_path):
    img = golden_image(130, 200).transpose(2, 0, 1)
    nir = np.clip(255 - img[0].astype(int) // 2, 1, 255).astype(np.uint8)
    src = write_tif(tmp_path / "naip.tif", np.concatenate([img, nir[None]]), "uint8", nodata=0,
                    colorinterp=[ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined])
    def decode(*args):
        coded, out = tmp_path / "n.cosmic", tmp_path / "n.tif"
        code, _, err = cli("compress", src, "-o", coded, "-m", TINY_MODEL, "-q", *args)
        assert code == 0, err
        assert cli("decompress", coded, "-o", out, "-m", TINY_MODEL, "-q")[0] == 0
        with rasterio.open(out) as ds:
            return read_container(coded).header, ds.read(), ds.colorinterp, ds.nodata

    rgb = decode("--bands", "1,2,3")[1]
    nir_alone = decode("--bands", "4")[1]
    h, y, interp, nodata = decode()
    assert h.channels == 4 and h.groups == [[1, 2, 3], [4]] and h.num_tiles == 2 * h.grid_tiles
    assert interp == (ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined)
    assert nodata == 0 and not (y == 0).any()  # no real pixel reads as nodata 0 (nudged)
    assert np.array_equal(y[:3], rgb) and np.array_equal(y[3], nir_alone[0])  # each group in its place
    h, y2, interp, _ = decode("--band-groups", "4,3,2:1")
    assert h.groups == [[4, 3, 2], [1]] and y2.shape == (4, 130, 200)  # back in band order 1..4
    assert interp[3] == ColorInterp.undefined and not np.array_equal(y2, y)


def test_single_band_and_alpha_mask(cli, tmp_path):
    img = golden_image(100, 140)
    grey = write_tif(tmp_path / "g.tif", img[None, :, :, 0], "uint8")
    coded = tmp_path / "g.cosmic"
    assert cli("compress", grey, "-o", coded, "-m", TINY_MODEL, "-q")[0] == 0
    h = read_container(coded).header
    assert h.channels == 1 and h.layout is None and not h.has_mask  # as before: no layout
    assert h.format_version == 4 and h.edge_stride == 64  # 140 px wide: its edge tile is coded 192 wide
    assert cli("decompress", coded, "-o", tmp_path / "g1.tif", "-m", TINY_MODEL, "-q")[0] == 0
    with rasterio.open(tmp_path / "g1.tif") as ds:
        assert ds.count == 1
    alpha = np.full(img.shape[:2], 255, np.uint8)
    alpha[:40, :50] = 0
    rgba = write_tif(tmp_path / "a.tif", np.concatenate([img.transpose(2, 0, 1), alpha[None]]), "uint8",
                     colorinterp=[ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha])
    assert cli("compress", rgba, "-o", coded, "-m", TINY_MODEL, "-q")[0] == 0
    h = read_container(coded).header
    assert h.channels == 3 and h.has_mask and h.groups == [[1, 2, 3]]
    assert cli("decompress", coded, "-o", tmp_path / "a1.tif", "-m", TINY_MODEL, "-q")[0] == 0
    with rasterio.open(tmp_path / "a1.tif") as ds:
        assert ds.count == 3 and ds.nodata is None
        assert np.array_equal(ds.dataset_mask() > 0, alpha > 0)  # the alpha band, as an internal mask


def test_mask_coding_bounds():
    assert pack_mask(np.ones((256, 256), bool)) == b"\0" and pack_mask(np.zeros((5, 7), bool)) == b"\1"
    rng = np.random.default_rng(1)
    m = rng.random((37, 53)) > 0.3
    section, rest = split_mask(pack_mask(m) + b"payload")
    assert rest == b"payload" and np.array_equal(unpack_mask(section, 37, 53), m)
    from cosmic.io.mask import MaskError

    bomb = zlib.compress(b"\xff" * 100_000)
    for bad in (b"\3", b"\2\x09\0", b"\2" + struct.pack("<I", 99) + b"x", b"\2" + struct.pack("<I", len(bomb)) + bomb):
        with pytest.raises(MaskError):
            unpack_mask(*split_mask(bad)[:1], 37, 53)


def test_corrupt_mask_is_a_bitstream_error_nothing_written(cli, coded16, one_line_error, tmp_path):
    """A mask whose CRC is fixed up but which inflates to the wrong size: exit 3, one line."""
    d, _, _ = coded16
    c = read_container(d / "ls.cosmic")
    raw = bytearray((d / "ls.cosmic").read_bytes())
    bad = b"\2" + struct.pack("<I", 8) + zlib.compress(b"\xff")[:8]
    payload = bad + split_mask(c.tile_payload(0))[1]
    rest = bytes(raw[c.offsets[0] + c.entries[0][0]:])
    table_at = c.payload_start - 4 - c.header.num_tiles * 8
    entries = [(len(payload), zlib.crc32(payload))] + c.entries[1:]
    table = b"".join(struct.pack("<II", *e) for e in entries)
    fixed = bytes(raw[:table_at]) + table + struct.pack("<I", zlib.crc32(table)) + payload + rest
    (tmp_path / "bad.cosmic").write_bytes(fixed)
    out = tmp_path / "bad.tif"
    code, _, err = cli("decompress", tmp_path / "bad.cosmic", "-o", out, "-m", TINY_MODEL, "-q")
    one_line_error(code, err, "mask")
    assert code == 3
    assert not out.exists() and not list(tmp_path.glob(".bad.tif*"))
    code, _, err = cli("decompress", tmp_path / "bad.cosmic", "-o", out, "-m", TINY_MODEL, "--conceal", "-q")
    assert code == 0 and "tile 0" in err
    with rasterio.open(out) as ds:  # the concealed tile is written as fill
        assert (ds.read(1)[:200, :256] == 0).all()


def test_apply_fill_nudges_and_fills():
    px = np.array([[0, 5, 65535]], np.uint16)
    out = apply_fill(px.copy(), np.array([[True, False, True]]), 0)
    assert out.tolist() == [[1, 0, 65535]]
    assert apply_fill(px.copy(), None, 65535).tolist() == [[0, 5, 65534]]
    f = apply_fill(np.zeros((1, 2), np.float32), np.array([[True, False]]), float("nan"))
    assert f[0, 0] == 0 and np.isnan(f[0, 1])


@pytest.mark.parametrize("ext, field", [
    ({"layout": {"groups": [[1, 2]]}}, "'layout.groups'"),
    ({"layout": {"groups": [[1, 2, 3], [3]]}}, "'layout.groups'"),
    ({"layout": {"groups": [[1, 2, 3]], "mask": "yes"}}, "'layout.mask'"),
    ({"layout": {"groups": [[1, 2, 3]], "tiles": 9}}, "'layout.tiles'"),
    ({"georef": {"source": {"descriptions": [5]}}}, "'georef.source.descriptions'"),
    ({"georef": {"source": {"tags": {"A=B": "x"}}}}, "'georef.source.tags'"),
    ({"georef": {"source": {"tags": {"NOTE": "\x1b[31m"}}}}, "'georef.source.tags'"),
    ({"georef": {"source": {"tags": ["AREA_OR_POINT"]}}}, "'georef.source.tags'"),
    ({"georef": {"source": {"band_tags": [{"K": 1}, {}, {}]}}}, "'georef.source.band_tags'"),
])
def test_bad_layout_is_a_bitstream_error_naming_the_field(ext, field):
    import json

    from cosmic.errors import BitstreamError
    from cosmic.io.extension import parse_extension

    with pytest.raises(BitstreamError, match=field):
        parse_extension(json.dumps(ext).encode(), 3)


def test_layout_only_in_version_3_and_old_versions_unchanged():
    from cosmic.errors import BitstreamError
    from cosmic.io.container import Header

    h = Header("m", "00" * 16, 300, 200, 256, (16, 16), channels=4, layout={"groups": [[1, 2, 3], [4]], "mask": True})
    assert h.format_version == 3 and h.num_tiles == 4 and Header.unpack(h.pack(), 3) == h
    h.quality = 2.5
    assert Header.unpack(h.pack(), 3) == h
    with pytest.raises(BitstreamError, match="'layout'"):
        Header.unpack(h.pack(), 2)  # same bytes read as version 2: a layout it may not have
    plain = Header("m", "00" * 16, 300, 200, 256, (16, 16))
    assert plain.format_version == 1 and Header.unpack(plain.pack(), 1) == plain
    with pytest.raises(BitstreamError, match="'layout'"):
        Header.unpack(plain.pack()[:31] + b"\0\0" + plain.pack()[31:], 3)  # v3 without a layout (core: 31 B)


def test_info_checks_masks(cli, coded16, tmp_path):
    """`info` reads every tile's mask too: a bad one is named and exits 3."""
    d, _, _ = coded16
    c = read_container(d / "ls.cosmic")
    payload = b"\2" + struct.pack("<I", 3) + b"abc" + split_mask(c.tile_payload(1))[1]
    raw = (d / "ls.cosmic").read_bytes()
    entries = list(c.entries)
    entries[1] = (len(payload), zlib.crc32(payload))
    table = b"".join(struct.pack("<II", *e) for e in entries)
    at = c.payload_start - 4 - len(table)
    forged = raw[:at] + table + struct.pack("<I", zlib.crc32(table)) + raw[c.payload_start:c.offsets[1]] \
        + payload + raw[c.offsets[1] + c.entries[1][0]:]
    (tmp_path / "m.cosmic").write_bytes(forged)
    code, stdout, _ = cli("info", tmp_path / "m.cosmic")
    assert code == 3 and "tile 1 (row 0, col 1)" in stdout and "mask" in stdout
    assert cli("info", d / "ls.cosmic")[0] == 0


def test_png_carries_the_fill_as_alpha_and_jpeg_refuses_it(cli, coded16, one_line_error):
    """Issue 33 item 2: a PNG of a file with fill has the fill as alpha (it held garbage that read as
    valid); a JPEG, which has no alpha, is refused in one line, nothing written."""
    from PIL import Image

    d, _, fill = coded16
    code, _, err = cli("decompress", d / "ls.cosmic", "-o", d / "fill.png", "-m", TINY_MODEL, "-q")
    assert code == 0, err
    assert "fill.png holds the 8-bit picture without georeferencing, the source's units" in err  # said, not dropped
    assert "band names, sensor metadata" in err and "write .tif to keep them" in err
    with Image.open(d / "fill.png") as im:
        assert im.mode == "RGBA"
        png = np.asarray(im)
    assert np.array_equal(png[..., 3] == 0, fill) and (png[fill, :3] == 0).all() and (png[~fill, :3] > 0).all()
    code, _, err = cli("decompress", d / "ls.cosmic", "-o", d / "fill.jpg", "-m", TINY_MODEL, "--format", "jpeg",
                       "--jpeg-quality", "90")
    one_line_error(code, err, "no alpha")
    assert code == 2 and not (d / "fill.jpg").exists()


def test_enhanced_decode_keeps_fill_names_units_and_tags(coded16, tmp_path):
    """Issue 33 item 2: `decompress --enhance` writes what a plain decode writes (source dtype, the
    fill, band names, the scale and the sensor tags); only the pixels differ."""
    from helpers import perturbed_enhancer
    from PIL import Image

    from cosmic.enhance.model import build_enhancer
    from cosmic.zoo import load_postprocessor
    from cosmic.pipelines.decode import DecodePipeline

    d, _, fill = coded16
    enhancer = perturbed_enhancer(build_enhancer("small", source="cosmic")).save_pretrained(tmp_path / "enh")
    pipe, container = DecodePipeline.from_pretrained(TINY_MODEL), read_container(d / "ls.cosmic")
    pipe.write(container, tmp_path / "plain.tif")
    post = load_postprocessor(enhancer)
    assert pipe.write(container, tmp_path / "enh.tif", post=post) == []
    with rasterio.open(tmp_path / "plain.tif") as a, rasterio.open(tmp_path / "enh.tif") as b:
        assert b.dtypes == a.dtypes == ("uint16",) * 3 and b.nodata == a.nodata == 0
        assert b.descriptions == a.descriptions == ("B4", "B3", "B2") and b.crs == a.crs
        assert b.tags() == a.tags() and "COSMIC_SCALE" in b.tags() and "ACQUISITIONDATETIME" in b.tags()
        plain, enhanced = a.read(), b.read()
    assert np.array_equal((enhanced == 0).all(0), fill) and not np.array_equal(plain, enhanced)
    assert pipe.write(container, tmp_path / "enh.png", post=post) == []
    assert np.array_equal(np.asarray(Image.open(tmp_path / "enh.png"))[..., 3] == 0, fill)


@pytest.mark.parametrize("option, needle", [("COMPRESS=FOO", "COMPRESS=FOO value not recognised"),
                                            ("PREDICTOR=FLOATING_POINT", "only supported with Float32"),
                                            ("NOSUCH=1", "does not support creation option NOSUCH"),
                                            ("BLOCKSIZE=x", "expected an integer")])
def test_creation_options_gdal_would_ignore_are_refused(cli, coded16, one_line_error, option, needle):
    """Issue 33 item 8: `--co COMPRESS=FOO` wrote an uncompressed file without a word (and
    `--co BLOCKSIZE=x` aborted the process inside GDAL); refused in one line, nothing written."""
    d, _, _ = coded16
    code, _, err = cli("decompress", d / "ls.cosmic", "-o", d / "co.tif", "-m", TINY_MODEL, "--co", option)
    one_line_error(code, err, "--co", needle)
    assert code == 2 and not (d / "co.tif").exists()


def test_tile_errors_of_a_multi_group_file_name_the_group(cli, tmp_path, tiny_model):
    """Issue 34 item 9: a bad tile of the second group read as 'tile 1 (row 1, col 0)' of a one-row
    grid (its tile table index); it is now tile 0 of band group 1, for CRC, mask and rANS faults."""
    from cosmic.ground.scene import decode_scene

    img = golden_image(130, 200).transpose(2, 0, 1)
    src = write_tif(tmp_path / "naip.tif", np.concatenate([img, img[:1]]), "uint8",
                    colorinterp=[ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined])
    coded = tmp_path / "n.cosmic"
    assert cli("compress", src, "-o", coded, "-m", TINY_MODEL, "-q")[0] == 0
    c = read_container(coded)
    assert c.header.groups == [[1, 2, 3], [4]] and not c.header.has_mask
    raw = bytearray(coded.read_bytes())
    start, length = c.offsets[1], c.entries[1][0]
    raw[start : start + 4] = struct.pack("<I", 2**32 - 1)  # NIR's z length runs past its payload, CRC stale
    coded.write_bytes(bytes(raw))
    code, stdout, _ = cli("info", coded)
    assert code == 3 and "band group 1 (bands 4), tile 0 (row 0, col 0): CRC mismatch" in stdout
    entries = list(c.entries)
    entries[1] = (length, zlib.crc32(bytes(raw[start : start + length])))  # CRC made valid: undecodable
    table = b"".join(struct.pack("<II", *e) for e in entries)
    table_at = c.payload_start - 4 - len(table)
    coded.write_bytes(bytes(raw[:table_at]) + table + struct.pack("<I", zlib.crc32(table)) + bytes(raw[c.payload_start:]))
    scene = decode_scene(tiny_model, read_container(coded).plane(1), conceal=True)
    assert [str(e) for e in scene.bad_tiles] == [
        "band group 1 (bands 4), tile 0 (row 0, col 0): undecodable (z string runs past the end of the tile)"]


def test_area_or_point_and_gdal_tags_come_back(cli, tmp_path):
    """Issue 33 item 8: `AREA_OR_POINT=Point` came back as `Area`, and the source's dataset and
    per-band GDAL tags were dropped; they travel in the header and come back in the product."""
    dn, fill = landsat_like(80, 120)
    src = write_tif(tmp_path / "pt.tif", dn, "uint16", tags={"AREA_OR_POINT": "Point", "PRODUCT": "L1T",
                                                             "HISTORY": "line 1\nline 2"})
    with rasterio.open(src, "r+") as ds:
        ds.update_tags(2, WAVELENGTH="0.56")
    coded, out = tmp_path / "pt.cosmic", tmp_path / "pt-out.tif"
    assert cli("compress", src, "-o", coded, "-m", TINY_MODEL, "--scale", "auto", "-q")[0] == 0
    assert read_container(coded).header.georef["source"]["band_tags"] == [{}, {"WAVELENGTH": "0.56"}, {}]
    assert cli("decompress", coded, "-o", out, "-m", TINY_MODEL, "-q")[0] == 0
    with rasterio.open(out) as ds:
        tags = ds.tags()
        assert (tags["AREA_OR_POINT"], tags["PRODUCT"], tags["HISTORY"]) == ("Point", "L1T", "line 1\nline 2")
        assert tags["COSMIC_SOURCE_BITS"] == "16" and ds.tags(2) == {"WAVELENGTH": "0.56"} and ds.tags(1) == {}
