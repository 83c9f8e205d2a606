"""The ``cosmic`` command line (typer).

Every failure the user can cause ends in one line on stderr and a non-zero exit status:
2 bad input, 3 bad bitstream, 4 bad model, 70 internal error (set COSMIC_DEBUG=1 for the traceback);
130 interrupted, 143 terminated (SIGTERM), with the partial output removed in both cases.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from cosmic.errors import CosmicError, InputError
from cosmic.io.limits import check_tile

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="COSMIC: learned satellite image compression with a lightweight on-board encoder.",
)
train_app = typer.Typer(no_args_is_help=True, help="Train models.")
app.add_typer(train_app, name="train")
data_app = typer.Typer(no_args_is_help=True, help="Build evaluation data sets.")
app.add_typer(data_app, name="data")
export_app = typer.Typer(no_args_is_help=True, help="Export the on-board encoder for embedded runtimes.")
app.add_typer(export_app, name="export")


def _version(value: bool) -> None:
    if value:
        from cosmic import __version__

        typer.echo(f"cosmic {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit")) -> None:
    """COSMIC: learned satellite image compression with a lightweight on-board encoder."""


DEFAULT_MODEL_NAME = "cosmic-small-vr"  # = cosmic.zoo.DEFAULT_MODEL (not imported: keeps start-up light)
_ARGV: list[str] = []  # the command line, for reports that quote the command that made them


def _int_list(option: str, text: str, example: str) -> list[int]:
    """A comma-separated list of integers (``--steps 5,10,25``), or a one-line InputError."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option} {text!r}: expected numbers such as {example}") from None


def _threads(n: int) -> None:
    if n > 0:
        import torch

        torch.set_num_threads(n)


def _note(msg: str) -> None:
    from cosmic.errors import cli_terms

    typer.echo(f"note: {_clean(cli_terms(msg))}", err=True)


def _check_output(path: Path, source: Path | None = None) -> None:
    if not path.parent.exists():
        raise InputError(f"{path.parent}: output directory does not exist")
    if path.is_dir():
        raise InputError(f"{path}: is a directory")
    if source is not None and path.exists() and source.exists() and path.resolve() == source.resolve():
        raise InputError(f"{path}: output would overwrite the input")


_THREADS = typer.Option(0, help="torch threads (0: default)")
#: the options of many inputs (a folder or glob -> an output folder; cosmic.pipelines.batch)
_MANY = dict(
    jobs=typer.Option(1, help="many inputs: worker processes, each loading the models once"),
    scheduler=typer.Option(
        None, help="many inputs: a Dask scheduler address (tcp://host:8786), or 'local' for a local Dask "
                   "cluster of --jobs processes (pip install 'cosmic\\[cluster]')"),
)
_QUIET = typer.Option(False, "--quiet", "-q")
_QUALITY = typer.Option(None, help="quality of a variable-rate model, any value over its range (the shipped "
                                   "default: 1 (fewest bits) .. 6 (most), default 3); none for a fixed-rate one")
_BPP = typer.Option(None, help="rate control: the highest quality whose whole file fits in this many bits "
                               "per pixel (lands within 3% under; variable-rate models)")
_MAX_BYTES = typer.Option(None, help="rate control: the highest quality whose whole file fits in N bytes "
                                     "(header included)")
_ENCODER = typer.Option(None, "--model", "-m",
                        help="shipped model name or model directory (default: the variable-rate cosmic-small-vr; "
                             "for a one-band source the single-band cosmic-small-vr-gray)")
_META = typer.Option(None, help="fMoW-style sensor metadata JSON (default: IMAGE.json beside the image, if any)")
_BANDS = typer.Option(None, help="TIFF bands to code, 1-based: three as R,G,B (e.g. 4,3,2), one as grey, "
                                 "others as band groups (default: all but alpha)")
_GROUPS = typer.Option(None, help="TIFF band groups of 1 or 3 bands, e.g. 1,2,3:4 (decoded in band order)")
_MASK = typer.Option(True, help="code the fill (nodata / alpha / internal mask; 0 in every band of a "
                                "non-8-bit file without nodata) as a lossless mask")
_SCALE = typer.Option(None, help="for non-8-bit TIFFs: LOW,HIGH mapped to 0..255, or 'auto' (2-98% stretch per band)")
_DERIVE = typer.Option(True, help="derive UTM zone, GSD, time and sun angles from a GeoTIFF for fields the "
                                  "sidecar lacks")


@app.command()
def compress(
    input: Path = typer.Argument(..., help="PNG / JPEG / TIFF / GeoTIFF image"),
    output: Path = typer.Option(..., "-o", "--output", help="the .cosmic file to write"),
    quality: Optional[float] = _QUALITY, bpp: Optional[float] = _BPP, max_bytes: Optional[int] = _MAX_BYTES,
    model: Optional[str] = _ENCODER,
    tile: int = typer.Option(256, help="tile size in pixels (multiple of 64)"),
    meta: Optional[Path] = _META, bands: Optional[str] = _BANDS, scale: Optional[str] = _SCALE,
    band_groups: Optional[str] = _GROUPS, mask: bool = _MASK,
    derive: bool = _DERIVE, threads: int = _THREADS, quiet: bool = _QUIET,
    jobs: int = _MANY["jobs"], scheduler: Optional[str] = _MANY["scheduler"],
) -> None:
    """Compress an image "on the satellite": tiles -> lightweight encoder -> rANS -> .cosmic; or
    many (a folder or quoted glob) into a folder, one .cosmic file each.

    GeoTIFFs are read one tile window at a time (memory does not grow with the scene) and their
    CRS, transform and nodata travel in the file."""
    from cosmic.pipelines.batch_encode import EncodeOptions, encode_image

    options = EncodeOptions.parse(model, quality, bpp, max_bytes, tile, bands, scale, band_groups, mask, derive)
    if _is_many(str(input), output, jobs, scheduler):
        return _compress_many(dict(locals()), options)
    _threads(threads)
    _check_output(output, input)
    if output.suffix.lower() != ".cosmic":
        raise InputError(f"{output}: a compressed file is named NAME.cosmic")
    coded, notes = encode_image(input, output, options, meta=meta, progress=not quiet)
    for n in notes:
        _note(n)
    if not quiet:
        _echo_encoded(output, coded)


def _echo_encoded(output: Path, coded) -> None:
    from cosmic.io.container import source_bits

    h = coded.header
    q = f", quality {h.quality:g}" if h.quality is not None else ""
    typer.echo(f"{output}: {coded.size} bytes, {coded.bpp:.4f} bpp, ratio "
               f"{h.width * h.height * h.channels * source_bits(h) / 8 / coded.size:.1f}:1 against "
               f"{h.channels} x {source_bits(h)}-bit samples, {h.rows}x{h.cols} tiles, "
               f"{h.width}x{h.height} px{q}, encoded in {coded.seconds:.2f} s")


_PRIOR = typer.Option(
    None, help="decoder-side prior after the decode: 'codebook' (Code-RSIC, shipped) or a prior directory")
_FIDELITY = typer.Option(None, help="with --prior: trust in the decode, 1 (plain decode) .. 0 (full prior); "
                                    "default: the prior's own (0.5 for the shipped one)")
_DEVICE = typer.Option("cpu", help="cpu, cuda, cuda:N or auto (the GPU if there is one) for the networks; "
                                   "the entropy decode is exact on either")
_PRECISION = typer.Option("fp32", help="fp32, bf16 or fp16 (CUDA) autocast of the ground networks")


