"""Satellite data in and out (issue #4): GeoTIFF round trips, derived metadata, sun angles against
Landsat's MTL, bounded memory on large scenes, the seam score and the border filter, the tile set."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pytest
import rasterio
from helpers import REPO, SHARED_DATA, TINY_MODEL, golden_image
from rasterio.transform import from_origin

from cosmic.io.container import read_container
from cosmic.io.product_metadata import derive_metadata
from cosmic.metadata import SensorMetadata

ROOT = REPO
LANDSAT = SHARED_DATA / "metadata" / "landsat8_LC80460282016177LGN00"


def write_geotiff(path, pixels, crs="EPSG:32633", transform=None, nodata=0, tags=None, dtype="uint8"):
    """(H, W, C) array -> GeoTIFF."""
    h, w, c = pixels.shape
    transform = transform or from_origin(500000.0, 5000000.0, 10.0, 10.0)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=dtype, crs=crs,
                       transform=transform, nodata=nodata) as ds:
        ds.write(pixels.transpose(2, 0, 1).astype(dtype))
        if tags:
            ds.update_tags(**tags)
    return path


def test_geotiff_round_trip_keeps_georeferencing(cli, tmp_path):
    src = write_geotiff(tmp_path / "s.tif", golden_image(), nodata=0)
    coded, out = tmp_path / "s.cosmic", tmp_path / "out.tif"
    code, _, err = cli("compress", src, "-o", coded, "-m", TINY_MODEL, "-q")
    assert code == 0, err
    georef = read_container(coded).header.georef
    assert georef["crs"] == "EPSG:32633" and georef["nodata"] == 0
    assert georef["source"] == {"bands": [1, 2, 3], "source_dtype": "uint8", "scale": None,
                                "colorinterp": ["red", "green", "blue"]}
    code, stdout, _ = cli("info", coded)
    assert code == 0 and "EPSG:32633; origin (500000.000, 5000000.000), pixel 10 x 10; nodata 0" in stdout
    code, _, err = cli("decompress", coded, "-o", out, "-m", TINY_MODEL, "-q")
    assert code == 0, err
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert b.crs == a.crs and b.transform == a.transform and b.nodata == a.nodata
        assert (b.width, b.height, b.count, b.dtypes[0]) == (a.width, a.height, 3, "uint8")
        windowed = b.read().transpose(1, 2, 0)
    # the windowed GeoTIFF writer gives exactly the pixels of the in-memory decoder, except that a
    # real pixel that decoded to the nodata value 0 is nudged to 1 (issue #18)
    png = tmp_path / "out.png"
    assert cli("decompress", coded, "-o", png, "-m", TINY_MODEL, "-q")[0] == 0
    from cosmic.io.images import load_rgb

    assert np.array_equal(windowed, np.where(load_rgb(png).pixels == 0, 1, load_rgb(png).pixels))


def test_geotiff_with_non_epsg_crs_and_png_output(cli, tmp_path):
    wkt = rasterio.crs.CRS.from_proj4("+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +units=m").to_wkt()
    src = write_geotiff(tmp_path / "s.tif", golden_image(100, 130), crs=wkt, nodata=None)
    coded = tmp_path / "s.cosmic"
    assert cli("compress", src, "-o", coded, "-m", TINY_MODEL, "-q")[0] == 0
    assert read_container(coded).header.georef["crs"].startswith("PROJCS[")
    assert cli("decompress", coded, "-o", tmp_path / "o.tif", "-m", TINY_MODEL, "-q")[0] == 0
    with rasterio.open(tmp_path / "o.tif") as b:
        assert b.crs == rasterio.crs.CRS.from_wkt(wkt) and b.nodata is None
    assert cli("decompress", coded, "-o", tmp_path / "o.png", "-m", TINY_MODEL, "-q")[0] == 0


def test_sixteen_bit_needs_explicit_scale(cli, tmp_path, one_line_error):
    rng = np.random.default_rng(0)
    deep = rng.integers(1000, 20000, (130, 140, 4)).astype(np.uint16)
    src = write_geotiff(tmp_path / "d.tif", deep, nodata=None, dtype="uint16")
    coded = tmp_path / "d.cosmic"
    one_line_error(*cli("compress", src, "-o", coded, "-m", TINY_MODEL)[::2], "uint16", "--scale")
    assert not coded.exists()
    one_line_error(*cli("compress", src, "-o", coded, "-m", TINY_MODEL, "--bands", "5,3,2",
                        "--scale", "auto")[::2], "band 5")
    one_line_error(*cli("compress", src, "-o", coded, "-m", TINY_MODEL, "--bands", "4,4")[::2], "--bands")
    one_line_error(*cli("compress", src, "-o", coded, "-m", TINY_MODEL, "--scale", "9,1")[::2], "--scale")
    code, _, err = cli("compress", src, "-o", coded, "-m", TINY_MODEL, "--bands", "4,3,2", "--scale", "0,20000", "-q")
    assert code == 0, err
    assert read_container(coded).header.georef["source"] == {
        "bands": [4, 3, 2], "source_dtype": "uint16", "scale": [[0.0, 20000.0]] * 3,
        "colorinterp": ["undefined"] * 3}
    code, _, err = cli("compress", src, "-o", coded, "-m", TINY_MODEL, "--bands", "1", "--scale", "auto", "-q")
    assert code == 0, err
    h = read_container(coded).header
    assert h.channels == 1 and h.georef["source"]["scale"][0][0] > 1000  # percentiles of the data
    assert cli("decompress", coded, "-o", tmp_path / "g.tif", "-m", TINY_MODEL, "-q")[0] == 0
    with rasterio.open(tmp_path / "g.tif") as b:
        assert b.count == 1


def _noaa_sun(when: datetime, lon: float, lat: float) -> tuple[float, float]:
    """Sun azimuth and elevation by NOAA's spreadsheet formulas (accurate to ~0.1 degree)."""
    jd = when.timestamp() / 86400.0 + 2440587.5
    t = (jd - 2451545.0) / 36525.0
    l0 = (280.46646 + t * (36000.76983 + t * 0.0003032)) % 360
    m = math.radians(357.52911 + t * (35999.05029 - 0.0001537 * t))
    e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    c = math.sin(m) * (1.914602 - t * (0.004817 + 0.000014 * t)) + math.sin(2 * m) * (0.019993 - 0.000101 * t)
    omega = math.radians(125.04 - 1934.136 * t)
    lam = math.radians(l0 + c - 0.00569 - 0.00478 * math.sin(omega))
    eps0 = 23 + (26 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60) / 60
    eps = math.radians(eps0 + 0.00256 * math.cos(omega))
    decl = math.asin(math.sin(eps) * math.sin(lam))
    y = math.tan(eps / 2) ** 2
    l0r = math.radians(l0)
    eot = 4 * math.degrees(y * math.sin(2 * l0r) - 2 * e * math.sin(m) + 4 * e * y * math.sin(m) * math.cos(2 * l0r)
                           - 0.5 * y * y * math.sin(4 * l0r) - 1.25 * e * e * math.sin(2 * m))
    minutes = when.hour * 60 + when.minute + when.second / 60
    hour_angle = math.radians(((minutes + eot + 4 * lon) / 4) - 180)
    phi = math.radians(lat)
    zen = math.acos(math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle))
    az = math.degrees(math.atan2(math.sin(hour_angle),
                                 math.cos(hour_angle) * math.sin(phi) - math.tan(decl) * math.cos(phi))) + 180
    return az % 360, 90 - math.degrees(zen)


