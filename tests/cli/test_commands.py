"""The command line: happy paths and every bad input of issue #2 (one line, non-zero, no output)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import TINY_MODEL, golden_image
from PIL import Image

from cosmic.io.container import read_container


@pytest.fixture()
def coded(cli, golden_png, tmp_path):
    out = tmp_path / "g.cosmic"
    code, stdout, err = cli("compress", golden_png, "-o", out, "-m", TINY_MODEL, "-q")
    assert code == 0, err
    return out


def test_compress_decompress_info(cli, golden_png, tmp_path):
    out = tmp_path / "g.cosmic"
    code, stdout, _ = cli("compress", golden_png, "-o", out, "-m", TINY_MODEL)
    assert code == 0
    size = out.stat().st_size
    assert f"{size} bytes" in stdout and f"{size * 8 / (200 * 300):.4f} bpp" in stdout
    code, stdout, _ = cli("info", out)
    assert code == 0 and "200" in stdout and "all tiles OK" in stdout
    png = tmp_path / "g.png"
    code, stdout, err = cli("decompress", out, "-o", png, "-m", TINY_MODEL, "--steps", "0")
    assert code == 0, err
    with Image.open(png) as im:
        assert im.size == (300, 200) and im.mode == "RGB"


def test_info_json(cli, coded):
    import json

    code, stdout, _ = cli("info", coded, "--json")
    d = json.loads(stdout)
    assert d["width"] == 300 and d["grid"] == [1, 2] and d["bytes"] == coded.stat().st_size


def _assert_no_output(path):
    assert not path.exists()
    assert not list(path.parent.glob(f".{path.name}.partial"))


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, not an image\n"), "not a readable image"),
    ],
    ids=["missing", "empty", "text"],
)
def test_compress_bad_input(cli, one_line_error, tmp_path, make, needle):
    src = tmp_path / "in.png"
    make(src)
    out = tmp_path / "out.cosmic"
    code, _, err = cli("compress", src, "-o", out, "-m", TINY_MODEL)
    one_line_error(code, err, needle)
    _assert_no_output(out)


def test_compress_truncated_png(cli, one_line_error, golden_png, tmp_path):
    data = golden_png.read_bytes()
    golden_png.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.cosmic"
    code, _, err = cli("compress", golden_png, "-o", out, "-m", TINY_MODEL)
    one_line_error(code, err, "truncated")
    _assert_no_output(out)


def test_compress_16bit_refused(cli, one_line_error, tmp_path):
    src = tmp_path / "deep.png"
    Image.fromarray(np.full((64, 64), 40000, dtype=np.uint16)).save(src)
    out = tmp_path / "out.cosmic"
    code, _, err = cli("compress", src, "-o", out, "-m", TINY_MODEL)
    one_line_error(code, err, "16-bit")
    _assert_no_output(out)


@pytest.mark.parametrize("suffix", ["tif", "png"])
def test_compress_16bit_rgb_refused(cli, one_line_error, tmp_path, suffix):
    """Pillow reads 48-bit RGB TIFF/PNG as 8-bit RGB; the loader must notice and refuse."""
    import imagecodecs

    deep = np.full((64, 64, 3), 1000, dtype=np.uint16)
    src = tmp_path / f"deep.{suffix}"
    src.write_bytes(imagecodecs.tiff_encode(deep) if suffix == "tif" else imagecodecs.png_encode(deep))
    out = tmp_path / "out.cosmic"
    code, _, err = cli("compress", src, "-o", out, "-m", TINY_MODEL)
    one_line_error(code, err, "16-bit")
    _assert_no_output(out)


def test_rgba_converted_with_note(cli, tmp_path):
    src = tmp_path / "rgba.png"
    rgba = np.dstack([golden_image(), np.full((200, 300), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(src)
    out = tmp_path / "o.cosmic"
    code, _, err = cli("compress", src, "-o", out, "-m", TINY_MODEL, "-q")
    assert code == 0 and "alpha channel dropped" in err


def test_grayscale_round_trip_stays_grayscale(cli, tmp_path):
    src = tmp_path / "gray.png"
    Image.fromarray(golden_image()[:, :, 0], "L").save(src)
    out = tmp_path / "o.cosmic"
    code, _, err = cli("compress", src, "-o", out, "-m", TINY_MODEL, "-q")
    assert code == 0 and "grayscale" in err
    assert read_container(out).header.channels == 1
    png = tmp_path / "o.png"
    code, _, err = cli("decompress", out, "-o", png, "-m", TINY_MODEL, "-q")
    assert code == 0, err
    with Image.open(png) as im:
        assert im.mode == "L" and im.size == (300, 200)


def _flip(path, offset_from_end=10):
    data = bytearray(path.read_bytes())
    data[len(data) - offset_from_end] ^= 0x55
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda p: p.unlink(), "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(p.read_bytes()[:40]), "truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:-7]), "truncated"),
        (lambda p: _flip(p), "tile 1 (row 0, col 1)"),
        (lambda p: _flip(p, p.stat().st_size - 20), "header crc"),
        (lambda p: _flip(p, p.stat().st_size - 12), "corrupt header"),
        (lambda p: p.write_bytes(b"GIF89a" + p.read_bytes()[6:]), "not a .cosmic file"),
        (lambda p: p.write_bytes(p.read_bytes()[:8] + b"\x07\x00" + p.read_bytes()[10:]), "newer"),
        (lambda p: p.write_text("not a bitstream at all"), "not a .cosmic file"),
    ],
    ids=["missing", "empty", "truncated-header", "truncated-tail", "bitflip-tile", "bitflip-header", "bitflip-header-length",
         "wrong-magic", "newer-version", "text"],
)
def test_decompress_bad_bitstream(cli, one_line_error, coded, tmp_path, damage, needle):
    damage(coded)
    out = tmp_path / "out.png"
    code, _, err = cli("decompress", coded, "-o", out, "-m", TINY_MODEL, "-q")
    one_line_error(code, err, needle)
    _assert_no_output(out)


def test_decompress_conceal_writes_image_and_warns(cli, coded, tmp_path):
    _flip(coded)
    out = tmp_path / "out.png"
    code, _, err = cli("decompress", coded, "-o", out, "-m", TINY_MODEL, "-q", "--conceal")
    assert code == 0 and "tile 1 (row 0, col 1)" in err and "concealed" in err
    assert out.exists()


def test_decompress_other_model(cli, one_line_error, coded, tmp_path):
    from cosmic.models.cosmic import Cosmic

    other = Cosmic(N=16, M=16, ground_channels=8, name="another")
    other.update(force=True)
    other.save_pretrained(tmp_path / "other")
    out = tmp_path / "out.png"
    code, _, err = cli("decompress", coded, "-o", out, "-m", tmp_path / "other", "-q")
    one_line_error(code, err, "coded by model 'cosmic-tiny-test'")
    _assert_no_output(out)


def test_bad_model_and_options(cli, one_line_error, golden_png, coded, tmp_path):
    code, _, err = cli("compress", golden_png, "-o", tmp_path / "o.cosmic", "-m", tmp_path / "nowhere")
    one_line_error(code, err, "nowhere")
    code, _, err = cli("compress", golden_png, "-o", tmp_path / "missing-dir" / "o.cosmic", "-m", TINY_MODEL)
    one_line_error(code, err, "does not exist")
    code, _, err = cli("compress", golden_png, "-o", tmp_path / "o.cosmic", "-m", TINY_MODEL, "--tile", "100")
    one_line_error(code, err, "multiple of 64")
    code, _, err = cli("decompress", coded, "-o", tmp_path / "o.xyz", "-m", TINY_MODEL)
    one_line_error(code, err, "unknown output format")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text("{not json")
    code, _, err = cli("decompress", coded, "-o", tmp_path / "o.png", "-m", garbage)
    one_line_error(code, err, "cannot load")


def test_output_must_not_overwrite_input(cli, one_line_error, golden_png, coded):
    before = golden_png.read_bytes()
    code, _, err = cli("compress", golden_png, "-o", golden_png, "-m", TINY_MODEL)
    one_line_error(code, err, "overwrite the input")
    assert golden_png.read_bytes() == before


def test_real_process_exit_code_and_single_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "cosmic.cli", "decompress", str(tmp_path / "none.cosmic"),
                        "-o", str(tmp_path / "x.png")], capture_output=True, text=True)
    assert r.returncode == 2  # a missing input is bad input, as for images (it exited 3; issue 33 item 11)
    assert r.stderr.strip().splitlines() == [f"cosmic: error: {tmp_path / 'none.cosmic'}: no such file"]


@pytest.mark.parametrize("command", [["--help"], ["info"], ["decompress", "--help"]])
def test_light_commands_import_no_model_code(coded, command):
    """Start-up (issue 17): --help and info import neither torch nor CompressAI / PyG / diffusers."""
    args = command + [str(coded)] * (command == ["info"])
    code = ("import sys; from cosmic.cli import main\n"
            "try:\n    main(sys.argv[1:])\nfinally:\n"
            "    print(sorted(m for m in ('torch', 'compressai', 'torch_geometric', 'torch._dynamo', 'torchvision',"
            " 'diffusers', 'scipy') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_decompress_imports_no_point_cloud_code(coded, tmp_path):
    """`decompress --steps 0` imports torch and CompressAI, but not PyG, torchvision, torch._dynamo,
    pandas, diffusers (cosmic.utils.compressai_import) and decodes as in-process."""
    code = ("import sys; from cosmic.cli import main\nmain(sys.argv[1:])\n"
            "print(sorted(m for m in ('torch_geometric', 'torch._dynamo', 'torchvision', 'pandas', 'sympy',"
            " 'diffusers', 'compressai') if m in sys.modules))")
    out = tmp_path / "g.png"
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", code, "decompress", str(coded), "-o", str(out),
                        "-m", str(TINY_MODEL), "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['compressai']"
    with Image.open(out) as im:
        assert im.size == (300, 200)


@pytest.mark.slow
def test_demo_runs_on_a_given_image(cli, golden_png, tmp_path):
    out = tmp_path / "demo"
    code, stdout, err = cli("demo", "--out", out, "--image", golden_png, "-m", TINY_MODEL)
    assert code == 0, err
    assert "JPEG2000" in stdout and "COSMIC (no compensation)" in stdout and "bpp" in stdout
    with Image.open(out / "side_by_side.png") as im:
        assert im.width > 3 * 300  # original | JPEG2000 | COSMIC w/o DC
    assert (out / "golden.cosmic").stat().st_size > 0


def test_every_entry_point_writes_the_same_file(cli, golden_png, tmp_path):
    """`cosmic compress`, `cosmic demo` and `cosmic eval`'s runner code through one encode
    pipeline: the same input gives the same bytes, the golden bitstream's."""
    import hashlib

    from helpers import HERE

    from cosmic.evaluation.runners import CosmicRunner
    from cosmic.evaluation.specs import CodecSpec
    from cosmic.metadata import SensorMetadata

    out = tmp_path / "cli.cosmic"
    assert cli("compress", golden_png, "-o", out, "-m", TINY_MODEL, "-q")[0] == 0
    code, _, err = cli("demo", "--out", tmp_path / "demo", "--image", golden_png, "-m", TINY_MODEL)
    assert code == 0, err
    assert (tmp_path / "demo" / "golden.cosmic").read_bytes() == out.read_bytes()
    runner = CosmicRunner(CodecSpec("tiny", "cosmic", [str(TINY_MODEL)]), encoded={})
    runner.run(str(TINY_MODEL), golden_image(), SensorMetadata(), key="g")
    assert runner.encoded[(str(TINY_MODEL), "g")][0] == out.read_bytes()
    golden = (HERE / "fixtures" / "golden.txt").read_text().strip()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == golden