#: decompress options beyond the one-file PNG decode (products, post-decode priors, batches)
_PRODUCT = dict(
    dtype=typer.Option(
        None, help="GeoTIFF sample type (default: the source's, stretch inverted; uint8: the coded picture)"),
    co=typer.Option(None, "--co", help="GDAL COG creation option KEY=VALUE (repeatable)"),
    enhance=typer.Option(False, help="enhance the decode with the LDM-RSIC model trained on this model's decodes "
                                     "(written as the plain decode is: fill, band names, source units, tags)"),
    enhance_steps=typer.Option(0, help="DDIM steps of the enhancer's prior LDM (0: its regressor)"),
)
_REGION = dict(
    window=typer.Option(None, "--window", metavar="COL,ROW,W,H",
                        help="decode only this pixel window (only the tiles it needs); georeferencing shifted"),
    bbox=typer.Option(None, "--bbox", metavar="MINX,MINY,MAXX,MAXY",
                      help="decode only the pixels this box in the file's CRS touches (as --window)"),
    reduce=typer.Option(0, "--reduce", metavar="K",
                        help="2^K times smaller output (0..6): 2^K x 2^K block means of the decode, computed "
                             "row by row (decodes every tile: not faster than a full decode)"),
)


@app.command()
def decompress(
    input: str = typer.Argument(..., help="a .cosmic file, or a folder or quoted glob ('in/*.cosmic') of them"),
    output: Path = typer.Option(..., "-o", "--output",
                                help="image to write (.png, or .tif: a GeoTIFF); a folder for many inputs"),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="model directory or shipped name (default: the shipped model named in the file)"),
    steps: int = typer.Option(
        0, help="DDIM steps of diffusion compensation (opt-in; default 0: none, the better decode today)"),
    seed: int = typer.Option(0, help="seed of the diffusion sampler (same seed, same image)"),
    conceal: bool = typer.Option(
        False, help="decode the intact tiles of a damaged file and fill the bad ones, instead of failing"),
    deblock: bool = typer.Option(True, help="smooth tile borders after stitching (default: no bits, seams 2-4x lower)"),
    fmt: Optional[str] = typer.Option(
        None, "--format", help="png, tiff or jpeg (jpeg only explicitly, with --jpeg-quality: a second lossy step)"),
    jpeg_quality: Optional[int] = typer.Option(None, help="JPEG quality 1..95 of a --format jpeg output"),
    dtype: Optional[str] = _PRODUCT["dtype"], co: Optional[list[str]] = _PRODUCT["co"],
    prior: Optional[str] = _PRIOR, fidelity: Optional[float] = _FIDELITY,
    enhance: bool = _PRODUCT["enhance"], enhance_steps: int = _PRODUCT["enhance_steps"],
    threads: int = _THREADS, quiet: bool = _QUIET, device: str = _DEVICE, precision: str = _PRECISION,
    jobs: int = _MANY["jobs"], scheduler: Optional[str] = _MANY["scheduler"],
    window: Optional[str] = _REGION["window"], bbox: Optional[str] = _REGION["bbox"], reduce: int = _REGION["reduce"],
) -> None:
    """Decompress a .cosmic file "on the ground" to an image, or many files into a folder.

    A .tif output is a Cloud-Optimized GeoTIFF with overviews, written one tile row at a time
    (memory does not grow with the scene): the georeferencing, the source's sample type (the
    stretch inverted), the fill as nodata, every coded band in order, band names and sensor tags.
    Many files: one line per file, failures reported and skipped, exit status non-zero at the end
    if any failed."""
    from cosmic.utils.device import check_precision, resolve_device

    if steps < 0:
        raise InputError(f"--steps {steps}: must be 0 or more")
    check_precision(precision, resolve_device(device))
    if enhance and (prior or dtype or co or fmt == "jpeg"):
        raise InputError("--enhance writes the enhanced picture as the plain decode is: not with --prior, --dtype, --co or --format jpeg")
    _check_region(window, bbox, reduce, enhance, _is_many(input, output, jobs, scheduler))
    if _is_many(input, output, jobs, scheduler):
        return _decompress_many(dict(locals()))
    _decompress_one(dict(locals()))


def _check_region(window: Optional[str], bbox: Optional[str], reduce: int, enhance: bool, many: bool) -> None:
    """--window / --bbox / --reduce: one file, not with --enhance, one of --window and --bbox."""
    from cosmic.pipelines.region import check_reduce

    check_reduce(reduce)
    if not (window or bbox or reduce):
        return
    if window and bbox:
        raise InputError("--window and --bbox both choose the region: give one")
    if many or enhance:
        raise InputError("--window, --bbox and --reduce decode one file, without --enhance")


def _region(o: dict, container):
    """The region of the file that `decompress` decodes (the file itself without --window, --bbox, --reduce)."""
    from cosmic.pipelines.region import open_region, parse_bbox, parse_window, window_from_bbox

    window = parse_window(o["window"]) if o["window"] else None
    if o["bbox"]:
        window = window_from_bbox(container.header, parse_bbox(o["bbox"]))
    return open_region(container, window, o["reduce"], deblock=o["deblock"])


def _decompress_one(o: dict) -> None:
    """`cosmic decompress FILE -o IMAGE`."""
    from cosmic.io.container import read_container
    from cosmic.io.raster import parse_creation_options
    from cosmic.pipelines.decode import DecodePipeline, output_format

    _threads(o["threads"])
    input, output = Path(o["input"]), o["output"]
    _check_output(output, input)
    fmt = output_format(output, o["fmt"], o["jpeg_quality"])
    container = _region(o, read_container(input, partial=o["conceal"]))  # --conceal: a cut-off file keeps its whole tiles
    pipe = DecodePipeline.for_container(container, o["model"], device=o["device"], precision=o["precision"])
    t0 = time.perf_counter()
    decode = dict(steps=o["steps"], seed=o["seed"], conceal=o["conceal"], deblock=o["deblock"],
                  progress=not o["quiet"])
    if o["enhance"]:
        from cosmic.enhance.pipeline import enhance_decode

        bad = enhance_decode(pipe, container, output, None, o["enhance_steps"], **decode)
    else:
        bad = pipe.write(container, output, fmt, o["jpeg_quality"], o["dtype"], parse_creation_options(o["co"]),
                         prior=_load_prior(o["prior"], o["fidelity"]), fidelity=o["fidelity"], **decode)
    for err in bad:
        typer.echo(f"warning: {_clean(err)} - concealed", err=True)
    if fmt != "tiff":
        _picture_note(output, container)
    if not o["quiet"]:
        _echo_decoded(output, container, time.perf_counter() - t0)


def _picture_note(output: Path, container) -> None:
    """A PNG / JPEG holds the 8-bit picture (and a PNG the fill as alpha): a note names what the
    file carries that it leaves out, and that a .tif keeps it, so nothing is dropped unsaid."""
    h = container.header
    georef = h.georef or {}
    src = georef.get("source") or {}
    carried = (("georeferencing", georef.get("crs") or georef.get("transform")),
               ("the source's units (its stretch)", src.get("scale")), ("band names", any(src.get("descriptions") or [])),
               ("sensor metadata", h.metadata), ("GDAL tags", src.get("tags") or any(src.get("band_tags") or [])))
    left_out = [name for name, present in carried if present]
    if left_out:
        _note(f"{output.name} holds the 8-bit picture without {', '.join(left_out)}: write .tif to keep them")


def _echo_decoded(output: Path, container, seconds: float) -> None:
    from cosmic.pipelines.region import output_size

    width, height = output_size(container)
    typer.echo(f"{output}: {width}x{height} px from {container.file_size} bytes "
               f"({container.bpp:.4f} bpp), decoded in {seconds:.2f} s")


def _prior_name(name: Optional[str], fidelity: Optional[float]) -> Optional[str]:
    """The prior ``--prior`` names ("codebook": the shipped one; None without it); ``--fidelity`` checked."""
    from cosmic.codebook.prior import DEFAULT_PRIOR, check_fidelity

    check_fidelity(fidelity)
    if name is None and fidelity is not None:
        raise InputError("--fidelity goes with --prior (e.g. --prior codebook)")
    return DEFAULT_PRIOR if name == "codebook" else name