def test_derived_metadata_matches_hand_computation(tmp_path):
    from cosmic.io.raster import RasterSource

    # 1000 x 800 px of 10 m in UTM 33N: centre at E 505000, N 4996000 (about 15.06 E, 45.12 N)
    src = write_geotiff(tmp_path / "s.tif", np.full((800, 1000, 3), 90, np.uint8),
                        tags={"ACQUISITIONDATETIME": "2021-07-14T09:30:00Z",
                              "TIFFTAG_DATETIME": "2023:01:01 00:00:00"})
    with RasterSource.open(src) as s:
        meta, names = derive_metadata(SensorMetadata(), s.georef, s.width, s.height, s.tags)
    assert sorted(names) == ["gsd", "sun_azimuth", "sun_elevation", "timestamp", "utm_zone"]
    assert (meta.utm_zone, meta.utm_north) == (33, True)
    assert meta.gsd == pytest.approx(10.0)
    assert meta.timestamp == datetime(2021, 7, 14, 9, 30, tzinfo=timezone.utc)
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(505000.0, 4996000.0)
    az, el = _noaa_sun(meta.timestamp, lon, lat)
    assert meta.sun_azimuth == pytest.approx(az, abs=0.2) and meta.sun_elevation == pytest.approx(el, abs=0.2)
    # what the sidecar gives is kept; a date without a time of day gives no sun angles
    known = SensorMetadata(gsd=0.5, timestamp=datetime(2021, 7, 14, tzinfo=timezone.utc))
    meta2, names2 = derive_metadata(known, s.georef, s.width, s.height, {})
    assert meta2.gsd == 0.5 and meta2.sun_azimuth is None and names2 == ["utm_zone"]