@pytest.mark.parametrize(
    "args, needle",
    [(["compress", "x.png", "--qualty", "3"], "--quality"), (["compress", "x.png"], "missing option '-o'"),
     (["decompress"], "missing argument"), (["compres"], "no such command")],
    ids=["misspelt", "missing-o", "missing-input", "command"],
)
def test_usage_errors_are_usage_errors(cli, one_line_error, args, needle):
    """click's own message (and its suggestion) on one line, exit 2, not an internal error."""
    code, _, err = cli(*args)
    one_line_error(code, err, needle)
    assert code == 2 and "internal error" not in err


def test_version(cli):
    from cosmic import __version__

    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"cosmic {__version__}"


def test_output_names_are_checked(cli, one_line_error, golden_png, coded, tmp_path):
    code, _, err = cli("compress", golden_png, "-o", tmp_path / "x.jpg", "-m", TINY_MODEL)
    one_line_error(code, err, ".cosmic")
    _assert_no_output(tmp_path / "x.jpg")
    jpg = tmp_path / "x.jpg"
    code, _, err = cli("decompress", coded, "-o", jpg, "-m", TINY_MODEL)
    one_line_error(code, err, "--format jpeg --jpeg-quality")
    code, _, err = cli("decompress", coded, "-o", jpg, "-m", TINY_MODEL, "--format", "jpeg")
    one_line_error(code, err, "--jpeg-quality")
    _assert_no_output(jpg)
    code, _, err = cli("decompress", coded, "-o", jpg, "-m", TINY_MODEL, "--format", "jpeg", "--jpeg-quality", "90", "-q")
    assert code == 0, err
    with Image.open(jpg) as im:
        assert im.format == "JPEG" and im.size == (300, 200)