def _load_prior(name: Optional[str], fidelity: Optional[float]):
    """The decoder-side prior of ``--prior`` (None without it); ``--fidelity`` checked."""
    from cosmic.codebook.prior import load_prior

    name = _prior_name(name, fidelity)
    return None if name is None else load_prior(name)


@app.command()
def enhance(
    input: Path = typer.Argument(..., help="a JPEG2000 file (.jp2, .j2k) or a JPEG2000 GeoTIFF product (.tif, with --bpp)"),
    output: Path = typer.Option(..., "-o", "--output", help="image to write (.png, or .tif: a GeoTIFF)"),
    steps: int = typer.Option(0, help="DDIM steps of the prior LDM (0: the deterministic prior, w/o LDM)"),
    seed: int = typer.Option(0, help="seed of the LDM sampler (same seed, same image)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="enhancer directory or shipped name"),
    bpp: Optional[float] = typer.Option(None, help="the rate the file was coded at (default: read from the codestream)"),
    bands: Optional[str] = _BANDS, scale: Optional[str] = _SCALE, threads: int = _THREADS, quiet: bool = _QUIET,
    fmt: Optional[str] = typer.Option(None, "--format", help="png or tiff (default: by the output's suffix; "
                                                           "png for many inputs)"),
    prior: Optional[str] = _PRIOR, fidelity: Optional[float] = _FIDELITY,
    jobs: int = _MANY["jobs"], scheduler: Optional[str] = _MANY["scheduler"],
) -> None:
    """Enhance a JPEG2000 decode on the ground with LDM-RSIC, or with the Code-RSIC codebook prior
    (--prior codebook) (tiled; a .tif output keeps the georeferencing); or many (a folder or quoted
    glob) into a folder."""
    from cosmic.enhance.codestream import check_enhance_input

    if prior and model:
        raise InputError("--model names an LDM-RSIC enhancer: not with --prior")
    if _is_many(str(input), output, jobs, scheduler):
        return _enhance_many(dict(locals()))
    _check_output(output, input)
    check_enhance_input(input)  # before torch or a model loads (a PNG was refused only after 7.5 s)
    from cosmic.io.raster import parse_bands, parse_scale
    from cosmic.pipelines.decode import output_format

    _threads(threads)
    output_format(output, fmt)
    pipe = _enhance_pipeline(model, prior, fidelity)
    done = pipe.enhance_file(input, output, steps, seed, bpp, parse_bands(bands), parse_scale(scale))
    for n in done.notes:
        _note(n)
    if not quiet:
        rate = "" if done.bpp is None else f"{done.bpp:.4f} bpp input, "
        how = f"prior {prior}" if prior else f"steps {steps}"
        what = "enhanced" if done.enhanced else "written as decoded"
        typer.echo(f"{output}: {done.width}x{done.height} px {what} ({rate}{how}) in {done.seconds:.2f} s")


def _enhance_pipeline(model: Optional[str], prior: Optional[str], fidelity: Optional[float]):
    """`cosmic enhance`'s pipeline: the JPEG2000 enhancer, or the ``--prior`` in its place."""
    from cosmic.enhance.pipeline import EnhancePipeline, PriorPipeline

    if prior:
        return PriorPipeline(_load_prior(prior, fidelity), fidelity)
    _prior_name(prior, fidelity)  # --fidelity alone is refused
    return EnhancePipeline.for_source("jpeg2000", model)


def _is_many(input: str, output: Path, jobs: int, scheduler: Optional[str]) -> bool:
    """Whether a command works on many inputs: a folder or glob, an output folder, or workers asked
    for. A file that exists is one input even if its name has glob characters (``scene[1].cosmic``)."""
    glob = not Path(input).is_file() and any(c in input for c in "*?[")
    return Path(input).is_dir() or glob or output.is_dir() or jobs > 1 or bool(scheduler)


def _run_many(job, o: dict, inputs: list, suffix: str, options, done: str) -> None:
    """Run ``job`` on every input into the folder ``-o`` (cosmic.pipelines.batch): one line per
    file as it finishes, a closing count; exit status that of the worst failure, if any."""
    from cosmic.pipelines.batch import plan, run_batch, summary_line

    outdir = o["output"]
    if o["jobs"] < 1:
        raise InputError(f"--jobs {o['jobs']}: must be 1 or more")
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: many inputs are written into a folder, and this is a file")
    pairs = plan(inputs, outdir, suffix)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    echo = (lambda r: typer.echo(_clean(r.line()), err=not r.ok)) if not o["quiet"] else (
        lambda r: r.ok or typer.echo(_clean(r.line()), err=True))
    results = run_batch(job, pairs, options, o["jobs"], o["scheduler"], o["threads"], echo)
    line, rc = summary_line(results, time.perf_counter() - t0, done)
    typer.echo(line, err=bool(rc))
    if rc:
        raise typer.Exit(rc)


def _compress_many(o: dict, options) -> None:
    """`cosmic compress DIR_OR_GLOB -o OUTDIR`: one OUTDIR/STEM.cosmic per image."""
    from cosmic.pipelines.batch import find_inputs
    from cosmic.pipelines.batch_encode import IMAGE_INPUTS, encode_file
    from cosmic.pipelines.encode import check_rate_target

    if o["meta"] is not None:
        raise InputError("--meta is one image's metadata; with many inputs each image's NAME.json beside it is read")
    check_rate_target(o["quality"], o["bpp"], o["max_bytes"])
    inputs = find_inputs(o["input"], IMAGE_INPUTS, "image (.png, .jpg, .tif)")
    _run_many(encode_file, o, inputs, ".cosmic", options, "encoded")


def _decompress_many(o: dict) -> None:
    """`cosmic decompress DIR_OR_GLOB -o OUTDIR`: one OUTDIR/STEM.png (.tif, .jpg) per .cosmic file."""
    from cosmic.io.raster import parse_creation_options
    from cosmic.pipelines.batch import IMAGE_SUFFIX, find_inputs
    from cosmic.pipelines.batch_decode import DecodeOptions, decode_file
    from cosmic.pipelines.decode import output_format

    fmt = o["fmt"] or "png"
    output_format(Path("x" + IMAGE_SUFFIX.get(fmt, f".{fmt}")), o["fmt"], o["jpeg_quality"])
    if fmt != "tiff" and (o["dtype"] not in (None, "uint8") or o["co"]):
        raise InputError("--dtype and --co are written to GeoTIFFs: add --format tiff")
    options = DecodeOptions(o["model"], o["steps"], o["seed"], o["conceal"], o["deblock"], fmt, o["jpeg_quality"],
                            o["device"], o["precision"], o["dtype"], tuple(parse_creation_options(o["co"]).items()),
                            _prior_name(o["prior"], o["fidelity"]), o["fidelity"], o["enhance"], o["enhance_steps"])
    _run_many(decode_file, o, find_inputs(o["input"]), IMAGE_SUFFIX[fmt], options, "decoded")


def _enhance_many(o: dict) -> None:
    """`cosmic enhance DIR_OR_GLOB -o OUTDIR`: one OUTDIR/STEM.png (.tif) per JPEG2000 file."""
    from cosmic.io.raster import parse_bands, parse_scale
    from cosmic.pipelines.batch import IMAGE_SUFFIX, find_inputs
    from cosmic.pipelines.batch_enhance import EnhanceOptions, enhance_file, enhance_inputs

    fmt = o["fmt"] or "png"
    if fmt not in ("png", "tiff"):
        raise InputError(f"--format {fmt}: choose png or tiff")
    if o["steps"] < 0:
        raise InputError(f"--steps {o['steps']}: must be 0 or more")
    bands = parse_bands(o["bands"])
    options = EnhanceOptions(o["model"], o["steps"], o["seed"], o["bpp"], None if bands is None else tuple(bands),
                             parse_scale(o["scale"]), _prior_name(o["prior"], o["fidelity"]), o["fidelity"])
    inputs = find_inputs(o["input"], enhance_inputs(o["bpp"], options.prior), "JPEG2000 (.jp2, .j2k)")
    _run_many(enhance_file, o, inputs, IMAGE_SUFFIX[fmt], options, "enhanced")


def _describe_georef(georef: dict | None) -> str:
    if not georef:
        return "(none)"
    parts = []
    crs = georef.get("crs")
    if crs:
        parts.append(crs if len(crs) < 40 else crs[:37] + "...")
    t = georef.get("transform")
    if t:
        parts.append(f"origin ({t[2]:.3f}, {t[5]:.3f}), pixel {abs(t[0]):g} x {abs(t[4]):g}")
    if georef.get("nodata") is not None:
        parts.append(f"nodata {georef['nodata']}")
    src = georef.get("source") or {}
    if src.get("bands"):
        names = [n for n in src.get("descriptions") or [] if n]
        parts.append(f"bands {','.join(map(str, src['bands']))} of {src.get('source_dtype')}"
                     + (f" ({','.join(names)})" if names else ""))
    if src.get("scale"):
        parts.append("scaled " + ", ".join(f"{lo:g}..{hi:g}" for lo, hi in src["scale"]))
    return "; ".join(parts)


def _image_line(c) -> str:
    """Size, bands, bits (coded and source), ratio against the source, groups and mask."""
    from cosmic.io.container import source_bits

    h, bits = c.header, source_bits(c.header)
    models = (h.layout or {}).get("models") or [None] * h.planes  # a group's own model, e.g. single-band
    groups = ":".join(",".join(map(str, g)) + (f" ({_clean(m['model'])})" if m else "") for g, m in zip(h.groups, models))
    return (f"{h.width}x{h.height}, {h.channels} band(s) coded {h.bit_depth}-bit from {bits}-bit, ratio "
            f"{h.width * h.height * h.channels * bits / 8 / c.file_size:.1f}:1; groups "
            f"{groups}; mask {'yes' if h.has_mask else 'no'}")


def _bad_tiles(c) -> list[str]:
    """Every tile whose CRC fails, then every tile whose fill mask does not decode."""
    from cosmic.io.container import TileError

    bad = []
    for i in range(c.header.num_tiles):
        try:
            c.tile_payload(i)
            if i < c.header.grid_tiles:
                c.tile_mask(i)
        except TileError as err:
            bad.append(str(err))
    return bad


@app.command()
def info(
    input: Path = typer.Argument(..., help="a .cosmic file"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Show a .cosmic file's header and tile table (and check every tile's CRC and mask)."""
    from cosmic.io.container import read_container
    from cosmic.io.container import source_bits

    c = read_container(input)
    h = c.header
    bad = _bad_tiles(c)
    d = {
        "file": str(input), "format_version": c.version, "bytes": c.file_size, "bpp": c.bpp,
        "model": h.model, "model_sha256": h.model_sha256, "width": h.width, "height": h.height,
        "channels": h.channels, "bit_depth": h.bit_depth, "tile": h.tile, "quality": h.quality,
        "grid": [h.rows, h.cols], "tile_bytes": [length for length, _ in c.entries],
        "metadata": h.metadata, "georef": h.georef, "corrupt_tiles": bad,
        "groups": h.groups, "mask": h.has_mask, "source_bits": source_bits(h),
        "group_models": [c.plane(g).header.model for g in range(h.planes)],
    }
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    lengths = d["tile_bytes"]
    typer.echo(f"{_clean(input)}: COSMIC format v{c.version}, {c.file_size} bytes, {c.bpp:.4f} bpp")
    quality = f", quality {h.quality:g}" if h.quality is not None else ""
    typer.echo(f"  model     {_clean(h.model)} (on-board sha256 {h.model_sha256[:16]}...){quality}")
    typer.echo(f"  image     {_image_line(c)}")
    typer.echo(f"  tiles     {h.rows}x{h.cols} of {h.tile}px, {min(lengths)}..{max(lengths)} bytes each")
    typer.echo(f"  metadata  {json.dumps(h.metadata) if h.metadata else '(none)'}")
    typer.echo(f"  georef    {_clean(_describe_georef(h.georef))}")
    typer.echo(f"  integrity {'all tiles OK' if not bad else '; '.join(bad)}")
    if bad:
        raise typer.Exit(3)


@app.command()
def flops(
    preset: str = typer.Option("paper", help="COSMIC preset to count (paper or small)"),
    size: int = typer.Option(256, help="image side in pixels"),
    baselines: bool = typer.Option(True, help="also count CompressAI's baselines"),
    onboard_channels: Optional[int] = typer.Option(None, help="count COSMIC with E this wide (default: the "
                                                              "preset's N; the hyperprior keeps N)"),
) -> None:
    """On-board MACs / FLOPs (E + h_a + h_s), with the variable-rate additions (YCbCr, colour
    shortcut, gain units), without CAMs, and CompressAI's baselines at the same preset's widths
    (paper Table 1)."""
    from rich.console import Console
    from rich.table import Table

    from cosmic.flops import BASELINES, onboard_cost
    from cosmic.models.registry import PRESETS

    if preset not in PRESETS:
        raise InputError(f"--preset {preset}: choose one of {', '.join(PRESETS)}")
    check_tile(size, "--size")
    if onboard_channels is not None and (onboard_channels <= 0 or onboard_channels % 2):
        raise InputError(f"--onboard-channels {onboard_channels}: a positive even number")
    rows = [onboard_cost("cosmic", size, preset, **kw, onboard_channels=onboard_channels)
            for kw in ({}, {"variable_rate": True}, {"cams": False})]
    if baselines:
        rows += [onboard_cost(b, size, preset) for b in BASELINES]
    ref = rows[0].macs
    table = Table(title=f"On-board cost at {size}x{size} (torch.utils.flop_counter)")
    for col in ("model", "GMACs", "GFLOPs", "params (M)", "x COSMIC"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for r in rows:
        table.add_row(r.name, f"{r.macs / 1e9:.3f}", f"{r.flops / 1e9:.3f}", f"{r.params / 1e6:.2f}",
                      f"{r.macs / ref:.2f}")
    Console().print(table)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), help="folder for the bitstream, images and report"),
    image: Optional[Path] = typer.Option(None, help="image to use instead of the bundled NAIP sample"),
    model: str = typer.Option(DEFAULT_MODEL_NAME, "--model", "-m"),
    steps: int = typer.Option(0, help="also decode with diffusion compensation, N DDIM steps (opt-in; needs stage 2)"),
    seed: int = typer.Option(0),
    threads: int = typer.Option(0),
) -> None:
    """The main job: compress a real scene on the satellite, decode it on the ground, compare."""
    from cosmic.data import sample_path
    from cosmic.demo import run_demo

    _threads(threads)
    if image is not None and not image.exists():
        raise InputError(f"{image}: no such file")
    out.mkdir(parents=True, exist_ok=True)
    run_demo(image or sample_path(), out, model, echo=typer.echo, steps=steps, seed=seed)


@app.command("compare")
def compare_cmd(
    data: Path = typer.Option(..., help="folder of images (SPLITS.json honoured)"),
    split: str = typer.Option("val", help="train, val or all"),
    out: Path = typer.Option(Path("results/compare"), help="folder for per_image.json and summary.md"),
    model: str = typer.Option(DEFAULT_MODEL_NAME, "--model", "-m"),
    limit: int = typer.Option(0, help="use only the first N images (0: all)"),
    steps: int = typer.Option(0, help="also decode with diffusion compensation, N DDIM steps (0: no)"),
    gsd: Optional[float] = typer.Option(None, help="GSD in metres known for the whole dataset"),
    threads: int = typer.Option(0),
) -> None:
    """COSMIC vs JPEG2000 at the same measured bpp, per image, from real files (images where the
    JPEG2000 rate search misses COSMIC's bpp by more than 5 % are flagged and left out of the means)."""
    from cosmic.evaluation.matched import compare_with_jpeg2000, write_report
    from cosmic.metadata import SensorMetadata
    from cosmic.io.images import split_files

    _threads(threads)
    files = split_files(data, split)
    if limit:
        files = files[:limit]
    rows = compare_with_jpeg2000(model, files, out, steps=steps,
                                 default_metadata=SensorMetadata(gsd=gsd) if gsd else None)
    (out / "current.cosmic").unlink(missing_ok=True)
    summary = write_report(rows, out, f"COSMIC vs JPEG2000 on {data.name}/{split}")
    for name in summary["j2k_missed"]:
        _note(f"{name}: the JPEG2000 rate search missed COSMIC's bpp by more than 5%; left out of the means")
    typer.echo((out / "summary.md").read_text())


@app.command("eval")
def eval_cmd(
    data: Path = typer.Option(..., help="folder of images (SPLITS.json honoured) or a tile set (manifest.json)"),
    codecs: str = typer.Option("cosmic,jpeg2000,jpeg,webp,avif,jpegxl", help="comma-separated codecs"),
    out: Path = typer.Option(Path("results/eval"), help="folder for the JSON, summary.md and plots"),
    split: str = typer.Option("val", help="train, val or all (folders with SPLITS.json)"),
    limit: int = typer.Option(0, help="use N images spread evenly over the set (0: all)"),
    steps: str = typer.Option("25", help="DDIM steps for cosmic-dc; a list (5,10,25,50) sweeps them"),
    seed: str = typer.Option(
        "0", help="diffusion sampler seed; a list (0,1,2,3,4) decodes with each and reports mean ± 2σ (Table 4)"),
    gsd: Optional[float] = typer.Option(None, help="GSD in metres known for the whole dataset"),
    title: Optional[str] = typer.Option(None, help="title of the report (default: the data folder)"),
    classifier: Optional[str] = typer.Option(
        "classifier-ucm", help="scene classifier (shipped name or directory) for top-1 and FD-UCM; 'none' to skip"),
    report_only: bool = typer.Option(
        False, help="rewrite summary.md, the per-codec JSON and plots from OUT/per_image.json (no coding)"),
    threads: int = typer.Option(0),
    stitch: bool = typer.Option(True, help="tile sets: also score the stitched scenes (stitched.md)"),
    device: str = _DEVICE, precision: str = _PRECISION,
) -> None:
    """Rate-distortion of several codecs from real encodings: JSON, markdown table, BD-rate, plots."""
    from cosmic.evaluation.harness import parse_codecs, report_only_results, run_evaluation
    from cosmic.metadata import SensorMetadata
    from cosmic.utils.device import configured

    _threads(threads)
    step_list, seed_list = _eval_lists(steps, seed)
    specs = parse_codecs(codecs, steps=step_list, seeds=seed_list)
    command = "cosmic " + " ".join(str(a) for a in _ARGV)
    if report_only:
        reports = report_only_results(out, specs, title or data.name, command)
    else:
        for s_ in specs:
            if s_.note:
                _note(f"{s_.name}: unavailable - {s_.note}")
        with configured(device, precision):  # the learned codecs' decode pipelines
            reports = run_evaluation(data, specs, out, split, limit, seed_list[0], title, command,
                                     SensorMetadata(gsd=gsd) if gsd else None, _load_classifier(classifier),
                                     classifier, stitch=stitch)
    for report in reports:
        typer.echo(report.read_text())


def _eval_lists(steps: str, seed: str) -> tuple[list[int], list[int]]:
    """``--steps`` and ``--seed`` of `cosmic eval` as checked lists."""
    step_list = _int_list("--steps", steps, "25 or 5,10,25,50")
    if not step_list or min(step_list) < 1:
        raise InputError(f"--steps {steps!r}: step counts must be 1 or more")
    seed_list = _int_list("--seed", seed, "0 or 0,1,2,3,4")
    if not seed_list or min(seed_list) < 0 or len(set(seed_list)) != len(seed_list):
        raise InputError(f"--seed {seed!r}: seeds must be distinct numbers, 0 or more")
    return step_list, seed_list


def _load_classifier(name: Optional[str]):
    """The scene classifier, or None for 'none' / a default that is not shipped."""
    if not name or name.lower() == "none":
        return None
    from cosmic.evaluation.classifier import SceneClassifier
    from cosmic.zoo import model_path, shipped_models

    if name == "classifier-ucm" and name not in shipped_models():
        _note("no shipped scene classifier: top-1 and FD-UCM are skipped")
        return None
    return SceneClassifier.from_pretrained(model_path(name))


@app.command()
def models() -> None:
    """List the models shipped inside the package."""
    from cosmic.evaluation.classifier import SceneClassifier
    from cosmic.zoo import has_compensator, read_model_config, shipped_models

    for name in shipped_models():
        cfg = read_model_config(name)
        if cfg.get("_class_name") == SceneClassifier.__name__:
            top1 = cfg.get("_extra", {}).get("val_top1")
            typer.echo(f"{name}: scene classifier for cosmic eval ({len(cfg.get('classes', []))} classes"
                       + (f", val top-1 {top1:.3f})" if top1 is not None else ")"))
            continue
        if cfg.get("_class_name") == "CodebookPrior":
            typer.echo(f"{name}: Code-RSIC codebook prior for --prior codebook (preset {cfg.get('preset')}, "
                       f"trained on {cfg.get('lq_model')} decodes)")
            continue
        if cfg.get("_class_name") == "Enhancer":
            typer.echo(f"{name}: LDM-RSIC enhancer of {cfg.get('source')} decodes ({', '.join(cfg['components'])})")
            continue
        stage2 = " + stage 2" if has_compensator(name) else ""
        wide_e = f" E={cfg['onboard_channels']}" if cfg.get("onboard_channels") else ""
        typer.echo(f"{name}: N={cfg.get('N')}{wide_e} M={cfg.get('M')} ground={cfg.get('ground_channels')}{stage2}")


@export_app.command("onnx")
def export_onnx_cmd(
    model: str = typer.Argument(..., help="shipped model name or model directory"),
    output: Path = typer.Option(..., "-o", "--output", help="the .onnx file to write"),
    tile: int = typer.Option(256, help="tile size in pixels the graph takes (multiple of 64)"),
) -> None:
    """Export E + h_a (+ colour shortcut, colour transform, gain units) as ONNX: the network a
    satellite's embedded runtime runs; the rANS coding stays in CompressAI's coder."""
    from cosmic.onboard.export import export_onnx
    from cosmic.zoo import load_onboard

    check_tile(tile)
    _check_output(output)
    codec, name = load_onboard(model)
    export_onnx(codec, output, tile)
    inputs = "x, quality" if codec.quality_range else "x"
    typer.echo(f"{output}: {name} on-board analysis ({inputs} -> y, z) for {tile}-px tiles, "
               f"{output.stat().st_size} bytes")


@data_app.command("tiles")
def data_tiles(
    scenes: list[Path] = typer.Option(
        ..., help="folder of scene images, or one image (repeatable); PNG preferred over originals"),
    out: Path = typer.Option(..., help="folder to write the tiles and manifest.json into"),
    tile: int = typer.Option(256, help="tile size in pixels"),
    metadata: bool = typer.Option(
        True, help="write each scene's sidecar metadata beside its tiles (a metadata-conditioned "
                   "decode uses it; coded files then carry it in their header, a few dozen bytes)"),
) -> None:
    """Cut scenes into whole TILE x TILE tiles with a manifest (the paper's tile test set)."""
    from cosmic.evaluation.tileset import build_tile_set

    check_tile(tile)
    m = build_tile_set(scenes, out, tile, progress=True, metadata=metadata)
    fill = sum(t["fill"] for t in m["tiles"])
    for s_ in m["scenes"]:
        typer.echo(f"{s_['name']}: {s_['width']}x{s_['height']} -> {s_['rows']}x{s_['cols']} tiles")
    typer.echo(f"{out / 'manifest.json'}: {len(m['tiles'])} tiles ({fill} all fill) from {len(m['scenes'])} scenes")


@train_app.command("classifier")
def train_classifier_cmd(
    data: Path = typer.Option(..., help="folder of class sub-folders (SPLITS.json honoured), e.g. UC Merced"),
    out: Path = typer.Option(Path("runs/classifier"), help="model directory to write"),
    steps: int = typer.Option(1500),
    batch_size: int = typer.Option(32),
    threads: int = typer.Option(0),
) -> None:
    """Train the scene classifier used for downstream accuracy and FD-UCM in `cosmic eval`."""
    from cosmic.training.classifier import train_classifier

    _threads(threads)
    if not data.is_dir():
        raise InputError(f"--data {data}: not a directory")
    path, acc = train_classifier(data, out, steps=steps, batch_size=batch_size)
    typer.echo(f"{path}: top-1 accuracy on the val split {acc:.3f}")


#: the options of `cosmic train stage1` (their names are Stage1Config's fields)
_STAGE1 = dict(
    data=typer.Option(None, help="folder of PNG/JPEG/TIFF images (SPLITS.json honoured), or of .tar shards "
                                 "with --stream; required unless the --config file gives it"),
    out=typer.Option(Path("runs/stage1"), help="run directory (checkpoints, final model)"),
    preset=typer.Option("small", help="paper or small"),
    arch=typer.Option("cosmic", help="cosmic, or a CompressAI baseline trained the same way: "
                                     "bmshj2018-hyperprior, mbt2018-mean"),
    lmbda=typer.Option(0.0026, help="rate-distortion trade-off λ (paper: 0.00067..0.005)"),
    kl_weight=typer.Option(0.5, help="weight of the z0 KL term, in bpp units"),
    est_weight=typer.Option(0.5, help="share of the distortion term given to the no-compensation (ẑ0) path, 0..1"),
    chroma_weight=typer.Option(
        0.0, help="extra weight on the ẑ0 path's block-averaged colour error (makes y_hat carry colour)"),
    colour_shortcut=typer.Option(
        False, help="add the colour shortcut to E (block-mean colour into y; zero-initialised, so "
                    "--init-from a model without it starts where that model was)"),
    cams=typer.Option(True, help="--no-cams: E without its CAMs (the paper's w/o CAM ablation)"),
    crop=typer.Option(128, help="random crop size (multiple of 64)"),
    bf16=typer.Option(False, help="bf16 autocast (slower on CPUs without AMX)"),
    resume=typer.Option(True, help="resume from OUT/last if present"),
    name=typer.Option(None, help="model name written into bitstreams"),
    init_from=typer.Option(None, help="start from this model's weights (new λ)"),
    extra_data=typer.Option(None, help="images or folders (e.g. large scenes) whose random crops join the training set"),
    split=typer.Option("train", help="SPLITS.json lists to train on, joined by '+'"),
    rate_lambdas=typer.Option(
        None, help="variable rate: comma-separated ascending λs of qualities 1..K (one model codes them all)"),
    colour_space=typer.Option("rgb", help="rgb or ycbcr (the colour space E codes)"),
    ground_channels=typer.Option(None, help="width of the ground decoder (default: the preset's)"),
    onboard_channels=typer.Option(None, help="width of the on-board encoder E (default: the preset's N; the "
                                             "hyperprior keeps N); with --init-from widens it exactly"),
    lr_schedule=typer.Option("step", help="step (10x drop at --lr-drop-at) or cosine (to --final-lr)"),
    lr_drop_at=typer.Option(0.85, help="fraction of --steps where the decay starts"),
    final_lr=typer.Option(0.02, help="cosine: last lr as a fraction of --lr"),
    warmup_steps=typer.Option(0, help="linear lr warm-up steps"),
    ema_decay=typer.Option(0.0, help="keep (and ship) an EMA of the weights, e.g. 0.999"),
    gain_lr_scale=typer.Option(1.0, help="variable rate: the gain units' lr as a multiple of --lr (e.g. 10 "
                                         "when --init-from a model and widening --rate-lambdas)"),
    val_images=typer.Option(42, help="validation images (a fixed spread-out subset of val)"),
    device=typer.Option("auto", help="auto, cpu, cuda or cuda:N (under torchrun: each process's GPU; "
                                     "validation codes on the CPU)"),
    max_minutes=typer.Option(None, help="checkpoint and stop after this much wall time"),
    pause_at=typer.Option(None, help="checkpoint and stop at this step (resume later)"),
    start_step=typer.Option(0, help="with --init-from: continue a campaign's schedule from this step"),
    bands=typer.Option(3, help="1: a single-band model trained on one band of each crop (R, G, B or luminance); "
                               "--init-from an RGB model converts it exactly"),
    ground_only=typer.Option(False, "--ground-only", help="with --init-from: train the ground decoder only "
                             "(bitstreams unchanged; --ground-channels may widen it)"),
)
#: options both trainers share (their names are Stage1Config's and Stage2Config's fields)
_TRAIN = dict(
    config=typer.Option(None, help="a run.yaml / run.json of these options (keys with _); flags given "
                                   "here override it; OUT/stage*_config.json of a run reads back"),
    precision=typer.Option("fp32", help="fp32, bf16 or fp16 (CUDA) autocast of the network's forward pass"),
    workers=typer.Option(0, help="DataLoader worker processes reading and cropping images"),
    stream=typer.Option(False, help="read images from disk as needed (any dataset size) instead of holding "
                                    "them in memory; a folder of .tar shards is streamed shard by shard"),
    log_every=typer.Option(10, help="write the loss terms to OUT/metrics.csv (and TensorBoard) every N steps"),
)


@train_app.command("stage1")
def train_stage1_cmd(
    ctx: typer.Context, data: Optional[Path] = _STAGE1["data"], out: Path = _STAGE1["out"], preset: str = _STAGE1["preset"],
    arch: str = _STAGE1["arch"], lmbda: float = _STAGE1["lmbda"], kl_weight: float = _STAGE1["kl_weight"],
    est_weight: float = _STAGE1["est_weight"], chroma_weight: float = _STAGE1["chroma_weight"],
    colour_shortcut: bool = _STAGE1["colour_shortcut"], cams: bool = _STAGE1["cams"],
    steps: int = typer.Option(20000), batch_size: int = typer.Option(8), crop: int = _STAGE1["crop"],
    lr: float = typer.Option(1e-4), val_every: int = typer.Option(1000),
    checkpoint_every: int = typer.Option(250), threads: int = typer.Option(0), bf16: bool = _STAGE1["bf16"],
    channels_last: bool = typer.Option(False), resume: bool = _STAGE1["resume"],
    name: Optional[str] = _STAGE1["name"], init_from: Optional[str] = _STAGE1["init_from"],
    extra_data: Optional[list[Path]] = _STAGE1["extra_data"], split: str = _STAGE1["split"],
    rate_lambdas: Optional[str] = _STAGE1["rate_lambdas"], colour_space: str = _STAGE1["colour_space"],
    ground_channels: Optional[int] = _STAGE1["ground_channels"], lr_schedule: str = _STAGE1["lr_schedule"],
    onboard_channels: Optional[int] = _STAGE1["onboard_channels"],
    lr_drop_at: float = _STAGE1["lr_drop_at"], final_lr: float = _STAGE1["final_lr"],
    warmup_steps: int = _STAGE1["warmup_steps"], ema_decay: float = _STAGE1["ema_decay"],
    gain_lr_scale: float = _STAGE1["gain_lr_scale"], val_images: int = _STAGE1["val_images"],
    seed: int = typer.Option(0),
    device: str = _STAGE1["device"], max_minutes: Optional[float] = _STAGE1["max_minutes"],
    pause_at: Optional[int] = _STAGE1["pause_at"], start_step: int = _STAGE1["start_step"],
    ground_only: bool = _STAGE1["ground_only"], bands: int = _STAGE1["bands"],
    config: Optional[Path] = _TRAIN["config"], precision: str = _TRAIN["precision"],
    workers: int = _TRAIN["workers"], stream: bool = _TRAIN["stream"], log_every: int = _TRAIN["log_every"],
) -> None:
    """Stage 1: train E, hyperprior, Ẽ, ẑ0 and D with L = R + λ·255²·MSE (+ aux, + β·KL).
    Several GPUs: torchrun --nproc-per-node N -m cosmic.cli train stage1 ..."""
    options = dict(locals())
    from cosmic.training.stage1 import train_stage1

    final = train_stage1(_stage1_config(options), resume=options["resume"])
    typer.echo(f"final model: {final}")


def _stage1_config(options: dict):
    """Stage1Config from the options of `cosmic train stage1`, checked (one-line InputErrors)."""
    from cosmic.models.registry import MODELS
    from cosmic.training.stage1 import Stage1Config

    o = _with_config(Stage1Config, options)
    check_tile(o["crop"], "--crop")
    if not 0.0 <= o["est_weight"] <= 1.0:
        raise InputError(f"--est-weight {o['est_weight']}: must be in [0, 1]")
    if o["arch"] not in MODELS:
        raise InputError(f"--arch {o['arch']}: unknown; choose one of {', '.join(MODELS)}")
    return Stage1Config(**o)


def _path_texts(paths: Optional[list[Path]]) -> Optional[list[str]]:
    """``--extra-data`` paths as the text a training config stores (None when none are given)."""
    return [str(p) for p in paths] if paths else None


def _with_config(config_class, options: dict) -> dict:
    """A trainer's config arguments: the command's options (paths as text, lists parsed) with a
    --config file under the options given explicitly; --data checked."""
    from cosmic.training.config import load_config, merge_config

    ctx = options["ctx"]
    o = {k: v for k, v in options.items() if k not in ("ctx", "config", "resume")}
    explicit = {k for k in o if getattr(ctx.get_parameter_source(k), "name", "") in ("COMMANDLINE", "ENVIRONMENT")}
    if "no_metadata" in o:  # stage 2's flag for its use_metadata field
        o["use_metadata"] = not o.pop("no_metadata")
        explicit |= {"use_metadata"} if "no_metadata" in explicit else set()
    for key in ("data", "out", "init_from"):
        o[key] = str(o[key]) if o.get(key) is not None else o.get(key)
    o["extra_data"] = _path_texts(o.get("extra_data"))
    if isinstance(o.get("rate_lambdas"), str):
        o["rate_lambdas"] = [float(v) for v in o["rate_lambdas"].split(",")]
    if options["config"] is not None:
        o = merge_config(config_class, o, load_config(options["config"]), explicit)
    if not o.get("data"):
        raise InputError("--data: give the training images (or a --config file with 'data')")
    if not Path(o["data"]).exists():
        raise InputError(f"--data {o['data']}: no such directory")
    return o


@train_app.command("stage2")
def train_stage2_cmd(
    ctx: typer.Context,
    stage1: Optional[str] = typer.Option(None, help="stage-1 model directory or shipped name (frozen; required "
                                                    "unless the --config file gives it)"),
    data: Optional[Path] = typer.Option(None, help="folder of images (SPLITS.json and NAME.json sidecars "
                                                   "honoured), or of .tar shards with --stream"),
    out: Path = typer.Option(Path("runs/stage2")), preset: str = typer.Option("small", help="UNet size: paper or small"),
    steps: int = typer.Option(20000), batch_size: int = typer.Option(8, help="global batch (split over processes)"),
    crop: int = typer.Option(256), lr: float = typer.Option(1e-4), ema_decay: float = typer.Option(0.999),
    gsd: Optional[float] = typer.Option(None, help="GSD in metres known for the whole dataset (UC Merced: 0.3048)"),
    init_from: Optional[Path] = typer.Option(
        None, help="warm start: a diffusers UNet saved with save_pretrained, or a COSMIC stage-2 model"),
    extra_data: Optional[list[Path]] = typer.Option(
        None, help="images or folders (sidecars honoured) whose random crops join the training set"),
    no_metadata: bool = typer.Option(False, help="ablation w/o ME: ignore all metadata"),
    residual: bool = typer.Option(
        True, help="diffuse z0 - ẑ0(y_hat), the detail the no-compensation decode misses (ours); "
                   "--no-residual diffuses z0 itself, as the paper does"),
    checkpoint_every: int = typer.Option(250), threads: int = typer.Option(0), seed: int = typer.Option(0),
    device: str = _STAGE1["device"], config: Optional[Path] = _TRAIN["config"], precision: str = _TRAIN["precision"],
    workers: int = _TRAIN["workers"], stream: bool = _TRAIN["stream"], log_every: int = _TRAIN["log_every"],
    split: str = _STAGE1["split"],
) -> None:
    """Stage 2: train the noise predictor ε_θ(z_t, t, y_hat, metadata) on frozen stage 1 (Eq. 5)."""
    options = dict(locals())
    from cosmic.training.stage2 import Stage2Config, train_stage2

    o = _with_config(Stage2Config, options)
    if not o.get("stage1"):
        raise InputError("--stage1: give the frozen stage-1 model (or a --config file with 'stage1')")
    check_tile(o["crop"], "--crop")
    final = train_stage2(Stage2Config(**o))
    typer.echo(f"diffusion model: {final} (copy it to MODEL_DIR/diffusion to use it)")


@train_app.command("codebook")
def train_codebook_cmd(
    stage: int = typer.Option(..., help="1: VQGAN codebook, 2: code prediction, 3: HPIN (each needs the last)"),
    data: Path = typer.Option(..., help="folder of images (SPLITS.json honoured; never the val split)"),
    out: Path = typer.Option(Path("runs/codebook"), help="run directory; the prior is assembled in OUT/prior"),
    preset: str = typer.Option("small", help="network sizes: small (CPU) or paper"),
    split: str = typer.Option("train+train_extra"), steps: int = typer.Option(2000),
    batch_size: int = typer.Option(8), crop: int = typer.Option(64), lr: float = typer.Option(2e-4),
    feature_weight: float = typer.Option(0.05, help="classifier feature loss weight (our LPIPS stand-in; 0: off)"),
    lq_model: str = typer.Option("cosmic-small-vr", help="stages 2-3: the codec whose steps-0 decodes are the input"),
    lq_qualities: str = typer.Option("1,2", help="stages 2-3: its qualities, comma-separated"),
    lq_images: int = typer.Option(400, help="stages 2-3: training images coded and decoded (cached)"),
    init_from: Optional[str] = typer.Option(
        None, help="a prior (directory or shipped name) to continue from: earlier stages copied, this stage warm"),
    disc_weight: float = typer.Option(0.05, help="stage 1: PatchGAN hinge loss weight"),
    hpin_disc_weight: float = typer.Option(0.0, help="stage 3: PatchGAN hinge loss weight (0: none)"),
    disc_start: float = typer.Option(0.6, help="the discriminator starts after this fraction of the steps"),
    max_minutes: Optional[float] = typer.Option(None, help="checkpoint and stop after this much wall time"),
    threads: int = typer.Option(1), seed: int = typer.Option(0),
    resume: bool = typer.Option(True, help="continue from OUT/stageN/last if present"),
) -> None:
    """Train the Code-RSIC codebook prior (cosmic.codebook), one stage at a time."""
    from cosmic.training.codebook import CodebookConfig, train_codebook

    if not data.is_dir():
        raise InputError(f"--data {data}: not a directory")
    check_tile(crop, "--crop", 8)
    qualities = _float_list("--lq-qualities", lq_qualities)
    cfg = CodebookConfig(stage=stage, data=str(data), out=str(out), preset=preset, split=split, steps=steps,
                         batch_size=batch_size, crop=crop, lr=lr, feature_weight=feature_weight,
                         lq_model=lq_model, lq_qualities=qualities, lq_images=lq_images, init_from=init_from,
                         disc_weight=disc_weight, hpin_disc_weight=hpin_disc_weight, disc_start=disc_start,
                         max_minutes=max_minutes, threads=threads, seed=seed)
    typer.echo(f"codebook prior: {train_codebook(cfg, resume=resume)}")


def _float_list(option: str, text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise InputError(f"{option} {text}: give numbers separated by commas, e.g. 1,2")
    return values


@train_app.command("enhance")
def train_enhance_cmd(
    data: Path = typer.Option(..., help="folder of images (SPLITS.json honoured), e.g. UC Merced"),
    out: Path = typer.Option(Path("runs/enhance")), preset: str = typer.Option("small", help="small or paper"),
    split: str = typer.Option("train+train_extra", help="SPLITS.json lists, joined by '+' (never val)"),
    extra_data: Optional[list[Path]] = typer.Option(
        None, help="large scenes (images or folders) cut into overlapping squares that join the training set"),
    steps: str = typer.Option("1500,500,600", help="steps of stage I, the prior regressor and the LDM"),
    crop: int = typer.Option(64), batch_size: int = typer.Option(8), lr: float = typer.Option(5e-4),
    rates_per_image: int = typer.Option(2, help="rates per image (JPEG2000: log-uniform over 0.05-0.5 bpp; "
                                                "COSMIC: qualities uniform over the model's range)"),
    source: str = typer.Option("jpeg2000", help="jpeg2000, or the COSMIC model whose decodes to enhance"),
    init_from: Optional[str] = typer.Option(None, help="start from this enhancer (same preset; a warm start)"),
    limit: Optional[int] = typer.Option(None, help="use only N images, evenly spaced over the split"),
    max_minutes: Optional[float] = typer.Option(None, help="wall-time cap of each phase"),
    max_bpp: float = typer.Option(0.5, help="JPEG2000 training rates: log-uniform over 0.05..MAX_BPP"),
    tune_men: bool = typer.Option(False, help="the prior-regressor phase fine-tunes MEN too (joint MSE)"),
    seed: int = typer.Option(0), threads: int = typer.Option(1),
) -> None:
    """LDM-RSIC: train an enhancer of JPEG2000 or COSMIC decodes (stage I, prior regressor, stage
    II); resumes from OUT."""
    from cosmic.training.ldm_rsic import PHASES, EnhanceConfig, train_enhancer

    if not data.is_dir():
        raise InputError(f"--data {data}: not a directory")
    counts = _int_list("--steps", steps, "1500,500,600")
    check_tile(crop, "--crop", 8)
    if len(counts) != len(PHASES) or not 0.05 < max_bpp <= 8:
        raise InputError("--steps: three counts; --crop: a positive multiple of 8; --max-bpp: over 0.05, at most 8")
    cfg = EnhanceConfig(data=str(data), out=str(out), preset=preset, split=split, steps=dict(zip(PHASES, counts)),
                        crop=crop, batch_size=batch_size, lr=lr, rates_per_image=rates_per_image, limit=limit,
                        max_minutes=max_minutes, seed=seed, threads=threads, source=source, init_from=init_from,
                        bpp_range=(0.05, max_bpp), tune_men=tune_men,
                        extra_data=_path_texts(extra_data))
    typer.echo(f"enhancer: {train_enhancer(cfg)}")


def _click_exception() -> type:
    """click's ClickException as typer uses it (typer bundles its own click in ``typer._click``)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _usage_error(exc) -> int:
    """click's own message (with its "did you mean") on one line; its exit status (2)."""
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = " ".join(exc.format_message().split())
    if message:  # empty after the help of a bare `cosmic` / `cosmic train`
        typer.echo(f"cosmic: error: {_clean(message)}{hint}", err=True)
    return exc.exit_code


def _internal_error(exc: Exception) -> int:
    if os.environ.get("COSMIC_DEBUG"):
        raise exc
    from cosmic.errors import first_line

    typer.echo(f"cosmic: internal error: {type(exc).__name__}: {_clean(first_line(exc, 300))} "
               "(COSMIC_DEBUG=1 shows more)", err=True)
    return 70


def _command():
    """The click command of :data:`app`, its boolean flags (``--help`` included) shown in ``--help``
    without the ``<bool>`` type column typer prints for every option (a flag takes no value)."""
    command = typer.main.get_command(app)
    _hide_flag_types(command, None)
    return command


def _hide_flag_types(command, parent) -> None:
    ctx = command.context_class(command, parent=parent, info_name=command.name)
    for param in [*command.params, command.get_help_option(ctx)]:
        if param is not None and getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _hide_flag_types(sub, ctx)


def main(argv: list[str] | None = None) -> None:
    """Entry point; ``argv`` (without the program name) defaults to ``sys.argv[1:]``. Exit
    statuses: 2 usage or input, 3 bitstream, 4 model, 70 internal error, 130 interrupted, 143
    terminated (SIGTERM; partial outputs are removed as on Ctrl-C)."""
    import warnings

    # compressai's import-time torch.jit.script notice is noise for a command-line user.
    warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
    global _ARGV
    _ARGV = list(sys.argv[1:] if argv is None else argv)
    previous = _on_sigterm()
    try:
        rc = _command()(args=argv, prog_name="cosmic", standalone_mode=False)
    except CosmicError as exc:
        rc = _report_error(exc)
    except Terminated:
        typer.echo("cosmic: terminated", err=True)
        rc = 143
    except KeyboardInterrupt:
        typer.echo("cosmic: interrupted", err=True)
        rc = 130
    except (typer.Exit, SystemExit) as exc:
        rc = getattr(exc, "exit_code", getattr(exc, "code", 0))
    except typer.Abort:
        rc = 1
    except Exception as exc:  # never a traceback for the user
        rc = _usage_error(exc) if isinstance(exc, _click_exception()) else _internal_error(exc)
    finally:
        _restore_sigterm(previous)
    if isinstance(rc, int) and rc:
        sys.exit(rc)


def _report_error(exc: CosmicError) -> int:
    """A library error as the CLI's one line; its exit status. Under torchrun (``RANK`` set) only
    rank 0 reports bad input: every rank parses the same options (a bad ``--config`` gave one
    error per process above torchrun's own failure report); the others exit with the same status."""
    from cosmic.errors import cli_terms

    if not isinstance(exc, InputError) or os.environ.get("RANK", "0") == "0":
        typer.echo(f"cosmic: error: {_clean(cli_terms(str(exc)))}", err=True)
    return exc.exit_code


class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C so that every writer's cleanup removes its ``*.partial``."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def _on_sigterm():
    """Turn SIGTERM into :class:`Terminated` (main thread only); returns the previous handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    return signal.SIG_DFL if previous is None else previous  # None: a handler set outside Python


def _restore_sigterm(previous) -> None:
    import signal

    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _clean(message) -> str:
    """A message made safe for one terminal line (see :func:`cosmic.errors.sanitize`)."""
    from cosmic.errors import sanitize

    return sanitize(str(message))


if __name__ == "__main__":
    main()