def test_compress_records_derived_metadata(cli, tmp_path):
    src = write_geotiff(tmp_path / "s.tif", golden_image(), tags={"ACQUISITIONDATETIME": "2021-07-14T09:30:00Z"})
    coded = tmp_path / "s.cosmic"
    code, _, err = cli("compress", src, "-o", coded, "-m", TINY_MODEL)
    assert code == 0 and "derived" in err
    meta = read_container(coded).header.metadata
    assert meta["utm"] == "33N" and meta["gsd"] == pytest.approx(10.0) and 50 < meta["sun_elevation_dbl"] < 70
    assert cli("compress", src, "-o", coded, "-m", TINY_MODEL, "--no-derive", "-q")[0] == 0
    assert read_container(coded).header.metadata == {}


@pytest.mark.skipif(not LANDSAT.is_dir(), reason="shared data not beside this checkout")
def test_sun_angles_agree_with_landsat_mtl():
    from cosmic.io.raster import RasterSource

    mtl = json.loads((LANDSAT / "LC80460282016177LGN00_MTL.json").read_text())["L1_METADATA_FILE"]
    product = mtl["PRODUCT_METADATA"]
    tags = {"DATE_ACQUIRED": product["DATE_ACQUIRED"], "SCENE_CENTER_TIME": product["SCENE_CENTER_TIME"]}
    with RasterSource.open(LANDSAT / "landsat8_LC80460282016177LGN00_B4.tif", scale="auto") as s:
        meta, _ = derive_metadata(SensorMetadata(), s.georef, s.width, s.height, tags)
    assert abs(meta.sun_azimuth - mtl["IMAGE_ATTRIBUTES"]["SUN_AZIMUTH"]) < 1.0
    assert abs(meta.sun_elevation - mtl["IMAGE_ATTRIBUTES"]["SUN_ELEVATION"]) < 1.0
    assert (meta.utm_zone, meta.utm_north) == (10, True)