def test_progress_in_a_log_is_plain_lines(cli, golden_png, tmp_path):
    """Issue 33 item 11: when stderr is not a terminal (here: captured) progress is printed as
    plain lines, not a bar redrawn with carriage returns."""
    code, _, err = cli("compress", golden_png, "-o", tmp_path / "g.cosmic", "-m", TINY_MODEL)
    assert code == 0 and "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("encode: ")]
    assert lines and lines[-1].startswith("encode: 2/2 tile")
    code, _, err = cli("decompress", tmp_path / "g.cosmic", "-o", tmp_path / "g.png", "-m", TINY_MODEL)
    assert code == 0 and "\r" not in err and "decode: 2/2 tile" in err


def test_help_shows_no_bool_type_and_the_cluster_extra(cli):
    """Issue 33 item 11: `--help` printed `<bool>` for every flag and `pip install 'cosmic'` (rich
    markup ate `[cluster]`)."""
    code, out, _ = cli("compress", "--help")
    assert code == 0 and "<bool>" not in out and "--no-mask" in out
    assert "cosmic[cluster]" in out and "<int>" in out  # options that take a value keep their type


def test_enhance_refuses_a_non_jpeg2000_input_before_loading_a_model(cli, golden_png, tmp_path, monkeypatch,
                                                                      one_line_error):
    """Issue 33 item 11: a PNG given to `cosmic enhance` was refused only after the enhancer
    loaded (7.5 s)."""
    import cosmic.zoo

    monkeypatch.setattr(cosmic.zoo, "load_postprocessor", lambda *a: pytest.fail("a model was loaded"))
    code, _, err = cli("enhance", golden_png, "-o", tmp_path / "e.png")
    one_line_error(code, err, "not a JPEG2000 file")
    assert code == 2 and not (tmp_path / "e.png").exists()