@pytest.mark.slow
def test_windowed_large_scene_memory_is_bounded():
    """Peak RSS of compress and decompress grows far less than the scene (GDAL's cache is 32 MiB)."""
    script = ROOT / "benchmarks" / "large_scene_memory.py"
    proc = subprocess.run([sys.executable, str(script), "--size", "1024", "6144", "--model", str(TINY_MODEL),
                           "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    small, large = json.loads(proc.stdout)
    raw_growth = large["raw_mb"] - small["raw_mb"]  # 105 MiB
    for key in ("encode_peak_mb", "decode_peak_mb"):
        assert large[key] - small[key] < 0.5 * raw_growth, (key, small[key], large[key])


def natural_image(h: int, w: int) -> np.ndarray:
    """Smooth structure plus sensor-like noise, with nothing special at any pixel position."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 128 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
    noise = np.random.default_rng(0).normal(0, 6, (h, w, 3))
    return np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)


def test_seam_score_and_border_filter():
    from cosmic.evaluation.seams import blockiness, seam_score
    from cosmic.ground.deblock import smooth_border

    img = natural_image(512, 512)
    assert seam_score(img, img, 256) == 0.0
    assert 0.5 < blockiness(img, 256) < 2.0
    blocky = img.copy()
    for r in range(0, 512, 64):
        for c in range(0, 512, 64):
            blocky[r : r + 64, c : c + 64] = blocky[r : r + 64, c : c + 64].mean(axis=(0, 1))
    assert seam_score(blocky, img, 64) > 5
    shifted = img.astype(np.int16)
    shifted[:, 256:] += 12  # a brightness step at the tile border, as independent coding makes
    shifted = np.clip(shifted, 0, 255).astype(np.uint8)
    before = seam_score(shifted, img, 256)
    strip = smooth_border(shifted[:, 248:264], axis=1)
    fixed = shifted.copy()
    fixed[:, 248:264] = strip
    assert before > 0.3 and seam_score(fixed, img, 256) < 0.25 * before
    edge = np.zeros((4, 16, 3), np.uint8)
    edge[:, 8:] = 200  # a real edge on the border is left alone
    assert np.array_equal(smooth_border(edge, axis=1), edge)


def test_decompress_deblock_lowers_seams(cli, tmp_path):
    from cosmic.evaluation.seams import seam_score
    from cosmic.io.images import load_rgb

    src = tmp_path / "g.png"
    from PIL import Image

    img = natural_image(256, 384)
    Image.fromarray(img).save(src)
    coded = tmp_path / "g.cosmic"
    assert cli("compress", src, "-o", coded, "-m", TINY_MODEL, "--tile", "128", "-q")[0] == 0
    scores = {}
    for flag in ("--no-deblock", "--deblock"):
        out = tmp_path / f"g{flag}.png"
        assert cli("decompress", coded, "-o", out, "-m", TINY_MODEL, flag, "-q")[0] == 0
        scores[flag] = seam_score(load_rgb(out).pixels, img, 128)
    assert scores["--deblock"] < scores["--no-deblock"]


def test_tile_set_builder(cli, tmp_path):
    from PIL import Image

    from cosmic.evaluation.tileset import load_manifest, stitch

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    img = golden_image(300, 450)
    img[:128, :128] = 0  # one all-fill tile
    Image.fromarray(img).save(scenes / "a.png")
    Image.fromarray(img).save(scenes / "a.tif")  # an original beside the PNG: the PNG is used
    Image.fromarray(golden_image(100, 100)).save(scenes / "small.png")
    (scenes / "a.json").write_text('{"gsd": 5.0, "utm": "14N", "sun_elevation_dbl": 41.5, "note": "x"}')
    code, out, err = cli("data", "tiles", "--scenes", scenes, "--out", tmp_path / "tiles", "--tile", "128")
    assert code == 0, err
    m = load_manifest(tmp_path / "tiles")
    assert [s["name"] for s in m["scenes"]] == ["a", "small"]
    a = m["scenes"][0]
    assert (a["rows"], a["cols"], a["crop"]) == (2, 3, [384, 256]) and a["source"].endswith("a.png")
    assert len(m["tiles"]) == 6 and [t["fill"] for t in m["tiles"]].count(True) == 1
    tiles = {(t["row"], t["col"]): np.asarray(Image.open(tmp_path / "tiles" / t["file"])) for t in m["tiles"]}
    assert np.array_equal(stitch(m, "a", tiles), img[:256, :384])
    assert "skipped" in m["scenes"][1]
    # the scene's metadata beside every tile, where the eval harness and `compress` look for it
    from cosmic.metadata import load_sidecar, sidecar_for

    expect = {"gsd": 5.0, "utm": "14N", "sun_elevation_dbl": 41.5}
    assert a["metadata"] == expect
    for t in m["tiles"]:
        side = sidecar_for(tmp_path / "tiles" / t["file"])
        assert side is not None and load_sidecar(side).to_dict() == expect
    code, _, err = cli("data", "tiles", "--scenes", scenes, "--out", tmp_path / "bare", "--tile", "128", "--no-metadata")
    assert code == 0, err
    assert "metadata" not in load_manifest(tmp_path / "bare")["scenes"][0]
    assert not list((tmp_path / "bare").rglob("r*_c*.json"))


def test_corrupt_tile_to_geotiff_leaves_no_file_or_is_concealed(cli, tmp_path, one_line_error):
    src = write_geotiff(tmp_path / "s.tif", golden_image(300, 300))
    coded = tmp_path / "s.cosmic"
    assert cli("compress", src, "-o", coded, "-m", TINY_MODEL, "-q")[0] == 0
    c = read_container(coded)
    raw = bytearray(coded.read_bytes())
    raw[c.offsets[3] + 5] ^= 0xFF  # last tile
    coded.write_bytes(bytes(raw))
    out = tmp_path / "o.tif"
    one_line_error(*cli("decompress", coded, "-o", out, "-m", TINY_MODEL, "-q")[::2], "tile 3")
    assert not out.exists() and not list(tmp_path.glob(".o.tif.partial"))
    code, _, err = cli("decompress", coded, "-o", out, "-m", TINY_MODEL, "--conceal", "-q")
    assert code == 0 and "tile 3" in err and out.exists()


@pytest.mark.skipif(not LANDSAT.is_dir(), reason="shared data not beside this checkout")
def test_landsat_mtl_as_metadata_and_16_bit_band(cli, tmp_path):
    from cosmic.metadata import load_sidecar

    mtl = LANDSAT / "LC80460282016177LGN00_MTL.json"
    meta = load_sidecar(mtl)
    assert meta.timestamp == datetime(2016, 6, 25, 18, 55, 50, tzinfo=timezone.utc)
    assert (meta.utm_zone, meta.utm_north, meta.cloud_cover) == (10, True, 11.3)
    assert meta.sun_azimuth == pytest.approx(139.32619154) and meta.gsd is None
    coded = tmp_path / "b4.cosmic"
    code, _, err = cli("compress", LANDSAT / "landsat8_LC80460282016177LGN00_B4.tif", "-o", coded, "--meta", mtl,
                       "--scale", "auto", "-m", TINY_MODEL)
    assert code == 0, err
    h = read_container(coded).header
    assert h.metadata["gsd"] == pytest.approx(150.019, abs=0.01)  # from the raster, not the MTL's 30 m grid
    assert h.metadata["sun_elevation_dbl"] == pytest.approx(62.58246948) and h.channels == 1


def test_python_api_carries_georeferencing(cli, tmp_path):
    """cosmic.compress of a GeoTIFF path gives the CLI's bytes; cosmic.decompress returns its georef."""
    import cosmic

    src = write_geotiff(tmp_path / "s.tif", golden_image(), nodata=0)
    coded = tmp_path / "s.cosmic"
    assert cli("compress", src, "-o", coded, "-m", TINY_MODEL, "-q")[0] == 0
    data = cosmic.compress(src, model=TINY_MODEL)
    assert data == coded.read_bytes()
    pixels, georef = cosmic.decompress(data, model=TINY_MODEL, return_georef=True)
    assert pixels.shape == (200, 300, 3)
    assert georef["crs"] == "EPSG:32633" and georef["nodata"] == 0 and "source" not in georef
    assert cosmic.open(coded).georef["transform"] == georef["transform"]


def test_southern_utm_zone_reads_back_south(tmp_path):
    """Issue 33 item 8: a derived southern zone was written '50S' and read back as MGRS band S
    (north); it is now written '50 south'. fMoW's band letters keep their meaning."""
    src = write_geotiff(tmp_path / "s.tif", golden_image(64, 64), crs="EPSG:32750",
                        transform=from_origin(400000.0, 7000000.0, 10.0, 10.0))
    with rasterio.open(src) as ds:
        georef = {"crs": "EPSG:32750", "transform": list(ds.transform)[:6]}
    derived, _ = derive_metadata(SensorMetadata(), georef, 64, 64, {})
    assert (derived.utm_zone, derived.utm_north) == (50, False)
    assert derived.to_dict()["utm"] == "50 south"
    assert SensorMetadata.from_dict(derived.to_dict()).utm_north is False
    assert SensorMetadata.from_dict({"utm": "50S"}).utm_north is True  # MGRS band S (Beijing), as fMoW writes it
    assert SensorMetadata.from_dict({"utm": "10N"}).to_dict() == {"utm": "10N"}


def test_web_mercator_gsd_is_the_ground_size():
    """Issue 33 item 8: an EPSG:3857 pixel of 0.597 m at 37.8 N is 0.47 m on the ground (it was
    reported as 0.597); a UTM pixel keeps its nominal size."""
    from cosmic.io.product_metadata import ground_sample_distance, scene_centre_lonlat

    mercator = {"crs": "EPSG:3857", "transform": [0.597, 0.0, -13625000.0, 0.0, -0.597, 4551000.0]}
    lonlat = scene_centre_lonlat(mercator, 100, 100)
    assert ground_sample_distance(mercator, lonlat) == pytest.approx(0.597 * math.cos(math.radians(lonlat[1])),
                                                                     rel=1e-3)
    utm = {"crs": "EPSG:32610", "transform": [30.0, 0.0, 433785.0, 0.0, -30.0, 5215815.0]}
    assert ground_sample_distance(utm, scene_centre_lonlat(utm, 100, 100)) == 30.0


def _mtl_text(d: dict, indent: str = "") -> str:
    """A Landsat MTL JSON written back as the standard ODL ``MTL.txt``."""
    lines = []
    for key, value in d.items():
        if isinstance(value, dict):
            lines += [f"{indent}GROUP = {key}", _mtl_text(value, indent + "  "), f"{indent}END_GROUP = {key}"]
        else:
            lines.append(f'{indent}{key} = "{value}"' if isinstance(value, str) else f"{indent}{key} = {value}")
    return "\n".join(lines)


@pytest.mark.skipif(not LANDSAT.is_dir(), reason="shared data not beside this checkout")
def test_landsat_mtl_txt_is_read_like_its_json(tmp_path):
    """Issue 33 item 8: the standard `MTL.txt` was refused ("not valid JSON")."""
    from cosmic.errors import InputError
    from cosmic.metadata import load_sidecar

    mtl = LANDSAT / "LC80460282016177LGN00_MTL.json"
    text = tmp_path / "LC80460282016177LGN00_MTL.txt"
    text.write_text(_mtl_text(json.loads(mtl.read_text())) + "\nEND\n")
    assert load_sidecar(text) == load_sidecar(mtl) and load_sidecar(text).utm_zone == 10
    text.write_text("GROUP = L1_METADATA_FILE\n  CLOUD_COVER = 5\n")
    with pytest.raises(InputError, match="ends inside a group"):
        load_sidecar(text)