# -- issue 34 items 8, 9 ----------------------------------------------------------------------
def test_info_escapes_the_file_name(cli, coded):
    """`cosmic info` printed the file name raw: an escape sequence and a newline reached the terminal."""
    evil = coded.with_name("evil\x1b[2J\nname.cosmic")
    evil.write_bytes(coded.read_bytes())
    code, stdout, _ = cli("info", evil)
    assert code == 0 and "\x1b" not in stdout
    version = read_container(coded).version
    assert f"/evil\\x1b[2J\\nname.cosmic: COSMIC format v{version}" in stdout.splitlines()[0]


def test_input_name_with_glob_characters_is_one_file(cli, one_line_error, coded, tmp_path):
    """A name containing '[' switched decompress to glob mode ('no .cosmic files found'), and an
    output in a missing folder was then created as a folder."""
    odd = coded.with_name("scene[1].cosmic")
    odd.write_bytes(coded.read_bytes())
    code, _, err = cli("decompress", odd, "-o", tmp_path / "nodir" / "o.png", "-m", TINY_MODEL, "-q")
    assert code == 2
    one_line_error(code, err, "output directory does not exist")
    assert not (tmp_path / "nodir").exists()
    code, _, err = cli("decompress", odd, "-o", tmp_path / "o.png", "-m", TINY_MODEL, "-q")
    assert code == 0, err
    with Image.open(tmp_path / "o.png") as im:
        assert im.size == (300, 200)
    code, _, err = cli("decompress", odd, "-o", tmp_path / "many", "-m", TINY_MODEL, "-q", "--jobs", "2")
    assert code == 0, err
    assert [p.name for p in (tmp_path / "many").iterdir()] == ["scene[1].png"]
